"""In-memory metrics, batch tallies, dead-letter reason codes and the stats report
(docs/operations.md §11)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from pipelines import stream_metrics as sm
from pipelines.enrollment import BusinessHours, LogEntry, decide, evaluate
from pipelines.messages import Rejected, decode
from pipelines.metrics import (
    REDACTED,
    MetricDef,
    Registry,
    by_tag,
    distribution,
    percentiles,
    total,
)
from pipelines.reasons import Blocked, DeadLetter, blocked_of
from pipelines.stats_report import build_report
from tests.pipelines.test_enrollment import ACCOUNT, index_of, spec, tag_event

HIST = MetricDef("h", "histogram", "", ("shard",), (1.0, 10, 100))


class Recorder:
    """A Sink that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, dict[str, str]]] = []

    def inc(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("inc", metric.name, value, tags))

    def set(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("set", metric.name, value, tags))

    def observe(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("observe", metric.name, value, tags))


@pytest.mark.parametrize("key", ["account_id", "contact", "workflow_id", "trigger", "api_key"])
def test_a_tag_naming_a_tenant_object_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="per tenant"):
        MetricDef("m", "counter", "", ("shard", key))


def test_a_uuid_in_a_tag_value_never_becomes_a_series() -> None:
    reg = Registry([MetricDef("c", "counter", "", ("reason",))])
    reg.inc("c", reason=f"unknown account_id {uuid.uuid4()}")
    reg.inc("c", reason=str(uuid.uuid4()).replace("-", ""))
    assert reg.snapshot()["c"]["series"] == [{"tags": {"reason": REDACTED}, "value": 2}]


def test_tags_must_be_exactly_the_metric_keys() -> None:
    reg = Registry([MetricDef("c", "counter", "", ("shard",))])
    with pytest.raises(ValueError, match="tags"):
        reg.inc("c", 1, shard=1, extra="x")
    with pytest.raises(ValueError, match="tags"):
        reg.inc("c", 1)


def test_histogram_boundaries_must_be_positive_and_increasing() -> None:
    with pytest.raises(ValueError, match="boundaries"):
        MetricDef("h", "histogram", "", (), (0.0, 1))
    with pytest.raises(ValueError, match="boundaries"):
        MetricDef("h", "histogram", "", (), (5.0, 1))


def test_counters_gauges_histograms_and_the_sink_see_the_same_records() -> None:
    sink = Recorder()
    defs = [
        MetricDef("c", "counter", "", ("shard",)),
        MetricDef("g", "gauge", "", ("shard",)),
        HIST,
    ]
    reg = Registry(defs, sink)
    reg.inc("c", 2, shard=1)
    reg.inc("c", 3, shard=1)
    reg.inc("c", 0, shard=2)  # nothing happened: no series
    reg.set("g", 7, shard=1)
    reg.set("g", 4, shard=1)
    reg.observe_many("h", [0.5, 1, 5, 50, 500], shard=1)
    snap = reg.snapshot()
    assert snap["c"]["series"] == [{"tags": {"shard": "1"}, "value": 5}]
    assert snap["g"]["series"] == [{"tags": {"shard": "1"}, "value": 4}]
    [h] = snap["h"]["series"]
    assert h["buckets"] == [2, 1, 1, 1]  # upper bounds inclusive, like Prometheus' `le`
    assert (h["count"], h["sum"], h["min"], h["max"]) == (5, 556.5, 0.5, 500)
    assert [c[0] for c in sink.calls] == ["inc", "inc", "set", "set"] + ["observe"] * 5
    assert sink.calls[-1] == ("observe", "h", 500, {"shard": "1"})


def test_percentiles_interpolate_within_buckets_narrowed_by_the_extremes() -> None:
    reg = Registry([HIST])
    reg.observe_many("h", [7.0] * 10, shard=0)
    assert percentiles(distribution([reg.snapshot()], "h")) == {
        "count": 10,
        "p50": 7.0,
        "p95": 7.0,
        "p99": 7.0,
        "max": 7.0,
    }
    reg.observe_many("h", [float(v) for v in range(11, 101)], shard=1)  # 90 values in (10, 100]
    both = distribution([reg.snapshot()], "h")
    assert both is not None
    assert both.count == 100
    p50 = both.quantile(0.5)
    assert p50 is not None
    assert 10 < p50 < 100
    assert distribution([reg.snapshot()], "h", {"shard": "0"}).count == 10  # type: ignore[union-attr]
    assert percentiles(None)["p99"] is None
    assert percentiles(distribution([reg.snapshot()], "h", {"shard": "9"}))["count"] == 0


