"""Matching a batch and the enrollment policy, without I/O (docs/contract.md §5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines import projection
from pipelines.enrollment import (
    Last,
    decide,
    enrollment_id,
    entry_time,
    evaluate,
)
from pipelines.examples import all_of, cond
from pipelines.index import CompiledTrigger, TriggerIndex, TriggerSpec
from pipelines.messages import (
    Envelope,
    Event,
    Metadata,
    decode_enrollment,
    encode_enrollment,
)
from pipelines.reasons import Blocked
from pipelines.triggers import validate_trigger

ACCOUNT = uuid.uuid4()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def spec(filters: dict[str, Any], settings: dict[str, Any] | None = None) -> TriggerSpec:
    config = validate_trigger("contact", "tag_added", filters, settings)
    return TriggerSpec(
        uuid.uuid4(), uuid.uuid4(), ACCOUNT, config.event, config.filters, config.settings, True, 1
    )


def tag_event(tag: str, contact: uuid.UUID | None = None, depth: int = 0) -> Event:
    contact = contact or uuid.uuid4()
    data = {"contact_id": str(contact), "tag": tag}
    envelope = Envelope(
        uuid.uuid4(), "contact.tag_added", ACCOUNT, NOW, data, Metadata(depth=depth)
    )
    return Event(envelope, contact, "hairtrigger:events:0", "1764072000000-0")


def index_of(*specs: TriggerSpec) -> TriggerIndex:
    index = TriggerIndex()
    for s in specs:
        assert index.apply(s)
    return index


def test_matches_and_opted_in_non_matches() -> None:
    hot = spec(all_of(cond("tag", "equals", "hot")))
    chatty = spec(all_of(cond("tag", "equals", "warm")), {"log_non_matches": True})
    contacts: dict[Any, projection.Contact] = {}
    matches, logs, changed = evaluate([tag_event("HOT")], index_of(hot, chatty), contacts)
    assert [m.trigger.trigger_id for m in matches] == [hot.trigger_id]
    assert [(g.trigger_id, g.failure_reason) for g in logs] == [(chatty.trigger_id, "not_matched")]
    assert len(changed) == 1
    (contact,) = contacts.values()
    assert contact.tags == ["HOT"]


@dataclass
class _Raising:
    """An index whose one trigger's predicate raises, next to a healthy one."""

    good: CompiledTrigger
    bad: CompiledTrigger

    def candidates(self, *_: Any) -> list[CompiledTrigger]:
        return [self.bad, self.good]

    def non_match_loggers(self, *_: Any) -> list[CompiledTrigger]:
        return []


def test_a_raising_predicate_is_logged_and_others_go_on() -> None:
    good, bad = spec(all_of(cond("tag", "equals", "hot"))), spec({})

    def boom(_: Any) -> bool:
        raise ZeroDivisionError("division by zero")

    index = _Raising(CompiledTrigger(good, lambda view: True), CompiledTrigger(bad, boom))
    events = [tag_event("hot"), tag_event("hot")]
    matches, logs, _ = evaluate(events, index, {})  # type: ignore[arg-type]
    assert [m.trigger.trigger_id for m in matches] == [good.trigger_id, good.trigger_id]
    assert [g.failure_reason for g in logs] == ["error: ZeroDivisionError: division by zero"] * 2
    assert all(g.trigger_id == bad.trigger_id and not g.matched for g in logs)


def test_single_blocks_second_match_in_a_batch_and_after_history() -> None:
    """REQ-S-002."""
    single = spec({}, {"enrollment_limit": "single"})
    contact = uuid.uuid4()
    matches, _, _ = evaluate(
        [tag_event("a", contact), tag_event("b", contact)], index_of(single), {}
    )
    enrollments, logs = decide(matches, {}, NOW)
    assert len(enrollments) == 1
    assert [g.failure_reason for g in logs] == [None, Blocked.ALREADY_ENROLLED.text]
    history = {(ACCOUNT, single.workflow_id, contact): Last(uuid.uuid4(), NOW)}
    enrollments, logs = decide(matches[:1], history, NOW)
    assert enrollments == []
    assert [g.failure_reason for g in logs] == [Blocked.ALREADY_ENROLLED.text]


def test_redelivered_event_is_skipped_silently() -> None:
    trigger = spec({}, {"enrollment_limit": "multiple"})
    matches, _, _ = evaluate([tag_event("a")], index_of(trigger), {})
    event = matches[0].event
    history = {(ACCOUNT, trigger.workflow_id, event.contact_id): Last(event.envelope.event_id, NOW)}
    assert decide(matches, history, NOW) == ([], [])


def test_cooldown_loop_depth_and_deleted_contacts() -> None:
    cooled = spec({}, {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 60})
    contact = uuid.uuid4()
    matches, _, _ = evaluate([tag_event("a", contact)], index_of(cooled), {})
    recent = {
        (ACCOUNT, cooled.workflow_id, contact): Last(uuid.uuid4(), NOW - timedelta(seconds=30))
    }
    assert [g.failure_reason for g in decide(matches, recent, NOW)[1]] == [Blocked.COOLDOWN.text]
    old = {(ACCOUNT, cooled.workflow_id, contact): Last(uuid.uuid4(), NOW - timedelta(seconds=90))}
    assert len(decide(matches, old, NOW)[0]) == 1

    deep, _, _ = evaluate([tag_event("a", depth=11)], index_of(cooled), {})
    assert [g.failure_reason for g in decide(deep, {}, NOW, loop_limit=10)[1]] == [
        Blocked.LOOP_DEPTH_EXCEEDED.text
    ]

    gone = uuid.uuid4()
    contacts = {(ACCOUNT, gone): projection.Contact(deleted=True)}
    matched, _, _ = evaluate([tag_event("a", gone)], index_of(cooled), contacts)
    assert [g.failure_reason for g in decide(matched, {}, NOW)[1]] == [Blocked.CONTACT_DELETED.text]


def test_enrollment_carries_the_event_and_a_deterministic_id() -> None:
    trigger = spec({})
    matches, _, _ = evaluate([tag_event("a")], index_of(trigger), {})
    (enrollment,), _ = decide(matches, {}, NOW)
    event = matches[0].event
    assert enrollment.id == enrollment_id(
        event.envelope.event_id, trigger.workflow_id, event.contact_id
    )
    assert enrollment.event_data == event.envelope.data
    assert enrollment.ingested_at == entry_time("1764072000000-0")
    assert decode_enrollment(encode_enrollment(enrollment)).status == "triggered"
