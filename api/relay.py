"""The ingest relay: moves events held in Postgres during a Redis outage to their shard streams,
oldest first, once Redis answers again. Every gateway runs one; a lock lets one work at a time."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from store import ingest
from streams.clients import AsyncRedis
from streams.errors import StreamError
from streams.events import add_events

log = logging.getLogger(__name__)
BATCH = 500


async def relay_once(pool: asyncpg.Pool, redis: AsyncRedis, limit: int = BATCH) -> int:
    """Move up to `limit` held events; the rows go only once their XADDs succeeded (a crash in
    between sends some twice, which the event_id makes harmless downstream)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await ingest.claim(conn, limit)
        if not rows:
            return 0
        await add_events(redis, [(stream, payload) for _, stream, payload in rows])
        await ingest.release(conn, [row[0] for row in rows])
    log.info("relayed %d held events to their shard streams", len(rows))
    return len(rows)


async def run(pool: asyncpg.Pool, redis: AsyncRedis, idle_s: float = 0.5) -> None:
    """Relay until cancelled. Nothing but cancellation ends it: while it is down, held
    accounts would have every new event held too."""
    while True:
        try:
            moved = await relay_once(pool, redis)
        except (StreamError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("ingest relay waiting for its servers: %s", exc)
            moved = 0
            await asyncio.sleep(1.0)
        except Exception:
            log.exception("ingest relay failed; retrying")
            moved = 0
            await asyncio.sleep(1.0)
        if moved < BATCH:
            await asyncio.sleep(idle_s)
