"""Workflows and their triggers in Postgres. Reads return live (not soft-deleted) rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pipelines import sizes
from pipelines.catalog import BY_NAME
from pipelines.loop_search import listen_keys
from pipelines.loops import stored_filters
from pipelines.triggers import TriggerConfig
from store.db import Conn, Executor

Row = dict[str, Any]

_WORKFLOW_COLUMNS = (
    "id, account_id, name, description, status, actions, version, created_at, updated_at"
)
_TRIGGER_COLUMNS = (
    "id, account_id, workflow_id, trigger_type, trigger_event, filters, settings, is_active,"
    " version, created_at, updated_at, filter_bytes, index_bytes"
)


def _row(record: asyncpg.Record | None) -> Row | None:
    return dict(record) if record is not None else None


async def insert_workflow(
    conn: Executor, account_id: uuid.UUID, name: str, description: str, actions: list[Any]
) -> Row:
    record = await conn.fetchrow(
        f"INSERT INTO workflows (id, account_id, name, description, actions)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_WORKFLOW_COLUMNS}",
        uuid.uuid4(),
        account_id,
        name,
        description,
        actions,
    )
    assert record is not None
    return dict(record)


async def get_workflow(
    conn: Executor, workflow_id: uuid.UUID, *, lock: bool = False, deleted: bool = False
) -> Row | None:
    live = "" if deleted else " AND deleted_at IS NULL"
    suffix = " FOR UPDATE" if lock else ""
    return _row(
        await conn.fetchrow(
            f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE id = $1{live}{suffix}", workflow_id
        )
    )


async def workflow_elsewhere(
    conn: Executor, workflow_id: uuid.UUID, *, deleted: bool = False
) -> bool:
    """Whether another account has a workflow with this id (row-level security hides it)."""
    found: bool = await conn.fetchval(
        "SELECT hairtrigger_workflow_elsewhere($1, $2)", workflow_id, deleted
    )
    return found


async def list_workflows(
    conn: Executor, account_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    if after is None:
        rows = await conn.fetch(
            f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE account_id = $1"
            " AND deleted_at IS NULL ORDER BY created_at, id LIMIT $2",
            account_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {_WORKFLOW_COLUMNS} FROM workflows WHERE account_id = $1"
            " AND deleted_at IS NULL AND (created_at, id) > ($3, $4)"
            " ORDER BY created_at, id LIMIT $2",
            account_id,
            limit,
            *after,
        )
    return [dict(r) for r in rows]


async def update_workflow(conn: Executor, workflow_id: uuid.UUID, changes: Row) -> Row:
    names = list(changes)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    record = await conn.fetchrow(
        f"UPDATE workflows SET {sets}, version = version + 1, updated_at = now()"
        f" WHERE id = $1 RETURNING {_WORKFLOW_COLUMNS}",
        workflow_id,
        *(changes[n] for n in names),
    )
    assert record is not None
    return dict(record)


async def delete_workflow(conn: Executor, workflow_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE workflows SET deleted_at = now(), updated_at = now() WHERE id = $1", workflow_id
    )


async def insert_trigger(
    conn: Executor,
    account_id: uuid.UUID,
    workflow_id: uuid.UUID,
    config: TriggerConfig,
    is_active: bool,
) -> Row:
    """Raises asyncpg.UniqueViolationError when the workflow already has a live trigger."""
    record = await conn.fetchrow(
        "INSERT INTO workflow_triggers (id, account_id, workflow_id, trigger_type,"
        " trigger_event, filters, settings, is_active, loop_keys, filter_bytes, index_bytes)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_TRIGGER_COLUMNS}",
        uuid.uuid4(),
        account_id,
        workflow_id,
        config.event.category,
        config.event.name,
        config.filters_json(),
        config.settings.to_json(),
        is_active,
        listen_keys(account_id, config.event, config.filters),
        *_sizes(config),
    )
    assert record is not None
    return dict(record)


async def live_trigger(conn: Executor, workflow_id: uuid.UUID) -> Row | None:
    return _row(
        await conn.fetchrow(
            f"SELECT {_TRIGGER_COLUMNS} FROM workflow_triggers"
            " WHERE workflow_id = $1 AND deleted_at IS NULL",
            workflow_id,
        )
    )


async def replace_trigger(
    conn: Executor,
    account_id: uuid.UUID,
    trigger_id: uuid.UUID,
    config: TriggerConfig,
    is_active: bool,
) -> Row:
    record = await conn.fetchrow(
        "UPDATE workflow_triggers SET trigger_type = $2, trigger_event = $3, filters = $4,"
        " settings = $5, is_active = $6, loop_keys = $7, filter_bytes = $8, index_bytes = $9,"
        f" version = version + 1, updated_at = now() WHERE id = $1 RETURNING {_TRIGGER_COLUMNS}",
        trigger_id,
        config.event.category,
        config.event.name,
        config.filters_json(),
        config.settings.to_json(),
        is_active,
        listen_keys(account_id, config.event, config.filters),
        *_sizes(config),
    )
    assert record is not None
    return dict(record)


def _sizes(config: TriggerConfig) -> tuple[int, int]:
    """What the trigger weighs for its account's quotas (migration 0014 sums them)."""
    return sizes.filter_bytes(config.filters), sizes.index_bytes(config.filters)