def test_histograms_merge_across_snapshots() -> None:
    a, b = Registry([HIST]), Registry([HIST])
    a.observe("h", 2, shard=0)
    b.observe("h", 200, shard=1)
    merged = distribution([a.snapshot(), b.snapshot()], "h")
    assert merged is not None
    assert merged.counts == [0, 1, 0, 1]
    assert merged.high == 200
    assert merged.low == 2


POISON = {
    b"{not json": "invalid_json",
    b"": "invalid_json",
    b'{"event_id": 1}': "invalid_envelope",
    None: "missing_event_field",
}


@pytest.mark.parametrize(("raw", "code"), POISON.items())
def test_dead_letter_reasons_of_the_decoder_map_to_fixed_codes(
    raw: bytes | None, code: str
) -> None:
    rejected = decode("hairtrigger:events:1", "1-0", raw)
    assert isinstance(rejected, Rejected)
    assert rejected.code == code


def _envelope(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "contact.tag_added",
        "account_id": str(uuid.uuid4()),
        "timestamp": "2026-01-01T00:00:00Z",
        "data": {"contact_id": str(uuid.uuid4()), "tag": "x"},
    }
    for key, value in changes.items():
        if value is None:
            body["data"].pop(key)
        elif key in body:
            body[key] = value
        else:
            body["data"][key] = value
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (_envelope(event_type="contact.sneezed"), "unknown_event_type"),
        (_envelope(contact_id=None), "missing_contact_id"),
        (_envelope(contact_id="42"), "invalid_contact_id"),
        (_envelope(tag="a\u0000"), "nul_character"),
        (_envelope(current_state=[1]), "invalid_envelope"),
    ],
)
def test_every_envelope_rejection_has_a_code(raw: bytes, code: str) -> None:
    rejected = decode("hairtrigger:events:1", "1-0", raw)
    assert isinstance(rejected, Rejected), rejected
    assert rejected.code == code


def test_dead_letters_are_counted_by_their_code_whatever_the_reason_says() -> None:
    reg = Registry(sm.PARTITION_METRICS)
    sm.record_dead_letters(
        reg,
        0,
        [
            Rejected("hairtrigger:events:1", "1-0", b"", DeadLetter.UNKNOWN_ACCOUNT, "reworded"),
            Rejected("hairtrigger:events:1", "2-0", b"", DeadLetter.TRIMMED, "anything at all"),
        ],
    )
    snap = reg.snapshot()
    where = {"partition": "0", "shard": "1"}
    assert by_tag(snap, sm.DEAD_LETTERED, "reason", where) == {"unknown_account": 1, "trimmed": 1}
    assert set(sm.DEAD_LETTER_CODES) == {c.value for c in DeadLetter}
    assert blocked_of(Blocked.ALREADY_ENROLLED.text) is Blocked.ALREADY_ENROLLED
    assert blocked_of("blocked: martian") is None
    assert sm.category_of("deal.won") == "pipeline"
    assert sm.category_of("contact.deleted") == "contact"


def test_dead_letters_are_counted_per_shard_and_code() -> None:
    reg = Registry(sm.PARTITION_METRICS)
    sm.record_dead_letters(
        reg,
        1,
        [
            Rejected("hairtrigger:events:3", "1-0", b"x", DeadLetter.INVALID_JSON, "malformed: x"),
            Rejected(
                "hairtrigger:events:3",
                "2-0",
                b"",
                DeadLetter.UNKNOWN_ACCOUNT,
                f"unknown account_id {uuid.uuid4()}",
            ),
            Rejected("hairtrigger:events:5", "3-0", b"y", DeadLetter.INVALID_JSON, "malformed: y"),
        ],
    )
    snap = reg.snapshot()
    assert total(snap, sm.DEAD_LETTERED) == 3
    assert total(snap, sm.DEAD_LETTERED, {"shard": "3", "reason": "invalid_json"}) == 1
    assert total(snap, sm.DEAD_LETTERED, {"reason": "unknown_account"}) == 1


def _report(actors: dict[str, Any] | None) -> dict[str, Any]:
    lags = [
        {"shard": 0, "length": 5, "pending": 1, "lag": 2},
        {"shard": 1, "length": 3, "pending": 0, "lag": None},
    ]
    return build_report(actors, 2 if actors else None, lags, 4, 6, {})


def test_the_report_without_actors_has_the_stream_figures_only() -> None:
    report = _report(None)
    assert report["actors_running"] is False
    assert report["totals"] == {
        "stream_length": 8,
        "pending": 1,
        "lag": None,
        "dead_letter_length": 4,
        "enrollments_waiting": 6,
    }
    assert report["shards"][0] == {
        "shard": 0,
        "partition": None,
        "stream_length": 5,
        "pending": 1,
        "lag": 2,
    }
    assert report["partitions"] == []
    assert report["scheduler"] is None


