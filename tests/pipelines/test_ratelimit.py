"""Rate budgets, the limiter's headers and its in-memory GCRA (pure), and budgets read from the
environment."""

from __future__ import annotations

import random

import pytest

from pipelines.config import DEFAULT_EVENTS, Settings
from pipelines.ratelimit import Budget, Decision, LocalBuckets, decision, parse_budget


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


def test_local_gcra_spends_refuses_without_spending_and_refills() -> None:
    """The same answers the Redis script gives (tests/api/test_ratelimit.py), on a fake clock."""
    hour, buckets = Budget(10, 3600), LocalBuckets()
    found = [buckets.charge("b", hour, cost, now_ms=0.0) for cost in (7, 4, 3, 1)]
    assert [(d.allowed, d.remaining) for d in found] == [
        (True, 3),
        (False, 3),
        (True, 0),
        (False, 0),
    ]
    assert found[1].retry_after_ms == 360_000  # one unit comes back every 6 minutes
    assert found[3].reset_ms == 3_600_000
    assert not buckets.charge("b", hour, 1, now_ms=359_999.0).allowed
    back = buckets.charge("b", hour, 1, now_ms=360_000.0)
    assert (back.allowed, back.remaining) == (True, 0)
    assert buckets.charge("other", hour, 10, now_ms=0.0).allowed  # buckets are apart


def test_gcra_never_lets_more_than_the_budget_through_in_any_window() -> None:
    rng, budget, buckets = random.Random(5), Budget(20, 10), LocalBuckets()
    now, allowed = 0.0, []
    for _ in range(5_000):
        now += rng.expovariate(1 / 300)  # about 33 requests per 10 s window, bursty
        cost = rng.choice((1, 1, 1, 2, 5))
        if buckets.charge("b", budget, cost, now).allowed:
            allowed.append((now, cost))
    for start, _ in allowed:  # a window opening at any allowed request
        spent = sum(c for t, c in allowed if start <= t < start + budget.capacity_ms)
        assert spent <= budget.limit + budget.limit  # a full bucket, plus what refills
    total = sum(c for _, c in allowed)
    assert total <= budget.limit + now / budget.interval_ms  # the long-run rate
    assert total >= 0.9 * now / budget.interval_ms  # and the budget is actually usable


def test_local_buckets_forget_full_buckets_when_the_table_is_full() -> None:
    buckets, second = LocalBuckets(max_buckets=3), Budget(1, 1)
    for name in ("a", "b", "c"):
        buckets.charge(name, second, 1, now_ms=0.0)
    assert len(buckets) == 3
    buckets.charge("d", second, 1, now_ms=5_000.0)  # a, b and c are full again by then
    assert len(buckets) == 1
    assert buckets.charge("a", second, 1, now_ms=5_000.0).allowed
    assert not buckets.charge("d", second, 1, now_ms=5_000.0).allowed
