"""The ingest relay survives its database connection dying mid-transaction: after the XADDs,
before the held rows are deleted. The rows stay, the relay sends them again (event ids make the
second copy harmless downstream) and goes on relaying."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import orjson
import pytest
import redis

from api import relay
from pipelines.sharding import shard_for
from store import accounts, db, ingest
from streams import names
from streams.clients import gateway_client
from streams.events import Router
from tests.support import servers
from tests.support.factories import event

EVENTS = 20
SPREAD = 4


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """A database of its own: the session gateway's relay must not take these rows first."""
    with servers.fresh_database(database_url, "ht_relay") as url:
        yield url


async def _blocked_relay_backend(watcher: asyncpg.Connection) -> int:
    """The pid of the relay's connection once it waits to delete the rows it has sent."""
    for _ in range(400):
        pid = await watcher.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'DELETE FROM ingest_outbox%' AND datname = current_database()"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the relay never reached its DELETE")


async def _scenario(database_url: str, redis_url: str, stream: str) -> None:
    pool = await db.create_pool(database_url)
    client = gateway_client(redis_url)
    blocker = await db.connect(database_url)
    watcher = await db.connect(database_url)
    task: asyncio.Task[None] | None = None
    try:
        account_id = await accounts.create_account(pool, "relay test")
        payloads = [orjson.dumps({"n": n}) for n in range(EVENTS)]
        await ingest.hold(pool, [(account_id, stream, p) for p in payloads])
        # SHARE lets the relay read and claim the rows but not delete them
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE ingest_outbox IN SHARE MODE")
        task = asyncio.create_task(relay.run(pool, client, idle_s=0.05))
        pid = await _blocked_relay_backend(watcher)
        assert await client.xlen(stream) == EVENTS  # sent, not yet marked as sent
        assert await watcher.fetchval("SELECT pg_terminate_backend($1)", pid)
        await lock.rollback()
        for _ in range(400):
            if not await watcher.fetchval("SELECT count(*) FROM ingest_outbox"):
                break
            assert not task.done(), task
            await asyncio.sleep(0.05)
        assert not await watcher.fetchval("SELECT count(*) FROM ingest_outbox")
        entries = await client.xrange(stream)
        sent = [fields[names.EVENT_FIELD.encode()] for _, fields in entries]
        assert sent == payloads + payloads  # at least once, in order, each retry whole
        # still relaying: a later hold goes out too
        await ingest.hold(pool, [(account_id, stream, b'{"n": "later"}')])
        for _ in range(400):
            if await client.xlen(stream) == 2 * EVENTS + 1:
                break
            await asyncio.sleep(0.05)
        assert await client.xlen(stream) == 2 * EVENTS + 1
        assert not task.done()
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await client.delete(stream)
        await client.aclose()
        for conn in (blocker, watcher):
            await conn.close()
        await pool.close()


def test_relay_survives_its_backend_killed_between_xadd_and_delete(
    fresh_database: str, redis_url: str
) -> None:
    stream = f"hairtrigger:test:relay:{uuid.uuid4().hex}"
    asyncio.run(_scenario(fresh_database, redis_url, stream))
    with redis.Redis.from_url(redis_url) as client:
        assert not client.exists(stream)


async def _relay_routes(database_url: str, redis_url: str, shards: int) -> dict[str, list[str]]:
    """Hold a spread account's events for its home stream (as the gateway does when Redis is
    unreachable), then relay them with a router: where did each land?"""
    pool = await db.create_pool(database_url)
    client = gateway_client(redis_url)
    try:
        account_id = uuid.uuid4()
        while not 8 <= shard_for(account_id, shards) < shards - SPREAD:  # shards no one uses
            account_id = uuid.uuid4()
        await accounts.create_account(pool, "relay spread", "UTC", account_id)
        await client.hset(names.SPREAD_KEY, str(account_id), SPREAD)
        router = Router(shards, ttl_s=0)
        held = [event(account_id, "contact.tag_added", tag="x") for _ in range(40)]
        home = router.home_stream(account_id)
        await ingest.hold(pool, [(account_id, home, orjson.dumps(e)) for e in held])
        assert await relay.relay_once(pool, client, router) == len(held)
        keys = [(e["account_id"], e["data"]["contact_id"]) for e in held]
        found: dict[str, list[str]] = {}
        for e, want in zip(held, await router.streams(client, keys), strict=True):
            entries = await client.xrange(want)
            ids = [orjson.loads(f[names.EVENT_FIELD.encode()])["event_id"] for _, f in entries]
            found.setdefault(want, []).extend(i for i in ids if i == e["event_id"])
        await client.hdel(names.SPREAD_KEY, str(account_id))
        for name in found:
            await client.delete(name)
        return found
    finally:
        await client.aclose()
        await pool.close()


def test_the_relay_routes_held_events_by_the_spread_of_now(
    fresh_database: str, redis_url: str
) -> None:
    """Events held with their home stream go where the router sends them when relayed: each
    on its contact's shard of a spread account, every one of them once."""
    found = asyncio.run(_relay_routes(fresh_database, redis_url, 64))
    assert sum(len(ids) for ids in found.values()) == 40
    assert all(len(set(ids)) == len(ids) for ids in found.values())
    assert len(found) > 1  # spread over several shards, not only home
