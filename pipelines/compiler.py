"""The filter compiler (docs/contract.md §4): a trigger's filter tree becomes one predicate over an
event.

Where a field is read from, normalized constants and the comparison are decided once, at compile
time; the predicate only reads, normalizes and compares per event. Given a leaf the caller has
already established (the index's hash lookup), the compiler also makes the residual predicate that
skips it; residuals are shared by the triggers whose other conditions are alike."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pipelines.catalog import SUBMITTED_DATA, TriggerEvent
from pipelines.filters import CHANGE_OPS, Condition, Group, Scalar
from pipelines.filters import to_json as filters_to_json
from pipelines.values import as_number, as_text, as_when, change_key, is_empty, text_key
from pipelines.values import normalize_key as normalize_key  # re-exported: the key `equals` uses

Source = Literal["event", "contact", "previous", "submitted"]
Value = Scalar | tuple[Scalar, ...] | None


@dataclass(slots=True)  # not frozen: one is made per event, and frozen init costs 3x
class EventView:
    """What a predicate sees of one event; the caller resolves `contact` and `previous`."""

    data: Mapping[str, Any]
    contact: Mapping[str, Any]
    previous: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a filter field is read from: `submitted` means form/survey answers, else contact."""

    source: Source
    path: tuple[str, ...]


Predicate = Callable[[EventView], bool]
Getter = Callable[[EventView], Any]
Test = Callable[[Any], bool]


def resolve_field(field: str, event: TriggerEvent) -> FieldRef:
    head, _, rest = field.partition(".")
    if head == "event":
        return FieldRef("event", tuple(rest.split(".")))
    if head == "contact" or head == "previous":
        return FieldRef("contact" if head == "contact" else "previous", tuple(rest.split(".")))
    path = tuple(field.split("."))
    if head in event.fields or head == "contact_id":
        return FieldRef("event", path)
    if event.name in SUBMITTED_DATA:
        return FieldRef("submitted", path)
    return FieldRef("contact", path)


_CHANGE_PREFIXES = (
    "contact.",
    "previous.",
    "event.current_state.",
    "event.previous_state.",
    "current_state.",
    "previous_state.",
)


def change_refs(field: str, event: TriggerEvent) -> tuple[FieldRef, FieldRef]:
    """Where changed / changed_from / changed_to read the (previous, current) values."""
    if event.name == "custom_field_changed" and field in ("field_value", "event.field_value"):
        return FieldRef("event", ("previous_value",)), FieldRef("event", ("field_value",))
    for prefix in _CHANGE_PREFIXES:
        if field.startswith(prefix):
            field = field[len(prefix) :]
            break
    path = tuple(field.split("."))
    return FieldRef("previous", path), FieldRef("contact", path)


def walk(value: Any, path: tuple[str, ...]) -> Any:
    """Descend `path` through nested mappings; None as soon as a step is missing."""
    for name in path:
        if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 (dict is fast)
            value = value.get(name)
        else:
            return None
    return value


def _getter(ref: FieldRef, event: TriggerEvent) -> Getter:
    first, rest = ref.path[0], ref.path[1:]
    if ref.source == "submitted":
        answers_key = SUBMITTED_DATA[event.name]

        def submitted(view: EventView) -> Any:
            answers = view.data.get(answers_key)
            if isinstance(answers, Mapping) and first in answers:
                return walk(answers.get(first), rest)
            return walk(view.contact.get(first), rest)

        return submitted
    attribute = "data" if ref.source == "event" else ref.source  # EventView.contact / .previous
    return lambda view: walk(getattr(view, attribute).get(first), rest)


def _never(actual: Any) -> bool:
    return False


def _in(value: Value) -> Test:
    """`in`, and `equals` as `in` one value: a list actual matches when any element does."""
    values = value if isinstance(value, tuple) else (value,)
    wanted = frozenset(key for key in map(normalize_key, values) if key is not None)
    if not wanted:
        return _never

    def is_in(actual: Any) -> bool:
        if type(actual) is str:
            return text_key(actual) in wanted
        if isinstance(actual, (list, tuple)):
            for item in actual:  # a loop: any() over a generator costs twice as much
                if (text_key(item) if type(item) is str else normalize_key(item)) in wanted:
                    return True
            return False
        return normalize_key(actual) in wanted

    return is_in


