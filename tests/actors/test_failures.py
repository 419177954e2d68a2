"""Failure handling end to end: poison input, actor crashes, server outages, stale config,
the enrollments outbox (docs/contract.md §3, §5)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
import ray
import redis

from actors.client import Partitions
from hairtrigger import embedded
from pipelines.examples import all_of, cond
from store import config_sync
from streams import names
from streams.shards import GROUP
from tests.support.db import Db, enrollments, refused_contact
from tests.support.factories import Tenant, active_workflow, event, tenants_on_shards
from tests.support.streams import Streams
from tests.support.wait import wait_until

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))
MULTIPLE = {"enrollment_limit": "multiple"}


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def hot_events(account_id: uuid.UUID, n: int) -> list[dict[str, object]]:
    return [event(account_id, "contact.tag_added", tag="hot") for _ in range(n)]


def test_poison_entries_go_to_the_dlq_with_a_reason_and_the_shard_flows(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    good = hot_events(t.account_id, 2)
    bad_ids = event(t.account_id, "contact.tag_added", tag="hot")
    bad_ids["event_id"] = "not-a-uuid"
    no_contact = event(t.account_id, "contact.tag_added", tag="hot")
    del no_contact["data"]["contact_id"]  # type: ignore[attr-defined]
    bad_contact = event(t.account_id, "contact.tag_added", tag="hot")
    bad_contact["data"]["contact_id"] = "42"  # type: ignore[index]
    early = event(t.account_id, "contact.tag_added", tag="hot")
    early["timestamp"] = "0001-01-01T00:00:00+14:00"
    huge = event(t.account_id, "contact.tag_added", tag="hot", score=2**80)
    deep = event(t.account_id, "contact.tag_added", tag="hot", nested=_nested(40))
    poison = {
        "invalid JSON": b"{not json",
        "unknown event_type": orjson.dumps(event(t.account_id, "contact.sneezed")),
        "invalid envelope": orjson.dumps(bad_ids),
        "missing data.contact_id": orjson.dumps(no_contact),
        "data.contact_id is not a UUID": orjson.dumps(bad_contact),
        "NUL character": orjson.dumps(event(t.account_id, "contact.tag_added", tag="a\u0000")),
        "timestamp": orjson.dumps(early),
        "/data/score: integer beyond 64 bits": json.dumps(huge).encode(),
        "/data/nested/0/0": json.dumps(deep).encode(),
    }
    streams.send(good[:1])
    poison_ids = {
        streams.send_raw(t.account_id, {names.EVENT_FIELD: raw}): why for why, raw in poison.items()
    }
    poison_ids[streams.send_raw(t.account_id, {"wrong_field": b"x"})] = "missing field 'event'"
    streams.send(good[1:])
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 2
    dead = {d["entry_id"].decode(): d for d in streams.dead_letters()}
    for entry_id, why in poison_ids.items():
        assert entry_id in dead, why
        assert why.split()[0].lower() in dead[entry_id]["reason"].decode().lower(), (
            why,
            dead[entry_id]["reason"],
        )
        assert dead[entry_id]["stream"].decode() == streams.stream_of(t.account_id)


@pytest.mark.parametrize("spread", [1, 4], ids=["home shard", "spread over every shard"])
def test_killed_partition_actor_restarts_and_nothing_is_lost_or_doubled(
    live_tenant: MakeTenant,
    streams: Streams,
    db_sync: Db,
    partitions: Partitions,
    redis_url: str,
    spread: int,
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    if spread > 1:  # both partitions consume the account; the home one is killed
        with redis.Redis.from_url(redis_url) as r:
            r.hset(names.SPREAD_KEY, str(t.account_id), min(spread, streams.shards))
    owner = partitions.owner(t.account_id)
    pid = ray.get(owner.pid.remote())
    first, second = hot_events(t.account_id, 2000), hot_events(t.account_id, 2000)
    streams.send(first)
    wait_until(lambda: enrollments(db_sync, t.account_id), "the first enrollments")
    os.kill(pid, signal.SIGKILL)
    streams.send(second)
    wait_until(lambda: ray.get(owner.pid.remote()) != pid, "the actor to restart")
    ray.get(owner.ready.remote())
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    expected = {e["event_id"] for e in first + second}
    assert len(rows) == 4000
    assert {str(r["event_id"]) for r in rows} == expected
    wait_until(
        lambda: (
            db_sync.value(
                "SELECT count(*) FROM enrollment_outbox o JOIN workflow_enrollments e"
                " ON e.id = o.enrollment_id WHERE e.account_id = $1",
                t.account_id,
            )
            == 0
        ),
        "the outbox to empty",
    )
    published = {p["id"] for p in streams.enrollments(t.account_id)}
    assert published == {str(r["id"]) for r in rows}


def _block_database(admin: Db, name: str, seconds: float) -> None:
    admin.run(lambda c: c.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            admin.run(
                lambda c: c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
            )
            time.sleep(0.1)
    finally:
        admin.run(lambda c: c.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))


def test_postgres_outage_is_retried_and_nothing_is_lost(
    live_tenant: MakeTenant,
    streams: Streams,
    db_sync: Db,
    services: embedded.Services,
    database_url: str,
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    sent = hot_events(t.account_id, 6000)
    name = database_url.rsplit("/", 1)[1].split("?")[0]
    streams.send(sent)
    wait_until(lambda: enrollments(db_sync, t.account_id), "the first enrollments")
    _block_database(Db(services.database_url), name, 3)  # while batches are in flight
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    assert sorted(str(r["event_id"]) for r in rows) == sorted(e["event_id"] for e in sent)


def test_redis_connections_dropping_are_retried_and_nothing_is_lost(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, redis_url: str
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    sent = hot_events(t.account_id, 300)
    stop = threading.Event()

    # The test's own producer is spared: what is under test is the partitions' side, and a
    # producer whose XADD reply is lost cannot know whether to send again.
    sender = redis.Redis.from_url(redis_url, single_connection_client=True)
    spared = {sender.client_id()}

    def kill_clients() -> None:
        with redis.Redis.from_url(redis_url, single_connection_client=True) as admin:
            spared.add(admin.client_id())
            while not stop.is_set():
                for client in admin.client_list(_type="normal"):
                    if int(client["id"]) not in spared:
                        admin.client_kill_filter(_id=client["id"])
                time.sleep(0.05)

    killer = threading.Thread(target=kill_clients)
    killer.start()
    try:
        for i in range(0, len(sent), 50):
            pipe = sender.pipeline(transaction=False)
            for e in sent[i : i + 50]:
                pipe.xadd(streams.stream_of(e["account_id"]), {names.EVENT_FIELD: orjson.dumps(e)})
            pipe.execute()
            time.sleep(0.2)
    finally:
        stop.set()
        killer.join()
        sender.close()
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    assert sorted(str(r["event_id"]) for r in rows) == sorted(e["event_id"] for e in sent)


def test_read_your_writes_after_a_trigger_update(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    workflow, trigger = active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    url = f"/workflows/{workflow['id']}/trigger/{trigger['id']}"
    expected: list[str] = []
    for i in range(10):
        tag = f"tag-{i}"
        body = {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": all_of(cond("tag", "equals", tag)),
            "settings": MULTIPLE,
        }
        assert t.client.put(url, json=body).status_code == 200
        fresh = event(t.account_id, "contact.tag_added", tag=tag)
        stale = event(t.account_id, "contact.tag_added", tag=f"tag-{i - 1}")
        streams.send([fresh, stale])
        expected.append(fresh["event_id"])  # type: ignore[arg-type]
        streams.wait_drained()  # events sent before the next update are not its concern
    assert sorted(str(r["event_id"]) for r in enrollments(db_sync, t.account_id)) == sorted(
        expected
    )


def test_a_stale_config_update_does_not_win(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, partitions: Partitions
) -> None:
    t = live_tenant()
    workflow, _ = active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    specs = db_sync.run(lambda c: config_sync.bump(c, uuid.UUID(workflow["id"])))
    current = specs[0]
    stale = type(current)(
        **{
            **{f: getattr(current, f) for f in current.__slots__},
            "live": False,
            "sync_version": current.sync_version - 1,
        }
    )
    assert ray.get(partitions.owner(t.account_id).apply_config.remote([current])) == 1
    assert ray.get(partitions.owner(t.account_id).apply_config.remote([stale])) == 0
    streams.send(hot_events(t.account_id, 1))
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 1


def test_outbox_publishes_committed_enrollments_that_missed_the_stream(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, partitions: Partitions
) -> None:
    """A crash between commit and XADD leaves the outbox row; the owner publishes it."""
    t = live_tenant()
    workflow, trigger = active_workflow(t.client, "contact", "tag_added", HOT)
    enrollment_id = uuid.uuid4()
    now = datetime.now(UTC)
    shard = int(streams.stream_of(t.account_id).rsplit(":", 1)[1])
    db_sync.run(
        lambda c: c.execute(
            "WITH e AS (INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id,"
            " contact_id, event_id, status, run_at, enrolled_at, event_data)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'triggered', $7, $7, '{}') RETURNING id)"
            " INSERT INTO enrollment_outbox (enrollment_id, shard) SELECT id, $8 FROM e",
            enrollment_id,
            t.account_id,
            uuid.UUID(workflow["id"]),
            uuid.UUID(trigger["id"]),
            uuid.uuid4(),
            uuid.uuid4(),
            now,
            shard,
        )
    )
    wait_until(lambda: streams.enrollments(t.account_id), "the outbox to publish")
    published = streams.enrollments(t.account_id)
    assert [p["id"] for p in published] == [str(enrollment_id)]
    wait_until(
        lambda: (
            db_sync.value(
                "SELECT count(*) FROM enrollment_outbox WHERE enrollment_id = $1", enrollment_id
            )
            == 0
        ),
        "the outbox row to go",
    )


def test_an_entry_that_fails_alone_is_dead_lettered_on_its_first_delivery(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """It decodes, but Postgres refuses its contact's row: the batch is split down to the
    culprit, which fails again alone and is dead-lettered with the error; the rest enroll."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    good = hot_events(t.account_id, 3)
    culprit = uuid.uuid4()
    poison = event(t.account_id, "contact.tag_added", culprit, tag="hot")
    with refused_contact(db_sync, culprit) as message:
        streams.send(good[:1])
        poison_entry = streams.send_raw(t.account_id, {names.EVENT_FIELD: orjson.dumps(poison)})
        streams.send(good[1:])
        streams.wait_drained()
    assert sorted(str(r["event_id"]) for r in enrollments(db_sync, t.account_id)) == sorted(
        e["event_id"] for e in good
    )
    dead = {d["entry_id"].decode(): d for d in streams.dead_letters()}
    assert dead[poison_entry]["code"] == b"unprocessable"
    assert message in dead[poison_entry]["reason"].decode()


