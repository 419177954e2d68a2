"""Per-trigger analytics (docs/contract.md §6): the incrementally kept stats equal counts computed
from the raw tables for a known run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pipelines import errors
from pipelines.examples import all_of, cond
from pipelines.trigger_stats import LATENCY_BOUNDS_MS, latency_bucket, percentile_ms
from tests.support.db import Db
from tests.support.factories import Tenant, active_workflow, event
from tests.support.problems import problem
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]


def raw_counts(db: Db, trigger_id: uuid.UUID) -> dict[str, object]:
    logs = db.fetch(
        "SELECT matched, enrolled, failure_reason FROM trigger_execution_logs"
        " WHERE trigger_id = $1 AND NOT is_test",
        trigger_id,
    )
    rows = db.fetch(
        "SELECT extract(epoch FROM enrolled_at - ingested_at) * 1000 AS ms"
        " FROM workflow_enrollments WHERE trigger_id = $1",
        trigger_id,
    )
    histogram = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for r in rows:
        histogram[latency_bucket(float(r["ms"]))] += 1
    blocked: dict[str, int] = {}
    for g in logs:
        if g["matched"] and not g["enrolled"]:
            blocked[g["failure_reason"]] = blocked.get(g["failure_reason"], 0) + 1
    return {
        "evaluated": len(logs),  # log_non_matches: every evaluation leaves a row
        "matched": sum(g["matched"] for g in logs),
        "enrolled": len(rows),
        "blocked": blocked,
        "p50": percentile_ms(histogram, 0.5),
        "p95": percentile_ms(histogram, 0.95),
    }


def test_stats_equal_the_raw_tables(live_tenant: MakeTenant, streams: Streams, db_sync: Db) -> None:
    t, other = live_tenant(), live_tenant()
    settings = {"log_non_matches": True}
    workflow, trigger = active_workflow(
        t.client, "contact", "tag_added", all_of(cond("tag", "equals", "hot")), settings
    )
    c1, c2, c3, c4, c5 = (uuid.uuid4() for _ in range(5))
    acc = t.account_id
    streams.send(
        [event(acc, "contact.tag_added", c, tag="hot") for c in (c1, c2, c3)]
        + [event(acc, "contact.tag_added", c1, tag="hot")]  # blocked: already_enrolled
        + [event(acc, "contact.tag_added", c4, tag="cold")]  # not matched
        + [event(acc, "contact.deleted", c5), event(acc, "contact.tag_added", c5, tag="hot")]
    )
    streams.wait_drained()
    raw = raw_counts(db_sync, uuid.UUID(trigger["id"]))
    assert raw["evaluated"] == 6
    assert (raw["matched"], raw["enrolled"]) == (5, 3)
    assert raw["blocked"] == {"blocked: already_enrolled": 1, "blocked: contact_deleted": 1}
    path = f"/workflows/{workflow['id']}/trigger/stats"
    for bucket in ("hour", "day"):
        body = t.client.get(path, params={"bucket": bucket}).json()
        totals = body["totals"]
        for name in ("evaluated", "matched", "enrolled"):
            assert totals[name] == raw[name], name
        assert {k: v for k, v in totals["blocked"].items() if v} == raw["blocked"]
        assert totals["errors"] == 0
        assert (totals["latency_ms"]["p50"], totals["latency_ms"]["p95"]) == (
            raw["p50"],
            raw["p95"],
        )
        assert sum(b["enrolled"] for b in body["buckets"]) == 3
        assert sum(b["evaluated"] for b in body["buckets"]) == 6
    # another account cannot read them; bad windows are refused
    problem(other.client.get(path), 403, errors.FORBIDDEN)
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(hours=3)).isoformat()}
    problem(t.client.get(path, params=backwards), 400, errors.BAD_REQUEST)
    too_long = {"from": (now - timedelta(days=40)).isoformat(), "bucket": "hour"}
    problem(t.client.get(path, params=too_long), 400, errors.BAD_REQUEST)
    empty = t.client.get(path, params={"to": (now - timedelta(days=3)).isoformat()}).json()
    assert (empty["totals"]["evaluated"], empty["buckets"]) == (0, [])
