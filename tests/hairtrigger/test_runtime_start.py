"""A local Ray that misses its startup deadline is started again, a bounded number of times."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from hairtrigger import runtime


def _flaky_init(failures: int, calls: list[dict[str, Any]]) -> Any:
    def init(**options: Any) -> str:
        calls.append(options)
        if len(calls) <= failures:
            raise Exception("The current node timed out during startup.")  # as Ray raises it
        return "context"

    return init


def test_a_start_that_times_out_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    shutdowns: list[None] = []
    monkeypatch.setattr(ray, "init", _flaky_init(1, calls))
    monkeypatch.setattr(ray, "shutdown", lambda: shutdowns.append(None))
    assert runtime.init_local(num_cpus=2) == "context"
    assert len(calls) == 2
    assert len(shutdowns) == 1  # the half-started one is shut down
    assert all(c["address"] == "local" and c["num_cpus"] == 2 for c in calls)


def test_a_start_that_keeps_failing_raises_after_the_last_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", _flaky_init(10, calls))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with pytest.raises(Exception, match="timed out during startup"):
        runtime.init_local()
    assert len(calls) == runtime.LOCAL_START_TRIES
