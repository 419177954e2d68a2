"""The compiled trigger index (docs/contract.md §5): per account, per event type, triggers filed
under the values their filters pin, so an event's candidates are found by hash lookups and the cost
of matching does not grow with the triggers that cannot match.

A trigger with key options (pipelines.keying) is filed under one of them: an identifying event
field if there is one, else the field whose values currently hold the fewest triggers. Every other
trigger is "unkeyed" and always a candidate.

The index returns a superset of the matches, and the caller runs each candidate's `check` on the
same event view (`data` and `contact` as passed to `candidates`). For a trigger filed under a leaf
that the lookup proves (KeyOption.established), `check` is the residual predicate without that
leaf; where the index cannot look up, it returns the trigger with its whole filter as `check`
instead. Every other `check` is the whole filter.
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pipelines.catalog import TriggerEvent
from pipelines.compiler import Predicate, compile_filters, walk
from pipelines.errors import describe
from pipelines.filters import Group
from pipelines.keying import KeyOption, Slot, key_options
from pipelines.settings import TriggerSettings
from pipelines.sizes import index_bytes
from pipelines.triggers import TriggerConfig
from pipelines.values import normalize_key, text_key


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
class InvalidSpec:
    """A stored trigger whose configuration no longer validates (pipelines.stored): matching
    skips it, and `reason` says why (docs/contract.md §4, "Stored triggers that no longer
    validate")."""

    trigger_id: UUID
    workflow_id: UUID
    account_id: UUID
    live: bool
    sync_version: int
    reason: str


Spec = TriggerSpec | InvalidSpec


def _invalid(spec: TriggerSpec, reason: str) -> InvalidSpec:
    return InvalidSpec(
        spec.trigger_id, spec.workflow_id, spec.account_id, spec.live, spec.sync_version, reason
    )


class CompiledTrigger:
    """A live trigger: `check` is what a candidate must still pass (see the module docstring);
    `slot` and `keys` say where the index filed it; `size` is its estimated memory
    (pipelines.sizes.index_bytes). Equal by identity (see _SlotTable.unfile)."""

    __slots__ = ("_predicate", "check", "keys", "size", "slot", "spec")

    def __init__(
        self,
        spec: TriggerSpec,
        check: Predicate,
        slot: Slot | None = None,
        keys: tuple[Hashable, ...] = (),
        predicate: Predicate | None = None,
    ) -> None:
        self.spec = spec
        self.check = check
        self.slot = slot
        self.keys = keys
        self._predicate = predicate
        self.size = 0

    @property
    def predicate(self) -> Predicate:
        """The whole filter. Where `check` is a residual, compiled on first use only (explain,
        lookups that prove nothing): a million whole predicates would cost hundreds of MB that
        matching does not read."""
        if self._predicate is None:
            self._predicate = compile_filters(self.spec.filters, self.spec.event)
        return self._predicate

    def __repr__(self) -> str:
        return f"CompiledTrigger({self.spec.trigger_id}, {self.spec.event.name})"


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
        trigger_id,
        workflow_id,
        account_id,
        config.event,
        config.filters,
        config.settings,
        live,
        sync_version,
    )


# What a key maps to: most keys hold one trigger, which then saves a list (memory, and a
# pointer to follow per hit).
Filed = CompiledTrigger | list[CompiledTrigger]


def _flatten(filed: Iterable[Filed]) -> list[CompiledTrigger]:
    found: list[CompiledTrigger] = []
    for entry in filed:
        if isinstance(entry, list):
            found.extend(entry)
        else:
            found.append(entry)
    return found


class _SlotTable:
    """The triggers of one slot, by value key."""

    __slots__ = ("by_key", "size", "slot")

    def __init__(self, slot: Slot) -> None:
        self.slot = slot  # one object for the slot's triggers (a million copies add up)
        self.by_key: dict[Hashable, Filed] = {}
        self.size = 0

    def file(self, trigger: CompiledTrigger) -> None:
        for key in trigger.keys:
            entry = self.by_key.get(key)
            if entry is None:
                self.by_key[key] = trigger
            elif isinstance(entry, list):
                entry.append(trigger)
            else:
                self.by_key[key] = [entry, trigger]
        self.size += 1

    def unfile(self, trigger: CompiledTrigger) -> None:
        for key in trigger.keys:
            entry = self.by_key[key]
            if not isinstance(entry, list):
                del self.by_key[key]
                continue
            entry.remove(trigger)
            if len(entry) == 1:
                self.by_key[key] = entry[0]
        self.size -= 1

    def members(self) -> list[CompiledTrigger]:
        """Every trigger of the slot, once (an `in` trigger sits under several keys)."""
        return list(dict.fromkeys(_flatten(self.by_key.values())))

    def unproven(self) -> list[CompiledTrigger]:
        """Every trigger of the slot, checked by its whole filter: what a lookup that cannot
        key (no contact, or text for `contains`) returns, since it proves no leaf."""
        found = self.members()
        for position, trigger in enumerate(found):
            whole = trigger.predicate
            if trigger.check is not whole:
                found[position] = CompiledTrigger(trigger.spec, whole, predicate=whole)
        return found

    def crowd(self, keys: tuple[Hashable, ...]) -> int:
        entries = [entry for key in keys if (entry := self.by_key.get(key)) is not None]
        return sum(len(entry) if isinstance(entry, list) else 1 for entry in entries)


