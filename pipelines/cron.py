"""5-field cron expressions: minute hour day-of-month month day-of-week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

_CRON_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday (Python's)
    any_day: bool
    any_weekday: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, day.weekday() in self.weekdays
        if self.any_day or self.any_weekday:  # cron: both restricted means either may match
            return in_month and in_week
        return in_month or in_week


def parse_cron(expr: str) -> Cron:
    """A 5-field cron expression; ValueError if it is not one (see settings.check_cron)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError("cron needs 5 fields")
    sets = [
        _cron_field(text, low, high) for text, (low, high) in zip(fields, _CRON_BOUNDS, strict=True)
    ]
    weekdays = frozenset((d - 1) % 7 for d in sets[4])  # cron 0/7 = Sunday, 1 = Monday
    return Cron(sets[0], sets[1], sets[2], sets[3], weekdays, fields[2] == "*", fields[4] == "*")


def _cron_field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = int(span)
            last = high if step_text else first
        if not 1 <= step <= high or not low <= first <= last <= high:
            raise ValueError(f"bad cron field {text!r}")
        values.update(range(first, last + 1, step))
    return frozenset(values)
