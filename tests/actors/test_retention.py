"""Stream retention against a real Redis: old processed entries go, everything else stays, and
entries cut before delivery are reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from actors.worker import PartitionWorker, ReadMode, WorkerConfig
from pipelines.config import Settings
from streams import names
from streams.base import TRIMMED_REASON
from streams.clients import async_client
from streams.retention import LOST_REASON, StreamRetention

GROUP = names.CONSUMER_GROUP
HOUR_S = 3600.0
PAYLOAD = {names.EVENT_FIELD: b'{"event_type": "contact.tag_added"}' + b" " * 300}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


@pytest.fixture
def stream(client: redis.Redis) -> Iterator[str]:
    """A shard stream no other test of the session uses (the sessions' tests use 4 shards)."""
    name = names.events_stream(15)
    client.delete(name)
    yield name
    client.delete(name)


def now_ms() -> int:
    return int(time.time() * 1000)


def fill(client: redis.Redis, name: str, old: int, recent: int) -> tuple[list[str], list[str]]:
    """`old` entries three hours old, then `recent` ones now; their ids."""
    start = now_ms() - 3 * 3_600_000
    pipe = client.pipeline(transaction=False)
    for i in range(old):
        pipe.xadd(name, PAYLOAD, id=f"{start + i}-0")
    for _ in range(recent):
        pipe.xadd(name, PAYLOAD)
    ids = [i.decode() for i in pipe.execute()]
    return ids[:old], ids[old:]


def consume(client: redis.Redis, name: str, count: int, ack: int) -> None:
    """Deliver `count` entries to a consumer of the group and acknowledge the first `ack`."""
    got: Any = client.xreadgroup(GROUP, "partition-15", {name: ">"}, count=count)
    ids = [i for i, _ in got[0][1]] if got else []
    if ack:
        client.xack(name, GROUP, *ids[:ack])


def remaining(client: redis.Redis, name: str) -> set[str]:
    return {i.decode() for i, _ in client.xrange(name)}


def run(name: str, redis_url: str, retention_s: float, max_len: int = 0) -> tuple[Any, int]:
    async def go() -> tuple[Any, int]:
        conn = async_client(redis_url)
        try:
            retention = StreamRetention(conn, [name], retention_s, max_len)
            lost = await retention.run(now_ms())
            return lost, retention.trimmed
        finally:
            await conn.aclose()

    return asyncio.run(go())


def test_old_processed_entries_are_trimmed_and_recent_ones_kept(
    client: redis.Redis, stream: str, redis_url: str
) -> None:
    old, recent = fill(client, stream, 400, 5)
    client.xgroup_create(stream, GROUP, id="0")
    consume(client, stream, 350, ack=300)  # 300 processed, 50 pending, 50 never delivered
    lost, trimmed = run(stream, redis_url, HOUR_S)
    left = remaining(client, stream)
    assert lost == []
    assert set(old[300:]) <= left  # not processed: kept however old
    assert set(recent) <= left
    processed_left = left & set(old[:300])
    assert trimmed == 300 - len(processed_left)
    assert len(processed_left) < 100  # approximate: at most the node holding the floor


def test_nothing_is_trimmed_before_a_consumer_group_processed_it(
    client: redis.Redis, stream: str, redis_url: str
) -> None:
    fill(client, stream, 200, 1)
    assert run(stream, redis_url, HOUR_S) == ([], 0)  # no group yet
    client.xgroup_create(stream, GROUP, id="0")
    assert run(stream, redis_url, HOUR_S) == ([], 0)  # a group that has read nothing
    assert len(remaining(client, stream)) == 201


def test_a_retention_of_zero_keeps_everything(
    client: redis.Redis, stream: str, redis_url: str
) -> None:
    fill(client, stream, 200, 0)
    client.xgroup_create(stream, GROUP, id="0")
    consume(client, stream, 200, ack=200)
    assert run(stream, redis_url, 0) == ([], 0)
    assert client.xlen(stream) == 200


def test_the_length_cap_trims_processed_entries_silently(
    client: redis.Redis, stream: str, redis_url: str
) -> None:
    fill(client, stream, 0, 1000)
    client.xgroup_create(stream, GROUP, id="0")
    consume(client, stream, 1000, ack=1000)
    lost, trimmed = run(stream, redis_url, 0, max_len=300)
    assert lost == []
    assert 300 <= client.xlen(stream) < 400
    assert trimmed == 1000 - client.xlen(stream)


def test_entries_cut_by_the_length_cap_before_delivery_are_reported_once(
    client: redis.Redis, stream: str, redis_url: str
) -> None:
    fill(client, stream, 0, 1000)
    client.xgroup_create(stream, GROUP, id="0")
    consume(client, stream, 100, ack=100)

    async def twice() -> tuple[Any, Any]:
        conn = async_client(redis_url)
        try:
            retention = StreamRetention(conn, [stream], 0, max_len=300)
            return await retention.run(now_ms()), await retention.run(now_ms())
        finally:
            await conn.aclose()

    first, second = asyncio.run(twice())
    left = client.xlen(stream)
    assert [(r.stream, r.reason.split(" after ")[0]) for r in first] == [
        (stream, f"{1000 - 100 - left} entries")
    ]
    assert first[0].reason.endswith(LOST_REASON)
    assert first[0].entry_id < client.xrange(stream, count=1)[0][0].decode()
    assert second == []


def test_the_worker_trims_its_shards_during_housekeeping(
    client: redis.Redis, stream: str, database_url: str, redis_url: str
) -> None:
    """Partition 15 of 16 owns shard 15: old processed entries go, and a loss reaches the DLQ."""
    old, recent = fill(client, stream, 300, 3)
    config = WorkerConfig(
        15, 16, 16, database_url, redis_url, retention_s=HOUR_S, trim_every_s=0, stream_max_len=20
    )

    async def go() -> None:
        worker = PartitionWorker(config)
        await worker._connect_with_retry()  # creates the group at the start of the stream
        try:
            consume(client, stream, 250, ack=250)
            await worker._housekeeping()
        finally:
            assert worker._streams is not None
            assert worker._store is not None
            await worker.disconnect()

    asyncio.run(go())
    left = remaining(client, stream)
    assert len(left & set(old[:250])) < 100
    assert set(recent) <= left
    reasons = [
        f[b"reason"].decode()
        for _, f in client.xrange(names.DLQ_STREAM)
        if f[b"stream"].decode() == stream
    ]
    assert len(reasons) == 1  # the cap of 20 cut undelivered entries
    assert reasons[0].endswith(LOST_REASON)


def test_retention_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings.from_env()
    assert (defaults.stream_retention_hours, defaults.stream_max_len) == (168, 1_000_000)
    monkeypatch.setenv("HAIRTRIGGER_STREAM_RETENTION_HOURS", "24")
    monkeypatch.setenv("HAIRTRIGGER_STREAM_MAX_LEN", "0")
    found = Settings.from_env()
    assert (found.stream_retention_hours, found.stream_max_len) == (24, 0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HAIRTRIGGER_STREAM_RETENTION_HOURS", "-1", "must not be negative"),
        ("HAIRTRIGGER_STREAM_MAX_LEN", "-5", "must not be negative"),
        ("HAIRTRIGGER_STREAM_MAX_LEN", "lots", "must be a whole number"),
    ],
)
def test_bad_retention_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} {message}"):
        Settings.from_env()


