"""How the index may file a trigger (docs/contract.md §5): the fields whose values its filter pins.

A leaf every match needs (see `required_leaves`) that is `equals` / `in` / `changed_to` on an
event field or a contact field, or `contains` on a contact field, pins the field to its values'
normalized keys; the trigger can then be filed under those keys and found by hash lookups.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from pipelines.catalog import TriggerEvent
from pipelines.compiler import change_refs, required_leaves, resolve_field
from pipelines.filters import Condition, Group
from pipelines.values import normalize_key

Mode = Literal["eq", "contains"]


@dataclass(frozen=True, slots=True)
class Slot:
    """One way of filing triggers: by the normalized value of one event or contact field."""

    mode: Mode
    source: Literal["event", "contact"]
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyOption:
    """A field the filter requires one of `keys` (distinct) in; rank 0 is an identifying event
    field. `leaf` is the condition that requires it."""

    rank: int
    slot: Slot
    keys: tuple[Hashable, ...]
    leaf: Condition

    @property
    def established(self) -> Condition | None:
        """The leaf that a hit under this option proves, if any: the lookup reads the same field
        and normalizes its value (or each item of a list) exactly as `equals` / `in` / the
        list case of `contains` do, against the same keys. `changed_to` also needs a change.
        The index falls back to whole filters where it cannot look up (pipelines.index)."""
        operator = self.leaf.operator
        if operator in ("equals", "in"):
            return self.leaf
        if operator == "contains" and not isinstance(self.leaf.value, tuple):
            return self.leaf  # a list of values would make `contains` never match
        return None


def key_options(group: Group, event: TriggerEvent) -> list[KeyOption]:
    """Every way of filing the trigger, in the filter's order."""
    options = (_key_option(condition, event) for condition in required_leaves(group))
    return [option for option in options if option is not None]


def _key_option(condition: Condition, event: TriggerEvent) -> KeyOption | None:
    operator, value = condition.operator, condition.value
    if operator in ("equals", "in", "contains"):
        ref = resolve_field(condition.field, event)
    elif operator == "changed_to":
        ref = change_refs(condition.field, event)[1]
    else:
        return None
    values = value if isinstance(value, tuple) else (value,)
    keys = tuple(dict.fromkeys(key for key in map(normalize_key, values) if key is not None))
    if not keys or ref.source not in ("event", "contact"):
        return None
    if operator == "contains":  # pays off only on a contact list (tags); event fields are text
        if ref.source == "event":
            return None
        return KeyOption(1, Slot("contains", "contact", ref.path), keys, condition)
    if ref.source == "contact":
        return KeyOption(1, Slot("eq", "contact", ref.path), keys, condition)
    identifying = len(ref.path) == 1 and ref.path[0] in event.identifying
    return KeyOption(0 if identifying else 1, Slot("eq", "event", ref.path), keys, condition)
