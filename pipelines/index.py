"""The compiled trigger index (SPEC §5): per account, per event type, triggers filed under the
values their filters pin, so an event's candidates are found by hash lookups and the cost of
matching does not grow with the triggers that cannot match.

A trigger whose filter (AND all the way down from the root) requires `equals` / `in` /
`changed_to` on an event field or a contact field, or `contains` on a contact field, is filed
under one such field's normalized value(s): an identifying event field if there is one, else the
field whose values currently hold the fewest triggers. Every other trigger is "unkeyed" and
always a candidate. The caller runs the full predicate on every candidate, so the index only has
to return a superset of the matches, and does.
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pipelines.catalog import TriggerEvent
from pipelines.compiler import (
    Predicate,
    change_refs,
    compile_filters,
    normalize_key,
    resolve_field,
    walk,
)
from pipelines.filters import Condition, Group
from pipelines.settings import TriggerSettings
from pipelines.triggers import TriggerConfig

Mode = Literal["eq", "contains"]


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    trigger_id: UUID
    workflow_id: UUID
    account_id: UUID
    event: TriggerEvent
    filters: Group
    settings: TriggerSettings
    live: bool  # trigger active, not deleted, and its workflow active and not deleted
    sync_version: int  # strictly increases with every change to the trigger or its workflow


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    spec: TriggerSpec
    predicate: Predicate


def spec_from_config(
    config: TriggerConfig,
    *,
    trigger_id: UUID,
    workflow_id: UUID,
    account_id: UUID,
    live: bool = True,
    sync_version: int = 1,
) -> TriggerSpec:
    return TriggerSpec(
        trigger_id, workflow_id, account_id, config.event, config.filters, config.settings,
        live, sync_version,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Slot:
    """One way of filing triggers: by the normalized value of one event or contact field."""

    mode: Mode
    source: Literal["event", "contact"]
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyOption:
    """A field the filter requires one of `keys` in; rank 0 is an identifying event field."""

    rank: int
    slot: Slot
    keys: frozenset[Hashable]


def key_options(group: Group, event: TriggerEvent) -> list[KeyOption]:
    """Every way of filing the trigger, in the filter's order."""
    options = (_key_option(condition, event) for condition in _required_leaves(group))
    return [option for option in options if option is not None]


def _required_leaves(group: Group) -> Iterable[Condition]:
    """Leaves every match must satisfy: those reached from the root through AND groups only."""
    if group.logic == "OR" and len(group.conditions) != 1:
        return
    for node in group.conditions:
        if isinstance(node, Group):
            yield from _required_leaves(node)
        else:
            yield node


def _key_option(condition: Condition, event: TriggerEvent) -> KeyOption | None:
    operator, value = condition.operator, condition.value
    if operator in ("equals", "in", "contains"):
        ref = resolve_field(condition.field, event)
    elif operator == "changed_to":
        ref = change_refs(condition.field, event)[1]
    else:
        return None
    values = value if isinstance(value, tuple) else (value,)
    keys = frozenset(key for key in map(normalize_key, values) if key is not None)
    if not keys or ref.source not in ("event", "contact"):
        return None
    if operator == "contains":  # pays off only on a contact list (tags); event fields are text
        if ref.source == "event":
            return None
        return KeyOption(1, Slot("contains", "contact", ref.path), keys)
    if ref.source == "contact":
        return KeyOption(1, Slot("eq", "contact", ref.path), keys)
    identifying = len(ref.path) == 1 and ref.path[0] in event.identifying
    return KeyOption(0 if identifying else 1, Slot("eq", "event", ref.path), keys)


class _SlotTable:
    """The triggers of one slot: by value key, and all of them (for lookups that cannot key)."""

    __slots__ = ("by_key", "members")

    def __init__(self) -> None:
        self.by_key: dict[Hashable, dict[UUID, CompiledTrigger]] = {}
        self.members: dict[UUID, CompiledTrigger] = {}

    def crowd(self, keys: frozenset[Hashable]) -> int:
        return sum(len(self.by_key.get(key, ())) for key in keys)


# What candidates() needs of a slot, flat: on the event (else the contact), the first path step,
# the rest of the path, contains mode, the keyed triggers, all of them.
_Probe = tuple[
    bool, str, tuple[str, ...], bool,
    dict[Hashable, dict[UUID, "CompiledTrigger"]], dict[UUID, "CompiledTrigger"],
]  # fmt: skip


