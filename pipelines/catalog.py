"""The trigger catalog: 7 categories, 26 trigger events (docs/contract.md §3), and the filter
operators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    name: str
    category: str
    event_type: str
    fields: tuple[str, ...]
    identifying: tuple[str, ...]
    description: str


def _ev(
    name: str, category: str, event_type: str, fields: str, identifying: str, description: str
) -> TriggerEvent:
    return TriggerEvent(
        name=name,
        category=category,
        event_type=event_type,
        fields=tuple(fields.split()),
        identifying=tuple(identifying.split()),
        description=description,
    )


_TIME_FIELDS = "trigger_id occurrence date_field scheduled_for"

# fmt: off
TRIGGER_EVENTS: tuple[TriggerEvent, ...] = (
    _ev("contact_created", "contact", "contact.created", "current_state", "",
        "A contact was created."),
    _ev("contact_updated", "contact", "contact.updated",
        "previous_state current_state changed_fields", "", "Any field of a contact changed."),
    _ev("tag_added", "contact", "contact.tag_added", "tag", "tag", "A tag was added."),
    _ev("tag_removed", "contact", "contact.tag_removed", "tag", "tag", "A tag was removed."),
    _ev("custom_field_changed", "contact", "contact.custom_field_changed",
        "field_name previous_value field_value", "field_name", "A custom field changed."),
    _ev("form_submitted", "form", "form.submitted", "form_id form_data", "form_id",
        "A form was submitted."),
    _ev("survey_completed", "form", "survey.completed", "survey_id survey_data", "survey_id",
        "A survey was completed."),
    _ev("stage_changed", "pipeline", "deal.stage_changed",
        "deal_id pipeline_id previous_stage_id stage_id", "pipeline_id stage_id",
        "A deal moved to another stage."),
    _ev("deal_created", "pipeline", "deal.created", "deal_id pipeline_id deal_value",
        "pipeline_id", "A deal was created."),
    _ev("deal_won", "pipeline", "deal.won", "deal_id pipeline_id deal_value", "pipeline_id",
        "A deal was won."),
    _ev("deal_lost", "pipeline", "deal.lost", "deal_id pipeline_id deal_value loss_reason",
        "pipeline_id", "A deal was lost."),
    _ev("appointment_booked", "appointment", "appointment.booked",
        "appointment_id calendar_id appointment_type start_time", "calendar_id",
        "An appointment was booked."),
    _ev("appointment_cancelled", "appointment", "appointment.cancelled",
        "appointment_id calendar_id cancellation_reason", "calendar_id",
        "An appointment was cancelled."),
    _ev("appointment_completed", "appointment", "appointment.completed",
        "appointment_id calendar_id", "calendar_id", "An appointment took place."),
    _ev("appointment_no_show", "appointment", "appointment.no_show",
        "appointment_id calendar_id", "calendar_id", "The contact did not show up."),
    _ev("payment_received", "payment", "payment.received",
        "payment_id amount currency product_id payment_method", "product_id",
        "A payment was received."),
    _ev("subscription_created", "payment", "subscription.created",
        "subscription_id plan_id billing_interval", "plan_id", "A subscription started."),
    _ev("subscription_cancelled", "payment", "subscription.cancelled",
        "subscription_id plan_id cancellation_reason", "plan_id", "A subscription ended."),
    _ev("email_opened", "communication", "email.opened", "campaign_id email_id", "campaign_id",
        "An email was opened."),
    _ev("email_clicked", "communication", "email.clicked", "campaign_id email_id link_url",
        "campaign_id", "A link in an email was clicked."),
    _ev("sms_received", "communication", "sms.received", "from_number body", "",
        "An inbound SMS arrived."),
    _ev("call_completed", "communication", "call.completed",
        "direction disposition duration_seconds", "disposition", "A call ended."),
    _ev("scheduled_date", "time", "time.scheduled_date", _TIME_FIELDS, "",
        "A date field of the contact plus an offset in days was reached."),
    _ev("recurring_schedule", "time", "time.recurring_schedule", _TIME_FIELDS, "",
        "A recurring schedule (cron or every-N days) came round."),
    _ev("birthday", "time", "time.birthday", _TIME_FIELDS, "", "It is the contact's birthday."),
    _ev("anniversary", "time", "time.anniversary", _TIME_FIELDS, "",
        "It is the anniversary of a date field of the contact."),
)
# fmt: on

CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(e.category for e in TRIGGER_EVENTS))
BY_NAME: dict[str, TriggerEvent] = {e.name: e for e in TRIGGER_EVENTS}
BY_EVENT_TYPE: dict[str, TriggerEvent] = {e.event_type: e for e in TRIGGER_EVENTS}

# Event types only the engine emits (the scheduler's time events, segment changes): a tenant
# may not send them (docs/contract.md §3).
ENGINE_EVENT_PREFIXES: tuple[str, ...] = ("time.", "segment.")

# Events of the projection that no trigger listens to.
CONTACT_DELETED = "contact.deleted"

# Fields every event's data may carry besides its own.
COMMON_FIELDS: tuple[str, ...] = ("contact_id", "previous_state", "current_state")

# Submitted answers that unqualified filter fields fall back to, per event.
SUBMITTED_DATA: dict[str, str] = {"form_submitted": "form_data", "survey_completed": "survey_data"}

# Events whose filters may use changed / changed_from / changed_to.
UPDATE_EVENTS: frozenset[str] = frozenset({"contact_updated", "custom_field_changed"})
