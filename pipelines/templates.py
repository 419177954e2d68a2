"""Trigger templates: ready-made trigger configurations for common CRM automations.

A template is a trigger configuration whose filter is a flat AND of conditions, plus named
parameters: the values an account is meant to fill in (which tag, which form, how many days
before). `expand` turns a template and the caller's overrides into a raw configuration, which is
then validated by `validate_trigger` exactly like one written by hand.

Overrides are an object; every key is optional:
- a parameter's name: its value goes where the parameter sits (a condition's value or a
  setting). null leaves that condition out (any value matches) or resets the setting.
- "settings": merged key by key over the template's settings (after the parameters).
- "conditions": a list of further conditions (or groups), ANDed with the template's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines import errors
from pipelines.errors import ConfigError

RESERVED_OVERRIDES: tuple[str, ...] = ("settings", "conditions")


@dataclass(frozen=True, slots=True)
class Param:
    """A value of a template meant to be overridden. A None default leaves its condition out."""

    name: str
    description: str
    default: Any = None
    example: Any = None


@dataclass(frozen=True, slots=True, eq=False)
class TriggerTemplate:
    id: str
    name: str
    description: str
    trigger_type: str
    trigger_event: str
    conditions: tuple[dict[str, Any], ...]  # {field, operator, value}; value may be a Param
    settings: dict[str, Any]  # a value may be a Param

    @property
    def parameters(self) -> tuple[Param, ...]:
        found = [c["value"] for c in self.conditions if isinstance(c.get("value"), Param)]
        found += [v for v in self.settings.values() if isinstance(v, Param)]
        return tuple(found)


def _if(field: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def _is(field: str, operator: str) -> dict[str, Any]:
    return {"field": field, "operator": operator}


_ANY_FORM = "The form's id; null: any form."
_TIME_OF_DAY = "When to send, HH:MM in the contact's timezone (else the account's)."

TEMPLATES: tuple[TriggerTemplate, ...] = (
    TriggerTemplate(
        "new_lead_website_form",
        "New lead from a website form",
        "A website form is submitted with an email address by someone who is not a customer "
        "yet: start the lead nurture once per contact.",
        "form",
        "form_submitted",
        (
            _if("form_id", "equals", Param("form_id", _ANY_FORM, None, "website-contact")),
            _is("email", "is_not_empty"),
            _if(
                "contact.tags",
                "not_contains",
                Param("customer_tag", "The tag customers carry; they are left out.", "customer"),
            ),
        ),
        {"enrollment_limit": "single"},
    ),
    TriggerTemplate(
        "hot_lead_tag_added",
        "Hot lead tagged",
        "A contact gets the hot-lead tag (by a person or another workflow): alert sales and "
        "start the fast follow-up, once per contact.",
        "contact",
        "tag_added",
        (_if("tag", "equals", Param("tag", "The tag that marks a hot lead.", "hot-lead")),),
        {"enrollment_limit": "single"},
    ),
    TriggerTemplate(
        "form_follow_up",
        "Follow up every form submission",
        "Every submission of a form starts the follow-up again, at most once per cooldown "
        "per contact (a double submit does not send two replies).",
        "form",
        "form_submitted",
        (_if("form_id", "equals", Param("form_id", _ANY_FORM, None, "quote-request")),),
        {
            "enrollment_limit": "multiple",
            "reenroll_cooldown_seconds": Param(
                "cooldown_seconds", "Seconds before the same contact starts it again.", 3600
            ),
        },
    ),
    TriggerTemplate(
        "deal_lost_win_back",
        "Win back a lost deal",
        "A deal is lost for a reason worth a second try: start the win-back sequence.",
        "pipeline",
        "deal_lost",
        (
            _if(
                "pipeline_id",
                "equals",
                Param("pipeline_id", "The pipeline's id; null: any pipeline.", None, "sales"),
            ),
            _if(
                "loss_reason",
                "not_in",
                Param(
                    "ignored_reasons", "Loss reasons not worth a win-back.", ["spam", "duplicate"]
                ),
            ),
            _if(
                "deal_value",
                "greater_than_or_equal",
                Param(
                    "min_deal_value", "Only deals worth at least this; null: any value.", None, 1000
                ),
            ),
        ),
        {"enrollment_limit": "multiple"},
    ),
    TriggerTemplate(
        "deal_stalled",
        "Re-engage a stalled deal",
        "A deal is moved to the pipeline's stalled stage (the catalog has no separate stalled "
        "event; pipelines mark it with a stage): start the re-engagement sequence.",
        "pipeline",
        "stage_changed",
        (
            _if(
                "pipeline_id",
                "equals",
                Param("pipeline_id", "The pipeline's id; null: any pipeline.", None, "sales"),
            ),
            _if(
                "stage_id",
                "equals",
                Param("stalled_stage_id", "The stage that means stalled.", "stalled"),
            ),
        ),
        {"enrollment_limit": "multiple"},
    ),
    TriggerTemplate(
        "appointment_no_show_rebook",
        "Rebook a no-show",
        "The contact missed an appointment: invite them to book again, within business hours.",
        "appointment",
        "appointment_no_show",
        (
            _if(
                "calendar_id",
                "equals",
                Param(
                    "calendar_id", "The calendar's id; null: any calendar.", None, "demo-calendar"
                ),
            ),
        ),
        {
            "enrollment_limit": "multiple",
            "reenroll_cooldown_seconds": Param(
                "cooldown_seconds", "Seconds before the same contact is invited again.", 86400
            ),
            "respect_business_hours": True,
        },
    ),
    TriggerTemplate(
        "birthday_greeting",
        "Birthday greeting",
        "Every year on the contact's birthday (29 February: 28 February in common years), "
        "for contacts with an email address.",
        "time",
        "birthday",
        (_is("contact.email", "is_not_empty"),),
        {
            "enrollment_limit": "multiple",
            "time_of_day": Param("time_of_day", _TIME_OF_DAY, "09:00"),
        },
    ),
    TriggerTemplate(
        "renewal_reminder",
        "Renewal reminder",
        "Seven days before the date in the contact's renewal date field, every time it is "
        "renewed (the date moves on).",
        "time",
        "scheduled_date",
        (),
        {
            "enrollment_limit": "multiple",
            "date_field": Param(
                "date_field",
                "The contact field holding the renewal date.",
                "custom_fields.renewal_date",
            ),
            "offset_days": Param("offset_days", "Days from the date; negative: before it.", -7),
            "time_of_day": Param("time_of_day", _TIME_OF_DAY, "09:00"),
        },
    ),
    TriggerTemplate(
        "failed_payment_follow_up",
        "Failed payment follow-up",
        "A subscription ends because its payment failed (the catalog has no separate failed-"
        "payment event; billing reports it as the cancellation reason): ask to update the card.",
        "payment",
        "subscription_cancelled",
        (
            _if(
                "cancellation_reason",
                "in",
                Param(
                    "reasons",
                    "Cancellation reasons that mean the payment failed.",
                    ["payment_failed", "card_declined", "insufficient_funds"],
                ),
            ),
            _if(
                "plan_id", "equals", Param("plan_id", "The plan's id; null: any plan.", None, "pro")
            ),
        ),
        {"enrollment_limit": "multiple"},
    ),
    TriggerTemplate(
        "email_clicked_nurture",
        "Nurture on email click",
        "A contact clicks a link in a campaign email: move them into the nurture sequence, "
        "once per contact.",
        "communication",
        "email_clicked",
        (
            _if(
                "campaign_id",
                "equals",
                Param(
                    "campaign_id", "The campaign's id; null: any campaign.", None, "nov-newsletter"
                ),
            ),
            _if(
                "link_url",
                "contains",
                Param(
                    "link_contains", "Part of the clicked link; null: any link.", None, "/pricing"
                ),
            ),
        ),
        {"enrollment_limit": "single"},
    ),
)

BY_ID: dict[str, TriggerTemplate] = {t.id: t for t in TEMPLATES}


def expand(template_id: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The raw configuration (trigger_type, trigger_event, filters, settings) of a template
    with `overrides` applied. Raises ConfigError for an unknown template or override key; the
    result itself is not validated here (see pipelines.triggers.validate_trigger)."""
    template = BY_ID.get(template_id)
    if template is None:
        raise ConfigError(
            errors.UNKNOWN_TEMPLATE,
            f"'{template_id}' is not a trigger template; use one of {', '.join(BY_ID)}",
            "/template",
            status=422,
        )
    given = dict(overrides or {})
    params = {p.name: p for p in template.parameters}
    for key in given:
        if key not in params and key not in RESERVED_OVERRIDES:
            known = ", ".join([*params, *RESERVED_OVERRIDES])
            raise ConfigError(
                errors.INVALID_TEMPLATE_OVERRIDE,
                f"'{key}' is not an override of template '{template_id}'; use {known}",
                f"/overrides/{key}",
            )
    values = {n: copy.deepcopy(given.get(n, p.default)) for n, p in params.items()}
    conditions = [_fill(c, values) for c in template.conditions]
    kept: list[Any] = [c for c in conditions if c.get("value", "") is not None]
    kept += _more_conditions(given.get("conditions"))
    settings = {
        k: values[v.name] if isinstance(v, Param) else v for k, v in template.settings.items()
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    settings.update(_more_settings(given.get("settings")))
    return {
        "trigger_type": template.trigger_type,
        "trigger_event": template.trigger_event,
        "filters": {"logic": "AND", "conditions": kept},
        "settings": settings,
    }


def _fill(condition: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    out = dict(condition)
    if isinstance(out.get("value"), Param):
        out["value"] = values[out["value"].name]
    return out


def _more_conditions(raw: object) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(
            errors.INVALID_FILTER,
            "conditions must be a list of conditions",
            "/overrides/conditions",
        )
    return copy.deepcopy(raw)


def _more_settings(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            errors.INVALID_SETTINGS, "settings must be an object", "/overrides/settings"
        )
    return copy.deepcopy(raw)


def describe(template: TriggerTemplate) -> dict[str, Any]:
    """What the list endpoint shows: the template, its default configuration, its parameters."""
    targets: dict[str, dict[str, Any]] = {}
    for c in template.conditions:
        if isinstance(c.get("value"), Param):
            targets[c["value"].name] = {
                "target": "filter",
                "field": c["field"],
                "operator": c["operator"],
            }
    for key, v in template.settings.items():
        if isinstance(v, Param):
            targets[v.name] = {"target": "setting", "field": key, "operator": None}
    return {
        "id": template.id,
        "name": template.name,
        "description": template.description,
        "trigger": expand(template.id),
        "parameters": [
            {
                "name": p.name,
                "description": p.description,
                "default": p.default,
                "example": p.example,
                **targets[p.name],
            }
            for p in template.parameters
        ],
    }
