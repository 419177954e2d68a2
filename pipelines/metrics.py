"""Application metrics kept in memory: counters, gauges and bucketed histograms, with a
snapshot that crosses process boundaries as plain data. Pure: no I/O, no Ray.

Tags name only system-wide things (partition, shard, event category, reason, route): a tag
key naming a tenant's object is refused when the metric is defined, and a tag value that
holds a UUID is replaced, so no account or contact id can become a time series."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Kind = Literal["counter", "gauge", "histogram"]
TagValues = tuple[str, ...]

_TENANT_WORDS = ("account", "contact", "workflow", "trigger", "event_id", "key")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
REDACTED = "redacted"


@dataclass(frozen=True, slots=True)
class MetricDef:
    name: str
    kind: Kind
    description: str
    tag_keys: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()  # histograms: upper bounds of the buckets, increasing

    def __post_init__(self) -> None:
        for key in self.tag_keys:
            if any(word in key for word in _TENANT_WORDS):
                raise ValueError(f"metric {self.name}: tag '{key}' would be per tenant")
        if self.kind == "histogram":
            b = self.boundaries
            if not b or any(x <= 0 for x in b) or list(b) != sorted(set(b)):
                raise ValueError(f"metric {self.name}: boundaries must be positive, increasing")


class Sink(Protocol):
    """Where records also go (a Ray exporter inside a Ray process)."""

    def inc(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None: ...

    def set(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None: ...

    def observe(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None: ...


@dataclass(slots=True)
class _Buckets:
    counts: list[int]
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, boundaries: tuple[float, ...], values: Sequence[float]) -> None:
        counts, where = self.counts, bisect.bisect_left
        for value in values:
            counts[where(boundaries, value)] += 1
        self.total += sum(values)
        self.low = min(self.low, min(values))
        self.high = max(self.high, max(values))


@dataclass(slots=True)
class _Series:
    metric: MetricDef
    values: dict[TagValues, float] = field(default_factory=dict)
    buckets: dict[TagValues, _Buckets] = field(default_factory=dict)


class Registry:
    """The metrics of one process. Record with keyword tags (all of the metric's tag keys)."""

    def __init__(self, defs: Iterable[MetricDef], sink: Sink | None = None) -> None:
        self._series = {d.name: _Series(d) for d in defs}
        self.sink = sink

    def _key(self, name: str, tags: Mapping[str, object]) -> tuple[_Series, TagValues]:
        series = self._series[name]
        keys = series.metric.tag_keys
        if set(tags) != set(keys):
            raise ValueError(f"metric {name}: tags {sorted(tags)} are not {sorted(keys)}")
        return series, tuple(_safe(str(tags[k])) for k in keys)

    def inc(self, name: str, value: float = 1, **tags: object) -> None:
        if not value:
            return
        series, key = self._key(name, tags)
        series.values[key] = series.values.get(key, 0) + value
        if self.sink is not None:
            self.sink.inc(series.metric, value, _named(series.metric, key))

    def set(self, name: str, value: float, **tags: object) -> None:
        series, key = self._key(name, tags)
        series.values[key] = value
        if self.sink is not None:
            self.sink.set(series.metric, value, _named(series.metric, key))

    def observe(self, name: str, value: float, **tags: object) -> None:
        self.observe_many(name, (value,), **tags)

    def observe_many(self, name: str, values: Sequence[float], **tags: object) -> None:
        if not values:
            return
        series, key = self._key(name, tags)
        bounds = series.metric.boundaries
        state = series.buckets.get(key)
        if state is None:
            state = series.buckets[key] = _Buckets([0] * (len(bounds) + 1))
        state.add(bounds, values)
        if self.sink is not None:
            named = _named(series.metric, key)
            for value in values:
                self.sink.observe(series.metric, value, named)

    def total(self, name: str) -> float:
        """A counter's sum over its series, or how many values a histogram observed. Cheap and
        safe to call from another thread than the recording one (it copies before it reads)."""
        series = self._series[name]
        if series.metric.kind == "histogram":
            return float(sum(sum(b.counts) for b in list(series.buckets.values())))
        return float(sum(list(series.values.values())))

    def by_tag(self, name: str, tag: str) -> dict[str, float]:
        """A counter's totals per value of one tag."""
        series = self._series[name]
        at = series.metric.tag_keys.index(tag)
        out: dict[str, float] = {}
        for key, value in list(series.values.items()):
            out[key[at]] = out.get(key[at], 0) + value
        return out

    def snapshot(self) -> dict[str, Any]:
        """{name: {"kind", "tag_keys", "boundaries"?, "series": [...]}} as plain data."""
        out: dict[str, Any] = {}
        for name, s in self._series.items():
            m = s.metric
            entry: dict[str, Any] = {"kind": m.kind, "tag_keys": list(m.tag_keys)}
            if m.kind == "histogram":
                entry["boundaries"] = list(m.boundaries)
                entry["series"] = [
                    {
                        "tags": _named(m, k),
                        "count": sum(b.counts),
                        "sum": b.total,
                        "min": b.low,
                        "max": b.high,
                        "buckets": list(b.counts),
                    }
                    for k, b in s.buckets.items()
                ]
            else:
                entry["series"] = [{"tags": _named(m, k), "value": v} for k, v in s.values.items()]
            out[name] = entry
        return out


def _named(metric: MetricDef, key: TagValues) -> dict[str, str]:
    return dict(zip(metric.tag_keys, key, strict=True))


def _safe(value: str) -> str:
    return REDACTED if _UUID.search(value) else value


# -- reading snapshots -----------------------------------------------------------------------


def _matches(tags: Mapping[str, str], where: Mapping[str, str] | None) -> bool:
    return not where or all(tags.get(k) == v for k, v in where.items())


def total(snapshot: Mapping[str, Any], name: str, where: Mapping[str, str] | None = None) -> float:
    """The sum of a counter's (or gauge's) series whose tags include `where`."""
    entry = snapshot.get(name)
    if entry is None:
        return 0
    return float(sum(s["value"] for s in entry["series"] if _matches(s["tags"], where)))


def by_tag(
    snapshot: Mapping[str, Any], name: str, tag: str, where: Mapping[str, str] | None = None
) -> dict[str, float]:
    """A counter's totals per value of one tag."""
    out: dict[str, float] = {}
    entry = snapshot.get(name)
    for s in entry["series"] if entry else []:
        if _matches(s["tags"], where):
            out[s["tags"][tag]] = out.get(s["tags"][tag], 0) + s["value"]
    return out


@dataclass(slots=True)
class Distribution:
    """Merged histogram series: bucket counts and what is known of the extremes."""

    boundaries: list[float]
    counts: list[int]
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    @property
    def count(self) -> int:
        return sum(self.counts)

    def merge(self, series: Mapping[str, Any]) -> None:
        self.counts = [a + b for a, b in zip(self.counts, series["buckets"], strict=True)]
        self.total += series["sum"]
        self.low = min(self.low, series["min"])
        self.high = max(self.high, series["max"])

    def quantile(self, q: float) -> float | None:
        """Estimated like Prometheus' histogram_quantile: linear within the bucket holding
        the rank, the bucket's bounds narrowed to the smallest and largest value seen."""
        n = self.count
        if n == 0:
            return None
        rank, seen = q * n, 0
        for i, c in enumerate(self.counts):
            if c and seen + c >= rank:
                lo = max(self.boundaries[i - 1] if i else 0.0, self.low)
                hi = min(self.boundaries[i] if i < len(self.boundaries) else self.high, self.high)
                return lo + (hi - lo) * max(rank - seen, 0) / c
            seen += c
        return self.high


def distribution(
    snapshots: Iterable[Mapping[str, Any]], name: str, where: Mapping[str, str] | None = None
) -> Distribution | None:
    """One histogram's series whose tags include `where`, merged over `snapshots`."""
    d: Distribution | None = None
    for snapshot in snapshots:
        entry = snapshot.get(name)
        if entry is None:
            continue
        if d is None:
            d = Distribution(list(entry["boundaries"]), [0] * (len(entry["boundaries"]) + 1))
        for s in entry["series"]:
            if _matches(s["tags"], where):
                d.merge(s)
    return d


def percentiles(d: Distribution | None) -> dict[str, float | int | None]:
    """count, p50, p95, p99 and max of a distribution (None when nothing was observed)."""
    if d is None or d.count == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": d.count,
        "p50": _round(d.quantile(0.5)),
        "p95": _round(d.quantile(0.95)),
        "p99": _round(d.quantile(0.99)),
        "max": _round(d.high),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
