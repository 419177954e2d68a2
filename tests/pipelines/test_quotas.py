"""Quotas per account (docs/contract.md §15): defaults, the environment, the refusal rule and
the view of GET /account/settings."""

from __future__ import annotations

import pytest

from pipelines import errors
from pipelines.config import Settings
from pipelines.quotas import (
    QuotaExceeded,
    Quotas,
    Usage,
    env_name,
    names,
    refuse_growth,
    refuse_large_filter,
    view,
)

VARIABLES = {
    "workflows": "HAIRTRIGGER_QUOTA_WORKFLOWS",
    "triggers": "HAIRTRIGGER_QUOTA_TRIGGERS",
    "filter_bytes": "HAIRTRIGGER_QUOTA_FILTER_BYTES",
    "index_bytes": "HAIRTRIGGER_QUOTA_INDEX_BYTES",
    "segments": "HAIRTRIGGER_QUOTA_SEGMENTS",
    "event_types": "HAIRTRIGGER_QUOTA_EVENT_TYPES",
    "exit_rules": "HAIRTRIGGER_QUOTA_EXIT_RULES",
}


def test_every_quota_has_its_variable() -> None:
    assert {name: env_name(name) for name in names()} == VARIABLES


def test_the_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    assert Settings.from_env().quotas == Quotas(
        workflows=20_000,
        triggers=20_000,
        filter_bytes=65_536,
        index_bytes=134_217_728,
        segments=1_000,
        event_types=200,
        exit_rules=50_000,
    )


def test_each_quota_is_set_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for n, variable in enumerate(VARIABLES.values()):
        monkeypatch.setenv(variable, str(2000 + n))
    found = Settings.from_env().quotas
    assert [getattr(found, name) for name in names()] == [2000 + n for n in range(len(VARIABLES))]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HAIRTRIGGER_QUOTA_TRIGGERS", "many", "HAIRTRIGGER_QUOTA_TRIGGERS must be a whole number"),
        ("HAIRTRIGGER_QUOTA_WORKFLOWS", "0", "HAIRTRIGGER_QUOTA_WORKFLOWS must be at least 1"),
        ("HAIRTRIGGER_QUOTA_FILTER_BYTES", "100", "must be at least 1024"),
    ],
)
def test_a_malformed_quota_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_a_write_past_a_quota_is_refused_with_the_use_before_it() -> None:
    refuse_growth("workflows", 10, 10, 1)  # up to the quota is fine
    with pytest.raises(QuotaExceeded) as refused:
        refuse_growth("workflows", 10, 11, 1)
    exc = refused.value
    assert exc.title == errors.QUOTA_EXCEEDED
    assert exc.extra() == {"quota": "workflows", "limit": 10, "use": 10, "requested": 1}
    assert "HAIRTRIGGER_QUOTA_WORKFLOWS" in exc.detail


def test_a_write_that_adds_nothing_is_never_refused() -> None:
    """An account over a lowered quota can still edit and shrink."""
    refuse_growth("index_bytes", 100, 500, 0)
    refuse_growth("index_bytes", 100, 500, -20)


def test_a_filter_larger_than_a_trigger_may_be_is_refused_with_its_size() -> None:
    refuse_large_filter(1024, 1024)
    with pytest.raises(QuotaExceeded) as refused:
        refuse_large_filter(1024, 1025)
    assert refused.value.extra() == {
        "quota": "filter_bytes",
        "limit": 1024,
        "use": 1025,
        "requested": 1025,
    }
    assert "1025 bytes" in refused.value.detail


def test_the_view_shows_every_quota_with_its_use() -> None:
    usage = Usage(workflows=3, triggers=2, largest_filter_bytes=512, index_bytes=9000)
    shown = view(Quotas(), usage)
    assert list(shown) == list(names())
    assert shown["workflows"] == {"limit": 20_000, "use": 3}
    assert shown["triggers"] == {"limit": 20_000, "use": 2}
    assert shown["filter_bytes"] == {"limit": 65_536, "use": 512}
    assert shown["index_bytes"] == {"limit": 134_217_728, "use": 9000}
    assert shown["segments"] == {"limit": 1_000, "use": 0}
    assert shown["event_types"] == {"limit": 200, "use": 0}
    assert shown["exit_rules"] == {"limit": 50_000, "use": 0}