def _list_hits(
    by_key: dict[Hashable, dict[UUID, CompiledTrigger]], items: list[Any] | tuple[Any, ...]
) -> Iterable[CompiledTrigger]:
    found = [entries for item in items if (entries := by_key.get(normalize_key(item)))]
    if len(found) < 2:
        return found[0].values() if found else ()
    merged: dict[UUID, CompiledTrigger] = {}  # an `in` trigger may sit under several items
    for entries in found:
        merged.update(entries)
    return merged.values()


class _Bucket:
    """One account's live triggers of one event type."""

    __slots__ = ("loggers", "probes", "slots", "unkeyed")

    def __init__(self) -> None:
        self.slots: dict[Slot, _SlotTable] = {}
        self.probes: tuple[_Probe, ...] = ()
        self.unkeyed: dict[UUID, CompiledTrigger] = {}
        self.loggers: dict[UUID, CompiledTrigger] = {}

    def __bool__(self) -> bool:
        return bool(self.slots or self.unkeyed)

    def table(self, slot: Slot) -> _SlotTable:
        table = self.slots.get(slot)
        if table is None:
            table = self.slots[slot] = _SlotTable()
            self._reprobe()
        return table

    def drop(self, slot: Slot) -> None:
        del self.slots[slot]
        self._reprobe()

    def _reprobe(self) -> None:
        self.probes = tuple(
            (s.source == "event", s.path[0], s.path[1:], s.mode == "contains", t.by_key, t.members)
            for s, t in self.slots.items()
        )

    def choose(self, options: list[KeyOption]) -> KeyOption | None:
        """An identifying field first; else the option whose keys hold the fewest triggers now,
        so a low-cardinality condition (status = customer) yields to a selective one."""

        def score(item: tuple[int, KeyOption]) -> tuple[int, int, int, int]:
            position, option = item
            table = self.slots.get(option.slot)
            crowd = 0 if table is None else table.crowd(option.keys)
            return option.rank, crowd, len(option.keys), position

        return min(enumerate(options), key=score)[1] if options else None


@dataclass(frozen=True, slots=True)
class _Placement:
    trigger: CompiledTrigger
    slot: Slot | None
    keys: frozenset[Hashable]


class AccountIndex:
    """One account's live triggers, by event type and then by the values they pin."""

    __slots__ = ("_buckets", "_placements")

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._placements: dict[UUID, _Placement] = {}

    def __len__(self) -> int:
        return len(self._placements)

    def add(self, trigger: CompiledTrigger) -> None:
        """File `trigger` (replacing any trigger with the same id)."""
        spec = trigger.spec
        self.remove(spec.trigger_id)
        event_type = spec.event.event_type
        bucket = self._buckets.setdefault(event_type, _Bucket())
        chosen = bucket.choose(key_options(spec.filters, spec.event))
        slot, keys = (None, frozenset[Hashable]()) if chosen is None else (chosen.slot, chosen.keys)
        if slot is None:
            bucket.unkeyed[spec.trigger_id] = trigger
        else:
            table = bucket.table(slot)
            table.members[spec.trigger_id] = trigger
            for key in keys:
                table.by_key.setdefault(key, {})[spec.trigger_id] = trigger
        if spec.settings.log_non_matches:
            bucket.loggers[spec.trigger_id] = trigger
        self._placements[spec.trigger_id] = _Placement(trigger, slot, keys)

    def remove(self, trigger_id: UUID) -> bool:
        placement = self._placements.pop(trigger_id, None)
        if placement is None:
            return False
        event_type = placement.trigger.spec.event.event_type
        bucket = self._buckets[event_type]
        bucket.loggers.pop(trigger_id, None)
        if placement.slot is None:
            del bucket.unkeyed[trigger_id]
        else:
            table = bucket.slots[placement.slot]
            del table.members[trigger_id]
            for key in placement.keys:
                entries = table.by_key[key]
                del entries[trigger_id]
                if not entries:
                    del table.by_key[key]
            if not table.members:
                bucket.drop(placement.slot)
        if not bucket:
            del self._buckets[event_type]
        return True

    def candidates(
        self,
        event_type: str,
        data: Mapping[str, Any],
        contact: Mapping[str, Any] | None = None,
    ) -> list[CompiledTrigger]:
        """Every trigger that may match: keyed hits for the event's values, plus unkeyed ones.

        Without `contact`, triggers filed under contact fields are all returned."""
        bucket = self._buckets.get(event_type)
        if bucket is None:
            return []
        found: list[CompiledTrigger] = []
        for on_event, first, rest, contains, by_key, members in bucket.probes:
            root = data if on_event else contact
            if root is None:
                found.extend(members.values())
                continue
            actual = walk(root.get(first), rest) if rest else root.get(first)
            if isinstance(actual, list | tuple):  # any element may match (tags)
                found.extend(_list_hits(by_key, actual))
                continue
            key = normalize_key(actual)
            if key is None:  # empty: equals / in / contains cannot match
                continue
            if contains:  # a text actual: `contains` is a substring test, any trigger may match
                found.extend(members.values())
            elif entries := by_key.get(key):
                found.extend(entries.values())
        found.extend(bucket.unkeyed.values())
        return found

    def non_match_loggers(self, event_type: str) -> list[CompiledTrigger]:
        bucket = self._buckets.get(event_type)
        return [] if bucket is None else list(bucket.loggers.values())

    def get(self, trigger_id: UUID) -> CompiledTrigger | None:
        placement = self._placements.get(trigger_id)
        return None if placement is None else placement.trigger