async def delete_trigger(conn: Executor, trigger_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE workflow_triggers SET deleted_at = now(), version = version + 1,"
        " updated_at = now() WHERE id = $1",
        trigger_id,
    )


# Two-key advisory locks live apart from the one-key lock of migrations; this is the first key.
_LOOP_CHECK_LOCK = 0x4C6F6F70  # "Loop"


async def lock_loop_check(conn: Executor, account_id: uuid.UUID) -> None:
    """Serialize loop checks per account until the transaction ends, so two changes cannot
    each pass the check and together close a loop."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2::uuid::text))", _LOOP_CHECK_LOCK, account_id
    )


_LOOP_NODE = (
    "SELECT w.id AS workflow_id, w.name, w.actions, w.created_at, t.trigger_event, t.filters"
    " FROM workflows w JOIN workflow_triggers t ON t.workflow_id = w.id"
    " WHERE w.status = 'active' AND w.deleted_at IS NULL AND t.deleted_at IS NULL AND t.is_active"
)


async def loop_node(conn: Executor, workflow_id: uuid.UUID) -> Row | None:
    """The workflow as loop detection reads it (workflow_id, name, actions, created_at,
    trigger_event, filters), if it is active and its live trigger is too."""
    return _row(await conn.fetchrow(f"{_LOOP_NODE} AND w.id = $1", workflow_id))


async def loop_listeners(
    conn: Executor,
    account_id: uuid.UUID,
    keys: list[int],
    events: list[str],
    known: list[uuid.UUID],
) -> list[Row]:
    """The account's active workflows, other than `known`, whose live, active trigger is filed
    under one of the loop `keys`, or has no keys yet and listens to one of `events`; the
    columns of loop_node. Only for the account the connection works for (a SQL function past
    the policies, so that the keys' index serves it: migration 0013)."""
    rows = await conn.fetch(
        "SELECT * FROM hairtrigger_loop_listeners($1, $2::bigint[], $3::text[], $4::uuid[])",
        account_id,
        keys,
        events,
        known,
    )
    return [dict(r) for r in rows]


async def fill_loop_keys(conn: Conn, batch: int = 1000) -> int:
    """File the live triggers saved before loop keys existed; how many. Keys are computed by
    pipelines.loop_search, which SQL cannot run, so migrate() calls this after the migrations."""
    filled = 0
    while True:
        rows = await conn.fetch(
            "SELECT id, account_id, trigger_event, filters::text AS filters FROM workflow_triggers"
            " WHERE loop_keys IS NULL AND deleted_at IS NULL LIMIT $1",
            batch,
        )
        if not rows:
            return filled
        await conn.executemany(
            "UPDATE workflow_triggers SET loop_keys = $2 WHERE id = $1",
            [(r["id"], _stored_keys(r)) for r in rows],
        )
        filled += len(rows)


def _stored_keys(row: asyncpg.Record) -> list[int]:
    event = BY_NAME.get(row["trigger_event"])
    if event is None:
        return []
    return listen_keys(
        row["account_id"], event, stored_filters(orjson.loads(row["filters"]), event)
    )
