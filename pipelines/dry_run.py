"""The test endpoint's dry run (REQ-O-002): one simulated event through the actors' own
matching and enrollment code, with every condition's verdict, and nothing written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from pipelines.compiler import EventView, explain
from pipelines.enrollment import (
    TIME_EVENT_TYPES,
    BusinessHours,
    Last,
    decide,
    evaluate,
)
from pipelines.index import TriggerIndex, TriggerSpec
from pipelines.messages import Event, Rejected, decode
from pipelines.projection import Contact
from pipelines.reasons import NOT_MATCHED, Blocked

TEST_STREAM = "test"


@dataclass(frozen=True, slots=True)
class DryRun:
    matched: bool
    would_enroll: bool
    reason: str | None  # why it would not enroll; None when it would
    status: str | None  # triggered or queued, when it would enroll
    run_at: datetime | None
    conditions: dict[str, Any]
    event: dict[str, Any]


def simulated_event(
    spec: TriggerSpec, contact_id: uuid.UUID, data: dict[str, Any], now: datetime
) -> Event | Rejected:
    """The event the trigger listens to, carrying `data`; decoded like a stream entry."""
    data = {**data, "contact_id": str(contact_id)}
    if spec.event.event_type in TIME_EVENT_TYPES:
        data.setdefault("trigger_id", str(spec.trigger_id))  # as the scheduler emits them
    raw = orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": spec.event.event_type,
            "account_id": str(spec.account_id),
            "timestamp": now.isoformat(),
            "data": data,
            "metadata": {"source": "test"},
        }
    )
    return decode(TEST_STREAM, f"{int(now.timestamp() * 1000)}-0", raw)


def dry_run(
    spec: TriggerSpec,
    workflow_status: str,
    contact: Contact,
    event: Event,
    last: Last | None,
    now: datetime,
    business_hours: BusinessHours | None = None,
) -> DryRun:
    """Would `event` enroll the contact? Matching and the enrollment policy answer as for a
    live trigger; then a workflow that is not active, or a trigger switched off (`spec.live`
    false while the workflow is active), still blocks it."""
    env = event.envelope
    index = TriggerIndex()
    index.apply(replace(spec, live=True))
    contacts = {(env.account_id, event.contact_id): contact.copy()}
    matches, errors, _ = evaluate([event], index, contacts)
    view_contact = contacts[(env.account_id, event.contact_id)]
    current, previous = env.data.get("current_state"), env.data.get("previous_state")
    view = EventView(
        data=env.data,
        contact=current if isinstance(current, dict) else view_contact.state,
        previous=previous if isinstance(previous, dict) else {},
    )
    _, tree = explain(spec.filters, spec.event, view)
    shown = {"event_type": env.event_type, "data": env.data}
    if not matches:
        reason = errors[0].failure_reason if errors else NOT_MATCHED
        return DryRun(False, False, reason, None, None, tree, shown)
    history = {} if last is None else {(env.account_id, spec.workflow_id, event.contact_id): last}
    hours = {env.account_id: business_hours} if business_hours is not None else None
    enrolled, logs = decide(matches, history, now, business_hours=hours)
    if not enrolled:
        return DryRun(True, False, logs[0].failure_reason, None, None, tree, shown)
    if workflow_status != "active":
        reason = Blocked(f"workflow_{workflow_status}").text
        return DryRun(True, False, reason, None, None, tree, shown)
    if not spec.live:
        return DryRun(True, False, Blocked.TRIGGER_INACTIVE.text, None, None, tree, shown)
    first = enrolled[0]
    return DryRun(True, True, None, first.status, first.run_at, tree, shown)
