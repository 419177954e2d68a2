"""The reads of a trigger backtest: a shard stream's window (XRANGE pages), the contacts
projection and enrollment history (Postgres). Reads only: nothing is written anywhere."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from pipelines.backtest import Backtest, RawEntry, Result
from store import stream
from store.db import Executor

PAGE = 2000  # entries per XRANGE: about 10 ms of replay, then the event loop serves others


async def read_window(
    redis: Redis, name: str, start_ms: int, end_ms: int, page: int = PAGE
) -> AsyncIterator[list[RawEntry]]:
    """The stream's entries with ids in [start_ms, end_ms), a page at a time. The next page is
    asked for before the current one is handed out, so Redis works while the caller does.
    Replies skip redis-py's per-entry conversion: [id, [field, value, ...]] as sent."""
    pool = redis.connection_pool
    conn: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    done = False
    try:
        start, end = f"{start_ms}-0", f"({end_ms}-0"
        await conn.send_command("XRANGE", name, start, end, "COUNT", page)
        while True:
            entries: list[RawEntry] = await conn.read_response()
            if len(entries) == page:
                last: bytes = entries[-1][0]
                await conn.send_command("XRANGE", name, b"(" + last, end, "COUNT", page)
            if entries:
                yield entries
            if len(entries) < page:
                break
        done = True
    finally:
        if not done:  # a reply may still be on its way: this connection cannot be reused
            await conn.disconnect()
        await pool.release(conn)


async def first_entry_time(redis: Redis, name: str) -> datetime | None:
    """When the oldest entry still retained in the stream was added (None: empty)."""
    found: Any = await redis.xrange(name, "-", "+", count=1)
    if not found:
        return None
    entry_id = found[0][0]
    ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
    return datetime.fromtimestamp(ms / 1000, UTC)


async def run(
    bt: Backtest, pool: Executor, redis: Redis, name: str, start_ms: int, end_ms: int
) -> Result:
    """Feed the window of stream `name` through `bt`, doing the reads it asks for.

    The cyclic GC is paused meanwhile, as for an index rebuild: replies and events are
    short-lived objects by the million that reference counting frees, and the collections they
    would set off cost a third of the replay. Other requests run meanwhile; their cycles wait
    for the end."""
    with _gc_paused():
        async for page in read_window(redis, name, start_ms, end_ms):
            events = bt.select(name, page)
            if not events:
                continue
            keys = bt.contacts_to_load(events)
            if keys:
                bt.add_contacts(await stream.load_contacts(pool, keys))
            matches = bt.match(events)
            pairs = bt.history_to_load(matches)
            if pairs:
                bt.add_history(await stream.load_history(pool, pairs))
            bt.settle(matches)
    return bt.result()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Off, then back on unless it was off already (backtests may overlap: the one that found
    it on turns it back on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