@pytest.mark.parametrize("change", ["delete trigger", "delete workflow", "deactivate", "pause"])
def test_read_your_writes_after_every_kind_of_change(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, change: str
) -> None:
    """After the change returns, an event sent at once no longer enrolls."""
    t = live_tenant()
    workflow, trigger = active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    url = f"/workflows/{workflow['id']}"
    if change == "delete trigger":
        response = t.client.delete(f"{url}/trigger/{trigger['id']}")
    elif change == "delete workflow":
        response = t.client.delete(url)
    elif change == "deactivate":
        body = {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": HOT,
            "settings": MULTIPLE,
            "is_active": False,
        }
        response = t.client.put(f"{url}/trigger/{trigger['id']}", json=body)
    else:
        response = t.client.patch(url, json={"status": "paused"})
    assert response.is_success, response.text
    streams.send(hot_events(t.account_id, 3))
    streams.wait_drained()
    assert enrollments(db_sync, t.account_id) == []


def test_enrollments_reach_the_stream_once_after_publishing_failed(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """The XADD after commit fails (the stream key holds the wrong type): committed enrollments
    wait in the outbox and are published once the stream works again."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    saved = (
        streams.client.rename(names.ENROLLMENTS_STREAM, "saved-enrollments")
        if (streams.client.exists(names.ENROLLMENTS_STREAM))
        else None
    )
    streams.client.set(names.ENROLLMENTS_STREAM, "not a stream")
    try:
        streams.send(hot_events(t.account_id, 20))
        wait_until(lambda: len(enrollments(db_sync, t.account_id)) == 20, "20 enrollments")
    finally:
        streams.client.delete(names.ENROLLMENTS_STREAM)
        if saved:
            streams.client.rename("saved-enrollments", names.ENROLLMENTS_STREAM)
    streams.wait_drained()
    wait_until(lambda: len(streams.enrollments(t.account_id)) >= 20, "the outbox to publish")
    published = [p["id"] for p in streams.enrollments(t.account_id)]
    assert sorted(published) == sorted(str(r["id"]) for r in enrollments(db_sync, t.account_id))


def test_one_bad_entry_does_not_take_good_ones_of_other_shards_with_it(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """Two shards of one partition: the entry that fails is isolated, the other shard's
    events enroll."""
    a, b = tenants_on_shards(live_tenant, streams, lambda x, y: x != y and x % 2 == y % 2)
    for t in (a, b):
        active_workflow(t.client, "contact", "tag_added", HOT, MULTIPLE)
    culprit = uuid.uuid4()
    poison = event(a.account_id, "contact.tag_added", culprit, tag="hot")
    good = hot_events(b.account_id, 5)
    with refused_contact(db_sync, culprit):
        poison_entry = streams.send_raw(a.account_id, {names.EVENT_FIELD: orjson.dumps(poison)})
        streams.send(good)
        streams.wait_drained()
    assert sorted(str(r["event_id"]) for r in enrollments(db_sync, b.account_id)) == sorted(
        e["event_id"] for e in good
    )
    dead = {d["entry_id"].decode() for d in streams.dead_letters()}
    assert poison_entry in dead
    assert not {e["event_id"] for e in good} & {d["event"].decode() for d in streams.dead_letters()}


def test_events_of_an_unknown_account_are_dead_lettered_at_once(
    streams: Streams, db_sync: Db
) -> None:
    stranger = uuid.uuid4()
    entry = streams.send_raw(
        stranger, {names.EVENT_FIELD: orjson.dumps(event(stranger, "contact.tag_added", tag="hot"))}
    )
    streams.wait_drained()
    dead = {d["entry_id"].decode(): d["reason"].decode() for d in streams.dead_letters()}
    assert dead[entry] == f"unknown account_id {stranger}"


def test_an_entry_trimmed_before_processing_is_reported(
    live_tenant: MakeTenant, streams: Streams
) -> None:
    """Delivered to a consumer that vanished, then trimmed: the claim reports it."""
    t = live_tenant()
    name = streams.stream_of(t.account_id)
    entry = streams.send_raw(t.account_id, {names.EVENT_FIELD: b"{}"})
    streams.client.xreadgroup(GROUP, "ghost", {name: ">"}, count=100)
    streams.client.xdel(name, entry)
    wait_until(
        lambda: entry in {d["entry_id"].decode() for d in streams.dead_letters()},
        "the claim to report the trimmed entry",
        timeout=30,
    )
    streams.wait_drained()
