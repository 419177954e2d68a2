"""A stored trigger that no longer validates is quarantined, not fatal (issue 21 item 8): at
start, on the periodic re-read and on a push, the partition skips it, logs it with its id and
the reason, counts it (gauge, stats), and serves every other trigger of every account. Real
Postgres, streams in memory."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from actors.worker import PartitionWorker, WorkerConfig
from pipelines import errors
from pipelines import stream_metrics as sm
from pipelines.examples import all_of, cond
from pipelines.index import InvalidSpec
from pipelines.messages import encode_event
from pipelines.metrics import total
from pipelines.stats_report import build_report
from store import config_sync
from streams import names
from streams.memory import MemoryBroker, MemoryShards
from tests.support.db import Db, enrollments
from tests.support.factories import Tenant, active_workflow, event

MakeTenant = Callable[..., Tenant]
STREAM = names.events_stream(0)
BOGUS = all_of({"field": "tag", "operator": "bogus_op", "value": "x"})


def hot(tag: str) -> dict[str, Any]:
    return all_of(cond("tag", "equals", tag))


def corrupt(db_sync: Db, trigger_id: str) -> None:
    """What a hand edit or a restored backup leaves: a filter the API would refuse, with a new
    sync version (as any change of a trigger gets)."""
    db_sync.run(
        lambda c: c.execute(
            "UPDATE workflow_triggers SET filters = $2, sync_version = nextval('config_sync_seq')"
            " WHERE id = $1",
            uuid.UUID(trigger_id),
            BOGUS,
        )
    )


def worker_on(broker: MemoryBroker, database_url: str) -> PartitionWorker:
    config = WorkerConfig(0, 1, 1, database_url, "redis://unused", block_ms=0)
    return PartitionWorker(config, shards=MemoryShards(broker, "partition-0", [0], 10))


def send(broker: MemoryBroker, account_id: uuid.UUID, *tags: str) -> None:
    for tag in tags:
        broker.add_event(STREAM, encode_event(event(account_id, "contact.tag_added", tag=tag)))


def run(worker: PartitionWorker, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def go() -> None:
        await worker.connect()
        try:
            await work()
        finally:
            await worker.disconnect()

    asyncio.run(go())


def invalid_gauge(worker: PartitionWorker) -> float:
    return total(worker.metrics.snapshot(), sm.TRIGGERS_INVALID)


def test_a_trigger_stored_invalid_is_skipped_at_start_and_every_other_trigger_serves(
    tenant: MakeTenant, db_sync: Db, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = tenant(), tenant()
    good, _ = active_workflow(a.client, "contact", "tag_added", hot("hot"))
    bad_workflow, bad = active_workflow(a.client, "contact", "tag_added", hot("bad"))
    active_workflow(b.client, "contact", "tag_added", hot("hot"))
    corrupt(db_sync, bad["id"])
    broker = MemoryBroker()
    send(broker, a.account_id, "hot", "bad")
    send(broker, b.account_id, "hot")
    worker = worker_on(broker, database_url)

    async def work() -> None:
        for _ in range(2):  # pending (none), then the new entries
            await worker.step()

    with caplog.at_level(logging.ERROR, logger="actors.worker"):
        run(worker, work)

    enrolled = [e["workflow_id"] for e in enrollments(db_sync, a.account_id)]
    assert enrolled == [uuid.UUID(good["id"])]
    assert len(enrollments(db_sync, b.account_id)) == 1
    reasons = worker.stats()["invalid_triggers"]
    assert list(reasons) == [bad["id"]]
    assert reasons[bad["id"]].startswith(f"{errors.INVALID_OPERATOR}: 'bogus_op'")
    assert invalid_gauge(worker) == 1
    logged = [r.getMessage() for r in caplog.records if bad["id"] in r.getMessage()]
    assert len(logged) == 1
    assert "bogus_op" in logged[0]
    report = build_report(
        {"partitions": [{"available": True, **worker.metrics_snapshot()}], "scheduler": None},
        1,
        [],
        0,
        0,
        {},
    )
    assert report["partitions"][0]["invalid_triggers"] == 1
    shown = a.client.get(f"/workflows/{bad_workflow['id']}/trigger").json()
    assert (shown["state"], shown["reason"]) == ("invalid", reasons[bad["id"]])


def test_the_same_row_appearing_while_running_stalls_nothing_and_a_fix_lifts_it(
    tenant: MakeTenant, db_sync: Db, database_url: str
) -> None:
    a, b = tenant(), tenant()
    _, turning = active_workflow(
        a.client, "contact", "tag_added", hot("soon"), {"enrollment_limit": "multiple"}
    )
    active_workflow(b.client, "contact", "tag_added", hot("hot"), {"enrollment_limit": "multiple"})
    broker = MemoryBroker()
    worker = worker_on(broker, database_url)

    async def reconcile() -> None:  # one round finds it, the next reads one round back
        for _ in range(2):
            await worker._reconcile()

    async def work() -> None:
        await worker.step()
        assert worker.index.get(uuid.UUID(turning["id"])) is not None
        await asyncio.to_thread(corrupt, db_sync, turning["id"])
        await reconcile()
        assert list(worker.stats()["invalid_triggers"]) == [turning["id"]]
        assert worker.index.get(uuid.UUID(turning["id"])) is None
        assert invalid_gauge(worker) == 1
        send(broker, a.account_id, "soon")
        send(broker, b.account_id, "hot")
        await worker.step()
        assert len(await asyncio.to_thread(enrollments, db_sync, b.account_id)) == 1
        assert await asyncio.to_thread(enrollments, db_sync, a.account_id) == []
        fixed = await asyncio.to_thread(
            a.client.put,
            f"/workflows/{turning['workflow_id']}/trigger/{turning['id']}",
            json={
                "trigger_type": "contact",
                "trigger_event": "tag_added",
                "filters": hot("soon"),
                "settings": {"enrollment_limit": "multiple"},
            },
        )
        assert fixed.status_code == 200, fixed.text
        await reconcile()  # the API here has no actors to push to
        assert worker.stats()["invalid_triggers"] == {}
        assert invalid_gauge(worker) == 0
        send(broker, a.account_id, "soon")
        await worker.step()
        assert len(await asyncio.to_thread(enrollments, db_sync, a.account_id)) == 1

    run(worker, work)


def test_a_push_of_an_invalid_row_is_quarantined_not_raised(
    tenant: MakeTenant, db_sync: Db, database_url: str
) -> None:
    """What the gateway pushes after a change to a workflow whose trigger is stored invalid
    (store.config_sync.bump reads it back as it is)."""
    a = tenant()
    workflow, bad = active_workflow(a.client, "contact", "tag_added", hot("bad"))
    broker = MemoryBroker()
    worker = worker_on(broker, database_url)

    async def bump() -> list[Any]:
        async def go(conn: Any) -> list[Any]:
            async with conn.transaction():
                return await config_sync.bump(conn, uuid.UUID(workflow["id"]))

        return await asyncio.to_thread(db_sync.run, go)

    async def work() -> None:
        await asyncio.to_thread(corrupt, db_sync, bad["id"])
        specs = await bump()
        assert [type(s) for s in specs] == [InvalidSpec]
        assert await worker.apply_config(specs) == 1
        assert list(worker.stats()["invalid_triggers"]) == [bad["id"]]
        assert await worker.apply_config(specs) == 0  # the same version again

    run(worker, work)
