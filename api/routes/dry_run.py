"""The test endpoint (REQ-O-002): would this contact enroll, and why (not)?"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import PoolDep, Reader, owned_workflow, saved_spec
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import Strict
from pipelines import errors
from pipelines.dry_run import dry_run, simulated_event
from pipelines.messages import Rejected
from pipelines.projection import Contact
from store import logs, stream

router = APIRouter(
    prefix="/workflows/{workflow_id}/trigger",
    tags=["explain"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)


class TestIn(Strict):
    contact_id: uuid.UUID = Field(
        description="A contact of the projection (seen in events); an unknown id is tested as "
        "a new contact with no state."
    )
    simulate_event_data: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's `data` as it would arrive, e.g. the form answers or the tag.",
        examples=[{"form_id": "lead-form", "budget": 15000}],
    )


class TestResult(BaseModel):
    matched: bool = Field(description="The filter holds for this event and contact.")
    would_enroll: bool
    reason: str | None = Field(
        description="Why it would not enroll: not_matched, blocked: already_enrolled, "
        "blocked: cooldown, blocked: contact_deleted, blocked: workflow_draft, "
        "blocked: workflow_paused, blocked: trigger_inactive, or a filter error.",
        examples=["blocked: already_enrolled"],
    )
    status: str | None = Field(description="triggered, or queued outside business hours.")
    run_at: datetime | None
    conditions: dict[str, Any] = Field(
        description="The filter tree; every node has `passed`, every leaf its `actual` value "
        "(and `previous` for change operators)."
    )
    event: dict[str, Any] = Field(description="The simulated event's type and data.")
    log_id: int = Field(description="The test log entry written (see GET /trigger-logs).")
    contact_known: bool = Field(
        description="The contact is in the projection; if not, it was tested as a new, empty "
        "contact (e.g. for contact_created, with its fields in simulate_event_data)."
    )


@router.post("/{trigger_id}/test", response_model=TestResult)
async def test_trigger(
    workflow_id: uuid.UUID, trigger_id: uuid.UUID, body: TestIn, principal: Reader, pool: PoolDep
) -> Any:
    """Dry-run the trigger for a real contact and simulated event data.

    The same compiled matcher and enrollment rules the partition actors use decide; the answer
    shows every condition's actual value and verdict. A test log entry is written; nobody is
    enrolled and no stream is touched."""
    workflow = await owned_workflow(pool, principal, workflow_id)
    spec = await saved_spec(pool, workflow_id, trigger_id)
    account_id, contact_id = principal.account_id, body.contact_id
    found = await stream.load_contacts(pool, [(account_id, contact_id)])
    contact = found.get((account_id, contact_id))  # None: a contact the events have not made
    now = datetime.now(UTC)
    event = simulated_event(spec, contact_id, body.simulate_event_data, now)
    if isinstance(event, Rejected):
        raise ApiError(400, errors.INVALID_EVENT, event.reason, pointer="/simulate_event_data")
    history = await stream.load_history(pool, [(account_id, workflow_id, contact_id)])
    hours = None
    if spec.settings.respect_business_hours:
        hours = (await stream.load_business_hours(pool, [account_id]))[account_id]
    result = dry_run(
        spec,
        workflow["status"],
        contact or Contact(),
        event,
        history.get((account_id, workflow_id, contact_id)),
        now,
        hours,
    )
    log_id = await logs.insert_test_log(
        pool,
        account_id=account_id,
        workflow_id=workflow_id,
        trigger_id=trigger_id,
        contact_id=contact_id,
        event_id=event.envelope.event_id,
        event_type=event.envelope.event_type,
        matched=result.matched,
        failure_reason=result.reason,
        details={"would_enroll": result.would_enroll, "conditions": result.conditions},
    )
    return {
        "matched": result.matched,
        "would_enroll": result.would_enroll,
        "reason": result.reason,
        "status": result.status,
        "run_at": result.run_at,
        "conditions": result.conditions,
        "event": result.event,
        "log_id": log_id,
        "contact_known": contact is not None,
    }
