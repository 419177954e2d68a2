"""Routing an event to its shard (docs/contract.md §3): the home shard, or one of `spread`
consecutive shards by contact when `hairtrigger:spread` says so; read from real Redis."""

from __future__ import annotations

import asyncio
import uuid
import zlib

import redis

from streams import names
from streams.clients import async_client
from streams.events import Router

SHARDS = 8


def _h(x: object) -> int:
    return zlib.crc32(str(x).lower().encode())


def _route(redis_url: str, router: Router, keys: list[tuple[uuid.UUID, uuid.UUID]]) -> list[str]:
    async def go() -> list[str]:
        client = async_client(redis_url)
        try:
            return await router.streams(client, keys)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_accounts_without_a_factor_stay_on_their_home_shard(redis_url: str) -> None:
    account, contacts = uuid.uuid4(), [uuid.uuid4() for _ in range(20)]
    router = Router(SHARDS)
    found = _route(redis_url, router, [(account, c) for c in contacts])
    assert set(found) == {names.events_stream(_h(account) % SHARDS)}
    assert router.home_stream(account) == found[0]


def test_a_spread_account_sends_each_contact_to_one_of_its_shards(redis_url: str) -> None:
    spread, bad, home = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    contacts = [uuid.uuid4() for _ in range(50)]
    with redis.Redis.from_url(redis_url) as r:
        r.hset(names.SPREAD_KEY, mapping={str(spread): 3, str(bad): "lots"})
        try:
            keys = [(a, c) for a in (spread, bad, home) for c in contacts]
            found = _route(redis_url, Router(SHARDS), keys)
        finally:
            r.hdel(names.SPREAD_KEY, str(spread), str(bad))
    want = [names.events_stream((_h(spread) + _h(c) % 3) % SHARDS) for c in contacts]
    assert found[:50] == want
    assert len(set(want)) == 3  # 50 contacts cover the three shards
    assert set(found[50:100]) == {names.events_stream(_h(bad) % SHARDS)}  # unreadable: 1
    assert set(found[100:]) == {names.events_stream(_h(home) % SHARDS)}


def test_factors_are_kept_for_their_ttl_then_read_again(redis_url: str) -> None:
    account, contacts = uuid.uuid4(), [uuid.uuid4() for _ in range(30)]
    keys = [(account, c) for c in contacts]
    cached, fresh = Router(SHARDS, ttl_s=3600), Router(SHARDS, ttl_s=0)
    home = {names.events_stream(_h(account) % SHARDS)}
    assert set(_route(redis_url, cached, keys)) == home
    with redis.Redis.from_url(redis_url) as r:
        r.hset(names.SPREAD_KEY, str(account), 2)
        try:
            assert set(_route(redis_url, cached, keys)) == home  # still the factor it read
            assert len(set(_route(redis_url, fresh, keys))) == 2
        finally:
            r.hdel(names.SPREAD_KEY, str(account))
