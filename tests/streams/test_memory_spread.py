"""A spread change seen by two partitions over the in-memory stream side and real Postgres
(docs/contract.md §3): the partition a contact moves to takes the account on, holds the
contact's events back until the old shard has processed everything sent before the cutoff,
then enrolls them in order; when the account moves away, it lets the account go."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import replace

from actors.worker import PartitionWorker, WorkerConfig
from pipelines.messages import encode_event
from pipelines.sharding import shard_for
from pipelines.spread import SETTLE_MS, Move
from streams import names
from streams.memory import MemoryBroker, MemoryShards
from tests.support.db import Db
from tests.support.factories import Tenant, active_workflow, event

SHARDS = 2


def _worker(broker: MemoryBroker, partition: int, database_url: str) -> PartitionWorker:
    config = WorkerConfig(
        partition, SHARDS, SHARDS, database_url, "redis://unused", block_ms=0, spread_refresh_s=0
    )
    shards = MemoryShards(broker, names.partition_consumer(partition), [partition], 10)
    return PartitionWorker(config, shards=shards)


def _contact_for_shard(account: uuid.UUID, shard: int) -> uuid.UUID:
    while True:
        contact = uuid.uuid4()
        if shard_for(account, SHARDS, contact, SHARDS) == shard:
            return contact


def _home_zero(tenant: Callable[..., Tenant]) -> Tenant:
    for _ in range(40):
        t = tenant()
        if zlib.crc32(str(t.account_id).encode()) % SHARDS == 0:
            return t
    raise AssertionError("no account with home shard 0")


def test_a_moved_contact_waits_for_its_old_shard_then_enrolls_in_order(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    t = _home_zero(tenant)
    active_workflow(t.client, "contact", "tag_added", settings={"enrollment_limit": "multiple"})
    contact = _contact_for_shard(t.account_id, 1)  # home shard 0 now, shard 1 once spread
    broker = MemoryBroker()
    first = event(t.account_id, "contact.tag_added", contact, tag="a")
    second = event(t.account_id, "contact.tag_added", contact, tag="b")
    broker.add_event(names.events_stream(0), encode_event(first))
    p0, p1 = _worker(broker, 0, database_url), _worker(broker, 1, database_url)

    def enrolled_now() -> list[str]:
        rows = db_sync.fetch(
            "SELECT event_id FROM workflow_enrollments WHERE account_id = $1 ORDER BY enrolled_at",
            t.account_id,
        )
        return [str(r["event_id"]) for r in rows]

    async def enrolled() -> list[str]:  # Db runs its own event loop: off this one
        return await asyncio.to_thread(enrolled_now)

    async def go() -> None:
        await p0.connect()
        await p1.connect()
        try:
            assert p1.index.trigger_count(t.account_id) == 0  # not its account yet
            # spread 1 -> 2, stamped so that the cutoff is 1.5 s away
            now_ms = int(time.time() * 1000)
            move = Move(1, 2, now_ms - SETTLE_MS + 1500, 2)
            broker.spread = replace(
                broker.spread, factors={t.account_id: 2}, moves={t.account_id: move}
            )
            broker.add_event(names.events_stream(1), encode_event(second))
            for _ in range(2):
                await p1.step()
            assert p1.index.trigger_count(t.account_id) == 1  # taken on from Postgres
            assert await enrolled() == []  # held back: shard 0 still has the first event
            assert broker.streams[names.events_stream(1)].pending  # not acknowledged
            for _ in range(2):
                await p0.step()
            assert await enrolled() == [first["event_id"]]
            while time.time() * 1000 <= move.cutoff_ms:  # producers may still use shard 0
                await p1.step()
                assert await enrolled() == [first["event_id"]]
                await asyncio.sleep(0.1)
            await p1.step()
            assert await enrolled() == [first["event_id"], second["event_id"]]
            assert not broker.streams[names.events_stream(1)].pending
            # back to 1: partition 1 lets the account go
            broker.spread = replace(
                broker.spread,
                factors={t.account_id: 1},
                moves={t.account_id: Move(2, 1, int(time.time() * 1000), 2)},
            )
            await p1.step()
            assert p1.index.trigger_count(t.account_id) == 0
        finally:
            await p0.disconnect()
            await p1.disconnect()

    asyncio.run(go())


def test_a_hot_account_spreads_itself_and_a_pinned_one_does_not(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """Auto-spread (docs/operations.md §12): past the threshold over the window, the factor
    doubles; an account an operator pinned keeps its own."""
    hot, pinned = _home_zero(tenant), _home_zero(tenant)
    broker = MemoryBroker()
    broker.spread = replace(broker.spread, pinned=frozenset({pinned.account_id}))
    for t in (hot, pinned):
        for _ in range(300):
            broker.add_event(
                names.events_stream(0),
                encode_event(event(t.account_id, "contact.tag_added", tag="x")),
            )
    config = WorkerConfig(
        0,
        SHARDS,
        SHARDS,
        database_url,
        "redis://unused",
        block_ms=0,
        auto_spread_events_s=50,
        auto_spread_window_s=0.2,
    )
    worker = PartitionWorker(config, shards=MemoryShards(broker, "partition-0", [0], 10))

    async def go() -> None:
        await worker.connect()
        try:
            for _ in range(3):
                await worker.step()
            await asyncio.sleep(0.25)
            await worker._auto_spread()
        finally:
            await worker.disconnect()

    asyncio.run(go())
    assert broker.spread.factor(hot.account_id) == 2
    assert broker.spread.moves[hot.account_id].old == 1
    assert broker.spread.factor(pinned.account_id) == 1
    assert worker.metrics.total("hairtrigger_auto_spreads") == 1


def test_held_back_events_past_the_bound_pause_their_stream(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """At `max_held` held-back events, the stream they came from is not read until their old
    shard catches up: memory stays bounded, and nothing is lost or reordered."""
    t = _home_zero(tenant)
    active_workflow(t.client, "contact", "tag_added", settings={"enrollment_limit": "multiple"})
    moved = _contact_for_shard(t.account_id, 1)
    broker = MemoryBroker()
    now_ms = int(time.time() * 1000)
    broker.spread = replace(
        broker.spread,
        factors={t.account_id: 2},
        moves={t.account_id: Move(1, 2, now_ms - SETTLE_MS + 1500, 2)},
    )
    stream = names.events_stream(1)
    sent = [event(t.account_id, "contact.tag_added", moved, tag=f"t{i}") for i in range(3)]
    for e in sent[:2]:
        broker.add_event(stream, encode_event(e))
    config = WorkerConfig(1, SHARDS, SHARDS, database_url, "redis://unused", block_ms=0, max_held=2)
    worker = PartitionWorker(config, shards=MemoryShards(broker, "partition-1", [1], 10))

    async def go() -> None:
        await worker.connect()
        try:
            for _ in range(2):
                await worker.step()  # both held back: the bound is reached
            last = broker.add_event(stream, encode_event(sent[2]))
            await worker.step()
            assert last not in broker.streams[stream].pending  # not even read
            await asyncio.sleep(max(0.0, (now_ms + 1500 - time.time() * 1000) / 1000) + 0.05)
            for _ in range(3):
                await worker.step()
        finally:
            await worker.disconnect()

    asyncio.run(go())
    rows = db_sync.fetch(
        "SELECT event_id FROM workflow_enrollments WHERE account_id = $1 ORDER BY enrolled_at",
        t.account_id,
    )
    assert [str(r["event_id"]) for r in rows] == [e["event_id"] for e in sent]
    assert broker.streams[stream].pending == {}
