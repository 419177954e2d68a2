"""The filter language (docs/contract.md §4): parse and validate a filter tree into plain
dataclasses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pipelines import errors
from pipelines.catalog import COMMON_FIELDS, UPDATE_EVENTS, TriggerEvent
from pipelines.errors import ConfigError

MAX_CONDITIONS = 20
MAX_DEPTH = 3
MAX_LIST_VALUES = 1000

Scalar = str | int | float | bool
Logic = Literal["AND", "OR"]

SCALAR_OPS = frozenset({"equals", "not_equals", "changed_from", "changed_to"})
TEXT_OPS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
ORDER_OPS = frozenset({"greater_than", "less_than", "greater_than_or_equal", "less_than_or_equal"})
LIST_OPS = frozenset({"in", "not_in"})
NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty", "changed"})
CHANGE_OPS = frozenset({"changed", "changed_from", "changed_to"})
OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "greater_than",
    "less_than",
    "greater_than_or_equal",
    "less_than_or_equal",
    "in",
    "not_in",
    "is_empty",
    "is_not_empty",
    "changed",
    "changed_from",
    "changed_to",
)

FIELD_PREFIXES: tuple[str, ...] = ("event", "contact", "previous")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+){0,7}$")
_NUMERIC_RE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    operator: str
    value: Scalar | tuple[Scalar, ...] | None = None


@dataclass(frozen=True, slots=True)
class Group:
    logic: Logic
    conditions: tuple[Condition | Group, ...]


EMPTY = Group("AND", ())


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_numeric_text(value: str) -> bool:
    return bool(_NUMERIC_RE.match(value))


def parse_iso_date(value: str) -> datetime | None:
    """An ISO date or date-time, or None when `value` is neither."""
    text = value.strip()
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time())
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_instant(value: str) -> bool:
    """An ISO date or date-time that names an instant: year 1 at +14:00 parses, but has no
    UTC time (it lies before year 1), so it could never be compared as a date."""
    found = parse_iso_date(value)
    if found is None or found.tzinfo is None:
        return found is not None
    try:
        found.astimezone(UTC)
    except OverflowError:
        return False
    return True


def parse_filters(raw: object, event: TriggerEvent, pointer: str = "/filters") -> Group:
    """Validate a raw filter document for `event`; raise ConfigError naming the first problem."""
    if raw is None or raw == {}:
        return EMPTY
    if not isinstance(raw, dict):
        raise ConfigError(errors.INVALID_FILTER, "filters must be an object", pointer)
    group = _parse_group(raw, event, pointer, depth=1)
    leaves = count_conditions(group)
    if leaves > MAX_CONDITIONS:
        raise ConfigError(
            errors.TOO_MANY_CONDITIONS,
            f"the filter has {leaves} conditions; at most {MAX_CONDITIONS} are allowed",
            pointer,
        )
    return group


def count_conditions(node: Condition | Group) -> int:
    if isinstance(node, Condition):
        return 1
    return sum(count_conditions(child) for child in node.conditions)


def _parse_group(raw: dict[str, Any], event: TriggerEvent, pointer: str, depth: int) -> Group:
    if depth > MAX_DEPTH:
        raise ConfigError(errors.TOO_DEEP, f"groups nest at most {MAX_DEPTH} levels deep", pointer)
    unknown = set(raw) - {"logic", "conditions"}
    if unknown:
        raise ConfigError(
            errors.INVALID_FILTER, f"unknown group key(s): {', '.join(sorted(unknown))}", pointer
        )
    logic = raw.get("logic", "AND")
    if not isinstance(logic, str) or logic.upper() not in ("AND", "OR"):
        raise ConfigError(errors.INVALID_FILTER, "logic must be AND or OR", f"{pointer}/logic")
    children = raw.get("conditions")
    if not isinstance(children, list):
        raise ConfigError(
            errors.INVALID_FILTER, "conditions must be a list", f"{pointer}/conditions"
        )
    if not children and depth > 1:
        raise ConfigError(
            errors.INVALID_FILTER, "a nested group needs at least one condition", pointer
        )
    if len(children) > MAX_CONDITIONS:
        raise ConfigError(
            errors.TOO_MANY_CONDITIONS,
            f"the group has {len(children)} entries; at most {MAX_CONDITIONS} are allowed",
            f"{pointer}/conditions",
        )
    parsed: list[Condition | Group] = []
    for i, child in enumerate(children):
        where = f"{pointer}/conditions/{i}"
        if not isinstance(child, dict):
            raise ConfigError(errors.INVALID_FILTER, "a condition must be an object", where)
        if "conditions" in child or "logic" in child:
            parsed.append(_parse_group(child, event, where, depth + 1))
        else:
            parsed.append(parse_condition(child, event, where))
    return Group("OR" if logic.upper() == "OR" else "AND", tuple(parsed))


def parse_condition(raw: dict[str, Any], event: TriggerEvent, pointer: str) -> Condition:
    unknown = set(raw) - {"field", "operator", "value"}
    if unknown:
        raise ConfigError(
            errors.INVALID_FILTER,
            f"unknown condition key(s): {', '.join(sorted(unknown))}",
            pointer,
        )
    for key in ("field", "operator"):
        if key not in raw:
            raise ConfigError(
                errors.MISSING_FIELD, f"condition needs '{key}'", f"{pointer}/{key}", status=422
            )
    field = _check_field(raw["field"], event, f"{pointer}/field")
    operator = raw["operator"]
    if not isinstance(operator, str) or operator not in OPERATORS:
        raise ConfigError(
            errors.INVALID_OPERATOR,
            f"'{operator}' is not an operator; use one of {', '.join(OPERATORS)}",
            f"{pointer}/operator",
        )
    if operator in CHANGE_OPS and event.name not in UPDATE_EVENTS:
        raise ConfigError(
            errors.INVALID_OPERATOR,
            f"'{operator}' applies only to {', '.join(sorted(UPDATE_EVENTS))} triggers",
            f"{pointer}/operator",
        )
    value = _check_value(operator, raw.get("value"), "value" in raw, f"{pointer}/value")
    return Condition(field, operator, value)


def _check_field(field: object, event: TriggerEvent, pointer: str) -> str:
    if not isinstance(field, str) or not _FIELD_RE.match(field):
        raise ConfigError(errors.INVALID_FIELD, f"'{field}' is not a dotted field path", pointer)
    head, _, rest = field.partition(".")
    if head in FIELD_PREFIXES and not rest:
        raise ConfigError(errors.INVALID_FIELD, f"'{field}' names no field", pointer)
    if head == "event":
        name = rest.split(".", 1)[0]
        if name not in event.fields and name not in COMMON_FIELDS:
            raise ConfigError(
                errors.INVALID_FIELD,
                f"{event.name} events have no field '{name}'; they have "
                f"{', '.join(event.fields + COMMON_FIELDS)}",
                pointer,
            )
    return field


def _check_value(
    operator: str, value: object, present: bool, pointer: str
) -> Scalar | tuple[Scalar, ...] | None:
    if operator in NO_VALUE_OPS:
        if present and value is not None:
            raise ConfigError(errors.INVALID_VALUE, f"'{operator}' takes no value", pointer)
        return None
    if not present or value is None:
        raise ConfigError(errors.MISSING_FIELD, f"'{operator}' needs a value", pointer, status=422)
    if operator in LIST_OPS:
        return _list_value(operator, value, pointer)
    if operator in ORDER_OPS:
        if is_number(value) or (
            isinstance(value, str) and (is_numeric_text(value) or is_instant(value))
        ):
            return value  # type: ignore[return-value]
        raise ConfigError(
            errors.INVALID_VALUE,
            f"'{operator}' compares numbers or ISO dates, not {value!r}",
            pointer,
        )
    if operator in TEXT_OPS:
        if isinstance(value, str) or is_number(value):
            return value  # type: ignore[return-value]
        raise ConfigError(errors.INVALID_VALUE, f"'{operator}' needs text", pointer)
    if isinstance(value, str | bool) or is_number(value):
        return value  # type: ignore[return-value]
    raise ConfigError(
        errors.INVALID_VALUE, f"'{operator}' needs a single text, number or boolean", pointer
    )


def _list_value(operator: str, value: object, pointer: str) -> tuple[Scalar, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(errors.INVALID_VALUE, f"'{operator}' needs a non-empty list", pointer)
    if len(value) > MAX_LIST_VALUES:
        raise ConfigError(
            errors.INVALID_VALUE, f"'{operator}' takes at most {MAX_LIST_VALUES} values", pointer
        )
    for item in value:
        if not (isinstance(item, str | bool) or is_number(item)):
            raise ConfigError(
                errors.INVALID_VALUE,
                f"'{operator}' values must be text, numbers or booleans",
                pointer,
            )
    return tuple(value)


def to_json(group: Group) -> dict[str, Any]:
    """The canonical JSON form of a parsed filter (what the API stores and returns)."""
    return {"logic": group.logic, "conditions": [_node_json(c) for c in group.conditions]}


def _node_json(node: Condition | Group) -> dict[str, Any]:
    if isinstance(node, Group):
        return to_json(node)
    out: dict[str, Any] = {"field": node.field, "operator": node.operator}
    if node.operator not in NO_VALUE_OPS:
        out["value"] = list(node.value) if isinstance(node.value, tuple) else node.value
    return out
