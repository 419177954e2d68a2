"""Range reads of a shard stream for backtests: a window of entries a page at a time, and when
the oldest retained entry was added."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from pipelines.backtest import RawEntry

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


async def read_windows(
    redis: Redis, names: list[str], start_ms: int, end_ms: int, page: int = PAGE
) -> AsyncIterator[list[tuple[str, list[RawEntry]]]]:
    """The window of several streams (a spread account's shards) merged in entry-id order, so
    each contact's events come in the order they were added: pages of about `page` entries,
    each a list of (stream, consecutive entries of that stream)."""
    iters = {n: read_window(redis, n, start_ms, end_ms, page).__aiter__() for n in names}
    buffers: dict[str, deque[RawEntry]] = {n: deque() for n in names}
    heap: list[tuple[tuple[int, int], str]] = []

    async def refill(name: str) -> None:
        try:
            buffers[name].extend(await anext(iters[name]))
        except StopAsyncIteration:
            return
        heapq.heappush(heap, (_key(buffers[name][0][0]), name))

    for name in names:
        await refill(name)
    out: list[tuple[str, list[RawEntry]]] = []
    size = 0
    while heap:
        _, name = heapq.heappop(heap)
        buffer = buffers[name]
        if not out or out[-1][0] != name:
            out.append((name, []))
        out[-1][1].append(buffer.popleft())
        size += 1
        if buffer:
            heapq.heappush(heap, (_key(buffer[0][0]), name))
        else:
            await refill(name)
        if size >= page:
            yield out
            out, size = [], 0
    if out:
        yield out


def _key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


async def first_entry_time(redis: Redis, name: str) -> datetime | None:
    """When the oldest entry still retained in the stream was added (None: empty)."""
    found: Any = await redis.xrange(name, "-", "+", count=1)
    if not found:
        return None
    entry_id = found[0][0]
    ms = int((entry_id.decode() if isinstance(entry_id, bytes) else entry_id).split("-")[0])
    return datetime.fromtimestamp(ms / 1000, UTC)
