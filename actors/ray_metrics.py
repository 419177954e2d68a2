"""Exporting a Registry's records to Ray's application metrics (ray.util.metrics), which each
node's metrics agent serves as Prometheus text on its metrics export port and the dashboard
charts. Only works inside a Ray process (an actor, or a driver after ray.init)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ray.util import metrics as ray_metrics

from pipelines.metrics import MetricDef

# One Ray metric object per name and process, shared by every sink in it.
_MADE: dict[str, Any] = {}


def _ray_metric(d: MetricDef) -> Any:
    found = _MADE.get(d.name)
    if found is None:
        keys = d.tag_keys
        if d.kind == "counter":
            found = ray_metrics.Counter(d.name, description=d.description, tag_keys=keys)
        elif d.kind == "gauge":
            found = ray_metrics.Gauge(d.name, description=d.description, tag_keys=keys)
        else:
            found = ray_metrics.Histogram(
                d.name, description=d.description, boundaries=list(d.boundaries), tag_keys=keys
            )
        _MADE[d.name] = found
    return found


class RaySink:
    """A pipelines.metrics.Sink: every record also goes to the Ray metric of the same name."""

    def __init__(self, defs: Iterable[MetricDef]) -> None:
        self._metrics = {d.name: _ray_metric(d) for d in defs}

    def inc(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self._metrics[metric.name].inc(value, tags)

    def set(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self._metrics[metric.name].set(value, tags)

    def observe(self, metric: MetricDef, value: float, tags: dict[str, str]) -> None:
        self._metrics[metric.name].observe(value, tags)
