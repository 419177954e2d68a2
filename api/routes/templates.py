"""Trigger templates: the curated list, and their expansion into a trigger body."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Reader
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import TriggerIn
from pipelines import errors, templates

router = APIRouter(
    prefix="/trigger-templates",
    tags=["templates"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)


class TemplateParameter(BaseModel):
    name: str = Field(description="The key to give in `overrides`.", examples=["tag"])
    description: str
    default: Any = Field(description="Used when not overridden; null: the condition is left out.")
    example: Any = Field(description="A typical value, where the default is null.")
    target: Literal["filter", "setting"]
    field: str = Field(description="The condition's field, or the setting's name.")
    operator: str | None = Field(description="The condition's operator (filters only).")


class TemplateTrigger(BaseModel):
    trigger_type: str
    trigger_event: str
    filters: dict[str, Any]
    settings: dict[str, Any]


class TriggerTemplate(BaseModel):
    id: str = Field(examples=["hot_lead_tag_added"])
    name: str
    description: str
    trigger: TemplateTrigger = Field(description="The configuration with every default applied.")
    parameters: list[TemplateParameter] = Field(description="The values meant to be overridden.")


_DESCRIBED = [templates.describe(t) for t in templates.TEMPLATES]


@router.get("", response_model=list[TriggerTemplate])
async def list_templates(principal: Reader) -> Any:
    """Ready-made triggers for common automations (new lead, hot lead, no-show, birthday, ...).

    Use one with `POST /workflows/{id}/trigger` and `{"template": id, "overrides": {...}}`:
    `overrides` takes the template's parameters by name, `settings` (merged over the
    template's) and `conditions` (ANDed with the template's)."""
    return _DESCRIBED


@router.get("/{template_id}", response_model=TriggerTemplate)
async def get_template(template_id: str, principal: Reader) -> Any:
    """One trigger template."""
    for described in _DESCRIBED:
        if described["id"] == template_id:
            return described
    raise ApiError(404, errors.NOT_FOUND, f"there is no trigger template '{template_id}'")


def resolve(body: TriggerIn) -> TriggerIn:
    """The body with its template (if any) expanded; validate the result like any body."""
    if body.template is None:
        return body
    expanded = templates.expand(body.template, body.overrides)
    return body.model_copy(update={**expanded, "template": None, "overrides": None})