# What candidates() needs of a slot, flat: on the event (else the contact), the first path step,
# the rest of the path, contains mode, the keyed triggers, the table.
_Probe = tuple[bool, str, tuple[str, ...], bool, dict[Hashable, Filed], _SlotTable]


def _add_list_hits(
    found: list[CompiledTrigger], by_key: dict[Hashable, Filed], items: list[Any] | tuple[Any, ...]
) -> None:
    """Append the triggers filed under any item's key, once each: an `in` trigger may sit under
    several items, and items may repeat."""
    start, hits = len(found), 0
    for item in items:
        entry = by_key.get(text_key(item) if type(item) is str else normalize_key(item))
        if entry is None:
            continue
        hits += 1
        if isinstance(entry, list):
            found.extend(entry)
        else:
            found.append(entry)
    if hits > 1:
        found[start:] = dict.fromkeys(found[start:])


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
            table = self.slots[slot] = _SlotTable(slot)
            self._reprobe()
        return table

    def drop(self, slot: Slot) -> None:
        del self.slots[slot]
        self._reprobe()

    def _reprobe(self) -> None:
        self.probes = tuple(
            (s.source == "event", s.path[0], s.path[1:], s.mode == "contains", t.by_key, t)
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


class AccountIndex:
    """One account's live triggers, by event type and then by the values they pin;
    `index_bytes` is the sum of their estimated sizes, the figure its quota budgets."""

    __slots__ = ("_buckets", "_triggers", "index_bytes")

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._triggers: dict[UUID, CompiledTrigger] = {}
        self.index_bytes = 0

    def __len__(self) -> int:
        return len(self._triggers)

    def add(self, spec: TriggerSpec, predicate: Predicate) -> None:
        """File the trigger (replacing any with the same id); `predicate` is its whole filter."""
        self.remove(spec.trigger_id)
        bucket = self._buckets.setdefault(spec.event.event_type, _Bucket())
        chosen = bucket.choose(key_options(spec.filters, spec.event))
        if chosen is None:
            trigger = CompiledTrigger(spec, predicate, predicate=predicate)
            bucket.unkeyed[spec.trigger_id] = trigger
        else:
            table = bucket.table(chosen.slot)
            if chosen.established is None:
                trigger = CompiledTrigger(spec, predicate, table.slot, chosen.keys, predicate)
            else:
                residual = compile_filters(spec.filters, spec.event, chosen.established)
                trigger = CompiledTrigger(spec, residual, table.slot, chosen.keys)
            table.file(trigger)
        if spec.settings.log_non_matches:
            bucket.loggers[spec.trigger_id] = trigger
        self._triggers[spec.trigger_id] = trigger
        trigger.size = index_bytes(spec.filters)
        self.index_bytes += trigger.size

    def remove(self, trigger_id: UUID) -> bool:
        trigger = self._triggers.pop(trigger_id, None)
        if trigger is None:
            return False
        self.index_bytes -= trigger.size
        event_type = trigger.spec.event.event_type
        bucket = self._buckets[event_type]
        bucket.loggers.pop(trigger_id, None)
        if trigger.slot is None:
            del bucket.unkeyed[trigger_id]
        else:
            table = bucket.slots[trigger.slot]
            table.unfile(trigger)
            if not table.size:
                bucket.drop(trigger.slot)
        if not bucket:
            del self._buckets[event_type]
        return True

    def candidates(
        self,
        event_type: str,
        data: Mapping[str, Any],
        contact: Mapping[str, Any] | None = None,
    ) -> list[CompiledTrigger]:
        """Every trigger that may match: keyed hits for the event's values, plus unkeyed ones;
        each one's `check` is right for this `data` and `contact`.

        Without `contact`, triggers filed under contact fields are all returned."""
        bucket = self._buckets.get(event_type)
        if bucket is None:
            return []
        found: list[CompiledTrigger] = []
        for on_event, first, rest, contains, by_key, table in bucket.probes:
            root = data if on_event else contact
            if root is None:
                found.extend(table.unproven())
                continue
            actual = walk(root.get(first), rest) if rest else root.get(first)
            if type(actual) is str:
                key = text_key(actual)
            elif isinstance(actual, (list, tuple)):  # any element may match (tags)
                _add_list_hits(found, by_key, actual)
                continue
            else:
                key = normalize_key(actual)
            if key is None:  # empty: equals / in / contains cannot match
                continue
            if contains:  # a text actual: `contains` is a substring test, any trigger may match
                found.extend(table.unproven())
            elif (entry := by_key.get(key)) is not None:
                if isinstance(entry, list):
                    found.extend(entry)
                else:
                    found.append(entry)
        if bucket.unkeyed:
            found.extend(bucket.unkeyed.values())
        return found

    def non_match_loggers(self, event_type: str) -> list[CompiledTrigger]:
        bucket = self._buckets.get(event_type)
        return [] if bucket is None else list(bucket.loggers.values())

    def get(self, trigger_id: UUID) -> CompiledTrigger | None:
        return self._triggers.get(trigger_id)


class TriggerIndex:
    """Every account of one partition; applies trigger changes one at a time, newest wins.

    A live trigger whose stored configuration does not validate or compile is quarantined: it
    matches nothing, and `invalid()` holds it with the reason until a newer version replaces
    it. Its earlier version, if held, goes: it is no longer what the account configured."""

    __slots__ = ("_accounts", "_invalid", "_owner", "_versions")

    def __init__(self) -> None:
        self._accounts: dict[int, AccountIndex] = {}  # by UUID.int: hashing a UUID is slow
        self._owner: dict[UUID, UUID] = {}  # trigger_id -> account_id, live triggers only
        self._versions: dict[
            UUID, int
        ] = {}  # trigger_id -> last sync_version seen (tombstones too)
        self._invalid: dict[UUID, InvalidSpec] = {}  # quarantined live triggers

    def apply(self, spec: Spec) -> bool:
        """Upsert if live, else remove; quarantine if invalid; ignore stale versions. True if
        anything changed."""
        last = self._versions.get(spec.trigger_id)
        if last is not None and spec.sync_version <= last:
            return False
        if isinstance(spec, TriggerSpec) and spec.live:
            try:  # compiled first, so that a filter that cannot compile changes nothing yet
                predicate = compile_filters(spec.filters, spec.event)
            except Exception as exc:  # a stored filter the compiler refuses: quarantined too
                return self.apply(_invalid(spec, describe(exc)))
        self._versions[spec.trigger_id] = spec.sync_version
        removed = self._remove(spec.trigger_id)
        removed |= self._invalid.pop(spec.trigger_id, None) is not None
        if not spec.live:
            return removed
        if isinstance(spec, InvalidSpec):
            self._invalid[spec.trigger_id] = spec
            return True
        self._accounts.setdefault(spec.account_id.int, AccountIndex()).add(spec, predicate)
        self._owner[spec.trigger_id] = spec.account_id
        return True

    def invalid(self) -> list[InvalidSpec]:
        """The quarantined live triggers."""
        return list(self._invalid.values())

    def apply_many(self, specs: Iterable[Spec]) -> int:
        """Apply a batch (a rebuild); the cyclic GC is paused meanwhile, since the index only
        adds long-lived objects and collections would make a large rebuild several times slower."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return sum(self.apply(spec) for spec in specs)
        finally:
            if was_enabled:
                gc.enable()

    def drop_account(self, account_id: UUID) -> int:
        """Forget an account this partition no longer serves (its spread moved away), versions
        included, so that a later reload from Postgres applies in full. Returns how many live
        triggers went."""
        for trigger_id in [t for t, s in self._invalid.items() if s.account_id == account_id]:
            del self._invalid[trigger_id]
            self._versions.pop(trigger_id, None)
        account = self._accounts.pop(account_id.int, None)
        if account is None:
            return 0
        gone = [t for t, a in self._owner.items() if a == account_id]
        for trigger_id in gone:
            del self._owner[trigger_id]
            self._versions.pop(trigger_id, None)
        return len(gone)

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

    def account_sizes(self) -> list[tuple[UUID, int, int]]:
        """(account id, live triggers, estimated index bytes) for every account held."""
        return [(UUID(int=k), len(a), a.index_bytes) for k, a in self._accounts.items()]

    def get(self, trigger_id: UUID) -> CompiledTrigger | None:
        account_id = self._owner.get(trigger_id)
        return None if account_id is None else self._accounts[account_id.int].get(trigger_id)

    def account(self, account_id: UUID) -> AccountIndex | None:
        return self._accounts.get(account_id.int)
