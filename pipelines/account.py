"""Account settings: timezone and business hours (docs/contract.md §7)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines import errors
from pipelines.errors import ConfigError
from pipelines.settings import WEEKDAYS, is_clock_time

DEFAULT_BUSINESS_HOURS: dict[str, Any] = {
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "start": "09:00",
    "end": "17:00",
}


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            errors.INVALID_TIMEZONE, f"'{name}' is not an IANA timezone", "/timezone"
        ) from None
    return name


def check_business_hours(hours: dict[str, Any]) -> dict[str, Any]:
    days, start, end = hours.get("days"), hours.get("start"), hours.get("end")
    if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
        raise ConfigError(
            errors.INVALID_BUSINESS_HOURS,
            f"days must be a non-empty list of {', '.join(WEEKDAYS)}",
            "/business_hours/days",
        )
    for key, value in (("start", start), ("end", end)):
        if not is_clock_time(value):
            raise ConfigError(
                errors.INVALID_BUSINESS_HOURS, f"{key} must be HH:MM", f"/business_hours/{key}"
            )
    if str(start) >= str(end):
        raise ConfigError(
            errors.INVALID_BUSINESS_HOURS, "start must be before end", "/business_hours"
        )
    return {"days": [d for d in WEEKDAYS if d in days], "start": start, "end": end}