def _contains(value: Value) -> Test:
    member, needle = _in(value), as_text(value)
    if needle is None:
        return _never

    def contains(actual: Any) -> bool:
        if isinstance(actual, (list, tuple)):
            return member(actual)
        text = as_text(actual)
        return text is not None and needle in text

    return contains


def _affix(method: Callable[[str, str], bool]) -> Callable[[Value], Test]:
    def factory(value: Value) -> Test:
        needle = as_text(value)
        if needle is None:
            return _never

        def affix(actual: Any) -> bool:
            if isinstance(actual, (list, tuple)):
                return any(method(text, needle) for text in map(as_text, actual) if text)
            text = as_text(actual)
            return text is not None and method(text, needle)

        return affix

    return factory


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Value], Test]:
    def factory(value: Value) -> Test:
        number = as_number(value)
        if number is not None:

            def numbers(actual: Any) -> bool:
                got = as_number(actual)
                return got is not None and compare(got, number)

            return numbers
        when = as_when(value)
        if when is None:
            return _never
        limit, limit_is_date = when

        def dates(actual: Any) -> bool:
            got = as_when(actual)
            if got is None:
                return False
            if got[1] or limit_is_date:
                return compare(got[0].date(), limit.date())
            return compare(got[0], limit)

        return dates

    return factory


def _negate(factory: Callable[[Value], Test]) -> Callable[[Value], Test]:
    def negated(value: Value) -> Test:
        test = factory(value)
        return lambda actual: not test(actual)

    return negated


def _changed(pair: tuple[Any, Any]) -> bool:
    return change_key(pair[0]) != change_key(pair[1])


def _changed_side(side: int) -> Callable[[Value], Test]:
    def factory(value: Value) -> Test:
        equals = _in(value)
        return lambda pair: equals(pair[side]) and _changed(pair)

    return factory


_TESTS: dict[str, Callable[[Value], Test]] = {
    "equals": _in,
    "not_equals": _negate(_in),
    "contains": _contains,
    "not_contains": _negate(_contains),
    "starts_with": _affix(str.startswith),
    "ends_with": _affix(str.endswith),
    "greater_than": _ordering(operator.gt),
    "less_than": _ordering(operator.lt),
    "greater_than_or_equal": _ordering(operator.ge),
    "less_than_or_equal": _ordering(operator.le),
    "in": _in,
    "not_in": _negate(_in),
    "is_empty": lambda value: is_empty,
    "is_not_empty": lambda value: lambda actual: not is_empty(actual),
    "changed": lambda value: _changed,
    "changed_from": _changed_side(0),
    "changed_to": _changed_side(1),
}


def leaf_test(operator: str, value: Value) -> Test:
    """The test a condition with `operator` and `value` applies to the value it reads (the
    (previous, current) pair for changed*), for callers that already hold that value."""
    factory = _TESTS.get(operator)
    if factory is None:
        raise ValueError(f"unknown filter operator {operator!r}")
    return factory(value)


def _compile_leaf(condition: Condition, event: TriggerEvent) -> tuple[Getter, Test]:
    factory = _TESTS.get(condition.operator)
    if factory is None:
        raise ValueError(f"unknown filter operator {condition.operator!r}")
    if condition.operator in CHANGE_OPS:
        before, after = (_getter(ref, event) for ref in change_refs(condition.field, event))
        return (lambda view: (before(view), after(view))), factory(condition.value)
    return _getter(resolve_field(condition.field, event), event), factory(condition.value)


