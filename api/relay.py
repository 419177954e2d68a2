"""The ingest relay: moves events held in Postgres during a Redis outage to their shard streams,
oldest first, once Redis answers again. Every gateway runs one; a lock lets one work at a time."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from pipelines.messages import routing_key
from store import ingest
from streams.clients import AsyncRedis
from streams.errors import StreamError
from streams.events import Router, add_events

log = logging.getLogger(__name__)
BATCH = 500


async def relay_once(
    pool: asyncpg.Pool, redis: AsyncRedis, router: Router | None = None, limit: int = BATCH
) -> int:
    """Move up to `limit` held events; the rows go only once their XADDs succeeded (a crash in
    between sends some twice, which the event_id makes harmless downstream). With a router,
    each event is routed now, by its account's spread as it is now (events held because Redis
    was unreachable were given their home shard); without, to the stream stored with it."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await ingest.claim(conn, limit)
        if not rows:
            return 0
        streams = [stream for _, stream, _ in rows]
        if router is not None:
            keyed = [(i, key) for i, (_, _, p) in enumerate(rows) if (key := routing_key(p))]
            routed = await router.streams(redis, [key for _, key in keyed])
            for (i, _), stream in zip(keyed, routed, strict=True):
                streams[i] = stream
        await add_events(redis, [(st, p) for st, (_, _, p) in zip(streams, rows, strict=True)])
        await ingest.release(conn, [row[0] for row in rows])
    log.info("relayed %d held events to their shard streams", len(rows))
    return len(rows)


async def run(
    pool: asyncpg.Pool, redis: AsyncRedis, router: Router | None = None, idle_s: float = 0.5
) -> None:
    """Relay until cancelled. Nothing but cancellation ends it: while it is down, held
    accounts would have every new event held too."""
    while True:
        try:
            moved = await relay_once(pool, redis, router)
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
