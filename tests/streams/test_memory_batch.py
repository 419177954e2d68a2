"""A whole batch step of a partition over the in-memory stream side and real Postgres: decode,
dead-letter, match, enroll, publish, ack (docs/architecture.md, the walk of one event)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from actors.worker import PartitionWorker, ReadMode, WorkerConfig
from pipelines.messages import decode_dead_letter, decode_enrollment, encode_event
from pipelines.reasons import DeadLetter
from streams import names
from streams.memory import MemoryBroker, MemoryShards
from tests.support.db import Db
from tests.support.factories import Tenant, active_workflow, event

STREAM = names.events_stream(0)


def _worker(broker: MemoryBroker, database_url: str) -> PartitionWorker:
    config = WorkerConfig(0, 1, 1, database_url, "redis://unused", block_ms=0)
    return PartitionWorker(config, shards=MemoryShards(broker, "partition-0", [0], 10))


def _run(worker: PartitionWorker, steps: int) -> None:
    async def go() -> None:
        await worker.connect()
        try:
            for _ in range(steps):
                await worker.step()
        finally:
            await worker.disconnect()

    asyncio.run(go())


def test_a_batch_enrolls_publishes_dead_letters_and_acks_without_redis(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    t = tenant()
    workflow, _ = active_workflow(
        t.client,
        "contact",
        "tag_added",
        {"logic": "AND", "conditions": [{"field": "tag", "operator": "equals", "value": "vip"}]},
    )
    contact = uuid.uuid4()
    broker = MemoryBroker()
    hit = event(t.account_id, "contact.tag_added", contact, tag="vip")
    miss = event(t.account_id, "contact.tag_added", contact, tag="cold")
    for body in (hit, miss):
        broker.add_event(STREAM, encode_event(body))
    broker.add_event(STREAM, b"{not json")
    broker.add(STREAM, {"wrong": b"field"})
    worker = _worker(broker, database_url)
    _run(worker, 2)  # the first step finds nothing pending and turns to new entries

    rows = db_sync.fetch(
        "SELECT id, contact_id, event_id, status FROM workflow_enrollments WHERE account_id = $1",
        t.account_id,
    )
    assert [(r["contact_id"], str(r["event_id"])) for r in rows] == [(contact, hit["event_id"])]
    published = [
        decode_enrollment(f[names.ENROLLMENT_FIELD.encode()])
        for _, f in broker.entries(names.ENROLLMENTS_STREAM)
    ]
    assert [(p.id, p.workflow_id, p.status) for p in published] == [
        (rows[0]["id"], uuid.UUID(workflow["id"]), "triggered")
    ]
    assert (
        db_sync.fetch("SELECT * FROM enrollment_outbox WHERE enrollment_id = $1", rows[0]["id"])
        == []
    )
    dead = [decode_dead_letter(f) for _, f in broker.entries(names.DLQ_STREAM)]
    assert [(d.stream, d.code) for d in dead] == [
        (STREAM, DeadLetter.INVALID_JSON),
        (STREAM, DeadLetter.MISSING_EVENT_FIELD),
    ]
    assert dead[0].event == b"{not json"
    assert broker.streams[STREAM].pending == {}  # everything acknowledged
    stats = worker.stats()
    assert (stats["events"], stats["enrolled"], stats["published"], stats["dead_lettered"]) == (
        2,
        1,
        1,
        2,
    )
    assert worker.mode is ReadMode.NEW


def test_a_redelivered_batch_changes_nothing(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """An entry delivered again after its batch committed (a replay, or a crash before the
    ack): the deterministic ids keep the enrollment single and publish nothing new."""
    t = tenant()
    active_workflow(t.client, "contact", "tag_added", settings={"enrollment_limit": "multiple"})
    broker = MemoryBroker()
    body: dict[str, Any] = event(t.account_id, "contact.tag_added", uuid.uuid4(), tag="x")
    broker.add_event(STREAM, encode_event(body))
    _run(_worker(broker, database_url), 2)
    assert len(broker.entries(names.ENROLLMENTS_STREAM)) == 1
    broker.streams[STREAM].last_delivered = (0, 0)  # replayed: the group delivers it again
    _run(_worker(broker, database_url), 2)
    count = db_sync.fetch(
        "SELECT count(*) AS n FROM workflow_enrollments WHERE account_id = $1", t.account_id
    )
    assert count[0]["n"] == 1
    assert len(broker.entries(names.ENROLLMENTS_STREAM)) == 1  # the second run inserted nothing


class _FailingPublish(MemoryShards):
    """Publishing fails `times` times with `error`, then works."""

    def __init__(self, broker: MemoryBroker, error: BaseException, times: int) -> None:
        super().__init__(broker, "partition-0", [0], 10)
        self.error, self.times = error, times

    async def publish(self, payloads: list[bytes]) -> None:
        if self.times:
            self.times -= 1
            raise self.error
        await super().publish(payloads)


def _published(broker: MemoryBroker) -> list[uuid.UUID]:
    return [
        decode_enrollment(f[names.ENROLLMENT_FIELD.encode()]).id
        for _, f in broker.entries(names.ENROLLMENTS_STREAM)
    ]


def test_a_batch_stopped_between_commit_and_publish_publishes_on_redelivery(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """No outbox row on the happy path: when the batch stops after its commit (here the task
    is cancelled while publishing, as a stopped actor's is), its entries stay unacknowledged,
    and their redelivery publishes the enrollment it had committed."""
    t = tenant()
    active_workflow(t.client, "contact", "tag_added", settings={"enrollment_limit": "multiple"})
    broker = MemoryBroker()
    broker.add_event(STREAM, encode_event(event(t.account_id, "contact.tag_added", tag="x")))
    config = WorkerConfig(0, 1, 1, database_url, "redis://unused", block_ms=0)
    worker = PartitionWorker(config, shards=_FailingPublish(broker, asyncio.CancelledError(), 1))

    async def go() -> None:
        await worker.connect()
        try:
            await worker.step()  # nothing pending: to new entries
            try:
                await worker.step()
            except asyncio.CancelledError:
                worker._reread(ReadMode.PENDING)  # what a restarted consumer does
            assert broker.streams[STREAM].pending  # committed, not acknowledged
            assert _published(broker) == []
            for _ in range(2):
                await worker.step()
        finally:
            await worker.disconnect()

    asyncio.run(go())
    rows = db_sync.fetch("SELECT id FROM workflow_enrollments WHERE account_id = $1", t.account_id)
    assert _published(broker) == [rows[0]["id"]]
    assert broker.streams[STREAM].pending == {}
    assert (
        db_sync.fetch("SELECT * FROM enrollment_outbox WHERE enrollment_id = $1", rows[0]["id"])
        == []
    )


def test_enrollments_the_stream_refuses_wait_in_the_outbox_and_the_batch_goes_on(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    t = tenant()
    active_workflow(t.client, "contact", "tag_added", settings={"enrollment_limit": "multiple"})
    broker = MemoryBroker()
    broker.add_event(STREAM, encode_event(event(t.account_id, "contact.tag_added", tag="x")))
    config = WorkerConfig(0, 1, 1, database_url, "redis://unused", block_ms=0)
    worker = PartitionWorker(config, shards=_FailingPublish(broker, ConnectionError("down"), 1))
    _run(worker, 2)
    rows = db_sync.fetch("SELECT id FROM workflow_enrollments WHERE account_id = $1", t.account_id)
    held = db_sync.fetch(
        "SELECT shard FROM enrollment_outbox WHERE enrollment_id = $1", rows[0]["id"]
    )
    assert [r["shard"] for r in held] == [0]
    assert broker.streams[STREAM].pending == {}  # acknowledged: the outbox has it
    assert _published(broker) == []
