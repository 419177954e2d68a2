"""The loop check over the part of the graph it needs (REQ-N-003, docs/architecture.md §5).

A cycle through a workflow runs through the workflows reachable from it, so the check loads
those, a ring at a time, instead of the account's whole graph: each trigger is filed under
*listen keys* (stored with it), each emission looked up under *ask keys*, and a trigger that
an emission may match shares a key with it. The keys narrow the way `Graph.candidates` and
the three-valued filter do:

- a trigger pinned by a required equals/in on an event field (`tag = vip`) is filed under
  that field's values, and under the field alone for emissions that leave it unknown;
- else one whose filter requires a change (`status changed_to customer`) is filed under the
  contact field it watches: an update of another field cannot match it;
- else it is filed under its event.

Keys are 64-bit hashes of the account and the key's text: a collision only adds a candidate,
which the filters then judge as before. Triggers of events no action emits get no keys.
Stored keys follow these rules: a migration that changes them must set every trigger's keys
to NULL, so that migrate() files them again (store.workflows.fill_loop_keys)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from pipelines.catalog import TriggerEvent
from pipelines.compiler import change_refs, required_leaves
from pipelines.filters import CHANGE_OPS, Group
from pipelines.loops import (
    EMITTED_EVENTS,
    UNKNOWN,
    Emission,
    Graph,
    Node,
    Step,
    emissions,
    find_cycle,
    pin_of,
)
from pipelines.values import normalize_key

_SEP = "\x1f"


def _key(account_id: uuid.UUID, *parts: str) -> int:
    text = _SEP.join((str(account_id), *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


def _value_text(key: Hashable) -> str | None:
    """One text for keys `equals` treats as equal (1 and 1.0 and "1"); None for lists and
    objects, which no emitted value (a scalar) equals."""
    if not isinstance(key, tuple) or len(key) != 2 or key[0] not in ("s", "n", "b"):
        return None
    kind, value = key
    if kind != "n":
        return f"{kind}:{value}"
    try:
        return f"n:{float(value) + 0.0!r}"  # + 0.0: -0.0 and 0.0 are equal
    except OverflowError:  # an integer past float range: all of them share one text
        return "n:huge"


def watched_field(filters: Group, event: TriggerEvent) -> str | None:
    """The contact field (its first step) a required changed / changed_from / changed_to reads:
    an update event that changes another field fails that condition."""
    for leaf in required_leaves(filters):
        if leaf.operator in CHANGE_OPS:
            _, after = change_refs(leaf.field, event)
            if after.source != "event":
                return after.path[0]
    return None


def listen_keys(account_id: uuid.UUID, event: TriggerEvent, filters: Group) -> list[int]:
    """The keys a trigger is filed under for the loop check."""
    if event.name not in EMITTED_EVENTS:
        return []
    pin = pin_of(filters, event)
    if pin is not None:
        name, keys = pin
        texts = sorted({t for t in map(_value_text, keys) if t is not None})
        pinned = [_key(account_id, "pin", event.name, name, "=", t) for t in texts]
        return [_key(account_id, "pin", event.name, name, "*"), *pinned]
    watched = watched_field(filters, event)
    if watched is not None:
        return [
            _key(account_id, "change", event.name, "*"),
            _key(account_id, "change", event.name, "=", watched),
        ]
    return [_key(account_id, "free", event.name)]


def ask_keys(account_id: uuid.UUID, emission: Emission) -> list[int]:
    """The keys of every trigger `emission` may match (and of some it cannot)."""
    event = emission.event.name
    keys = [_key(account_id, "free", event)]
    for name in emission.event.fields:
        value = emission.data.get(name, UNKNOWN)
        if not isinstance(value, str | int | float):  # bool is an int
            keys.append(_key(account_id, "pin", event, name, "*"))
        elif (text := _value_text(normalize_key(value))) is not None:
            keys.append(_key(account_id, "pin", event, name, "=", text))
    if emission.changed is None:
        keys.append(_key(account_id, "change", event, "*"))
    else:
        for path in (emission.changed, *emission.aliases):
            keys.append(_key(account_id, "change", event, "=", path[0]))
    return keys


@dataclass(frozen=True, slots=True)
class Lookup:
    """The next ring to load: active workflows whose trigger is filed under one of `keys` (or,
    saved before keys existed, listens to one of `events`), other than the `known` ones."""

    keys: list[int]
    events: list[str]
    known: list[uuid.UUID]


class Reach:
    """A cycle search through `start` over the workflows reachable from it, loaded ring by ring:
    while `next()` gives a lookup, answer it with `add()`; then `cycle()` is what `find_cycle`
    over the whole graph answers. The search stops early once a ring leads back to `start`."""

    def __init__(self, account_id: uuid.UUID, start: Node | None) -> None:
        self.account_id = account_id
        self.start = start
        self.nodes: dict[uuid.UUID, Node] = {}
        self._frontier: list[Node] = []
        self._expanded: set[uuid.UUID] = set()
        self._closed = False
        if start is not None and start.event.name in EMITTED_EVENTS:
            self.nodes[start.workflow_id] = start
            self._frontier = [start]
            self._expanded.add(start.workflow_id)

    def next(self) -> Lookup | None:
        """The lookup for what the frontier emits; None once the search is over."""
        if self._closed:
            return None
        keys: set[int] = set()
        events: set[str] = set()
        for source in self._frontier:
            for action in source.actions:
                for emission in emissions(action):
                    keys.update(ask_keys(self.account_id, emission))
                    events.add(emission.event.name)
        if not keys:
            return None
        return Lookup(sorted(keys), sorted(events), list(self.nodes))

    def add(self, found: Iterable[Node]) -> None:
        """Take what the lookup found; the frontier moves on to the workflows it reaches for
        the first time."""
        for n in found:
            self.nodes.setdefault(n.workflow_id, n)
        graph = Graph(self.nodes.values())
        ring: list[Node] = []
        for source in self._frontier:
            for step in graph.edges(source):
                target = step.target.workflow_id
                if self.start is not None and target == self.start.workflow_id:
                    self._closed = True
                elif target not in self._expanded:
                    self._expanded.add(target)
                    ring.append(step.target)
        self._frontier = ring

    def cycle(self) -> list[Step] | None:
        if self.start is None or not self._closed:  # nothing reachable leads back
            return None
        ordered = sorted(self.nodes.values(), key=lambda n: n.rank)
        return find_cycle(ordered, self.start.workflow_id)
