"""Time triggers end to end with a controllable clock (docs/contract.md §7, REQ-E-023..026,
REQ-S-003): the scheduler emits time.* events, the partition actors enroll."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ray

from tests.support.db import Db, enrollments, logs
from tests.support.factories import Tenant, active_workflow, event
from tests.support.streams import Streams
from tests.support.wait import wait_until

MakeTenant = Callable[..., Tenant]
NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tick(scheduler: Any, streams: Streams, now: datetime, **kw: Any) -> dict[str, Any]:
    stats: dict[str, Any] = ray.get(scheduler.tick.remote(now.isoformat(), **kw))
    streams.wait_drained()
    return stats


def contacts(
    t: Tenant, streams: Streams, states: dict[str, dict[str, Any]]
) -> dict[str, uuid.UUID]:
    ids = {name: uuid.uuid4() for name in states}
    streams.send(
        event(t.account_id, "contact.created", ids[n], current_state=s) for n, s in states.items()
    )
    streams.wait_drained()
    return ids


def enrolled(db: Db, t: Tenant, workflow: dict[str, Any]) -> list[uuid.UUID]:
    return sorted(
        r["contact_id"]
        for r in enrollments(db, t.account_id)
        if str(r["workflow_id"]) == workflow["id"]
    )


def test_date_triggers_and_a_daily_schedule_enroll_the_right_contacts_on_the_right_day(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, scheduler: Any
) -> None:
    t = live_tenant(timezone="America/New_York")
    c = contacts(
        t,
        streams,
        {
            "bday": {"birthday": "1990-03-10"},
            "bday_tokyo": {"birthday": "1990-03-10", "timezone": "Asia/Tokyo"},
            "bday_tomorrow": {"birthday": "1985-03-11"},
            "changer": {"birthday": "1990-03-11"},
            "gone": {"birthday": "1990-03-10"},
            "anniv": {"signup_date": "2020-03-10"},
            "anniv_same_year": {"signup_date": "2027-03-10"},
            "renew": {"renewal_date": "2027-03-17"},
            "renew_later": {"renewal_date": "2027-03-20"},
        },
    )
    streams.send([event(t.account_id, "contact.deleted", c["gone"])])
    streams.wait_drained()
    birthday, _ = active_workflow(t.client, "time", "birthday")
    paused, _ = active_workflow(t.client, "time", "birthday", status="paused")
    anniversary, _ = active_workflow(
        t.client, "time", "anniversary", None, {"date_field": "signup_date"}
    )
    renewal, _ = active_workflow(
        t.client, "time", "scheduled_date", None, {"date_field": "renewal_date", "offset_days": -7}
    )
    daily, _ = active_workflow(
        t.client,
        "time",
        "recurring_schedule",
        None,
        {"every": 1, "time_of_day": "09:00", "enrollment_limit": "multiple"},
    )

    tick(scheduler, streams, at("2027-03-09T15:00"))  # plans; nothing is due yet
    assert enrollments(db_sync, t.account_id) == []
    streams.send(
        [
            event(
                t.account_id,
                "contact.updated",
                c["changer"],
                current_state={"birthday": "1990-03-12"},
            )
        ]
    )
    streams.wait_drained()

    tick(scheduler, streams, at("2027-03-10T00:00:30"))  # 09:00 in Tokyo
    assert enrolled(db_sync, t, birthday) == [c["bday_tokyo"]]

    tick(scheduler, streams, at("2027-03-10T14:00:30"))  # 09:00 in New York (EST)
    assert enrolled(db_sync, t, birthday) == sorted([c["bday_tokyo"], c["bday"]])
    assert enrolled(db_sync, t, anniversary) == [c["anniv"]]
    assert enrolled(db_sync, t, renewal) == [c["renew"]]
    live = sorted(v for k, v in c.items() if k != "gone")
    assert enrolled(db_sync, t, daily) == live

    tick(scheduler, streams, at("2027-03-11T14:00:30"))
    assert enrolled(db_sync, t, birthday) == sorted(
        [c["bday_tokyo"], c["bday"], c["bday_tomorrow"]]
    )
    assert enrolled(db_sync, t, daily) == sorted(live * 2)

    tick(scheduler, streams, at("2027-03-12T14:00:30"))
    tick(scheduler, streams, at("2027-03-12T14:00:31"))  # again: nothing twice
    assert enrolled(db_sync, t, birthday) == sorted(
        [c["bday_tokyo"], c["bday"], c["bday_tomorrow"], c["changer"]]
    )
    assert enrolled(db_sync, t, daily) == sorted(live * 3)
    assert enrolled(db_sync, t, paused) == []
    assert c["gone"] not in [r["contact_id"] for r in enrollments(db_sync, t.account_id)]


def test_restart_mid_emission_and_downtime_enroll_each_occurrence_once(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, scheduler: Any
) -> None:
    t = live_tenant(timezone="America/New_York")
    many = contacts(t, streams, {f"c{i}": {"birthday": "2000-04-05"} for i in range(25)})
    late = contacts(t, streams, {f"l{i}": {"birthday": "2000-04-07"} for i in range(3)})
    birthday, _ = active_workflow(t.client, "time", "birthday")
    tick(scheduler, streams, at("2027-04-04T12:00"))
    first = tick(scheduler, streams, at("2027-04-05T13:00:30"), max_batches=1)  # EDT 09:00
    assert 0 < len(enrolled(db_sync, t, birthday)) < 25, first
    pid = ray.get(scheduler.pid.remote())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _restarted(scheduler, pid), "the scheduler to restart")
    tick(scheduler, streams, at("2027-04-05T18:00"))  # five hours later: caught up
    assert enrolled(db_sync, t, birthday) == sorted(many.values())

    tick(scheduler, streams, at("2027-04-06T12:00"))  # plans the 7th
    tick(scheduler, streams, at("2027-04-08T14:00"))  # 25 hours after: too old
    assert enrolled(db_sync, t, birthday) == sorted(many.values())
    skipped = [
        r
        for r in logs(db_sync, t.account_id)
        if r["failure_reason"] == "skipped: older than catch_up_hours"
    ]
    assert sorted(r["contact_id"] for r in skipped) == sorted(late.values())


def _restarted(scheduler: Any, old_pid: int) -> bool:
    try:
        return bool(ray.get(scheduler.pid.remote(), timeout=5) != old_pid)
    except Exception:
        return False


def _next_saturday_night() -> datetime:
    today = datetime.now(NY).date() + timedelta(days=7)
    saturday = today + timedelta(days=(5 - today.weekday()) % 7)
    return datetime(saturday.year, saturday.month, saturday.day, 23, 0, tzinfo=NY)


def test_business_hours_queue_until_monday_opening(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db, scheduler: Any
) -> None:
    """REQ-S-003: matched Saturday night, released Monday 09:00 in the account's timezone."""
    t = live_tenant(timezone="America/New_York")
    hot = {"logic": "AND", "conditions": [{"field": "tag", "operator": "equals", "value": "hot"}]}
    active_workflow(t.client, "contact", "tag_added", hot, {"respect_business_hours": True})
    saturday = _next_saturday_night()
    monday_nine = (saturday + timedelta(days=2)).replace(hour=9, minute=0)
    sent = event(t.account_id, "contact.tag_added", tag="hot")
    sent["timestamp"] = saturday.isoformat()
    streams.send([sent])
    streams.wait_drained()
    (row,) = enrollments(db_sync, t.account_id)
    assert row["status"] == "queued"
    assert row["run_at"] == monday_nine.astimezone(UTC)
    assert streams.enrollments(t.account_id) == []

    tick(scheduler, streams, monday_nine - timedelta(minutes=1))
    assert enrollments(db_sync, t.account_id)[0]["status"] == "queued"
    tick(scheduler, streams, monday_nine + timedelta(seconds=1))
    tick(scheduler, streams, monday_nine + timedelta(minutes=5))
    assert enrollments(db_sync, t.account_id)[0]["status"] == "triggered"
    assert [e["id"] for e in streams.enrollments(t.account_id)] == [str(row["id"])]
