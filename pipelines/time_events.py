"""What the scheduler emits (docs/contract.md §7): time.* events with deterministic ids, and which
contact dates to look up for a window. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.index import TriggerSpec
from pipelines.schedule import Occurrence, month_days

_TIME_EVENT_NS = uuid.UUID("1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c")
_WIDEST_OFFSET = timedelta(hours=14)  # local dates anywhere on Earth are within UTC ± 14 h


def time_event_id(trigger_id: uuid.UUID, contact_id: uuid.UUID, occurrence: str) -> uuid.UUID:
    """The same (trigger, contact, occurrence) always gets the same event id: re-emitting after a
    restart can never enroll twice."""
    return uuid.uuid5(_TIME_EVENT_NS, f"{trigger_id}/{contact_id}/{occurrence}")


def time_event(
    spec: TriggerSpec, contact_id: uuid.UUID, occurrence: Occurrence, date_field: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "contact_id": str(contact_id),
        "trigger_id": str(spec.trigger_id),
        "occurrence": occurrence.key,
        "scheduled_for": occurrence.at.isoformat(),
    }
    if date_field:
        data["date_field"] = date_field
    return {
        "event_id": str(time_event_id(spec.trigger_id, contact_id, occurrence.key)),
        "event_type": spec.event.event_type,
        "account_id": str(spec.account_id),
        "timestamp": occurrence.at.isoformat(),
        "data": data,
        "metadata": {"source": "scheduler", "depth": 0},
    }


def utc_days(start: datetime, end: datetime) -> list[date]:
    """Every date that is local somewhere on Earth during (start, end]."""
    first = (start - _WIDEST_OFFSET).astimezone(UTC).date()
    last = (end + _WIDEST_OFFSET).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def lookup_keys(spec: TriggerSpec, start: datetime, end: datetime) -> dict[str, Any]:
    """What to ask contact_dates for: yearly month-days, or (scheduled dates) the dates that,
    offset, fall in the window."""
    days = utc_days(start, end)
    if spec.event.name == "scheduled_date":
        offset = timedelta(days=spec.settings.offset_days or 0)
        return {"days": [d - offset for d in days]}
    return {"month_days": sorted(month_days(days))}


@lru_cache(maxsize=1024)
def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The contact's own timezone when it names a real one, else the account's."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")
