"""Entries into streams: routing each event to its shard (docs/contract.md §3), the one XADD of
events that the gateway, the relay, the scheduler, the demo and the benchmarks share, and the
publishing of enrollment entries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence

import redis
from redis.asyncio import Redis

from pipelines.sharding import shard_for
from pipelines.spread import factor_of
from streams import names

Item = tuple[str, bytes]  # (shard stream, envelope JSON)
SPREAD_TTL_S = 5.0  # how long a router trusts an account's spread factor before re-reading it


async def add_events(client: Redis, items: Sequence[Item]) -> None:
    """XADD each envelope to its stream, in one round trip, in order."""
    if not items:
        return
    async with client.pipeline(transaction=False) as pipe:
        for stream, payload in items:
            pipe.xadd(stream, {names.EVENT_FIELD: payload})
        await pipe.execute()


def add_events_sync(client: redis.Redis, items: Sequence[Item]) -> None:
    """The same, for synchronous callers (the demo, benchmarks, locust)."""
    if not items:
        return
    pipe = client.pipeline(transaction=False)
    for stream, payload in items:
        pipe.xadd(stream, {names.EVENT_FIELD: payload})
    pipe.execute()


async def publish_enrollments(client: Redis, payloads: Sequence[bytes]) -> None:
    """Encoded enrollment entries (`pipelines.messages.encode_enrollment`) to the enrollments
    stream, in one round trip."""
    if not payloads:
        return
    async with client.pipeline(transaction=False) as pipe:
        for payload in payloads:
            pipe.xadd(names.ENROLLMENTS_STREAM, {names.ENROLLMENT_FIELD: payload})
        await pipe.execute()


class Router:
    """Shard streams of events: the account's home shard, or one of `spread` shards from there
    by contact when the account is spread (`hairtrigger:spread`, absent meaning 1). Spread
    factors are read for a whole batch at once and kept `ttl_s` seconds."""

    def __init__(self, shards: int, ttl_s: float = SPREAD_TTL_S) -> None:
        self.shards = shards
        self._ttl_s = ttl_s
        self._spread: dict[str, tuple[int, float]] = {}

    async def streams(
        self, client: Redis, keys: Sequence[tuple[uuid.UUID | str, uuid.UUID | str | None]]
    ) -> list[str]:
        """The stream of each (account_id, contact_id)."""
        accounts = [str(a).lower() for a, _ in keys]
        stale = self._stale(set(accounts))
        if stale:
            self._store(stale, await client.hmget(names.SPREAD_KEY, stale))
        return self._route(accounts, keys)

    def streams_sync(
        self, client: redis.Redis, keys: Sequence[tuple[uuid.UUID | str, uuid.UUID | str | None]]
    ) -> list[str]:
        """The same, for synchronous producers (the demo, benchmarks, locust)."""
        accounts = [str(a).lower() for a, _ in keys]
        stale = self._stale(set(accounts))
        if stale:
            self._store(stale, client.hmget(names.SPREAD_KEY, stale))
        return self._route(accounts, keys)

    def home_stream(self, account_id: uuid.UUID | str) -> str:
        """The account's home shard stream, where its events go when the spread is unknown."""
        return names.events_stream(shard_for(account_id, self.shards))

    def _route(
        self,
        accounts: list[str],
        keys: Sequence[tuple[uuid.UUID | str, uuid.UUID | str | None]],
    ) -> list[str]:
        return [
            names.events_stream(shard_for(a, self.shards, c, self._spread[a][0]))
            for a, (_, c) in zip(accounts, keys, strict=True)
        ]

    def _stale(self, accounts: Iterable[str]) -> list[str]:
        now = time.monotonic()
        return [a for a in accounts if self._spread.get(a, (1, -1e9))[1] < now - self._ttl_s]

    def _store(self, accounts: list[str], found: Sequence[bytes | str | None]) -> None:
        now = time.monotonic()
        for account, value in zip(accounts, found, strict=True):
            self._spread[account] = (factor_of(value, self.shards), now)
