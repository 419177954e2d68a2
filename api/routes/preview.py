"""Trigger preview (REQ-O-001): how many contacts meet the trigger's contact conditions now."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import PoolDep, Reader, SystemPoolDep, owned_workflow, saved_spec
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from pipelines import errors
from store import preview as store

router = APIRouter(
    prefix="/workflows/{workflow_id}/trigger",
    tags=["triggers"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)


class SampleContact(BaseModel):
    contact_id: uuid.UUID
    tags: list[str] = Field(description="The contact's tags, as the projection keeps them.")
    state: dict[str, Any] = Field(description="The contact's current state (its fields).")
    updated_at: datetime = Field(description="When the projection last changed the contact.")


class NotPreviewable(BaseModel):
    field: str = Field(examples=["form_id"])
    operator: str = Field(examples=["equals"])
    value: Any = Field(default=None, examples=["lead-form"])
    reason: str = Field(examples=["reads the event's own data, which only the event decides"])


class Preview(BaseModel):
    estimated_count: int = Field(
        description="Live contacts of the account that meet the trigger's contact conditions "
        "now; the conditions listed in `not_previewable` are taken as met.",
        examples=[132],
    )
    sample_contacts: list[SampleContact] = Field(
        description=f"Up to {store.SAMPLE_SIZE} of them, the most recently updated first."
    )
    not_previewable: list[NotPreviewable] = Field(
        description="Conditions that depend on the event (its fields, the submitted answers, "
        "the previous state, changed*): some event can meet them, so they count as met."
    )


@router.get("/{trigger_id}/preview", response_model=Preview)
async def preview_trigger(
    workflow_id: uuid.UUID,
    trigger_id: uuid.UUID,
    principal: Reader,
    pool: PoolDep,
    system: SystemPoolDep,
) -> Any:
    """Preview the trigger's audience: the contacts of the projection (not deleted) that meet
    its contact conditions now, with the same rules as live matching (case-insensitive text,
    numeric strings as numbers, ISO dates as dates, lists by their items).

    Conditions on the event itself cannot be judged without an event: an AND of them counts as
    met, an OR holding one as met, and each is listed with the reason. Works for draft and
    paused workflows too; nothing is written."""
    await owned_workflow(pool, principal, workflow_id)
    spec = await saved_spec(pool, workflow_id, trigger_id)
    # The projection is read on the system pool, limited to the caller's account by the query
    # itself: under row-level security the planner may not use the preview indexes.
    try:
        async with system.acquire() as conn:
            count, samples, query = await store.preview(
                conn, principal.account_id, spec.filters, spec.event
            )
    except asyncpg.QueryCanceledError:
        raise ApiError(
            503,
            errors.SERVICE_UNAVAILABLE,
            f"the preview took longer than {store.TIMEOUT_MS // 1000} s; conditions on tags,"
            " status or source are indexed and fast",
        ) from None
    return {
        "estimated_count": count,
        "sample_contacts": [asdict(s) for s in samples],
        "not_previewable": [
            {
                "field": n.field,
                "operator": n.operator,
                "reason": n.reason,
                "value": list(n.value) if isinstance(n.value, tuple) else n.value,
            }
            for n in query.not_previewable
        ],
    }
