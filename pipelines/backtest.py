"""Trigger backtests (pure): replay an account's retained events through the matching and
enrollment policy the partition actors use, with no side effects.

The caller feeds stream pages in order and does the reads a page asks for (the contacts
projection, enrollment history). A trigger index of the trigger (a draft or the saved one) and,
for a diff, the saved one matches in one pass (pipelines.index, pipelines.enrollment.evaluate),
so contact events are applied once for both; pipelines.enrollment.decide applies the policy to
each one's matches as if the workflow were active:

- Contact state: a contact whose first replayed event (contact events and the triggers' own
  type) in the window is `contact.created` starts empty (it did not exist before); any other
  starts from its current projection, deleted flag included. The window's contact events are
  then applied in order, so conditions see the state as of each event.
- `single`: an existing enrollment in the workflow (Postgres) blocks, as does a first one in
  the replay; `multiple`: the cooldown counts between the replay's own enrollments, by event
  time. Loop depth and deleted contacts block as live. Business hours do not change whether a
  contact enrolls, only when, so they are not replayed.
- An event delivered twice (same event_id) counts once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec

from pipelines import errors
from pipelines.catalog import CONTACT_DELETED, TRIGGER_EVENTS
from pipelines.enrollment import (
    DEFAULT_LOOP_LIMIT,
    ContactKey,
    Last,
    Match,
    PairKey,
    decide,
    evaluate,
)
from pipelines.errors import ConfigError
from pipelines.index import TriggerIndex, TriggerSpec
from pipelines.messages import Event, decode_batch
from pipelines.projection import Contact, utc

SAMPLES = 10
CONTACT_CREATED = "contact.created"
CONTACT_TYPES = frozenset(
    [e.event_type for e in TRIGGER_EVENTS if e.category == "contact"] + [CONTACT_DELETED]
)
RawEntry = Sequence[Any]  # an XRANGE reply item as Redis sends it: [id, [field, value, ...]]


def check_window(start: datetime, end: datetime, now: datetime, longest: timedelta) -> None:
    """Raise ConfigError unless `start` < `end`, `start` is not in the future, and the window
    is at most `longest` (the stream retention: older events are gone anyway)."""
    start, end, now = utc(start), utc(end), utc(now)
    if start >= end:
        raise ConfigError(errors.INVALID_WINDOW, "'from' must be before 'to'", "/from")
    if start > now:
        raise ConfigError(errors.INVALID_WINDOW, "'from' is in the future", "/from")
    if end - start > longest:
        hours = longest / timedelta(hours=1)
        raise ConfigError(
            errors.INVALID_WINDOW,
            f"the window is longer than the {hours:g} hours events are retained",
            "/to",
        )


@dataclass(frozen=True, slots=True)
class Sample:
    event_id: uuid.UUID
    contact_id: uuid.UUID
    event_type: str
    timestamp: datetime
    would_enroll: bool
    reason: str | None  # why it would not enroll


@dataclass(slots=True)
class Outcome:
    """What one trigger would have done over the window."""

    matched_events: int = 0
    would_enroll: int = 0
    blocked: dict[str, int] = field(default_factory=dict)
    contacts: set[uuid.UUID] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)

    @property
    def matched_contacts(self) -> int:
        return len(self.contacts)


@dataclass(slots=True)
class Change:
    """Events matched by one version of the trigger and not by the other."""

    count: int = 0
    event_ids: list[uuid.UUID] = field(default_factory=list)

    def add(self, ids: Iterable[uuid.UUID]) -> None:
        for event_id in ids:
            self.count += 1
            if len(self.event_ids) < SAMPLES:
                self.event_ids.append(event_id)


@dataclass(frozen=True, slots=True)
class Diff:
    newly_matching: Change
    no_longer_matching: Change


@dataclass(frozen=True, slots=True)
class Result:
    events_scanned: int
    outcome: Outcome
    diff: Diff | None


class Replay:
    """One trigger's enrollment history and outcome over the window."""

    def __init__(self, spec: TriggerSpec, loop_limit: int) -> None:
        # As if active; non-match logging is a side effect of the live path only.
        settings = replace(spec.settings, log_non_matches=False)
        self.spec = replace(spec, live=True, settings=settings)
        self.single = settings.enrollment_limit == "single"
        self.loop_limit = loop_limit
        self.latest: dict[PairKey, Last] = {}
        self.outcome = Outcome()

    def settle(self, matches: list[Match]) -> None:
        """Each match through the enrollment policy, at its event's time, in order."""
        out = self.outcome
        for m in matches:
            env = m.event.envelope
            pair = (env.account_id, self.spec.workflow_id, m.event.contact_id)
            last = self.latest.get(pair)
            at = utc(env.timestamp)
            enrolled, logs = decide([m], {pair: last} if last else {}, at, self.loop_limit)
            reason = next((g.failure_reason for g in logs if g.failure_reason), None)
            if enrolled:
                self.latest[pair] = Last(env.event_id, at)
            # neither: Postgres says this very event enrolled the contact
            would = reason is None
            out.matched_events += 1
            out.contacts.add(m.event.contact_id)
            if would:
                out.would_enroll += 1
            else:
                assert reason is not None
                out.blocked[reason] = out.blocked.get(reason, 0) + 1
            if len(out.samples) < SAMPLES:
                out.samples.append(
                    Sample(
                        env.event_id,
                        m.event.contact_id,
                        env.event_type,
                        env.timestamp,
                        would,
                        reason,
                    )
                )


