"""The backtest's stream reads against a real Redis: pages, window bounds, failures."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import RedisError

from pipelines.backtest import Backtest
from pipelines.index import spec_from_config
from pipelines.triggers import validate_trigger
from store import backtest as reads
from streams import ranges
from streams.clients import async_client

STREAM = "hairtrigger:test:backtest-reads"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        c.delete(STREAM)
        yield c
        c.delete(STREAM)


def fill(client: redis.Redis, times: list[int]) -> list[str]:
    return [
        client.xadd(STREAM, {"event": b"{}"}, id=f"{ms}-{i}").decode()  # type: ignore[union-attr]
        for i, ms in enumerate(times)
    ]


def window(redis_url: str, start: int, end: int, page: int) -> list[list[str]]:
    async def go() -> list[list[str]]:
        conn = async_client(redis_url)
        try:
            return [
                [e[0].decode() for e in p]
                async for p in ranges.read_window(conn, STREAM, start, end, page)
            ]
        finally:
            await conn.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("count", [6, 7])
def test_pages_cover_the_window_once_in_order(
    client: redis.Redis, redis_url: str, count: int
) -> None:
    ids = fill(client, [1000 + i for i in range(count)])
    pages = window(redis_url, 0, 10_000, page=3)
    assert [i for p in pages for i in p] == ids
    assert all(len(p) == 3 for p in pages[:-1])


def test_the_window_starts_inclusive_and_ends_exclusive(
    client: redis.Redis, redis_url: str
) -> None:
    ids = fill(client, [999, 1000, 1000, 1500, 2000, 2001])
    assert window(redis_url, 1000, 2000, page=2) == [ids[1:3], ids[3:4]]
    assert window(redis_url, 3000, 4000, page=2) == []


def test_a_failed_read_leaves_the_gc_on(client: redis.Redis) -> None:
    account = uuid.uuid4()
    config = validate_trigger("contact", "tag_added", None, None)
    spec = spec_from_config(
        config, trigger_id=uuid.uuid4(), workflow_id=uuid.uuid4(), account_id=account
    )

    async def go() -> Any:
        conn = async_client("redis://127.0.0.1:1/0")  # nothing listens there
        try:
            pages = ranges.read_window(conn, STREAM, 0, 1)
            await reads.run(Backtest(account, spec), None, STREAM, pages)  # type: ignore[arg-type]
        finally:
            await conn.aclose()

    with pytest.raises((RedisError, OSError)):
        asyncio.run(go())
    assert gc.isenabled()


def test_a_reader_left_midway_does_not_poison_the_pool(client: redis.Redis, redis_url: str) -> None:
    """The next page was already asked for: that connection must not serve anyone again."""
    ids = fill(client, [1000 + i for i in range(7)])

    async def go() -> tuple[list[str], list[str]]:
        conn = async_client(redis_url)
        try:
            pages = ranges.read_window(conn, STREAM, 0, 10_000, 3)
            first = await anext(pages)
            await pages.aclose()
            assert await conn.ping()
            again = [
                e[0].decode()
                async for p in ranges.read_window(conn, STREAM, 0, 10_000, 3)
                for e in p
            ]
            return [e[0].decode() for e in first], again
        finally:
            await conn.aclose()

    first, again = asyncio.run(go())
    assert first == ids[:3]
    assert again == ids
