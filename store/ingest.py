"""The ingest outbox: events held in Postgres while their shard stream is unreachable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from store.db import Conn, Executor

# Any fixed 64-bit number: one relay at a time, across gateway processes, keeps the order.
_RELAY_LOCK = 0x48546F7574626F78

Held = tuple[uuid.UUID, str, bytes]  # (account_id, stream, payload)


async def holds_events(conn: Executor, account_id: uuid.UUID) -> bool:
    """Whether the account has events waiting: newer ones must queue behind them."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ingest_outbox WHERE account_id = $1)", account_id
    )
    return found


async def hold(conn: Executor, events: Sequence[Held]) -> None:
    await conn.execute(
        "INSERT INTO ingest_outbox (account_id, stream, payload)"
        " SELECT a, s, p FROM unnest($1::uuid[], $2::text[], $3::bytea[])"
        " WITH ORDINALITY AS e(a, s, p, n) ORDER BY n",
        [e[0] for e in events],
        [e[1] for e in events],
        [e[2] for e in events],
    )


async def claim(conn: Conn, limit: int) -> list[tuple[int, str, bytes]] | None:
    """The oldest held events, inside the caller's transaction; None while another relay
    holds the relay lock."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
        return None
    rows = await conn.fetch(
        "SELECT id, stream, payload FROM ingest_outbox ORDER BY id LIMIT $1", limit
    )
    return [(r["id"], r["stream"], r["payload"]) for r in rows]


async def release(conn: Conn, ids: list[int]) -> None:
    await conn.execute("DELETE FROM ingest_outbox WHERE id = ANY($1::bigint[])", ids)
