"""Rate budgets and the limiter's headers (pure), and budgets read from the environment."""

from __future__ import annotations

import pytest

from hairtrigger.config import DEFAULT_EVENTS, Settings
from pipelines.ratelimit import Budget, Decision, decision, parse_budget


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/min", Budget(100, 60)),
        ("5000/s", Budget(5000, 1)),
        (" 7 / hour ", Budget(7, 3600)),
        ("1000/h", Budget(1000, 3600)),
        ("3/second", Budget(3, 1)),
        ("off", None),
        ("0", None),
        ("Unlimited", None),
    ],
)
def test_budgets_parse(text: str, expected: Budget | None) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["100", "100/day", "-1/s", "0/min", "ten/s", "1.5/s", ""])
def test_malformed_budgets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        parse_budget(text)


def test_budget_arithmetic_and_names() -> None:
    writes = Budget(100, 60)
    assert writes.interval_ms == 600
    assert writes.capacity_ms == 60_000
    assert str(writes) == "100 per minute"
    assert str(Budget(5000, 1)) == "5000 per second"
    assert str(Budget(3, 90)) == "3 per 90 s"


def test_headers_of_an_allowed_and_a_refused_request() -> None:
    writes = Budget(100, 60)
    allowed = decision(writes, [1, 41, 0, 35_400])
    assert allowed == Decision(writes, True, 41, 0, 35_400)
    assert dict(allowed.headers()) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "41",
        "RateLimit-Reset": "36",
        "RateLimit-Policy": "100;w=60",
    }
    refused = decision(writes, [0, 0, 1, 60_000])
    assert dict(refused.headers())["Retry-After"] == "1"  # never 0: rounded up, at least 1
    assert refused.retry_after_s == 1
    assert decision(writes, [0, 0, 2_001, 60_000]).retry_after_s == 3


def test_settings_read_budgets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HAIRTRIGGER_RATE_WRITES", "HAIRTRIGGER_RATE_READS", "HAIRTRIGGER_RATE_EVENTS"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().rate_events == DEFAULT_EVENTS
    monkeypatch.setenv("HAIRTRIGGER_RATE_WRITES", "10/s")
    monkeypatch.setenv("HAIRTRIGGER_RATE_READS", "off")
    found = Settings.from_env()
    assert (found.rate_writes, found.rate_reads) == (Budget(10, 1), None)
    monkeypatch.setenv("HAIRTRIGGER_RATE_EVENTS", "lots")
    with pytest.raises(ValueError, match="HAIRTRIGGER_RATE_EVENTS"):
        Settings.from_env()


def test_an_event_budget_must_fit_a_full_batch() -> None:
    """Else a batch of max_events_per_request could never pass and be refused forever."""
    with pytest.raises(ValueError, match="one full batch"):
        Settings(rate_events=Budget(999, 1))
    Settings(rate_events=Budget(20, 60), max_events_per_request=20)
    Settings(rate_events=None)
