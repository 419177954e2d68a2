"""Spread accounts on the real partition actors, Redis and Postgres (docs/contract.md §3): every
partition owning one of the account's shards consumes its events and the enrollments are exactly
the expected ones; a spread change in the middle of a contact's events keeps them in order and
never enrolls a `single` workflow twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

import pytest
import redis

from actors.client import Partitions
from pipelines.examples import all_of, cond
from streams import names, spread
from streams.clients import async_client
from tests.support.db import Db, enrollments
from tests.support.factories import Tenant, active_workflow, event
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))


def _consumed(partitions: Partitions) -> list[int]:
    return [s["events"] for s in partitions.stats()]


def test_a_spread_account_is_consumed_by_every_partition_and_enrolls_exactly(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, partitions: Partitions, redis_url: str
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"})
    with redis.Redis.from_url(redis_url) as r:
        r.hset(names.SPREAD_KEY, str(t.account_id), streams.shards)
    before = _consumed(partitions)
    sent = [event(t.account_id, "contact.tag_added", tag="hot") for _ in range(800)]
    misses = [event(t.account_id, "contact.tag_added", tag="cold") for _ in range(200)]
    streams.send(sent + misses)
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    assert sorted(str(r["event_id"]) for r in rows) == sorted(e["event_id"] for e in sent)
    after = _consumed(partitions)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    with redis.Redis.from_url(redis_url) as r:
        holding = {
            s
            for s in range(streams.shards)
            if any(
                str(t.account_id).encode() in f.get(names.EVENT_FIELD.encode(), b"")
                for _, f in r.xrange(names.events_stream(s))
            )
        }
    assert holding == set(range(streams.shards))


@pytest.mark.slow
def test_a_spread_change_mid_stream_keeps_order_and_single_exact(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, redis_url: str
) -> None:
    t = live_tenant()
    single, _ = active_workflow(
        t.client, "contact", "tag_added", HOT, {"enrollment_limit": "single"}
    )
    every, _ = active_workflow(
        t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"}
    )
    contacts = [uuid.uuid4() for _ in range(80)]
    order: dict[str, list[str]] = defaultdict(list)

    def burst() -> None:
        batch = [event(t.account_id, "contact.tag_added", c, tag="hot") for c in contacts]
        for e in batch:
            order[e["data"]["contact_id"]].append(e["event_id"])
        streams.send(batch)

    async def change() -> None:
        client = async_client(redis_url)
        try:
            await spread.set_spread(client, t.account_id, streams.shards, streams.shards, "pin")
        finally:
            await client.aclose()

    for _ in range(3):
        burst()
    asyncio.run(change())  # the old shard still has events of these contacts to process
    for _ in range(3):
        burst()
        time.sleep(0.2)
    streams.wait_drained(timeout=90)
    rows = db_sync.fetch(
        "SELECT workflow_id, contact_id, event_id FROM workflow_enrollments"
        " WHERE account_id = $1 ORDER BY enrolled_at, event_id",
        t.account_id,
    )
    by_workflow: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_workflow[str(r["workflow_id"])][str(r["contact_id"])].append(str(r["event_id"]))
    assert by_workflow[every["id"]] == order  # each event once, each contact's in order
    assert by_workflow[single["id"]] == {c: ids[:1] for c, ids in order.items()}
    moved = [
        c
        for c in contacts
        if streams.router.streams_sync(streams.client, [(t.account_id, c)])
        != [streams.stream_of(t.account_id)]
    ]
    assert moved, "some contacts left the home shard"