@functools.lru_cache(maxsize=1 << 16)
def _shared_leaf(
    event: TriggerEvent, field: str, operator: str, value: Value, typed_value: str
) -> Predicate:
    """Equal conditions share one closure across triggers (`typed_value` keeps 1, 1.0 and True
    apart); this saves most of the memory of a large index and keeps hot closures in cache."""
    get, test = _compile_leaf(Condition(field, operator, value), event)
    ref = None if operator in CHANGE_OPS else resolve_field(field, event)
    if ref is None or len(ref.path) > 1 or ref.source == "submitted":
        return lambda view: test(get(view))
    name = ref.path[0]  # the common case, without the getter's calls: same read as _getter's
    if ref.source == "event":
        return lambda view: test(view.data.get(name))
    if ref.source == "contact":
        return lambda view: test(view.contact.get(name))
    return lambda view: test(view.previous.get(name))


def _group_predicate(group: Group, event: TriggerEvent, shared: bool) -> Predicate:
    parts = tuple(
        _group_predicate(node, event, shared)
        if isinstance(node, Group)
        else _shared_leaf(event, node.field, node.operator, node.value, repr(node.value))
        for node in group.conditions
    )
    decisive = group.logic == "OR"  # the part result that settles the group
    return _shared_combination(decisive, parts) if shared else _combination(decisive, parts)


def _combination(decisive: bool, parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        if decisive:
            return lambda view: first(view) or second(view)
        return lambda view: first(view) and second(view)

    def combined(view: EventView) -> bool:
        for part in parts:
            if part(view) == decisive:
                return decisive
        return not decisive

    return combined


# Leaves are shared, so equal parts are the same objects: residuals are few and worth sharing.
_shared_combination = functools.lru_cache(maxsize=1 << 14)(_combination)


def _always(view: EventView) -> bool:
    return True


def compile_filters(
    group: Group, event: TriggerEvent, established: Condition | None = None
) -> Predicate:
    """One predicate for the whole tree; an empty root group matches every event.

    With `established`, one of the tree's `required_leaves`, the residual predicate: it skips
    that leaf, so it agrees with the whole one exactly on the events where that leaf holds."""
    if established is not None:
        group = _without(group, established)
    if not group.conditions:
        return _always
    return _group_predicate(group, event, shared=established is not None)


def required_leaves(group: Group) -> Iterable[Condition]:
    """Leaves every match must satisfy: those reached from the root through AND groups only
    (a group of one condition is that condition, whatever its logic)."""
    if group.logic == "OR" and len(group.conditions) != 1:
        return
    for node in group.conditions:
        if isinstance(node, Group):
            yield from required_leaves(node)
        else:
            yield node


def _without(group: Group, leaf: Condition) -> Group:
    """`group` with `leaf` taken out wherever `required_leaves` finds it, and with the groups that
    only held it; where the leaf holds, the two trees agree."""
    if group.logic == "OR" and len(group.conditions) != 1:
        return group
    kept: list[Condition | Group] = []
    for node in group.conditions:
        if isinstance(node, Group):
            node = _without(node, leaf)
            if node.conditions:
                kept.append(node)
        elif node is not leaf:
            kept.append(node)
    return Group(group.logic, tuple(kept))


def explain(group: Group, event: TriggerEvent, view: EventView) -> tuple[bool, dict[str, Any]]:
    """The verdict and the canonical filter tree with `actual`/`passed` on every node."""
    tree = filters_to_json(group)
    passed = _explain_group(group, tree, event, view) or not group.conditions
    tree["passed"] = passed
    return passed, tree


def _explain_group(group: Group, out: dict[str, Any], event: TriggerEvent, view: EventView) -> bool:
    results = [
        _explain_group(node, child, event, view)
        if isinstance(node, Group)
        else _explain_leaf(node, child, event, view)
        for node, child in zip(group.conditions, out["conditions"], strict=True)
    ]
    passed = all(results) if group.logic == "AND" else any(results)
    out["passed"] = passed
    return passed


def _explain_leaf(
    condition: Condition, out: dict[str, Any], event: TriggerEvent, view: EventView
) -> bool:
    get, test = _compile_leaf(condition, event)
    actual = get(view)
    passed = bool(test(actual))
    if condition.operator in CHANGE_OPS:
        out["previous"], out["actual"] = json_safe(actual[0]), json_safe(actual[1])
    else:
        out["actual"] = json_safe(actual)
    out["passed"] = passed
    return passed


def json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