class TriggerIndex:
    """Every account of one partition; applies trigger changes one at a time, newest wins."""

    __slots__ = ("_accounts", "_owner", "_versions")

    def __init__(self) -> None:
        self._accounts: dict[int, AccountIndex] = {}  # by UUID.int: hashing a UUID is slow
        self._owner: dict[UUID, UUID] = {}  # trigger_id -> account_id, live triggers only
        self._versions: dict[
            UUID, int
        ] = {}  # trigger_id -> last sync_version seen (tombstones too)

    def apply(self, spec: TriggerSpec) -> bool:
        """Upsert if live, else remove; ignore stale versions. True if anything changed."""
        last = self._versions.get(spec.trigger_id)
        if last is not None and spec.sync_version <= last:
            return False
        compiled = (
            CompiledTrigger(spec, compile_filters(spec.filters, spec.event)) if spec.live else None
        )
        self._versions[spec.trigger_id] = spec.sync_version
        removed = self._remove(spec.trigger_id)
        if compiled is None:
            return removed
        self._accounts.setdefault(spec.account_id.int, AccountIndex()).add(compiled)
        self._owner[spec.trigger_id] = spec.account_id
        return True

    def apply_many(self, specs: Iterable[TriggerSpec]) -> int:
        """Apply a batch (a rebuild); the cyclic GC is paused meanwhile, since the index only
        adds long-lived objects and collections would make a large rebuild several times slower."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return sum(self.apply(spec) for spec in specs)
        finally:
            if was_enabled:
                gc.enable()

    def _remove(self, trigger_id: UUID) -> bool:
        account_id = self._owner.pop(trigger_id, None)
        if account_id is None:
            return False
        account = self._accounts[account_id.int]
        account.remove(trigger_id)
        if not len(account):
            del self._accounts[account_id.int]
        return True

    def candidates(
        self,
        account_id: UUID,
        event_type: str,
        data: Mapping[str, Any],
        contact: Mapping[str, Any] | None = None,
    ) -> list[CompiledTrigger]:
        account = self._accounts.get(account_id.int)
        return [] if account is None else account.candidates(event_type, data, contact)

    def non_match_loggers(self, account_id: UUID, event_type: str) -> list[CompiledTrigger]:
        account = self._accounts.get(account_id.int)
        return [] if account is None else account.non_match_loggers(event_type)

    def trigger_count(self, account_id: UUID | None = None) -> int:
        if account_id is None:
            return len(self._owner)
        account = self._accounts.get(account_id.int)
        return 0 if account is None else len(account)

    def get(self, trigger_id: UUID) -> CompiledTrigger | None:
        account_id = self._owner.get(trigger_id)
        return None if account_id is None else self._accounts[account_id.int].get(trigger_id)

    def account(self, account_id: UUID) -> AccountIndex | None:
        return self._accounts.get(account_id.int)
