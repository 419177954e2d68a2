"""Metrics of the partition actors, the scheduler and the gateway, their Prometheus export
through Ray, and GET /api/v1/stats with the actors running (docs/operations.md §11)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import ray
from prometheus_client.parser import text_string_to_metric_families

from actors.client import Partitions
from api.app import create_app
from hairtrigger.runtime import metrics_endpoints
from pipelines import scopes
from pipelines import stream_metrics as sm
from pipelines.examples import all_of, cond
from pipelines.metrics import distribution, total
from pipelines.sharding import partition_for, shard_for
from streams import names
from tests.support.factories import Tenant, active_workflow, event, tenant_factory
from tests.support.servers import serve
from tests.support.streams import Streams
from tests.support.wait import wait_until

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))
OWN_TAGS = {"partition", "shard", "category", "reason", "route", "status", "event"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def snapshots(partitions: Partitions) -> list[dict[str, Any]]:
    found: dict[str, Any] = asyncio.run(partitions.metrics())
    assert all(p["available"] for p in found["partitions"]), found
    return [p["metrics"] for p in found["partitions"]]


def figures(snaps: list[dict[str, Any]], shard: int) -> dict[str, Any]:
    """The shard's counts as the actors hold them."""
    where = {"shard": str(shard)}
    latency = distribution(snaps, sm.COMMIT_LATENCY_MS, where)
    return {
        "consumed": sum(total(s, sm.CONSUMED, where) for s in snaps),
        "matched": sum(total(s, sm.MATCHED, where) for s in snaps),
        "enrolled": sum(total(s, sm.ENROLLED, where) for s in snaps),
        "already_enrolled": sum(
            total(s, sm.BLOCKED, {**where, "reason": "already_enrolled"}) for s in snaps
        ),
        "dead_lettered": {
            code: sum(total(s, sm.DEAD_LETTERED, {**where, "reason": code}) for s in snaps)
            for code in sm.DEAD_LETTER_CODES
        },
        "latencies": latency.count if latency else 0,
    }


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {
        k: delta(v, before[k]) if isinstance(v, dict) else v - before[k] for k, v in after.items()
    }


def from_api(stats: dict[str, Any], shard: int) -> dict[str, Any]:
    s = stats["shards"][shard]
    return {
        "consumed": s["consumed"],
        "matched": s["matched"],
        "enrolled": s["enrolled"],
        "already_enrolled": s["blocked"].get("already_enrolled", 0),
        "dead_lettered": {c: s["dead_lettered"].get(c, 0) for c in sm.DEAD_LETTER_CODES},
        "latencies": s["commit_latency_ms"]["count"],
    }


def known_run(t: Tenant, streams: Streams, enroll: int, repeat: int, cold: int) -> int:
    """`enroll` contacts tagged hot (each enrolls), `repeat` of them again (each blocked:
    already_enrolled), `cold` events that match nothing, and 4 poison entries. Returns the
    number of valid events."""
    contacts = [uuid.uuid4() for _ in range(enroll)]
    hot = [event(t.account_id, "contact.tag_added", c, tag="hot") for c in contacts]
    again = [event(t.account_id, "contact.tag_added", c, tag="hot") for c in contacts[:repeat]]
    other = [event(t.account_id, "contact.tag_added", tag="cold") for _ in range(cold)]
    no_contact = event(t.account_id, "contact.tag_added", tag="hot")
    del no_contact["data"]["contact_id"]
    stranger = event(uuid.uuid4(), "contact.tag_added", tag="hot")  # no such account
    streams.send(hot + again + other)
    for raw in (
        b"{not json",
        orjson.dumps(event(t.account_id, "contact.sneezed")),
        orjson.dumps(no_contact),
        orjson.dumps(stranger),
    ):
        streams.send_raw(t.account_id, {names.EVENT_FIELD: raw})
    streams.wait_drained()
    return enroll + repeat + cold


POISON = {"invalid_json": 1, "unknown_event_type": 1, "missing_contact_id": 1, "unknown_account": 1}


