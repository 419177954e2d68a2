"""Matching a batch of events and deciding enrollments (docs/contract.md §5, §6). Pure: no I/O."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.catalog import TRIGGER_EVENTS
from pipelines.compiler import EventView
from pipelines.index import CompiledTrigger, TriggerIndex, TriggerSpec
from pipelines.messages import Event
from pipelines.projection import Contact, apply, is_contact_event, utc
from pipelines.reasons import NOT_MATCHED, Blocked, filter_error
from pipelines.schedule import next_opening

ContactKey = tuple[uuid.UUID, uuid.UUID]  # (account_id, contact_id)
PairKey = tuple[uuid.UUID, uuid.UUID, uuid.UUID]  # (account_id, workflow_id, contact_id)
DEFAULT_LOOP_LIMIT = 10
_ENROLLMENT_NS = uuid.UUID("6f1d3c1e-0a57-4c4b-9a43-7c1f5f0e2b9d")

TIME_EVENT_TYPES = frozenset(e.event_type for e in TRIGGER_EVENTS if e.category == "time")


@dataclass(frozen=True, slots=True)
class Match:
    event: Event
    trigger: TriggerSpec
    contact_deleted: bool


@dataclass(frozen=True, slots=True)
class LogEntry:
    account_id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID
    contact_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    matched: bool
    enrolled: bool
    blocked: Blocked | None = None
    error: str | None = None  # a filter that raised: "error: <type>: <message>"
    details: dict[str, Any] | None = None
    # The event's own timestamp: the log's partition key, so a redelivery lands beside the
    # row it repeats (docs/decisions.md §13). None: the time of writing.
    occurred_at: datetime | None = None

    @property
    def failure_reason(self) -> str | None:
        """As the log row stores it: `blocked: <code>`, the error, `not_matched`, or None."""
        if self.blocked is not None:
            return self.blocked.text
        if self.error is not None:
            return self.error
        return None if self.matched else NOT_MATCHED


@dataclass(frozen=True, slots=True)
class Enrollment:
    id: uuid.UUID
    account_id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID
    contact_id: uuid.UUID
    event_id: uuid.UUID
    status: str
    run_at: datetime
    enrolled_at: datetime
    event_data: dict[str, Any]
    single: bool
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class Last:
    """The latest enrollment of a contact in a workflow."""

    event_id: uuid.UUID
    enrolled_at: datetime


def enrollment_id(event_id: uuid.UUID, workflow_id: uuid.UUID, contact_id: uuid.UUID) -> uuid.UUID:
    """Deterministic: a redelivered event produces the same id, so nothing downstream doubles."""
    return uuid.uuid5(_ENROLLMENT_NS, f"{event_id}/{workflow_id}/{contact_id}")


def entry_time(entry_id: str) -> datetime:
    """When Redis accepted a stream entry (the milliseconds part of its id)."""
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, UTC)


def _log(
    event: Event,
    spec: TriggerSpec,
    matched: bool,
    blocked: Blocked | None = None,
    error: str | None = None,
    **extra: Any,
) -> LogEntry:
    env = event.envelope
    return LogEntry(
        account_id=env.account_id,
        workflow_id=spec.workflow_id,
        trigger_id=spec.trigger_id,
        contact_id=event.contact_id,
        event_id=env.event_id,
        event_type=env.event_type,
        matched=matched,
        enrolled=extra.pop("enrolled", False),
        blocked=blocked,
        error=error,
        details=extra or None,
        occurred_at=utc(env.timestamp),
    )


def evaluate(
    events: Iterable[Event],
    index: TriggerIndex,
    contacts: dict[ContactKey, Contact],
    evaluated: Counter[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] | None = None,
) -> tuple[list[Match], list[LogEntry], set[ContactKey]]:
    """Apply contact events to `contacts` (in place) and match every event.

    Returns the matches, the logs of non-matches (opted in) and predicate errors, and the keys
    of contacts the batch changed. `evaluated`, if given, counts the events each (account,
    workflow, trigger) was checked against."""
    matches: list[Match] = []
    logs: list[LogEntry] = []
    changed: set[ContactKey] = set()
    for event in events:
        env = event.envelope
        key = (env.account_id, event.contact_id)
        contact = contacts.setdefault(key, Contact())
        if is_contact_event(env.event_type) and apply(contact, env):
            changed.add(key)
        current = env.data.get("current_state")
        previous = env.data.get("previous_state")
        view = EventView(
            data=env.data,
            contact=current if isinstance(current, dict) else contact.state,
            previous=previous if isinstance(previous, dict) else {},
        )
        candidates = index.candidates(env.account_id, env.event_type, env.data, view.contact)
        if env.event_type in TIME_EVENT_TYPES:  # the scheduler emits one event per trigger
            target = str(env.data.get("trigger_id", ""))
            candidates = [c for c in candidates if str(c.spec.trigger_id) == target]
        if evaluated is not None:
            _count(evaluated, env.account_id, candidates)
        for compiled in candidates:
            try:  # `check` holds for candidates of this very data and contact: pipelines.index
                ok = compiled.check(view)
            except Exception as exc:  # a broken filter must not stop other triggers or events
                logs.append(_log(event, compiled.spec, False, error=filter_error(exc)))
                continue
            if ok:
                matches.append(Match(event, compiled.spec, contact.deleted))
            elif compiled.spec.settings.log_non_matches:
                logs.append(_log(event, compiled.spec, False))
        loggers = _unchecked_loggers(index, env.account_id, env.event_type, candidates)
        for compiled in loggers:
            logs.append(_log(event, compiled.spec, False))
        if loggers and evaluated is not None:
            _count(evaluated, env.account_id, loggers)
    return matches, logs, changed


def _unchecked_loggers(
    index: TriggerIndex, account_id: uuid.UUID, event_type: str, checked: list[CompiledTrigger]
) -> list[CompiledTrigger]:
    """Triggers logging non-matches that the index did not offer: they did not match."""
    loggers = index.non_match_loggers(account_id, event_type)
    if not loggers:
        return loggers
    seen = {c.spec.trigger_id for c in checked}
    return [c for c in loggers if c.spec.trigger_id not in seen]


def _count(
    evaluated: Counter[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    account_id: uuid.UUID,
    triggers: list[CompiledTrigger],
) -> None:
    for compiled in triggers:
        evaluated[(account_id, compiled.spec.workflow_id, compiled.spec.trigger_id)] += 1


def _blocked(match: Match, last: Last | None, now: datetime, loop_limit: int) -> Blocked | None:
    settings = match.trigger.settings
    if match.contact_deleted:
        return Blocked.CONTACT_DELETED
    if match.event.envelope.depth > loop_limit:
        return Blocked.LOOP_DEPTH_EXCEEDED
    if last is None:
        return None
    if settings.enrollment_limit == "single":
        return Blocked.ALREADY_ENROLLED
    cooldown = timedelta(seconds=settings.reenroll_cooldown_seconds)
    if cooldown and now - last.enrolled_at < cooldown:
        return Blocked.COOLDOWN
    return None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """An account's timezone and opening hours ({"days", "start", "end"})."""

    tz: ZoneInfo
    hours: dict[str, Any]