def test_own_pending_entries_trimmed_before_processing_are_dead_lettered(
    client: redis.Redis, stream: str, database_url: str, redis_url: str
) -> None:
    """Delivered to this very worker, its batch failed, then the entries were cut: the retry
    finds them gone and dead-letters them, nothing stays pending."""
    _, ids = fill(client, stream, 0, 20)
    config = WorkerConfig(15, 16, 16, database_url, redis_url, retention_s=0)

    async def go() -> None:
        worker = PartitionWorker(config)
        await worker._connect_with_retry()
        try:
            client.xreadgroup(GROUP, worker.consumer, {stream: ">"}, count=20)
            client.xtrim(stream, maxlen=0, approximate=False)
            worker.mode = ReadMode.PENDING
            entries = await worker._read()
            assert worker.mode is ReadMode.PENDING  # something was pending
            await worker._process(entries)
        finally:
            assert worker._streams is not None
            assert worker._store is not None
            await worker.disconnect()

    asyncio.run(go())
    dead = {
        f[b"entry_id"].decode(): f[b"reason"].decode() for _, f in client.xrange(names.DLQ_STREAM)
    }
    assert {i: dead.get(i) for i in ids} == dict.fromkeys(ids, TRIMMED_REASON)
    assert client.xpending(stream, GROUP)["pending"] == 0
