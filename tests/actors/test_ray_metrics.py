"""The buffered Ray export: what one flush hands to Ray's metric objects."""

from __future__ import annotations

from typing import Any

import pytest

from actors import ray_metrics
from actors.ray_metrics import SAMPLE, RaySink
from pipelines import stream_metrics as sm


class Recorder:
    """Stands in for a ray.util.metrics object: records the calls a flush makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("inc", value, tags))

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("set", value, tags))

    def observe(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("observe", value, tags))


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> RaySink:
    monkeypatch.setattr(ray_metrics, "_ray_metric", lambda d: Recorder())
    return RaySink(sm.PARTITION_METRICS, flush_s=3600)  # flushed by hand here


DEFS = {d.name: d for d in sm.PARTITION_METRICS}
CONSUMED, STREAM_LAG, LATENCY = (
    DEFS[n] for n in (sm.CONSUMED, sm.STREAM_LAG, sm.COMMIT_LATENCY_MS)
)


def calls(sink: RaySink, name: str) -> list[tuple[str, float, dict[str, str]]]:
    recorder: Any = sink._metrics[name]
    found: list[tuple[str, float, dict[str, str]]] = recorder.calls
    return found


def test_counters_sum_gauges_keep_the_last_value_histograms_are_sampled(sink: RaySink) -> None:
    a = {"partition": "0", "shard": "1", "category": "contact"}
    b = {**a, "shard": "3"}
    for _ in range(5):
        sink.inc(CONSUMED, 2, a)
    sink.inc(CONSUMED, 1, b)
    lag = {"partition": "0", "shard": "1"}
    sink.set(STREAM_LAG, 7, lag)
    sink.set(STREAM_LAG, 3, lag)
    latency = {"partition": "0", "shard": "1"}
    few, many = [1.0, 2.0, 3.0], [float(i) for i in range(10 * SAMPLE)]
    for v in few:
        sink.observe(LATENCY, v, latency)
    sink.flush()
    assert calls(sink, sm.CONSUMED) == [("inc", 10, a), ("inc", 1, b)]
    assert calls(sink, sm.STREAM_LAG) == [("set", 3, lag)]
    assert [c[1] for c in calls(sink, sm.COMMIT_LATENCY_MS)] == few  # all, when few
    for v in many:
        sink.observe(LATENCY, v, latency)
    sink.flush()
    sampled = [c[1] for c in calls(sink, sm.COMMIT_LATENCY_MS)][len(few) :]
    assert len(sampled) == SAMPLE
    assert set(sampled) <= set(many)
    assert max(sampled) > SAMPLE  # a reservoir over all of them, not the first SAMPLE
    sink.flush()  # nothing new: nothing exported again
    assert len(calls(sink, sm.CONSUMED)) == 2