class _Lane:
    """One matching pass over the events: an index of one or more triggers and the contact
    states the pass applies the events to (shared by its triggers: they see the same states)."""

    def __init__(self, replays: list[Replay]) -> None:
        self.index = TriggerIndex()
        self.replays = {r.spec.trigger_id: r for r in replays}
        for replay in replays:
            self.index.apply(replay.spec)
        self.contacts: dict[ContactKey, Contact] = {}

    def match(self, events: list[Event]) -> dict[uuid.UUID, list[Match]]:
        """Apply the events to the contact states and match them, as the actors do."""
        found: dict[uuid.UUID, list[Match]] = {i: [] for i in self.replays}
        for m in evaluate(events, self.index, self.contacts)[0]:
            found[m.trigger.trigger_id].append(m)
        return found


def _specs(trigger: TriggerSpec, saved: TriggerSpec | None) -> list[TriggerSpec]:
    """The trigger (under an id of its own, so one pass can match both) and the saved one.
    A time trigger keeps the saved one's id: the scheduler's events name the trigger they are
    for, so the two need a pass each."""
    if saved is None:
        return [trigger]
    own = saved.trigger_id if trigger.event.category == "time" else uuid.uuid4()
    return [replace(trigger, trigger_id=own), saved]


class _Head(msgspec.Struct):
    """The envelope fields a backtest needs before deciding to decode the rest."""

    event_id: str
    event_type: str
    account_id: str


_head = msgspec.json.Decoder(_Head)


def _event_field(fields: Sequence[bytes]) -> bytes | None:
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == b"event":
            return fields[i + 1]
    return None


