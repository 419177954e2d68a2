"""Poison is quarantined on first sight (docs/contract.md §3, SPEC §15): a partition's batch over
the in-memory stream side and real Postgres. What the engine cannot process deterministically is
dead-lettered with its precise reason in the step that first reads it, and the other events of
the same batch (another tenant's among them) commit in that same step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from actors.worker import PartitionWorker, WorkerConfig
from pipelines import stream_metrics as sm
from pipelines.examples import all_of, cond
from pipelines.messages import decode_dead_letter, encode_event
from pipelines.reasons import DeadLetter
from pipelines.sharding import shard_for
from streams import names
from streams.memory import MemoryBroker, MemoryShards
from tests.support.db import Db, enrollments, refused_contact
from tests.support.factories import Tenant, active_workflow, event

MULTIPLE = {"enrollment_limit": "multiple"}
HOT = all_of(cond("tag", "equals", "hot"))


def _worker(broker: MemoryBroker, database_url: str, shards: int = 1) -> PartitionWorker:
    config = WorkerConfig(0, 1, shards, database_url, "redis://unused", block_ms=0)
    consumer = MemoryShards(broker, "partition-0", list(range(shards)), 10)
    return PartitionWorker(config, shards=consumer)


def _steps(worker: PartitionWorker, n: int) -> None:
    async def go() -> None:
        await worker.connect()
        try:
            for _ in range(n):
                await worker.step()
        finally:
            await worker.disconnect()

    asyncio.run(go())


def _dead(broker: MemoryBroker) -> dict[str, Any]:
    return {
        d.entry_id: d for d in (decode_dead_letter(f) for _, f in broker.entries(names.DLQ_STREAM))
    }


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _poisons(a: uuid.UUID) -> list[tuple[DeadLetter, bytes]]:
    """The poisons found by a hostile tenant (issue 21), each with the code it is dead-lettered
    under; each would match a trigger of the test."""
    early = event(a, "contact.tag_added", tag="hot")
    early["timestamp"] = "0001-01-01T00:00:00+14:00"  # no UTC time at all
    late = event(a, "deal.won", pipeline_id="p1", deal_id="d1", deal_value=10)
    late["timestamp"] = "9999-12-31T23:59:59Z"  # business hours after it overflow
    huge = event(a, "contact.tag_added", tag="hot", score=2**80)
    deep = event(a, "contact.tag_added", tag="hot", nested=_nested(300))
    return [
        (DeadLetter.TIMESTAMP_OUT_OF_RANGE, encode_event(early)),
        (DeadLetter.TIMESTAMP_OUT_OF_RANGE, encode_event(late)),
        (DeadLetter.NUMBER_OUT_OF_RANGE, json.dumps(huge).encode()),  # orjson refuses 2**80
        (DeadLetter.TOO_DEEP, json.dumps(deep).encode()),
    ]


def test_each_poison_is_dead_lettered_on_first_delivery_and_the_rest_of_the_batch_commits(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    a, c = tenant(), tenant()
    active_workflow(a.client, "contact", "tag_added", HOT, MULTIPLE)
    active_workflow(
        a.client, "pipeline", "deal_won", settings={**MULTIPLE, "respect_business_hours": True}
    )
    active_workflow(c.client, "contact", "tag_added", HOT, MULTIPLE)
    stream = names.events_stream(0)
    broker = MemoryBroker()
    good = [event(c.account_id, "contact.tag_added", tag="hot") for _ in range(3)]
    broker.add_event(stream, encode_event(good[0]))
    expected = {broker.add_event(stream, raw): code for code, raw in _poisons(a.account_id)}
    for body in good[1:]:
        broker.add_event(stream, encode_event(body))
    worker = _worker(broker, database_url)
    _steps(worker, 2)  # the first step finds nothing pending and turns to new entries

    dead = _dead(broker)
    assert {i: dead[i].code for i in expected} == expected
    reasons = sorted(dead[i].reason for i in expected)
    assert "/data/nested/0/0" in reasons[0]
    assert "/data/score: integer beyond 64 bits" in reasons
    assert sum("outside 1970-01-01 .. 2199-12-31" in r for r in reasons) == 2
    assert sorted(str(r["event_id"]) for r in enrollments(db_sync, c.account_id)) == sorted(
        e["event_id"] for e in good
    )
    assert enrollments(db_sync, a.account_id) == []
    assert broker.streams[stream].pending == {}
    assert worker.metrics.total(sm.BATCH_ERRORS) == 0  # never a failed batch


def test_an_entry_that_raises_twice_alone_is_dead_lettered_at_once_and_the_others_commit(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """The batch fails; it is split until the culprit stands alone, which fails again the same
    way and is dead-lettered with the error, all within the step that first read it."""
    a, c = tenant(), tenant()
    for t in (a, c):
        active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    stream = names.events_stream(0)
    broker = MemoryBroker()
    culprit = uuid.uuid4()
    bodies = [event(t.account_id, "contact.tag_added", tag="hot") for t in (a, c, a, c, c)]
    bad = event(a.account_id, "contact.tag_added", culprit, tag="hot")
    entry_ids = [broker.add_event(stream, encode_event(b)) for b in bodies[:2]]
    bad_entry = broker.add_event(stream, encode_event(bad))
    entry_ids += [broker.add_event(stream, encode_event(b)) for b in bodies[2:]]
    worker = _worker(broker, database_url)
    with refused_contact(db_sync, culprit) as message:
        _steps(worker, 2)

    dead = _dead(broker)
    assert list(dead) == [bad_entry]
    assert dead[bad_entry].code is DeadLetter.UNPROCESSABLE
    assert message in dead[bad_entry].reason
    assert dead[bad_entry].event == encode_event(bad)
    enrolled = {str(r["event_id"]) for t in (a, c) for r in enrollments(db_sync, t.account_id)}
    assert enrolled == {b["event_id"] for b in bodies}
    assert broker.streams[stream].pending == {}
    assert worker.metrics.total(sm.BATCH_ERRORS) >= 1  # the failures are counted
    assert worker.stats()["events"] == len(bodies)


def test_an_event_on_the_wrong_shard_is_moved_to_its_own_and_enrolled_once(
    tenant: Callable[..., Tenant], db_sync: Db, database_url: str
) -> None:
    """A producer wrote it to another shard than routing names: it is moved (once) and
    processed there; one that comes misrouted again after a move is dead-lettered."""
    t = tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    home = shard_for(t.account_id, 2)
    wrong = names.events_stream(1 - home)
    broker = MemoryBroker()
    stray = event(t.account_id, "contact.tag_added", tag="hot")
    broker.add_event(wrong, encode_event(stray))
    bounced = event(t.account_id, "contact.tag_added", tag="hot")
    bounced_entry = broker.add(
        wrong, {names.EVENT_FIELD: encode_event(bounced), names.REROUTED_FIELD: "elsewhere"}
    )
    worker = _worker(broker, database_url, shards=2)
    _steps(worker, 3)

    assert [str(r["event_id"]) for r in enrollments(db_sync, t.account_id)] == [stray["event_id"]]
    moved = [f for _, f in broker.entries(names.events_stream(home))]
    assert [f[names.REROUTED_FIELD.encode()].decode() for f in moved] == [wrong]
    dead = _dead(broker)
    assert dead[bounced_entry].code is DeadLetter.MISROUTED
    assert f"shard {home}" in dead[bounced_entry].reason
    assert all(not broker.streams[s].pending for s in broker.streams)
    assert worker.metrics.total(sm.REROUTED) == 1
