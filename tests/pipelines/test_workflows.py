"""Workflow status transitions and declared actions."""

from __future__ import annotations

import pytest

from pipelines import errors
from pipelines.account import check_business_hours, check_timezone
from pipelines.errors import ConfigError
from pipelines.workflows import check_actions, check_transition


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("draft", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "draft"),
        ("paused", "draft"),
        ("draft", "draft"),
        ("active", "active"),
    ],
)
def test_allowed_transitions(current: str, wanted: str) -> None:
    check_transition(current, wanted)


@pytest.mark.parametrize(("current", "wanted"), [("draft", "paused")])
def test_refused_transitions(current: str, wanted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_transition(current, wanted)
    assert caught.value.title == errors.INVALID_STATUS_TRANSITION
    assert caught.value.status == 409


def test_unknown_status_is_a_bad_request() -> None:
    with pytest.raises(ConfigError) as caught:
        check_transition("draft", "archived")
    assert caught.value.status == 400


def test_actions_need_their_fields() -> None:
    assert check_actions([{"type": "add_tag", "tag": "vip"}]) == [{"type": "add_tag", "tag": "vip"}]
    with pytest.raises(ConfigError, match="needs 'tag'"):
        check_actions([{"type": "add_tag"}])
    with pytest.raises(ConfigError, match="not an action type"):
        check_actions([{"type": "launch_rocket"}])


def test_timezone_and_business_hours() -> None:
    assert check_timezone("America/New_York") == "America/New_York"
    with pytest.raises(ConfigError, match="IANA"):
        check_timezone("Mars/Olympus")
    hours = {"days": ["fri", "mon"], "start": "08:00", "end": "18:00"}
    assert check_business_hours(hours)["days"] == ["mon", "fri"]
    with pytest.raises(ConfigError, match="before end"):
        check_business_hours({"days": ["mon"], "start": "18:00", "end": "08:00"})
    with pytest.raises(ConfigError, match="HH:MM"):
        check_business_hours({"days": ["mon"], "start": "8am", "end": "18:00"})
    with pytest.raises(ConfigError, match="non-empty"):
        check_business_hours({"days": [], "start": "08:00", "end": "18:00"})
