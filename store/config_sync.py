"""Trigger specs for the partition actors, stamped with a version on every config change. A row
that no longer validates is read as an InvalidSpec (pipelines.stored), never raised."""

from __future__ import annotations

import uuid

from pipelines.index import Spec
from pipelines.stored import read_spec
from store.db import Conn, Executor

_SPEC_SELECT = (
    "SELECT t.id, t.workflow_id, t.account_id, t.trigger_event, t.filters, t.settings,"
    " t.sync_version, (t.is_active AND t.deleted_at IS NULL AND w.status = 'active'"
    " AND w.deleted_at IS NULL) AS live"
    " FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id"
)


async def bump(conn: Conn, workflow_id: uuid.UUID) -> list[Spec]:
    """Stamp the workflow's triggers with the next sync version; return their specs.

    Call inside the transaction that changed the workflow or its trigger, with the workflow
    row locked, so that versions follow commit order."""
    await conn.execute(
        "UPDATE workflow_triggers SET sync_version = nextval('config_sync_seq')"
        " WHERE workflow_id = $1",
        workflow_id,
    )
    rows = await conn.fetch(f"{_SPEC_SELECT} WHERE t.workflow_id = $1", workflow_id)
    return [read_spec(r) for r in rows]


async def all_specs(conn: Executor) -> list[Spec]:
    """Every trigger, live or not (dead ones seed the actors' stale-update guard)."""
    return [read_spec(r) for r in await conn.fetch(_SPEC_SELECT)]


async def account_specs(conn: Executor, account_ids: list[uuid.UUID]) -> list[Spec]:
    """Every trigger of the given accounts, live or not (a partition taking them on)."""
    rows = await conn.fetch(f"{_SPEC_SELECT} WHERE t.account_id = ANY($1::uuid[])", account_ids)
    return [read_spec(r) for r in rows]


async def time_specs(conn: Executor) -> list[tuple[Spec, str]]:
    """Live time triggers with their account's timezone."""
    rows = await conn.fetch(
        f"SELECT s.*, a.timezone FROM ({_SPEC_SELECT}) s JOIN accounts a ON a.id = s.account_id"
        " WHERE s.live AND s.trigger_event = ANY($1::text[])",
        ["birthday", "anniversary", "scheduled_date", "recurring_schedule"],
    )
    return [(read_spec(r), r["timezone"]) for r in rows]


async def live_spec(conn: Executor, trigger_id: uuid.UUID) -> Spec | None:
    """The spec of a trigger that is not deleted, with `live` telling whether it would fire."""
    row = await conn.fetchrow(
        f"{_SPEC_SELECT} WHERE t.id = $1 AND t.deleted_at IS NULL", trigger_id
    )
    return None if row is None else read_spec(row)


async def specs_since(conn: Executor, version: int) -> list[Spec]:
    """Every trigger changed after `version` (live or not), oldest change first."""
    rows = await conn.fetch(
        f"{_SPEC_SELECT} WHERE t.sync_version > $1 ORDER BY t.sync_version", version
    )
    return [read_spec(r) for r in rows]
