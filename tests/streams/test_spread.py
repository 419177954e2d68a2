"""Spread factors in real Redis (docs/contract.md §3): every router agrees with the contract's
table, a change is recorded as a move and pinned or not, a second change waits until the first
has settled, and `drained_through` tells when a shard has processed everything up to a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from redis.asyncio import Redis

from pipelines.sharding import shard_for
from pipelines.spread import SETTLE_MS
from streams import names, spread
from streams.clients import async_client
from streams.events import Router
from streams.shards import GROUP
from tests.pipelines.test_sharding import TABLE

T = TypeVar("T")


@pytest.fixture
def sync(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    keys = [names.SPREAD_KEY, names.SPREAD_MOVES_KEY, names.SPREAD_PINNED_KEY]
    client.delete(*keys)
    yield client
    client.delete(*keys)
    client.close()


def _run(redis_url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    async def go() -> T:
        client = async_client(redis_url)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_every_router_routes_by_the_contract_table(redis_url: str, sync: redis.Redis) -> None:
    """The gateway, relay and scheduler use Router.streams; the demo, benchmarks, locust and
    the tests' own producer Router.streams_sync: both agree with the table."""
    for account, contact, factor, shards, shard in TABLE:
        sync.hset(names.SPREAD_KEY, account.lower(), factor)
        keys: list[tuple[Any, Any]] = [(account, contact)]
        want = [names.events_stream(shard)]
        assert Router(shards, ttl_s=0).streams_sync(sync, keys) == want
        routed = _run(redis_url, lambda c, k=keys, n=shards: Router(n, ttl_s=0).streams(c, k))
        assert routed == want


def test_a_change_is_a_move_pinned_and_auto_changes_leave_pinned_accounts(
    redis_url: str, sync: redis.Redis
) -> None:
    account = uuid.uuid4()
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 1, 8, "auto"))
    assert (change.spread, change.changed) == (1, False)  # already 1: nothing recorded
    assert sync.hget(names.SPREAD_MOVES_KEY, str(account)) is None
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 4, 8, "pin"))
    assert (change.spread, change.changed) == (4, True)
    view = _run(redis_url, lambda c: spread.read_view(c, 8))
    move = view.moves[account]
    assert (move.old, move.new, move.widest) == (1, 4, 4)
    assert account in view.pinned
    assert view.factor(account) == 4
    seconds, _ = sync.time()
    assert abs(move.at_ms - seconds * 1000) < 5000  # stamped with Redis's clock


def _quiet_account(shards: int) -> uuid.UUID:
    """An account whose home shard no other test writes to (they use the first few)."""
    while True:
        account = uuid.uuid4()
        if shard_for(account, shards) >= 16:
            return account


def test_a_second_change_waits_for_the_first_to_settle(redis_url: str, sync: redis.Redis) -> None:
    account = _quiet_account(64)
    _run(redis_url, lambda c: spread.set_spread(c, account, 2, 64, "pin"))
    with pytest.raises(spread.SpreadSettling, match="still processing"):
        _run(redis_url, lambda c: spread.set_spread(c, account, 4, 64, "pin"))
    # back-date the move past its cutoff: the old shard holds nothing, so it has settled
    old = sync.hget(names.SPREAD_MOVES_KEY, str(account)).decode()  # type: ignore[union-attr]
    o, n, at, w = old.split(":")
    sync.hset(names.SPREAD_MOVES_KEY, str(account), f"{o}:{n}:{int(at) - SETTLE_MS - 1000}:{w}")
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 4, 64, "pin"))
    assert (change.spread, change.changed) == (4, True)
    assert _run(redis_url, lambda c: spread.read_view(c, 64)).moves[account].widest == 4


def test_auto_spread_leaves_a_pinned_account_and_unpin_hands_it_back(
    redis_url: str, sync: redis.Redis
) -> None:
    account = uuid.uuid4()
    sync.sadd(names.SPREAD_PINNED_KEY, str(account))
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 2, 8, "auto"))
    assert change.refused_pinned
    assert not change.changed
    assert sync.hget(names.SPREAD_KEY, str(account)) is None
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 1, 8, "unpin"))
    assert not sync.sismember(names.SPREAD_PINNED_KEY, str(account))
    change = _run(redis_url, lambda c: spread.set_spread(c, account, 2, 8, "auto"))
    assert change.changed


def test_unreadable_records_count_as_absent(redis_url: str, sync: redis.Redis) -> None:
    account = uuid.uuid4()
    sync.hset(names.SPREAD_KEY, mapping={str(account): "lots", "not-a-uuid": 3})
    sync.hset(names.SPREAD_MOVES_KEY, str(account), "garbage")
    view = _run(redis_url, lambda c: spread.read_view(c, 8))
    assert view.factor(account) == 1
    assert account not in view.moves


def test_drained_through_follows_the_consumer_group(redis_url: str, sync: redis.Redis) -> None:
    shard = 9000 + uuid.uuid4().int % 1000  # a stream of this test's own
    stream = names.events_stream(shard)
    sync.delete(stream)
    seconds, micros = sync.time()
    now_ms = seconds * 1000 + micros // 1000
    drained = lambda cutoff: _run(redis_url, lambda c: spread.drained_through(c, shard, cutoff))  # noqa: E731
    try:
        assert drained(now_ms - 1)  # nothing ever written there
        assert not drained(now_ms + 60_000)  # that time has not come yet
        sync.xadd(stream, {"event": b"x"}, id=f"{now_ms - 500}-0")
        sync.xgroup_create(stream, GROUP, id="0")
        assert not drained(now_ms - 100)  # undelivered
        assert drained(now_ms - 1000)  # the entry is after that cutoff
        sync.xreadgroup(GROUP, "partition-0", {stream: ">"}, count=10)
        assert not drained(now_ms - 100)  # delivered, not acknowledged
        sync.xack(stream, GROUP, f"{now_ms - 500}-0")
        assert drained(now_ms - 100)
    finally:
        sync.delete(stream)


def test_account_streams_cover_the_widest_factor_it_had(redis_url: str, sync: redis.Redis) -> None:
    account = uuid.uuid4()
    assert len(_run(redis_url, lambda c: spread.account_streams(c, account, 8))) == 1
    sync.hset(names.SPREAD_KEY, str(account), 2)
    sync.hset(names.SPREAD_MOVES_KEY, str(account), "4:2:0:4")
    found = _run(redis_url, lambda c: spread.account_streams(c, account, 8))
    assert len(set(found)) == 4
    assert found[0] == Router(8).home_stream(account)