def test_the_report_adds_up_partitions_by_shard_and_marks_missing_actors() -> None:
    reg = Registry(sm.PARTITION_METRICS)
    reg.inc(sm.CONSUMED, 4, partition=0, shard=0, category="form")
    reg.inc(sm.BLOCKED, 2, partition=0, shard=0, reason="already_enrolled")
    reg.observe_many(sm.COMMIT_LATENCY_MS, [3.0, 4.0], partition=0, shard=0)
    found = {
        "available": True,
        "partition": 0,
        "shards": [0],
        "started_at": "t",
        "metrics": reg.snapshot(),
    }
    missing = {"available": False, "partition": 1, "error": "ValueError"}
    report = _report({"partitions": [found, missing], "scheduler": None})
    assert report["actors_running"] is False
    assert report["totals"]["consumed"] == 4
    assert report["totals"]["blocked"] == {"already_enrolled": 2}
    assert report["partitions"][1] == {"partition": 1, "available": False, "error": "ValueError"}
    shard0 = report["shards"][0]
    assert (shard0["partition"], shard0["consumed"], shard0["blocked"]) == (
        0,
        4,
        {"already_enrolled": 2},
    )
    assert shard0["commit_latency_ms"]["count"] == 2
    assert report["shards"][1]["consumed"] == 0


def test_a_batch_is_tallied_per_shard_and_category_with_queued_blocked_and_errors() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday, 12:00 UTC
    hot = spec(
        {"logic": "AND", "conditions": [{"field": "tag", "operator": "equals", "value": "hot"}]},
        {"respect_business_hours": True},
    )
    contact = uuid.uuid4()
    events = [tag_event("hot", contact), tag_event("hot", contact), tag_event("cold")]
    matches, logs, _ = evaluate(events, index_of(hot), {})
    weekend = {
        ACCOUNT: BusinessHours(ZoneInfo("UTC"), {"days": ["sat"], "start": "09:00", "end": "17:00"})
    }
    enrollments, decided = decide(matches, {}, now, 10, weekend)
    broken = LogEntry(
        ACCOUNT,
        hot.workflow_id,
        hot.trigger_id,
        contact,
        events[2].envelope.event_id,
        "contact.tag_added",
        False,
        False,
        error="error: ZeroDivisionError: boom",
    )
    reg = Registry(sm.PARTITION_METRICS)
    committed = sm.entry_ms(events[0].entry_id) + 25.0
    sm.record_batch(reg, 0, events, matches, enrollments, [*logs, *decided, broken], committed)
    snap, shard = reg.snapshot(), {"partition": "0", "shard": "0", "category": "contact"}
    assert total(snap, sm.CONSUMED, shard) == 3
    assert total(snap, sm.MATCHED, shard) == 2
    assert total(snap, sm.ENROLLED, shard) == 1
    assert total(snap, sm.QUEUED, shard) == 1  # closed on Wednesdays: queued until Saturday
    assert total(snap, sm.BLOCKED, {"reason": "already_enrolled"}) == 1
    assert total(snap, sm.FILTER_ERRORS, shard) == 1
    latency = distribution([snap], sm.COMMIT_LATENCY_MS, {"shard": "0"})
    assert latency is not None
    assert (latency.count, latency.low, latency.high) == (3, 25.0, 25.0)


def test_retention_losses_carry_the_trimmed_code() -> None:
    from streams.base import trimmed

    assert trimmed("hairtrigger:events:1", "1-0").code is DeadLetter.TRIMMED


def test_registry_totals_equal_the_snapshot_totals() -> None:
    """stats() reads these; /stats reads snapshots: one tally, two views that must agree."""
    reg = Registry(sm.PARTITION_METRICS)
    reg.inc(sm.BLOCKED, 2, partition=0, shard="1", reason="cooldown")
    reg.inc(sm.BLOCKED, 3, partition=0, shard="2", reason="cooldown")
    reg.inc(sm.BLOCKED, 1, partition=0, shard="2", reason="already_enrolled")
    reg.observe_many(sm.BATCH_SIZE, [5, 500, 7], partition=0)
    snap = reg.snapshot()
    assert reg.total(sm.BLOCKED) == total(snap, sm.BLOCKED) == 6
    assert reg.by_tag(sm.BLOCKED, "reason") == by_tag(snap, sm.BLOCKED, "reason")
    assert reg.by_tag(sm.BLOCKED, "reason") == {"cooldown": 5, "already_enrolled": 1}
    batches = distribution([snap], sm.BATCH_SIZE)
    assert batches is not None
    assert reg.total(sm.BATCH_SIZE) == batches.count == 3
    assert reg.total(sm.PUBLISHED) == 0
