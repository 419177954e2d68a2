"""Request and response models of the REST API (they are also its OpenAPI documentation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from pipelines import bounds

TRIGGER_EXAMPLE: dict[str, Any] = {
    "trigger_type": "form",
    "trigger_event": "form_submitted",
    "filters": {
        "logic": "AND",
        "conditions": [
            {"field": "form_id", "operator": "equals", "value": "lead-form"},
            {
                "logic": "OR",
                "conditions": [
                    {"field": "budget", "operator": "greater_than", "value": 10000},
                    {"field": "contact.tags", "operator": "contains", "value": "vip"},
                ],
            },
        ],
    },
    "settings": {"enrollment_limit": "single", "respect_business_hours": False},
}


def _in_range(value: datetime) -> datetime:
    try:
        return bounds.check_datetime(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_range", str(exc)) from None


# Every date a client sends (query or body): out of range is a 422 with its pointer.
BoundedDatetime = Annotated[datetime, AfterValidator(_in_range)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Action(BaseModel):
    """One step the workflow performs, e.g. `{"type": "add_tag", "tag": "vip"}`."""

    model_config = ConfigDict(extra="allow")
    type: str


class WorkflowCreate(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["New lead follow-up"])
    description: str = Field(default="", max_length=2000)
    actions: list[Action] = Field(
        default_factory=list, max_length=50, examples=[[{"type": "add_tag", "tag": "lead"}]]
    )


class WorkflowPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    status: str | None = Field(
        default=None,
        description="draft, active or paused. Allowed: draft→active, active→paused, "
        "paused→active, any→draft.",
        examples=["active"],
    )
    actions: list[Action] | None = Field(default=None, max_length=50)


class Workflow(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    status: str
    actions: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime


class WorkflowPage(BaseModel):
    items: list[Workflow]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


TEMPLATE_EXAMPLE: dict[str, Any] = {
    "template": "form_follow_up",
    "overrides": {"form_id": "quote-request", "settings": {"respect_business_hours": True}},
}


class TriggerIn(Strict):
    """A trigger configuration, written out or made from a template (GET /trigger-templates)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [TRIGGER_EXAMPLE, TEMPLATE_EXAMPLE]}
    )
    template: str | None = Field(
        default=None,
        description="A trigger template id, instead of trigger_type, trigger_event, filters and "
        "settings. The expanded configuration is validated like a written one; an unknown "
        "id is 422 Unknown trigger template.",
        examples=["hot_lead_tag_added"],
    )
    overrides: dict[str, Any] | None = Field(
        default=None,
        description="With `template` only. Keys: a parameter of the template (its value goes "
        "into the condition or setting the parameter names; null leaves that condition out or "
        "resets the setting); `settings`: merged over the template's settings; `conditions`: "
        "more conditions, ANDed with the template's. Error pointers refer to the expanded "
        "configuration.",
        examples=[{"tag": "vip", "settings": {"respect_business_hours": True}}],
    )
    trigger_type: str | None = Field(
        default=None,
        validate_default=True,
        description="The category: contact, form, pipeline, ... Required unless `template`.",
    )
    trigger_event: str | None = Field(
        default=None,
        validate_default=True,
        description="An event of that category (see GET /catalog). Required unless `template`.",
    )
    filters: dict[str, Any] | None = Field(
        default=None,
        description="Nested AND/OR groups of {field, operator, value}; at most 20 conditions "
        "and depth 3. Empty or null: every event of this type matches.",
    )
    settings: dict[str, Any] | None = Field(
        default=None,
        description="enrollment_limit (single|multiple), reenroll_cooldown_seconds, "
        "respect_business_hours, log_non_matches, and for time triggers time_of_day, "
        "date_field, offset_days, cron, every, days_of_week, catch_up_hours.",
    )
    is_active: bool = True

    @field_validator("overrides")
    @classmethod
    def _overrides_need_a_template(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("template") is None:
            raise ValueError("overrides apply to a template: give `template` too")
        return value

    @field_validator("trigger_type", "trigger_event", "filters", "settings")
    @classmethod
    def _template_or_fields(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("template") is not None:
            if value is not None:
                raise ValueError(f"give either `template` or {info.field_name}, not both")
        elif value is None and info.field_name in ("trigger_type", "trigger_event"):
            raise PydanticCustomError("missing", "Field required")
        return value


class Trigger(BaseModel):
    id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_type: str
    trigger_event: str
    filters: dict[str, Any]
    settings: dict[str, Any]
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    state: Literal["valid", "invalid"] = Field(
        default="valid",
        description="`invalid`: the configuration as stored no longer validates (changed past "
        "the API, or refused by a newer version); it matches nothing until replaced with PUT.",
    )
    reason: str | None = Field(
        default=None,
        description="Why the trigger is invalid: the validation error and its JSON pointer.",
        examples=[
            "Invalid filter operator: 'bogus_op' is not an operator; use one of ... "
            "(at /filters/conditions/0/operator)"
        ],
    )


class AuditEntry(BaseModel):
    id: int
    workflow_id: uuid.UUID | None = Field(description="None for account-level changes.")
    trigger_id: uuid.UUID | None
    action: str = Field(examples=["trigger.update"])
    actor_key_id: uuid.UUID | None = Field(description="The API key that made the change.")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


class ProblemType(BaseModel):
    type: str = Field(examples=["/api/v1/problems/invalid-filter-operator"])
    title: str = Field(examples=["Invalid filter operator"])
    description: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class BusinessHours(Strict):
    days: list[str] = Field(examples=[["mon", "tue", "wed", "thu", "fri"]])
    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["17:00"])


class AccountSettingsIn(Strict):
    timezone: str = Field(examples=["Europe/Berlin"])
    business_hours: BusinessHours | None = None


class QuotaUse(BaseModel):
    limit: int = Field(description="The quota (HAIRTRIGGER_QUOTA_<NAME> of the deployment).")
    use: int = Field(description="What the account uses of it now.")


class AccountQuotas(BaseModel):
    """The account's quotas (docs/contract.md §15). A write past one is 409 Quota exceeded."""

    workflows: QuotaUse = Field(description="Live (not deleted) workflows.")
    triggers: QuotaUse = Field(description="Live triggers, active or not.")
    filter_bytes: QuotaUse = Field(
        description="Per trigger: its filters as stored JSON (compact, UTF-8); `use` is the "
        "account's largest."
    )
    index_bytes: QuotaUse = Field(
        description="The account's compiled trigger index: the sum of its live triggers' "
        "estimated sizes in memory (the memory budget of its index)."
    )
    segments: QuotaUse = Field(description="Segments (not built yet: use 0).")
    event_types: QuotaUse = Field(description="Custom event types (not built yet: use 0).")
    exit_rules: QuotaUse = Field(description="Exit rules (not built yet: use 0).")


class AccountSettings(BaseModel):
    account_id: uuid.UUID
    name: str
    timezone: str
    business_hours: BusinessHours
    quotas: AccountQuotas


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow")
    contact_id: uuid.UUID
    previous_state: dict[str, Any] | None = None
    current_state: dict[str, Any] | None = None


class EventMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str | None = Field(default=None, examples=["api"])
    caused_by_workflow_id: uuid.UUID | None = None
    depth: int = Field(default=0, ge=0, le=1000)


class EventIn(Strict):
    """The event envelope (docs/contract.md §3)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "5b7f6a52-3c55-4a0e-9d43-51a3b0a1c001",
                    "event_type": "contact.tag_added",
                    "account_id": "0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f",
                    "timestamp": "2026-11-25T10:00:00Z",
                    "data": {"contact_id": "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f", "tag": "vip"},
                    "metadata": {"source": "api"},
                }
            ]
        },
    )
    event_id: uuid.UUID
    event_type: str
    account_id: uuid.UUID
    timestamp: datetime
    data: EventData
    metadata: EventMetadata | None = None


class Accepted(BaseModel):
    accepted: int
    event_ids: list[uuid.UUID]
    held: bool = Field(
        default=False,
        description="True when Redis was unreachable (or earlier events still wait): the events "
        "are kept in Postgres and relayed to their shards, in order, once Redis is back.",
    )
