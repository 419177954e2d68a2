"""Trigger specs for the partition actors, stamped with a version on every config change."""

from __future__ import annotations

import uuid
from typing import Any

from pipelines.catalog import BY_NAME
from pipelines.filters import parse_filters
from pipelines.index import TriggerSpec
from pipelines.settings import parse_settings
from store.db import Conn, Executor

_SPEC_SELECT = (
    "SELECT t.id, t.workflow_id, t.account_id, t.trigger_event, t.filters, t.settings,"
    " t.sync_version, (t.is_active AND t.deleted_at IS NULL AND w.status = 'active'"
    " AND w.deleted_at IS NULL) AS live"
    " FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id"
)


def spec_from_row(row: Any) -> TriggerSpec:
    event = BY_NAME[row["trigger_event"]]
    return TriggerSpec(
        trigger_id=row["id"],
        workflow_id=row["workflow_id"],
        account_id=row["account_id"],
        event=event,
        filters=parse_filters(row["filters"], event),
        settings=parse_settings(row["settings"], event),
        live=row["live"],
        sync_version=row["sync_version"],
    )


async def bump(conn: Conn, workflow_id: uuid.UUID) -> list[TriggerSpec]:
    """Stamp the workflow's triggers with the next sync version; return their specs.

    Call inside the transaction that changed the workflow or its trigger, with the workflow
    row locked, so that versions follow commit order."""
    await conn.execute(
        "UPDATE workflow_triggers SET sync_version = nextval('config_sync_seq')"
        " WHERE workflow_id = $1",
        workflow_id,
    )
    rows = await conn.fetch(f"{_SPEC_SELECT} WHERE t.workflow_id = $1", workflow_id)
    return [spec_from_row(r) for r in rows]


async def all_specs(conn: Executor) -> list[TriggerSpec]:
    """Every trigger, live or not (dead ones seed the actors' stale-update guard)."""
    return [spec_from_row(r) for r in await conn.fetch(_SPEC_SELECT)]


async def account_specs(conn: Executor, account_ids: list[uuid.UUID]) -> list[TriggerSpec]:
    """Every trigger of the given accounts, live or not (a partition taking them on)."""
    rows = await conn.fetch(f"{_SPEC_SELECT} WHERE t.account_id = ANY($1::uuid[])", account_ids)
    return [spec_from_row(r) for r in rows]


async def time_specs(conn: Executor) -> list[tuple[TriggerSpec, str]]:
    """Live time triggers with their account's timezone."""
    rows = await conn.fetch(
        f"SELECT s.*, a.timezone FROM ({_SPEC_SELECT}) s JOIN accounts a ON a.id = s.account_id"
        " WHERE s.live AND s.trigger_event = ANY($1::text[])",
        ["birthday", "anniversary", "scheduled_date", "recurring_schedule"],
    )
    return [(spec_from_row(r), r["timezone"]) for r in rows]


async def live_spec(conn: Executor, trigger_id: uuid.UUID) -> TriggerSpec | None:
    """The spec of a trigger that is not deleted, with `live` telling whether it would fire."""
    row = await conn.fetchrow(
        f"{_SPEC_SELECT} WHERE t.id = $1 AND t.deleted_at IS NULL", trigger_id
    )
    return None if row is None else spec_from_row(row)


async def specs_since(conn: Executor, version: int) -> list[TriggerSpec]:
    """Every trigger changed after `version` (live or not), oldest change first."""
    rows = await conn.fetch(
        f"{_SPEC_SELECT} WHERE t.sync_version > $1 ORDER BY t.sync_version", version
    )
    return [spec_from_row(r) for r in rows]
