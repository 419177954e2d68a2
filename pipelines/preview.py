"""Trigger preview (REQ-O-001): a trigger's filter as one SQL condition over the contacts
projection, with the matcher's semantics (pipelines/compiler.py, pipelines/values.py).

The condition is built from fixed templates only: every value and every field name travels as a
query parameter, so no input ever becomes SQL text. The SQL helper functions (`ht_key`,
`ht_num`, ...) are the value rules of pipelines/values.py, written by the repeatable migrations
store/repeatable/*.sql.

Conditions that are not about the contact (event fields, form answers, the previous state,
changed*) are *not previewable*: some event can satisfy them, so they count as true (an AND
drops them, an OR holding one holds) and are listed with the reason."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipelines.catalog import TriggerEvent
from pipelines.compiler import Value, resolve_field
from pipelines.filters import CHANGE_OPS, Condition, Group
from pipelines.values import as_number, as_text, as_when, normalize_key

TRUE, FALSE = "TRUE", "FALSE"
STATE = "c.state"  # the contacts row the condition reads is `c`

# Fields with an index of migration 0004 (the same expressions, so the planner can use them).
KEY_INDEXED = frozenset({"status", "source"})  # btree on ht_key(state -> field)
KEYS_INDEXED = frozenset({"tags"})  # gin on ht_keys(state -> field)

EVENT_FIELD = "reads the event's own data, which only the event decides"
SUBMITTED = "reads the submitted answers first, and the contact only when they lack it"
PREVIOUS = "reads the contact's previous state, which only an update event carries"
CHANGE = "compares the previous and the current state of an update event"


@dataclass(frozen=True, slots=True)
class NotPreviewable:
    field: str
    operator: str
    value: Value
    reason: str


@dataclass(frozen=True, slots=True)
class PreviewQuery:
    """`where` is a boolean SQL expression over contacts row `c`; its parameters are numbered
    from the `first_param` given to compile_preview, in the order of `params`."""

    where: str
    params: tuple[Any, ...]
    not_previewable: tuple[NotPreviewable, ...]


def not_previewable_reason(condition: Condition, event: TriggerEvent) -> str | None:
    """Why the condition does not depend on the contact alone; None when it does."""
    if condition.operator in CHANGE_OPS:
        return CHANGE
    source = resolve_field(condition.field, event).source
    if source == "event":
        return EVENT_FIELD
    if source == "submitted":
        return SUBMITTED
    if source == "previous":
        return PREVIOUS
    return None


def compile_preview(group: Group, event: TriggerEvent, first_param: int = 1) -> PreviewQuery:
    """The filter of a trigger on `event` as a SQL condition on the contact's state; conditions
    on tags, status and source are written so that the indexes of migration 0004 serve them."""
    builder = _Builder(event, first_param)
    where = builder.group(group) if group.conditions else TRUE  # as compile_filters
    return PreviewQuery(where, tuple(builder.params), tuple(builder.skipped))


def key_text(value: Any) -> str | None:
    """normalize_key(value) as ht_key writes it: 's:' text, 'n:' number, 'b:' boolean."""
    key = normalize_key(value)
    if key is None or not isinstance(key, tuple):
        return None
    kind, inner = key
    if kind == "s":
        return f"s:{inner}"
    if kind == "b":
        return "b:true" if inner else "b:false"
    if kind == "n":
        return f"n:{number_text(inner)}"
    return None  # lists and objects: filter values are scalars


def number_text(number: int | float) -> str:
    """A number as ht_canon writes it: plain digits, no trailing zeros; a double that is an
    integer as that integer, any other as its shortest decimal (repr)."""
    if isinstance(number, int):
        return str(number)
    if number in (math.inf, -math.inf):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer():
        return str(int(number))
    return format(Decimal(repr(number)), "f")


class _Builder:
    def __init__(self, event: TriggerEvent, first_param: int) -> None:
        self.event = event
        self.params: list[Any] = []
        self.first = first_param
        self.skipped: list[NotPreviewable] = []

    def param(self, value: Any, cast: str) -> str:
        self.params.append(value)
        return f"${self.first + len(self.params) - 1}::{cast}"

    def group(self, group: Group) -> str:
        return self._constant_drops_params(self._group, group)

    def leaf(self, condition: Condition) -> str:
        return self._constant_drops_params(self._leaf, condition)

    def _constant_drops_params(self, build: Callable[[Any], str], node: Any) -> str:
        """A node that comes out TRUE or FALSE takes back the parameters it added."""
        mark = len(self.params)
        sql = build(node)
        if sql in (TRUE, FALSE):
            del self.params[mark:]
        return sql

    def _group(self, group: Group) -> str:
        parts = [
            self.group(node) if isinstance(node, Group) else self.leaf(node)
            for node in group.conditions
        ]
        decisive, neutral = (TRUE, FALSE) if group.logic == "OR" else (FALSE, TRUE)
        if decisive in parts:
            return decisive
        parts = [p for p in parts if p != neutral]
        if not parts:
            return neutral
        if len(parts) == 1:
            return parts[0]
        return "(" + f" {group.logic} ".join(parts) + ")"

    def _leaf(self, condition: Condition) -> str:
        reason = not_previewable_reason(condition, self.event)
        if reason is not None:
            self.skipped.append(
                NotPreviewable(condition.field, condition.operator, condition.value, reason)
            )
            return TRUE
        path = resolve_field(condition.field, self.event).path
        field = "".join(f" -> {self.param(name, 'text')}" for name in path)
        x = f"({STATE}{field})"
        indexed = path[0] if len(path) == 1 else None
        op, value = condition.operator, condition.value
        if op in ("equals", "in"):
            return self.equals(x, value, indexed)
        if op in ("not_equals", "not_in"):
            return _negate(self.equals(x, value, None))
        if op == "contains":
            return self.contains(x, value, indexed)
        if op == "not_contains":
            return _negate(self.contains(x, value, None))
        if op in ("starts_with", "ends_with"):
            return self.affix(x, value, op == "starts_with")
        if op in _ORDER:
            return self.ordering(x, value, _ORDER[op])
        if op == "is_empty":
            return f"ht_empty({x})"
        if op == "is_not_empty":
            return f"NOT ht_empty({x})"
        raise ValueError(f"unknown filter operator {op!r}")

    def equals(self, x: str, value: Value, indexed: str | None) -> str:
        """values in `value`: a str or scalar by its key, a list when one of its items is."""
        values = value if isinstance(value, tuple) else (value,)
        keys = sorted({k for k in map(key_text, values) if k is not None})
        if not keys:
            return FALSE
        wanted = self.param(keys, "text[]")
        key, items, is_list = f"ht_key({x})", f"ht_keys({x})", f"jsonb_typeof({x}) = 'array'"
        if indexed in KEY_INDEXED:  # the index finds the key, or any list to look into
            listed = self.param([*keys, "*list"], "text[]")
            return f"({key} = ANY({listed}) AND (NOT {is_list} OR {items} && {wanted}))"
        if indexed in KEYS_INDEXED:  # the index finds the lists holding it, or any scalar
            scalar = self.param([*keys, "*scalar"], "text[]")
            return f"({items} && {scalar} AND ({is_list} OR {key} = ANY({wanted})))"
        return f"({key} = ANY({wanted}) OR ({is_list} AND {items} && {wanted}))"

    def contains(self, x: str, value: Value, indexed: str | None) -> str:
        """A list holds the value as an item; anything else holds it as text."""
        needle, key = as_text(value), key_text(value)
        if needle is None or key is None:
            return FALSE
        text = f"strpos(ht_text({x}), {self.param(needle, 'text')}) > 0"
        if indexed in KEYS_INDEXED:
            scalar = self.param([key, "*scalar"], "text[]")
            return f"(ht_keys({x}) && {scalar} AND (jsonb_typeof({x}) = 'array' OR {text}))"
        member = f"ht_keys({x}) && {self.param([key], 'text[]')}"
        return f"(CASE WHEN jsonb_typeof({x}) = 'array' THEN {member} ELSE {text} END)"

    def affix(self, x: str, value: Value, start: bool) -> str:
        """A list when one of its items starts (ends) with the text."""
        needle = as_text(value)
        if needle is None:
            return FALSE
        n = self.param(needle, "text")

        def test(of: str) -> str:
            text = f"ht_text({of})"
            return f"starts_with({text}, {n})" if start else f"right({text}, length({n})) = {n}"

        items = f"EXISTS (SELECT 1 FROM jsonb_array_elements({x}) AS e(v) WHERE {test('e.v')})"
        return f"(CASE WHEN jsonb_typeof({x}) = 'array' THEN {items} ELSE {test(x)} END)"

    def ordering(self, x: str, value: Value, op: str) -> str:
        """Numbers when the value is one (or a numeric text), else ISO dates; a bare date on
        either side compares dates, else UTC instants."""
        number = as_number(value)
        if number is not None:
            return f"ht_num({x}) {op} ({self.param(number_text(number), 'text')})::numeric"
        when = as_when(value)
        if when is None:
            return FALSE
        limit, limit_is_date = when
        day = f"ht_when({x})::date {op} {self.param(limit.date(), 'date')}"
        if limit_is_date:
            return day
        instant = f"ht_when({x}) {op} {self.param(limit, 'timestamp')}"
        return f"(CASE WHEN ht_is_date({x}) THEN {day} ELSE {instant} END)"


_ORDER = {
    "greater_than": ">",
    "less_than": "<",
    "greater_than_or_equal": ">=",
    "less_than_or_equal": "<=",
}


def _negate(condition: str) -> str:
    if condition in (TRUE, FALSE):
        return FALSE if condition == TRUE else TRUE
    return f"NOT COALESCE({condition}, FALSE)"
