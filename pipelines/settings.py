"""Trigger settings (docs/contract.md §4, §7): defaults, types and ranges, per trigger category."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines import errors
from pipelines.catalog import TriggerEvent
from pipelines.cron import parse_cron
from pipelines.errors import ConfigError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_COOLDOWN_SECONDS = 10 * 365 * 86400
MAX_OFFSET_DAYS = 3650
MAX_CATCH_UP_HOURS = 168
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def is_clock_time(value: object) -> bool:
    """'HH:MM', 24-hour."""
    return isinstance(value, str) and bool(_TIME_RE.match(value))


_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+){0,3}$")

_COMMON_KEYS = frozenset(
    {"enrollment_limit", "reenroll_cooldown_seconds", "respect_business_hours", "log_non_matches"}
)
_TIME_KEYS: dict[str, frozenset[str]] = {
    "birthday": frozenset({"time_of_day", "catch_up_hours", "date_field", "timezone"}),
    "anniversary": frozenset({"time_of_day", "catch_up_hours", "date_field", "timezone"}),
    "scheduled_date": frozenset(
        {"time_of_day", "catch_up_hours", "date_field", "offset_days", "timezone"}
    ),
    "recurring_schedule": frozenset(
        {"time_of_day", "catch_up_hours", "cron", "every", "days_of_week", "timezone"}
    ),
}


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    enrollment_limit: str = "single"
    reenroll_cooldown_seconds: int = 0
    respect_business_hours: bool = False
    log_non_matches: bool = False
    time_of_day: str | None = None
    catch_up_hours: int | None = None
    date_field: str | None = None
    offset_days: int | None = None
    cron: str | None = None
    every: int | None = None
    days_of_week: tuple[str, ...] | None = None
    timezone: str | None = None  # instead of the account's, for contacts without their own

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.days_of_week is not None:
            out["days_of_week"] = list(self.days_of_week)
        return out


def parse_settings(raw: object, event: TriggerEvent, pointer: str = "/settings") -> TriggerSettings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(errors.INVALID_SETTINGS, "settings must be an object", pointer)
    allowed = _COMMON_KEYS | _TIME_KEYS.get(event.name, frozenset())
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                errors.INVALID_SETTINGS,
                f"'{key}' is not a setting of {event.name} triggers",
                f"{pointer}/{key}",
            )
    values = {k: v for k, v in raw.items() if v is not None}  # null means "the default"
    _check_enrollment(values, pointer)
    for key in ("respect_business_hours", "log_non_matches"):
        if key in values and not isinstance(values[key], bool):
            raise ConfigError(errors.INVALID_SETTINGS, f"'{key}' must be a boolean", pointer)
    if event.category == "time":
        _check_time(values, event, pointer)
    if "days_of_week" in values:
        values["days_of_week"] = tuple(values["days_of_week"])
    return TriggerSettings(**values)


def _int_in(values: dict[str, Any], key: str, low: int, high: int, pointer: str) -> None:
    value = values.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(
            errors.INVALID_SETTINGS,
            f"'{key}' must be a whole number from {low} to {high}",
            f"{pointer}/{key}",
        )


def _check_enrollment(values: dict[str, Any], pointer: str) -> None:
    limit = values.setdefault("enrollment_limit", "single")
    if limit not in ("single", "multiple"):
        raise ConfigError(
            errors.INVALID_SETTINGS,
            "enrollment_limit must be 'single' or 'multiple'",
            f"{pointer}/enrollment_limit",
        )
    _int_in(values, "reenroll_cooldown_seconds", 0, MAX_COOLDOWN_SECONDS, pointer)
    if values.get("reenroll_cooldown_seconds") and limit != "multiple":
        raise ConfigError(
            errors.INVALID_SETTINGS,
            "reenroll_cooldown_seconds applies only to enrollment_limit 'multiple'",
            f"{pointer}/reenroll_cooldown_seconds",
        )


def _check_time(values: dict[str, Any], event: TriggerEvent, pointer: str) -> None:
    values.setdefault("time_of_day", "09:00")
    values.setdefault("catch_up_hours", 24)
    if not is_clock_time(values["time_of_day"]):
        raise ConfigError(
            errors.INVALID_SETTINGS, "time_of_day must be HH:MM (24-hour)", f"{pointer}/time_of_day"
        )
    _int_in(values, "catch_up_hours", 0, MAX_CATCH_UP_HOURS, pointer)
    if "timezone" in values:
        _check_zone(values["timezone"], f"{pointer}/timezone")
    if event.name == "birthday":
        values.setdefault("date_field", "birthday")
    if event.name in ("birthday", "anniversary", "scheduled_date"):
        field = values.get("date_field")
        if not isinstance(field, str) or not _PATH_RE.match(field):
            raise ConfigError(
                errors.INVALID_SETTINGS,
                f"{event.name} triggers need date_field, the contact field holding the date",
                f"{pointer}/date_field",
            )
    if event.name == "scheduled_date":
        values.setdefault("offset_days", 0)
        _int_in(values, "offset_days", -MAX_OFFSET_DAYS, MAX_OFFSET_DAYS, pointer)
    if event.name == "recurring_schedule":
        _check_recurrence(values, pointer)


def _check_recurrence(values: dict[str, Any], pointer: str) -> None:
    cron, every, days = values.get("cron"), values.get("every"), values.get("days_of_week")
    if (cron is None) == (every is None and days is None):
        raise ConfigError(
            errors.INVALID_SETTINGS,
            "recurring_schedule needs either cron or every/days_of_week, not both",
            pointer,
        )
    if cron is not None:
        check_cron(cron, f"{pointer}/cron")
        return
    values.setdefault("every", 1)
    _int_in(values, "every", 1, 365, pointer)
    if days is not None and (
        not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days)
    ):
        raise ConfigError(
            errors.INVALID_SETTINGS,
            f"days_of_week must be a non-empty list of {', '.join(WEEKDAYS)}",
            f"{pointer}/days_of_week",
        )


def _check_zone(name: object, pointer: str) -> None:
    try:
        ZoneInfo(name if isinstance(name, str) else "")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            errors.INVALID_SETTINGS, f"timezone {name!r} is not an IANA timezone", pointer
        ) from None


def check_cron(expr: object, pointer: str) -> None:
    """A 5-field cron expression (minute hour day month weekday) that parses."""
    try:
        parse_cron(expr if isinstance(expr, str) else "")
    except ValueError as exc:
        raise ConfigError(
            errors.INVALID_SETTINGS,
            f"cron {expr!r} is not valid: {exc} (5 fields: minute hour day month weekday; "
            "values in range, ranges low-high, steps from 1)",
            pointer,
        ) from None
