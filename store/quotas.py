"""What an account uses, for its quotas (docs/contract.md §15). Migration 0014's triggers keep
account_usage in step with every write of workflows and triggers, in the writing transaction;
this module reads it, and fills in the sizes of triggers saved before the sizes existed."""

from __future__ import annotations

import uuid

import asyncpg
import orjson

from pipelines import sizes
from pipelines.catalog import BY_NAME
from pipelines.loops import stored_filters
from pipelines.quotas import Usage
from store.db import Conn, Executor


async def usage(conn: Executor, account_id: uuid.UUID) -> Usage:
    """The account's use as this transaction sees it: after a write of its own, that write
    included, and the usage row locked by it until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT u.workflows, u.triggers, u.index_bytes, (SELECT max(t.filter_bytes)"
        " FROM workflow_triggers t WHERE t.account_id = $1 AND t.deleted_at IS NULL) AS largest"
        " FROM (SELECT $1::uuid AS account_id) a"
        " LEFT JOIN account_usage u ON u.account_id = a.account_id",
        account_id,
    )
    assert row is not None
    return Usage(
        workflows=row["workflows"] or 0,
        triggers=row["triggers"] or 0,
        largest_filter_bytes=row["largest"] or 0,
        index_bytes=row["index_bytes"] or 0,
    )


async def counted(conn: Executor, account_id: uuid.UUID) -> Usage:
    """The use counted from the rows themselves, the slow way: what account_usage must equal."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM workflows WHERE account_id = $1 AND deleted_at IS NULL)"
        " AS workflows, count(t.id) AS triggers, coalesce(max(t.filter_bytes), 0) AS largest,"
        " coalesce(sum(t.index_bytes), 0) AS index_bytes FROM workflow_triggers t"
        " WHERE t.account_id = $1 AND t.deleted_at IS NULL",
        account_id,
    )
    assert row is not None
    return Usage(row["workflows"], row["triggers"], row["largest"], row["index_bytes"])


async def fill_sizes(conn: Conn, batch: int = 1000) -> int:
    """Size the live triggers saved before 0014; how many. Their usage follows (the update
    fires the usage trigger). A stored filter that no longer parses is sized as its JSON, and
    as an empty filter in the index, which will not hold it."""
    filled = 0
    while True:
        rows = await conn.fetch(
            "SELECT id, trigger_event, filters::text AS filters FROM workflow_triggers"
            " WHERE index_bytes IS NULL AND deleted_at IS NULL LIMIT $1",
            batch,
        )
        if not rows:
            return filled
        await conn.executemany(
            "UPDATE workflow_triggers SET filter_bytes = $2, index_bytes = $3 WHERE id = $1",
            [(r["id"], *_stored_sizes(r)) for r in rows],
        )
        filled += len(rows)


def _stored_sizes(row: asyncpg.Record) -> tuple[int, int]:
    raw = orjson.loads(row["filters"])
    event = BY_NAME.get(row["trigger_event"])
    parsed = sizes.index_bytes(stored_filters(raw, event)) if event else sizes.TRIGGER_COST
    return len(orjson.dumps(raw)), parsed
