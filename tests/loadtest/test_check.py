"""The locust load test's verdict (loadtest/check.py), without servers: its failure modes, one by
one. Runs of the load test itself: tests/e2e/test_locust.py."""

from __future__ import annotations

from loadtest.check import Row, Sent, Thresholds, judge

WF, OTHER_WF = "wf-1", "wf-2"
ALICE, BOB = "contact-a", "contact-b"


def _sent(n: int) -> dict[str, Sent]:
    return {f"e{i}": Sent(WF, ALICE) for i in range(n)}


def _rows(sent: dict[str, Sent], ms: float = 10.0) -> list[Row]:
    return [Row(e, s.workflow_id, s.contact_id, ms) for e, s in sent.items()]


def test_every_event_enrolled_once_and_fast_passes() -> None:
    sent = _sent(3)
    verdict = judge(sent, _rows(sent), Thresholds())
    assert verdict.ok
    assert verdict.enrolled_once == 3
    assert verdict.latency is not None
    assert verdict.latency.avg == 10.0
    assert verdict.lines()[-1] == "PASS"


def test_a_missing_enrollment_fails_and_is_named() -> None:
    sent = _sent(3)
    verdict = judge(sent, _rows(sent)[:2], Thresholds())
    assert not verdict.ok
    assert verdict.missing == ["e2"]
    assert "FAIL: 1 expected enrollments missing (events e2)" in verdict.lines()


def test_a_duplicated_enrollment_fails() -> None:
    sent = _sent(2)
    rows = _rows(sent)
    verdict = judge(sent, [*rows, rows[0]], Thresholds())
    assert not verdict.ok
    assert verdict.duplicated == ["e0"]
    assert verdict.enrolled_once == 1
    assert any("events enrolled more than once" in f for f in verdict.failures)


def test_an_enrollment_of_another_contact_or_workflow_fails() -> None:
    sent = _sent(2)
    rows = [Row("e0", WF, BOB, 5.0), Row("e1", OTHER_WF, ALICE, 5.0)]
    verdict = judge(sent, rows, Thresholds())
    assert not verdict.ok
    assert verdict.wrong == ["e0", "e1"]
    assert verdict.enrolled_once == 0


def test_average_latency_over_the_threshold_fails() -> None:
    sent = _sent(4)
    verdict = judge(sent, _rows(sent, ms=250.0), Thresholds(max_avg_ms=200))
    assert not verdict.ok
    assert verdict.failures == ["average latency 250.0 ms is over 200 ms"]


def test_p95_threshold_applies_only_when_set() -> None:
    sent = _sent(20)
    rows = [
        Row(r.event_id, r.workflow_id, r.contact_id, 10.0 if i < 18 else 900.0)
        for i, r in enumerate(_rows(sent))
    ]
    assert judge(sent, rows, Thresholds(max_avg_ms=200)).ok
    verdict = judge(sent, rows, Thresholds(max_avg_ms=200, max_p95_ms=100))
    assert verdict.failures == ["p95 latency 900.0 ms is over 100 ms"]


def test_nothing_sent_fails() -> None:
    verdict = judge({}, [], Thresholds())
    assert verdict.failures == ["no events were sent (did every request fail?)"]


def test_enrollments_of_events_not_recorded_as_sent_are_counted_not_failed() -> None:
    sent = _sent(1)
    verdict = judge(sent, [*_rows(sent), Row("cut-off", WF, ALICE, 1.0)], Thresholds())
    assert verdict.ok
    assert verdict.unexpected == 1