def decide(
    matches: Iterable[Match],
    history: Mapping[PairKey, Last],
    now: datetime,
    loop_limit: int = DEFAULT_LOOP_LIMIT,
    business_hours: Mapping[uuid.UUID, BusinessHours] | None = None,
) -> tuple[list[Enrollment], list[LogEntry]]:
    """Enrollment policy: which matches enroll, and why the others do not. A trigger that
    respects business hours and matches while the account is closed enrolls `queued` until the
    next opening (`business_hours` must hold those accounts)."""
    latest = dict(history)
    enrollments: list[Enrollment] = []
    logs: list[LogEntry] = []
    for match in matches:
        env, spec = match.event.envelope, match.trigger
        pair = (env.account_id, spec.workflow_id, match.event.contact_id)
        last = latest.get(pair)
        if last is not None and last.event_id == env.event_id:
            continue  # a redelivery of an event whose enrollment is already recorded
        blocked = _blocked(match, last, now, loop_limit)
        if blocked is not None:
            logs.append(_log(match.event, spec, True, blocked))
            continue
        opening = None
        if spec.settings.respect_business_hours and business_hours is not None:
            # judged at the event's time, so a backlog processed later is not re-timed
            account = business_hours[env.account_id]
            opening = next_opening(utc(env.timestamp), account.hours, account.tz)
            if opening is not None and opening <= now:
                opening = None
        enrollments.append(
            Enrollment(
                id=enrollment_id(env.event_id, spec.workflow_id, match.event.contact_id),
                account_id=env.account_id,
                workflow_id=spec.workflow_id,
                trigger_id=spec.trigger_id,
                contact_id=match.event.contact_id,
                event_id=env.event_id,
                status="triggered" if opening is None else "queued",
                run_at=now if opening is None else opening,
                enrolled_at=now,
                event_data=env.data,
                single=spec.settings.enrollment_limit == "single",
                ingested_at=entry_time(match.event.entry_id),
            )
        )
        latest[pair] = Last(env.event_id, now)
        logs.append(_log(match.event, spec, True, enrolled=True))
    return enrollments, logs