def test_a_known_run_shows_exactly_its_counts_in_the_actors_and_in_stats(
    live_tenant: MakeTenant, streams: Streams, partitions: Partitions
) -> None:
    """N entries: k enroll, j blocked already_enrolled, m match nothing, d poison."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT)  # single: once per contact
    shard = shard_for(t.account_id, streams.shards)
    streams.wait_drained()
    before, api_before = figures(snapshots(partitions), shard), t.client.get("/stats").json()
    valid = known_run(t, streams, enroll=5, repeat=3, cold=4)
    after, api_after = figures(snapshots(partitions), shard), t.client.get("/stats").json()
    expected = {
        "consumed": valid,
        "matched": 8,
        "enrolled": 5,
        "already_enrolled": 3,
        "dead_lettered": {c: POISON.get(c, 0) for c in sm.DEAD_LETTER_CODES},
        "latencies": valid,  # one XADD-to-commit observation per event
    }
    assert delta(after, before) == expected
    assert delta(from_api(api_after, shard), from_api(api_before, shard)) == expected
    owner = partition_for(shard, partitions.partitions)
    assert api_after["shards"][shard]["partition"] == owner
    assert shard in api_after["partitions"][owner]["shards"]
    assert api_after["actors_running"] is True
    totals = delta(
        {k: api_after["totals"][k] for k in ("consumed", "enrolled")},
        {k: api_before["totals"][k] for k in ("consumed", "enrolled")},
    )
    assert totals == {"consumed": valid, "enrolled": 5}
    assert api_after["shards"][shard]["pending"] == 0
    assert api_after["shards"][shard]["lag"] == 0
    latency = api_after["partitions"][owner]["commit_latency_ms"]
    assert latency["count"] > 0
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert api_after["partitions"][owner]["batch_size"]["count"] > 0


def test_every_account_sees_the_same_system_wide_stats_and_no_account_id(
    live_tenant: MakeTenant, streams: Streams
) -> None:
    a, b = live_tenant(), live_tenant(scopes=(scopes.SCOPE_STATS_READ,))
    active_workflow(a.client, "contact", "tag_added", HOT)
    known_run(a, streams, enroll=2, repeat=1, cold=1)
    first, second = a.client.get("/stats").json(), b.client.get("/stats").json()
    for key in ("actors_running", "totals", "partitions", "shards", "scheduler"):
        assert first[key] == second[key], key
    text = orjson.dumps(first).decode()
    assert str(a.account_id) not in text
    assert str(b.account_id) not in text
    assert not UUID.search(text)


def _scrape() -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for url in metrics_endpoints():
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            samples += [(s.name, dict(s.labels), s.value) for s in family.samples]
    return samples


def _exported(samples: list[tuple[str, dict[str, str], float]], name: str, **tags: str) -> float:
    """The largest value among the samples of `name` with these tags (a restarted actor
    leaves its old worker's series behind for a while)."""
    values = [
        v
        for n, labels, v in samples
        if n == name and all(labels.get(k) == x for k, x in tags.items())
    ]
    return max(values, default=-1.0)


def test_prometheus_export_has_the_counters_with_their_tags_and_no_account_ids(
    live_tenant: MakeTenant, streams: Streams, partitions: Partitions
) -> None:
    """Scraped from the metrics export port of the test's Ray (started without dashboard)."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT)
    known_run(t, streams, enroll=2, repeat=1, cold=1)
    shard = shard_for(t.account_id, streams.shards)
    owner = str(partition_for(shard, partitions.partitions))
    snap = snapshots(partitions)[int(owner)]
    consumed = total(snap, sm.CONSUMED, {"shard": str(shard), "category": "contact"})
    blocked = total(snap, sm.BLOCKED, {"shard": str(shard), "reason": "already_enrolled"})
    tags = {"partition": owner, "shard": str(shard)}

    def caught_up() -> list[tuple[str, dict[str, str], float]] | None:
        samples = _scrape()
        ok = (
            _exported(samples, "ray_hairtrigger_events_consumed_total", **tags, category="contact")
            == consumed
            and _exported(
                samples,
                "ray_hairtrigger_enrollments_blocked_total",
                **tags,
                reason="already_enrolled",
            )
            == blocked
            and _exported(
                samples, "ray_hairtrigger_events_dead_lettered_total", **tags, reason="invalid_json"
            )
            >= 1
            and _exported(
                samples,
                "ray_hairtrigger_http_requests_total",
                route="POST /api/v1/workflows",
                status="201",
            )
            >= 1
        )
        return samples if ok else None

    samples = wait_until(caught_up, "the actors' metrics in the Prometheus export", 90)
    ours = [(n, labels) for n, labels, _ in samples if n.startswith("ray_hairtrigger_")]
    names_seen = {n for n, _ in ours}
    assert "ray_hairtrigger_commit_latency_ms_bucket" in names_seen
    assert "ray_hairtrigger_stream_pending" in names_seen
    for name, labels in ours:
        own = {k for k in labels if k[0].islower() and not k.startswith("otel_") and k != "le"}
        assert own <= OWN_TAGS, (name, labels)
        assert not any(UUID.search(labels[k]) for k in own), (name, labels)
    text = str(samples)
    assert str(t.account_id) not in text


def test_a_missing_actor_is_reported_unavailable_and_the_rest_still_answer(
    settings: Any, partitions: Partitions, db_sync: Any
) -> None:
    wider = Partitions(partitions.partitions + 1, partitions.shards)  # one actor too many
    with serve(create_app(settings, sync=wider)) as url:
        factory = tenant_factory(db_sync, url)
        t = next(factory)()
        body = t.client.get("/stats").json()
        next(factory, None)
    assert body["actors_running"] is False
    *running, missing = body["partitions"]
    assert missing == {
        **missing,
        "partition": partitions.partitions,
        "available": False,
        "error": "ValueError",
    }
    assert all(p["available"] for p in running)


def test_scheduler_emissions_are_counted_and_shown_in_stats(
    live_tenant: MakeTenant, streams: Streams, scheduler: Any
) -> None:
    t = live_tenant()
    contact = uuid.uuid4()
    streams.send(
        [event(t.account_id, "contact.created", contact, current_state={"birthday": "1990-07-14"})]
    )
    streams.wait_drained()
    active_workflow(t.client, "time", "birthday")
    before = ray.get(scheduler.metrics.remote())["metrics"]
    api_before = t.client.get("/stats").json()["scheduler"]
    for now in ("2031-07-13T15:00:00", "2031-07-14T09:00:30"):  # plan, then emit at 09:00
        ray.get(scheduler.tick.remote(datetime.fromisoformat(now).replace(tzinfo=UTC).isoformat()))
        streams.wait_drained()
    after = ray.get(scheduler.metrics.remote())["metrics"]
    api_after = t.client.get("/stats").json()["scheduler"]
    where = {"event": "birthday"}
    assert total(after, sm.EMITTED, where) - total(before, sm.EMITTED, where) == 1
    assert total(after, sm.TICKS) - total(before, sm.TICKS) == 2
    assert api_after["available"] is True
    assert api_after["emitted"]["birthday"] - api_before["emitted"].get("birthday", 0) == 1
    assert api_after["ticks"] - api_before["ticks"] == 2
