"""End to end through Redis Streams, Ray partition actors and Postgres: one case per trigger
category that fires, with its near miss that does not (docs/contract.md §5, REQ-E-*)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pipelines.examples import REALISTIC
from tests.support.db import Db, enrollments
from tests.support.factories import Tenant, active_workflow, event
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]


CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    # (trigger_event, event_type, data that fires, near-miss data)
    ("tag_added", "contact.tag_added", {"tag": "Hot-Lead"}, {"tag": "cold"}),
    (
        "form_submitted",
        "form.submitted",
        {"form_id": "lead-form", "form_data": {"budget": "15000"}},
        {"form_id": "lead-form", "form_data": {"budget": 500}},
    ),
    (
        "deal_won",
        "deal.won",
        {"deal_id": "d1", "pipeline_id": "sales", "deal_value": 10},
        {"deal_id": "d2", "pipeline_id": "partners", "deal_value": 10},
    ),
    (
        "appointment_booked",
        "appointment.booked",
        {"appointment_id": "a1", "calendar_id": "demo-cal", "appointment_type": "Demo-30"},
        {"appointment_id": "a2", "calendar_id": "demo-cal", "appointment_type": "onboarding"},
    ),
    (
        "payment_received",
        "payment.received",
        {"payment_id": "p1", "product_id": "pro-plan", "amount": "199.00", "currency": "USD"},
        {"payment_id": "p2", "product_id": "pro-plan", "amount": 49, "currency": "USD"},
    ),
    (
        "email_clicked",
        "email.clicked",
        {
            "campaign_id": "nov-newsletter",
            "email_id": "e1",
            "link_url": "https://example.com/pricing?x=1",
        },
        {"campaign_id": "nov-newsletter", "email_id": "e2", "link_url": "https://example.com/blog"},
    ),
    (
        "contact_updated",
        "contact.updated",
        {"previous_state": {"status": "lead"}, "current_state": {"status": "Customer"}},
        {"previous_state": {"status": "customer"}, "current_state": {"status": "customer"}},
    ),
]


def test_changed_from_on_contact_updates(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    filters = {
        "logic": "AND",
        "conditions": [{"field": "contact.status", "operator": "changed_from", "value": "trial"}],
    }
    active_workflow(t.client, "contact", "contact_updated", filters)
    left, stayed, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    streams.send(
        [
            event(
                t.account_id,
                "contact.updated",
                left,
                previous_state={"status": "Trial"},
                current_state={"status": "customer"},
            ),
            event(
                t.account_id,
                "contact.updated",
                stayed,
                previous_state={"status": "trial"},
                current_state={"status": "trial"},
            ),
            event(
                t.account_id,
                "contact.updated",
                other,
                previous_state={"status": "lead"},
                current_state={"status": "customer"},
            ),
        ]
    )
    streams.wait_drained()
    assert [r["contact_id"] for r in enrollments(db_sync, t.account_id)] == [left]


@pytest.mark.parametrize(
    ("trigger_event", "event_type", "hit", "miss"), CASES, ids=[c[0] for c in CASES]
)
def test_category_fires_and_near_miss_does_not(
    live_tenant: MakeTenant,
    streams: Streams,
    db_sync: Db,
    trigger_event: str,
    event_type: str,
    hit: dict[str, Any],
    miss: dict[str, Any],
) -> None:
    t = live_tenant()
    trigger_type, filters, settings = REALISTIC[trigger_event]
    settings = {**settings, "respect_business_hours": False}  # not the time of day's business
    workflow, trigger = active_workflow(t.client, trigger_type, trigger_event, filters, settings)
    hit_contact, miss_contact = uuid.uuid4(), uuid.uuid4()
    fired = event(t.account_id, event_type, hit_contact, **hit)
    streams.send([fired, event(t.account_id, event_type, miss_contact, **miss)])
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    assert [(r["contact_id"], r["workflow_id"]) for r in rows] == [
        (hit_contact, uuid.UUID(workflow["id"]))
    ]
    row = rows[0]
    assert row["trigger_id"] == uuid.UUID(trigger["id"])
    assert row["event_id"] == uuid.UUID(fired["event_id"])
    assert row["status"] == "triggered"
    assert row["event_data"] == fired["data"]
    published = streams.enrollments(t.account_id)
    assert [p["id"] for p in published] == [str(row["id"])]
    assert published[0]["event_data"] == fired["data"]


def test_or_group_matches_through_the_contact_branch(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """form_submitted: budget too small, but the contact (from the projection) is tagged VIP."""
    t = live_tenant()
    trigger_type, filters, settings = REALISTIC["form_submitted"]
    active_workflow(t.client, trigger_type, "form_submitted", filters, settings)
    vip, plain = uuid.uuid4(), uuid.uuid4()
    streams.send(
        [
            event(t.account_id, "contact.created", vip, current_state={"tags": ["VIP"]}),
            event(t.account_id, "contact.created", plain, current_state={"tags": ["lead"]}),
            event(
                t.account_id, "form.submitted", vip, form_id="lead-form", form_data={"budget": 5}
            ),
            event(
                t.account_id, "form.submitted", plain, form_id="lead-form", form_data={"budget": 5}
            ),
        ]
    )
    streams.wait_drained()
    assert [r["contact_id"] for r in enrollments(db_sync, t.account_id)] == [vip]
    state = db_sync.fetch(
        "SELECT state, tags FROM contacts WHERE account_id = $1 AND contact_id = $2",
        t.account_id,
        vip,
    )
    assert state == [{"state": {"tags": ["VIP"]}, "tags": ["VIP"]}]


def test_events_posted_over_http_enroll(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", REALISTIC["tag_added"][1])
    posted = event(t.account_id, "contact.tag_added", tag="hot-lead")
    response = t.client.post("/events", json=[posted])
    assert response.status_code == 202, response.text
    streams.wait_drained()
    rows = enrollments(db_sync, t.account_id)
    assert [str(r["event_id"]) for r in rows] == [posted["event_id"]]
