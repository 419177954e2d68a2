"""What the partition actors, the scheduler and the gateway measure, and how a processed batch
is tallied. Pure: the actors record, the actor shells export (actors/ray_metrics.py)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from uuid import UUID

from pipelines.catalog import BY_EVENT_TYPE, CONTACT_DELETED
from pipelines.enrollment import Enrollment, LogEntry, Match
from pipelines.messages import Event, Rejected
from pipelines.metrics import MetricDef, Registry
from pipelines.reasons import DeadLetter

P = "hairtrigger_"
CONSUMED = P + "events_consumed"
MATCHED = P + "events_matched"
ENROLLED = P + "enrollments"
QUEUED = P + "enrollments_queued"
BLOCKED = P + "enrollments_blocked"
FILTER_ERRORS = P + "filter_errors"
DEAD_LETTERED = P + "events_dead_lettered"
PUBLISHED = P + "enrollments_published"
BATCH_ERRORS = P + "batch_errors"
BATCH_SIZE = P + "batch_size"
MATCH_MS = P + "match_ms"
COMMIT_LATENCY_MS = P + "commit_latency_ms"
STREAM_LENGTH = P + "stream_length"
STREAM_PENDING = P + "stream_pending"
STREAM_LAG = P + "stream_lag"
AUTO_SPREADS = P + "auto_spreads"
HELD_BACK = P + "events_held_back"
REROUTED = P + "events_rerouted"
TRIGGERS_INVALID = P + "triggers_invalid"

EMITTED = P + "scheduler_emitted"
SKIPPED = P + "scheduler_skipped"
STALE = P + "scheduler_stale"
RELEASED = P + "scheduler_released"
TICKS = P + "scheduler_ticks"
WAITING = P + "enrollments_waiting"

HTTP_REQUESTS = P + "http_requests"
HTTP_MS = P + "http_request_ms"

_SHARD = ("partition", "shard")
_CATEGORY = ("partition", "shard", "category")
_REASON = ("partition", "shard", "reason")
LATENCY_MS = (1.0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000)
MATCH_BOUNDS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000)
BATCH_BOUNDS = (1.0, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 4000, 8000)
HTTP_BOUNDS = (1.0, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)

PARTITION_METRICS = (
    MetricDef(CONSUMED, "counter", "Valid events processed and committed", _CATEGORY),
    MetricDef(MATCHED, "counter", "(event, trigger) matches", _CATEGORY),
    MetricDef(ENROLLED, "counter", "Enrollments written (triggered or queued)", _CATEGORY),
    MetricDef(QUEUED, "counter", "Enrollments queued for business hours", _CATEGORY),
    MetricDef(BLOCKED, "counter", "Matches that did not enroll, by reason", _REASON),
    MetricDef(FILTER_ERRORS, "counter", "Filters that raised at evaluation", _CATEGORY),
    MetricDef(DEAD_LETTERED, "counter", "Entries moved to the dead-letter stream", _REASON),
    MetricDef(PUBLISHED, "counter", "Enrollments published to the stream", ("partition",)),
    MetricDef(BATCH_ERRORS, "counter", "Batches that failed and were retried", ("partition",)),
    MetricDef(BATCH_SIZE, "histogram", "Stream entries per batch", ("partition",), BATCH_BOUNDS),
    MetricDef(
        MATCH_MS, "histogram", "Milliseconds to match one batch", ("partition",), MATCH_BOUNDS
    ),
    MetricDef(
        COMMIT_LATENCY_MS,
        "histogram",
        "Milliseconds from XADD (stream entry id) to the batch's commit, per event",
        _SHARD,
        LATENCY_MS,
    ),
    MetricDef(STREAM_LENGTH, "gauge", "Entries in the shard stream", _SHARD),
    MetricDef(STREAM_PENDING, "gauge", "Entries delivered, not yet acknowledged", _SHARD),
    MetricDef(STREAM_LAG, "gauge", "Entries not yet delivered to the consumer group", _SHARD),
    MetricDef(AUTO_SPREADS, "counter", "Accounts this partition spread wider", ("partition",)),
    MetricDef(
        HELD_BACK,
        "gauge",
        "Events of moved contacts waiting for their old shard (a spread change)",
        ("partition",),
    ),
    MetricDef(
        REROUTED, "counter", "Events that came on another shard than their routing's", _SHARD
    ),
    MetricDef(
        TRIGGERS_INVALID,
        "gauge",
        "Live triggers skipped: their stored configuration does not validate",
        ("partition",),
    ),
)

SCHEDULER_METRICS = (
    MetricDef(EMITTED, "counter", "Time events emitted", ("event",)),
    MetricDef(SKIPPED, "counter", "Occurrences older than catch_up_hours, skipped"),
    MetricDef(STALE, "counter", "Occurrences dropped as stale"),
    MetricDef(RELEASED, "counter", "Queued enrollments released at business hours"),
    MetricDef(TICKS, "counter", "Scheduler rounds"),
    MetricDef(WAITING, "gauge", "Enrollments queued, waiting for business hours"),
)

GATEWAY_METRICS = (
    MetricDef(HTTP_REQUESTS, "counter", "API requests by route and status", ("route", "status")),
    MetricDef(HTTP_MS, "histogram", "API request milliseconds by route", ("route",), HTTP_BOUNDS),
)

DEAD_LETTER_CODES: tuple[str, ...] = tuple(code.value for code in DeadLetter)


def category_of(event_type: str) -> str:
    if event_type == CONTACT_DELETED:
        return "contact"
    found = BY_EVENT_TYPE.get(event_type)
    return found.category if found is not None else "other"


@functools.lru_cache(maxsize=4096)
def shard_of_stream(stream: str) -> str:
    """'hairtrigger:events:3' -> '3'."""
    return stream.rsplit(":", 1)[-1]


def entry_ms(entry_id: str) -> int:
    """When Redis accepted a stream entry, in epoch milliseconds."""
    return int(entry_id.partition("-")[0])


def record_batch(
    registry: Registry,
    partition: int,
    events: Sequence[Event],
    matches: Sequence[Match],
    inserted: Iterable[Enrollment],
    logs: Iterable[LogEntry],
    committed_ms: float,
) -> None:
    """Tally one committed batch: consumed, matched, enrolled, queued, blocked, filter errors,
    and each event's XADD-to-commit latency. `logs` are all the batch's log entries."""
    shard_of: dict[UUID, str] = {}
    by_type: Counter[tuple[str, str]] = Counter()
    latency: dict[str, list[float]] = {}
    for e in events:
        shard = shard_of[e.envelope.event_id] = shard_of_stream(e.stream)
        by_type[shard, e.envelope.event_type] += 1
        latency.setdefault(shard, []).append(committed_ms - entry_ms(e.entry_id))
    consumed: Counter[tuple[str, str]] = Counter()
    for (shard, event_type), n in by_type.items():
        consumed[shard, category_of(event_type)] += n
    matched = Counter((shard_of_stream(m.event.stream), m.trigger.event.category) for m in matches)
    category = {m.trigger.trigger_id: m.trigger.event.category for m in matches}
    enrolled: Counter[tuple[str, str]] = Counter()
    queued: Counter[tuple[str, str]] = Counter()
    for row in inserted:
        key = (shard_of.get(row.event_id, "other"), category.get(row.trigger_id, "other"))
        enrolled[key] += 1
        queued[key] += row.status == "queued"
    blocked: Counter[tuple[str, str]] = Counter()
    errors: Counter[tuple[str, str]] = Counter()
    for entry in logs:
        shard = shard_of.get(entry.event_id, "other")
        if entry.blocked is not None:
            blocked[shard, entry.blocked.value] += 1
        elif entry.error is not None:
            errors[shard, category_of(entry.event_type)] += 1
    _add(registry, CONSUMED, partition, consumed, "category")
    _add(registry, MATCHED, partition, matched, "category")
    _add(registry, ENROLLED, partition, enrolled, "category")
    _add(registry, QUEUED, partition, queued, "category")
    _add(registry, BLOCKED, partition, blocked, "reason")
    _add(registry, FILTER_ERRORS, partition, errors, "category")
    for shard, values in latency.items():  # clocks of Redis and this host may differ a little
        values = [v if v > 0 else 0.0 for v in values]
        registry.observe_many(COMMIT_LATENCY_MS, values, partition=partition, shard=shard)


def record_dead_letters(registry: Registry, partition: int, rejected: Iterable[Rejected]) -> None:
    """Entries moved to the dead-letter stream, by shard and code."""
    counts = Counter((shard_of_stream(r.stream), r.code.value) for r in rejected)
    _add(registry, DEAD_LETTERED, partition, counts, "reason")


def _add(
    registry: Registry, name: str, partition: int, counts: Counter[tuple[str, str]], tag: str
) -> None:
    for (shard, value), n in counts.items():
        registry.inc(name, n, partition=partition, shard=shard, **{tag: value})
