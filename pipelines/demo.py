"""Synthetic but realistic events for the demo and the benchmarks: values are drawn from small
pools that include what the example triggers (`pipelines.examples`) look for."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Data = Callable[[random.Random], dict[str, Any]]


def _id(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def _state(r: random.Random) -> dict[str, Any]:
    return {
        "email": f"user{r.randint(1, 10**6)}@example.com",
        "source": r.choice(["website", "import", "referral"]),
        "status": r.choice(["lead", "customer"]),
        "tags": r.sample(["vip", "newsletter", "hot-lead", "partner"], r.randint(0, 2)),
    }


def _updated(r: random.Random) -> dict[str, Any]:
    before = _state(r)
    after = {**before, "status": r.choice(["lead", "customer"])}
    return {"previous_state": before, "current_state": after, "changed_fields": ["status"]}


_CAL = ["demo-cal", "support-cal"]

DATA: dict[str, Data] = {
    "contact.created": lambda r: {"current_state": _state(r)},
    "contact.updated": _updated,
    "contact.tag_added": lambda r: {"tag": r.choice(["hot-lead", "newsletter", "vip", "cold"])},
    "contact.tag_removed": lambda r: {"tag": r.choice(["customer", "subscriber", "vip"])},
    "contact.custom_field_changed": lambda r: {
        "field_name": r.choice(["lead_score", "plan"]),
        "previous_value": "10",
        "field_value": str(r.randint(0, 100)),
    },
    "form.submitted": lambda r: {
        "form_id": r.choice(["lead-form", "contact-us"]),
        "form_data": {"budget": r.choice([500, 15000, "20000"]), "name": "Ada"},
    },
    "survey.completed": lambda r: {
        "survey_id": r.choice(["nps-q4", "csat"]),
        "survey_data": {"score": r.randint(0, 10)},
    },
    "deal.stage_changed": lambda r: {
        "deal_id": _id(r),
        "pipeline_id": r.choice(["sales", "partners"]),
        "previous_stage_id": "qualified",
        "stage_id": r.choice(["proposal", "negotiation"]),
    },
    "deal.created": lambda r: {
        "deal_id": _id(r),
        "pipeline_id": r.choice(["sales", "partners"]),
        "deal_value": r.randint(100, 20000),
    },
    "deal.won": lambda r: {
        "deal_id": _id(r),
        "pipeline_id": r.choice(["sales", "partners"]),
        "deal_value": r.randint(100, 20000),
    },
    "deal.lost": lambda r: {
        "deal_id": _id(r),
        "pipeline_id": "sales",
        "deal_value": 900,
        "loss_reason": r.choice(["price", "spam", "timing"]),
    },
    "appointment.booked": lambda r: {
        "appointment_id": _id(r),
        "calendar_id": r.choice(_CAL),
        "appointment_type": r.choice(["demo-30", "onboarding"]),
        "start_time": "2026-12-01T15:00:00Z",
    },
    "appointment.cancelled": lambda r: {
        "appointment_id": _id(r),
        "calendar_id": r.choice(_CAL),
        "cancellation_reason": r.choice(["", "sick", "rescheduled"]),
    },
    "appointment.completed": lambda r: {"appointment_id": _id(r), "calendar_id": r.choice(_CAL)},
    "appointment.no_show": lambda r: {"appointment_id": _id(r), "calendar_id": r.choice(_CAL)},
    "payment.received": lambda r: {
        "payment_id": _id(r),
        "amount": r.choice([49, "199.00", 120.5]),
        "currency": r.choice(["USD", "eur"]),
        "product_id": r.choice(["pro-plan", "starter"]),
        "payment_method": "card",
    },
    "subscription.created": lambda r: {
        "subscription_id": _id(r),
        "plan_id": r.choice(["pro", "team", "free"]),
        "billing_interval": r.choice(["year", "month"]),
    },
    "subscription.cancelled": lambda r: {
        "subscription_id": _id(r),
        "plan_id": r.choice(["pro", "free"]),
        "cancellation_reason": "too expensive",
    },
    "email.opened": lambda r: {
        "campaign_id": r.choice(["nov-newsletter", "promo"]),
        "email_id": _id(r),
    },
    "email.clicked": lambda r: {
        "campaign_id": r.choice(["nov-newsletter", "promo"]),
        "email_id": _id(r),
        "link_url": r.choice(["https://example.com/pricing", "https://example.com/blog"]),
    },
    "sms.received": lambda r: {
        "from_number": "+15550100",
        "body": r.choice(["STOP", "hi there", "stop please"]),
    },
    "call.completed": lambda r: {
        "direction": "inbound",
        "disposition": r.choice(["answered", "voicemail"]),
        "duration_seconds": r.randint(5, 300),
    },
}


def envelope(
    account_id: uuid.UUID, contact_id: str, event_type: str, r: random.Random
) -> dict[str, Any]:
    return {
        "event_id": _id(r),
        "event_type": event_type,
        "account_id": str(account_id),
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"contact_id": contact_id, **DATA[event_type](r)},
        "metadata": {"source": "demo", "depth": 0},
    }


def make_events(
    account_id: uuid.UUID, count: int, contacts: int = 1000, seed: int = 7
) -> list[dict[str, Any]]:
    """`contacts` contact.created events first, then `count - contacts` events of every type."""
    r = random.Random(seed)
    ids = [_id(r) for _ in range(min(contacts, count))]
    events = [envelope(account_id, c, "contact.created", r) for c in ids]
    kinds = sorted(DATA)
    while len(events) < count:
        events.append(envelope(account_id, r.choice(ids), r.choice(kinds), r))
    return events
