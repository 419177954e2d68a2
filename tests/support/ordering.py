"""The order tests run in (a pytest plugin, loaded by tests/conftest.py): first the tests that
do without the session's partition actors, then those that use them, then tests/e2e/.

Once started, the partition actors consume the session's Redis streams until the session ends,
so a test that expects an entry to stay unconsumed (tests/api/test_stats.py,
tests/api/test_backtest.py) must run before them; directory order alone would run
tests/actors/ first. The whole-process tests come last, as they always did."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
ENGINE = "ray_session"  # every fixture of the partition actors depends on it


def _group(item: pytest.Item) -> int:
    if item.path.is_relative_to(E2E):
        return 2
    return 1 if ENGINE in getattr(item, "fixturenames", ()) else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = sorted(items, key=_group)  # stable: the collected order within each group
