"""Making and dropping time partitions without ever waiting in front of the batch path
(docs/operations.md §15, docs/decisions.md §13).

Every lock the housekeeping needs is asked for with NOWAIT: if a batch transaction (or any
reader) holds the table, the step is skipped and tried again on the next round, so no writer
ever queues behind a waiting DDL statement. lock_timeout bounds anything not locked here
explicitly. A new partition is made as a plain table and ATTACHed, which takes only SHARE UPDATE
EXCLUSIVE on the parent (CREATE TABLE ... PARTITION OF would need ACCESS EXCLUSIVE); dropping
one needs ACCESS EXCLUSIVE on the parent for the moment of the catalog change, which NOWAIT
gets only when no one uses the table. DETACH ... CONCURRENTLY would avoid that, but Postgres
refuses it while a DEFAULT partition exists, and the DEFAULT partition is what keeps an insert
with an unexpected timestamp from failing."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from pipelines.partitions import Partitioned, bounds
from store.db import Conn

LOCK_TIMEOUT = "200ms"  # for what NOWAIT does not cover (catalog rows, the index relations)


async def existing(conn: Conn, spec: Partitioned) -> dict[date, str]:
    """{period start: partition name} of the table's period partitions (not the default)."""
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = $1::regclass",
        spec.table,
    )
    found = {spec.start_of(r["relname"]): r["relname"] for r in rows}
    return {start: name for start, name in found.items() if start is not None}


async def create(conn: Conn, spec: Partitioned, start: date) -> bool:
    """Make the partition of the period starting at `start`, taking over the rows the default
    partition holds for it; False when a lock was not free (nothing changed)."""
    name = spec.name(start)
    low, high = bounds(start, spec.period)
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute(f"LOCK TABLE {spec.default} IN ACCESS EXCLUSIVE MODE NOWAIT")
            await conn.execute(
                f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS"
                f" INCLUDING CONSTRAINTS, CONSTRAINT {name}_range CHECK ({spec.column} >= $$"
                f"{low.isoformat()}$$ AND {spec.column} < $${high.isoformat()}$$))"
            )
            await conn.execute(
                f"WITH moved AS (DELETE FROM {spec.default} WHERE {spec.column} >= $1"
                f" AND {spec.column} < $2 RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                low,
                high,
            )
            # The CHECK proves the bounds, so ATTACH does not scan the new table.
            await conn.execute(
                f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES FROM"
                f" ('{low.isoformat()}') TO ('{high.isoformat()}')"
            )
            await conn.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    except (asyncpg.LockNotAvailableError, asyncpg.DuplicateTableError):
        return False  # busy, or another process made it meanwhile
    return True


async def drop(conn: Conn, spec: Partitioned, name: str) -> bool:
    """Drop one partition; False when the table is in use (nothing changed)."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            await conn.execute(
                f"LOCK TABLE ONLY {spec.table}, {name} IN ACCESS EXCLUSIVE MODE NOWAIT"
            )
            await conn.execute(f"DROP TABLE {name}")
    except (asyncpg.LockNotAvailableError, asyncpg.UndefinedTableError):
        return False
    return True


async def prune_default(conn: Conn, spec: Partitioned, before: datetime, limit: int) -> int:
    """Delete up to `limit` rows of the default partition older than `before` (row locks only:
    the writers never wait for it)."""
    done = await conn.execute(
        f"DELETE FROM {spec.default} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {spec.default}"
        f" WHERE {spec.column} < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))",
        before,
        limit,
    )
    return int(done.rsplit(" ", 1)[-1])
