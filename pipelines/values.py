"""Value coercions the filter operators share (docs/contract.md §4): equality keys, numbers, dates,
text.

These run per event, several times: isinstance() gets tuples of types, since `A | B` builds a
union object on every call."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from pipelines.filters import is_numeric_text, parse_iso_date

_TRUE: Hashable = ("b", True)
_FALSE: Hashable = ("b", False)
_BOOLS: dict[str, Hashable] = {"true": _TRUE, "false": _FALSE}


def normalize_key(value: Any) -> Hashable | None:
    """A hashable key under which values that `equals` treats as equal coincide; None if empty."""
    if isinstance(value, str):
        return text_key(value)
    if value is None or (isinstance(value, (list, tuple, Mapping)) and not value):
        return None
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, (list, tuple)):
        return ("l", tuple(map(normalize_key, value)))
    if isinstance(value, Mapping):
        return ("o", frozenset((str(k), normalize_key(v)) for k, v in value.items()))
    return text_key(str(value))


def text_key(text: str) -> Hashable | None:
    """normalize_key of a str."""
    stripped = text.strip()
    if not stripped:
        return None
    first = stripped[0]
    if (first.isdigit() or first in "+-.") and is_numeric_text(stripped):
        return ("n", number(stripped))
    folded = stripped.casefold()
    return _BOOLS.get(folded) or ("s", folded)


def number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text or len(text) > 4000:  # int() refuses > 4300 digits
        return float(text)
    return int(text)


def as_number(value: Any) -> int | float | None:
    if isinstance(value, str):
        stripped = value.strip()
        return number(stripped) if stripped and is_numeric_text(stripped) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def as_when(value: Any) -> tuple[datetime, bool] | None:
    """A naive-UTC datetime and whether it was a bare date, or None for anything else."""
    is_date = isinstance(value, str) and len(value.strip()) == 10
    if isinstance(value, str):
        value = parse_iso_date(value)
    elif isinstance(value, date) and not isinstance(value, datetime):
        value, is_date = datetime.combine(value, time()), True
    if not isinstance(value, datetime):
        return None
    try:
        naive = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. year 1 with a positive offset: no such instant in UTC
        return None
    return naive, is_date


def as_text(value: Any) -> str | None:
    """Stripped, casefolded text of a scalar for the text operators; None if empty or not one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    return str(value).strip().casefold() or None


def is_empty(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (Mapping, list, tuple)) and not value)


def change_key(value: Any) -> Hashable | None:
    if isinstance(value, (list, tuple)) and value:
        return frozenset(normalize_key(item) for item in value)
    return normalize_key(value)