class Backtest:
    """A window's replay for one account: `trigger` (a draft or the saved one) and, to diff
    against, `saved`. Feed it the stream's pages in order:

        events = bt.select(stream, page)
        bt.add_contacts(found)           # projection rows of bt.contacts_to_load(events)
        matches = bt.match(events)
        bt.add_history(found)            # enrollments of bt.history_to_load(matches)
        bt.settle(matches)
    """

    def __init__(
        self,
        account_id: uuid.UUID,
        trigger: TriggerSpec,
        saved: TriggerSpec | None = None,
        loop_limit: int = DEFAULT_LOOP_LIMIT,
    ) -> None:
        self.account_id = account_id
        self.replays = [Replay(s, loop_limit) for s in _specs(trigger, saved)]
        ids = {r.spec.trigger_id for r in self.replays}
        together = len(ids) == len(self.replays)
        self.lanes = [_Lane(self.replays)] if together else [_Lane([r]) for r in self.replays]
        # Other event types can neither match nor change a contact: counted, never decoded.
        self.relevant = CONTACT_TYPES | {r.spec.event.event_type for r in self.replays}
        self.scanned = 0
        self.diff = Diff(Change(), Change()) if saved is not None else None
        self._account = str(account_id)
        self._needle = self._account.encode()
        # A dict, not a set: holding only ints, it is untracked by the cyclic GC, which would
        # otherwise walk all of its (up to millions of) ids on every full collection.
        self._seen: dict[int, None] = {}
        self._contacts: set[ContactKey] = set()  # known to the replays
        self._pending: set[ContactKey] = set()  # to start from the projection
        self._pairs: set[PairKey] = set()  # enrollment history looked up

    # -- selecting the account's events -----------------------------------------------------

    def select(self, stream: str, page: Iterable[RawEntry]) -> list[Event]:
        """The account's events of a page, decoded if they can matter; duplicates dropped."""
        wanted: list[tuple[str, str, bytes | None]] = []
        needle, account, seen, relevant = self._needle, self._account, self._seen, self.relevant
        scanned = 0
        for entry_id, fields in page:  # per entry: keep it lean
            raw = fields[1] if len(fields) == 2 and fields[0] == b"event" else _event_field(fields)
            if raw is None or (needle not in raw and needle not in raw.lower()):
                continue
            try:
                head = _head.decode(raw)
                key = int(head.event_id.replace("-", ""), 16)
            except (msgspec.DecodeError, ValueError):
                continue  # not an event (dead-lettered when it was consumed)
            if head.account_id != account and head.account_id.lower() != account:
                continue
            size = len(seen)
            seen[key] = None
            if len(seen) == size:  # seen before: a redelivery
                continue
            scanned += 1
            if head.event_type in relevant:
                wanted.append((stream, entry_id.decode(), raw))
        self.scanned += scanned
        return [e for e in decode_batch(wanted)[0] if e.envelope.account_id == self.account_id]

    # -- contact states ---------------------------------------------------------------------

    def contacts_to_load(self, events: list[Event]) -> set[ContactKey]:
        """Contacts seen for the first time that start from the projection."""
        fresh: list[ContactKey] = []
        for e in events:
            key = (self.account_id, e.contact_id)
            if key in self._contacts:
                continue
            self._contacts.add(key)
            if e.envelope.event_type == CONTACT_CREATED:
                fresh.append(key)
            else:
                self._pending.add(key)
        for lane in self.lanes:
            for key in fresh:
                lane.contacts[key] = Contact()
        return set(self._pending)

    def add_contacts(self, found: dict[ContactKey, Contact]) -> None:
        """The projection rows of contacts_to_load(); a contact it lacks starts empty."""
        for key in self._pending:
            start = found.get(key) or Contact()
            for lane in self.lanes:  # event_ts None: the window's events apply in order
                lane.contacts[key] = Contact(dict(start.state), start.deleted, None)
        self._pending.clear()

    # -- matching and the enrollment policy ------------------------------------------------

    def match(self, events: list[Event]) -> list[list[Match]]:
        """Every replay's matches of the page (one list per replay)."""
        found: list[list[Match]] = []
        for lane in self.lanes:  # lanes hold the replays in order
            matches = lane.match(events)
            found.extend(matches[i] for i in lane.replays)
        return found

    def history_to_load(self, matches: list[list[Match]]) -> set[PairKey]:
        """(account, workflow, contact) whose Postgres enrollments a `single` replay needs."""
        wanted: set[PairKey] = set()
        for replay, found in zip(self.replays, matches, strict=True):
            if replay.single:
                wanted.update(
                    (self.account_id, m.trigger.workflow_id, m.event.contact_id) for m in found
                )
        wanted -= self._pairs
        self._pairs |= wanted
        return wanted

    def add_history(self, found: dict[PairKey, Last]) -> None:
        """Existing enrollments of history_to_load(): they count for `single` only."""
        for replay in self.replays:
            if replay.single:
                for pair, last in found.items():
                    replay.latest.setdefault(pair, last)

    def settle(self, matches: list[list[Match]]) -> None:
        for replay, found in zip(self.replays, matches, strict=True):
            replay.settle(found)
        if self.diff is not None:
            draft = [m.event.envelope.event_id for m in matches[0]]
            saved = [m.event.envelope.event_id for m in matches[1]]
            in_draft, in_saved = set(draft), set(saved)
            self.diff.newly_matching.add(i for i in draft if i not in in_saved)
            self.diff.no_longer_matching.add(i for i in saved if i not in in_draft)

    def result(self) -> Result:
        return Result(self.scanned, self.replays[0].outcome, self.diff)
