"""Trigger settings: defaults, ranges, time-trigger settings (docs/contract.md §4, §7)."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines import errors
from pipelines.catalog import BY_NAME
from pipelines.errors import ConfigError
from pipelines.settings import parse_settings


def test_defaults_for_a_business_event() -> None:
    settings = parse_settings(None, BY_NAME["tag_added"])
    assert settings.to_json() == {
        "enrollment_limit": "single",
        "reenroll_cooldown_seconds": 0,
        "respect_business_hours": False,
        "log_non_matches": False,
    }


def test_defaults_for_time_events() -> None:
    birthday = parse_settings({}, BY_NAME["birthday"]).to_json()
    assert birthday["date_field"] == "birthday"
    assert birthday["time_of_day"] == "09:00"
    assert birthday["catch_up_hours"] == 24
    scheduled = parse_settings({"date_field": "renewal_date"}, BY_NAME["scheduled_date"])
    assert scheduled.offset_days == 0
    every = parse_settings({"days_of_week": ["mon", "fri"]}, BY_NAME["recurring_schedule"])
    assert every.every == 1
    assert every.days_of_week == ("mon", "fri")


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("enrollment limit", "tag_added", {"enrollment_limit": "twice"}, "/settings/enrollment_limit"),
    (
        "cooldown on single",
        "tag_added",
        {"reenroll_cooldown_seconds": 60},
        "/settings/reenroll_cooldown_seconds",
    ),
    (
        "negative cooldown",
        "tag_added",
        {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": -1},
        "/settings/reenroll_cooldown_seconds",
    ),
    ("flag not bool", "tag_added", {"log_non_matches": "yes"}, "/settings"),
    ("unknown key", "tag_added", {"colour": "red"}, "/settings/colour"),
    ("time key on business event", "tag_added", {"time_of_day": "09:00"}, "/settings/time_of_day"),
    ("anniversary without field", "anniversary", {}, "/settings/date_field"),
    ("bad time of day", "birthday", {"time_of_day": "25:00"}, "/settings/time_of_day"),
    (
        "offset too large",
        "scheduled_date",
        {"date_field": "d", "offset_days": 99999},
        "/settings/offset_days",
    ),
    (
        "offset not int",
        "scheduled_date",
        {"date_field": "d", "offset_days": 1.5},
        "/settings/offset_days",
    ),
    ("catch up too long", "birthday", {"catch_up_hours": 1000}, "/settings/catch_up_hours"),
    ("recurring without schedule", "recurring_schedule", {}, "/settings"),
    ("cron and every", "recurring_schedule", {"cron": "0 9 * * *", "every": 2}, "/settings"),
    ("cron 4 fields", "recurring_schedule", {"cron": "0 9 * *"}, "/settings/cron"),
    ("cron minute 60", "recurring_schedule", {"cron": "60 9 * * *"}, "/settings/cron"),
    ("cron junk", "recurring_schedule", {"cron": "0 9 * * mon;rm"}, "/settings/cron"),
    ("bad weekday", "recurring_schedule", {"days_of_week": ["funday"]}, "/settings/days_of_week"),
    ("every zero", "recurring_schedule", {"every": 0}, "/settings/every"),
    ("settings not object", "tag_added", ["single"], "/settings"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("event", "raw", "pointer"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_settings_are_refused(event: str, raw: Any, pointer: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, BY_NAME[event])
    assert caught.value.title == errors.INVALID_SETTINGS
    assert caught.value.pointer == pointer


@pytest.mark.parametrize("cron", ["0 9 * * *", "*/15 * * * *", "0 9 1,15 * 1-5", "30 8 * 1-12/3 0"])
def test_cron_expressions_accepted(cron: str) -> None:
    assert parse_settings({"cron": cron}, BY_NAME["recurring_schedule"]).cron == cron


BAD_CRON = [
    "*/0 * * * *",
    "5-1 * * * *",
    "0 24 * * *",
    "0 9 0 * *",
    "0 9 * 13 *",
    "0 9 * * 8",
    "1-2-3 * * * *",
    "0 9 * * */99",
]


@pytest.mark.parametrize("cron", BAD_CRON)
def test_cron_expressions_refused(cron: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"cron": cron}, BY_NAME["recurring_schedule"])
    assert caught.value.pointer == "/settings/cron"


def test_null_settings_mean_the_default() -> None:
    settings = parse_settings(
        {"catch_up_hours": None, "offset_days": None, "date_field": "renewal_date"},
        BY_NAME["scheduled_date"],
    )
    assert settings.catch_up_hours == 24
    assert settings.offset_days == 0


def test_time_trigger_timezone_setting_is_checked() -> None:
    ok = parse_settings({"timezone": "Asia/Tokyo"}, BY_NAME["birthday"])
    assert ok.timezone == "Asia/Tokyo"
    with pytest.raises(ConfigError) as caught:
        parse_settings({"timezone": "Mars/Olympus"}, BY_NAME["birthday"])
    assert caught.value.pointer == "/settings/timezone"
    with pytest.raises(ConfigError):
        parse_settings({"timezone": "UTC"}, BY_NAME["tag_added"])
