"""Realistic trigger configurations, one per catalog event (used by the demo, tests, benchmarks)."""

from __future__ import annotations

from typing import Any


def cond(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        out["value"] = value
    return out


def all_of(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": list(conditions)}


def any_of(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "OR", "conditions": list(conditions)}


# trigger_event -> (trigger_type, filters, settings)
REALISTIC: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "contact_created": (
        "contact",
        all_of(cond("contact.source", "equals", "website"), cond("contact.email", "is_not_empty")),
        {},
    ),
    "contact_updated": (
        "contact",
        all_of(
            cond("contact.status", "changed_to", "customer"),
            cond("previous.status", "not_equals", "customer"),
        ),
        {},
    ),
    "tag_added": ("contact", all_of(cond("tag", "equals", "hot-lead")), {}),
    "tag_removed": ("contact", all_of(cond("tag", "in", ["customer", "subscriber"])), {}),
    "custom_field_changed": (
        "contact",
        all_of(
            cond("field_name", "equals", "lead_score"), cond("field_value", "greater_than", "80")
        ),
        {},
    ),
    "form_submitted": (
        "form",
        all_of(
            cond("form_id", "equals", "lead-form"),
            any_of(cond("budget", "greater_than", 10000), cond("contact.tags", "contains", "vip")),
        ),
        {"enrollment_limit": "single"},
    ),
    "survey_completed": (
        "form",
        all_of(cond("survey_id", "equals", "nps-q4"), cond("score", "less_than_or_equal", 6)),
        {},
    ),
    "stage_changed": (
        "pipeline",
        all_of(cond("pipeline_id", "equals", "sales"), cond("stage_id", "equals", "proposal")),
        {},
    ),
    "deal_created": (
        "pipeline",
        all_of(
            cond("pipeline_id", "equals", "sales"),
            cond("deal_value", "greater_than_or_equal", 5000),
        ),
        {},
    ),
    "deal_won": (
        "pipeline",
        all_of(cond("event.pipeline_id", "equals", "sales")),
        {"enrollment_limit": "multiple"},
    ),
    "deal_lost": ("pipeline", all_of(cond("loss_reason", "not_in", ["spam", "duplicate"])), {}),
    "appointment_booked": (
        "appointment",
        all_of(
            cond("calendar_id", "equals", "demo-cal"),
            cond("appointment_type", "starts_with", "demo"),
        ),
        {"respect_business_hours": True},
    ),
    "appointment_cancelled": (
        "appointment",
        all_of(cond("cancellation_reason", "is_not_empty")),
        {},
    ),
    "appointment_completed": ("appointment", all_of(cond("calendar_id", "equals", "demo-cal")), {}),
    "appointment_no_show": (
        "appointment",
        all_of(cond("calendar_id", "equals", "demo-cal")),
        {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 86400},
    ),
    "payment_received": (
        "payment",
        all_of(
            cond("product_id", "equals", "pro-plan"),
            cond("amount", "greater_than", "99.50"),
            cond("currency", "equals", "usd"),
        ),
        {},
    ),
    "subscription_created": (
        "payment",
        all_of(cond("plan_id", "in", ["pro", "team"]), cond("billing_interval", "equals", "year")),
        {},
    ),
    "subscription_cancelled": ("payment", all_of(cond("plan_id", "equals", "pro")), {}),
    "email_opened": ("communication", all_of(cond("campaign_id", "equals", "nov-newsletter")), {}),
    "email_clicked": (
        "communication",
        all_of(
            cond("campaign_id", "equals", "nov-newsletter"),
            cond("link_url", "contains", "/pricing"),
        ),
        {},
    ),
    "sms_received": (
        "communication",
        all_of(cond("body", "contains", "STOP")),
        {"log_non_matches": True},
    ),
    "call_completed": (
        "communication",
        all_of(
            cond("disposition", "equals", "answered"), cond("duration_seconds", "greater_than", 60)
        ),
        {},
    ),
    "scheduled_date": (
        "time",
        all_of(cond("contact.status", "equals", "customer")),
        {"date_field": "renewal_date", "offset_days": -7, "time_of_day": "10:00"},
    ),
    "recurring_schedule": (
        "time",
        all_of(cond("contact.tags", "contains", "newsletter")),
        {"cron": "0 9 * * 1-5"},
    ),
    "birthday": ("time", all_of(cond("contact.email", "is_not_empty")), {}),
    "anniversary": (
        "time",
        all_of(cond("contact.status", "equals", "customer")),
        {"date_field": "signup_date", "time_of_day": "08:30"},
    ),
}


def trigger_body(event: str) -> dict[str, Any]:
    trigger_type, filters, settings = REALISTIC[event]
    return {
        "trigger_type": trigger_type,
        "trigger_event": event,
        "filters": filters,
        "settings": settings,
    }
