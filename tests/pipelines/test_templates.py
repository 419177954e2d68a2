"""Trigger templates: each expands into a valid configuration; overrides are checked."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines import errors
from pipelines.catalog import BY_NAME
from pipelines.errors import ConfigError
from pipelines.templates import BY_ID, RESERVED_OVERRIDES, TEMPLATES, describe, expand
from pipelines.triggers import TriggerConfig, validate_trigger

IDS = [t.id for t in TEMPLATES]


def validated(config: dict[str, Any]) -> TriggerConfig:
    return validate_trigger(
        config["trigger_type"], config["trigger_event"], config["filters"], config["settings"]
    )


def examples(template_id: str) -> dict[str, Any]:
    return {p.name: p.example for p in BY_ID[template_id].parameters if p.example is not None}


def test_the_curated_set_is_about_ten_distinct_templates() -> None:
    assert len(TEMPLATES) >= 10
    assert len(BY_ID) == len(TEMPLATES)
    for t in TEMPLATES:
        assert t.name
        assert t.description
        assert BY_NAME[t.trigger_event].category == t.trigger_type


@pytest.mark.parametrize("template_id", IDS)
def test_every_template_expands_to_a_valid_trigger(template_id: str) -> None:
    config = validated(expand(template_id))
    assert config.event.name == BY_ID[template_id].trigger_event


@pytest.mark.parametrize("template_id", IDS)
def test_every_template_with_its_example_values_is_valid(template_id: str) -> None:
    given = examples(template_id)
    config = expand(template_id, given)
    validated(config)
    values = [c.get("value") for c in config["filters"]["conditions"]]
    for name, value in given.items():
        assert value in values or value in config["settings"].values(), name


@pytest.mark.parametrize("template_id", IDS)
def test_parameters_have_unique_names_that_are_not_reserved(template_id: str) -> None:
    names = [p.name for p in BY_ID[template_id].parameters]
    assert names, "a template without parameters has nothing to fill in"
    assert len(set(names)) == len(names)
    assert not set(names) & set(RESERVED_OVERRIDES)


def test_a_parameter_goes_where_it_points() -> None:
    config = expand("hot_lead_tag_added", {"tag": "vip"})
    assert config == {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": {
            "logic": "AND",
            "conditions": [{"field": "tag", "operator": "equals", "value": "vip"}],
        },
        "settings": {"enrollment_limit": "single"},
    }


def test_a_null_default_leaves_its_condition_out_until_given() -> None:
    assert expand("form_follow_up")["filters"]["conditions"] == []
    given = expand("form_follow_up", {"form_id": "quote"})["filters"]["conditions"]
    assert given == [{"field": "form_id", "operator": "equals", "value": "quote"}]


def test_null_override_drops_a_condition_or_resets_a_setting() -> None:
    config = expand("form_follow_up", {"cooldown_seconds": None})
    assert "reenroll_cooldown_seconds" not in config["settings"]
    assert validated(config).settings.reenroll_cooldown_seconds == 0
    config = expand("hot_lead_tag_added", {"tag": None})
    assert config["filters"]["conditions"] == []


def test_setting_parameters_and_settings_merge() -> None:
    config = expand(
        "renewal_reminder",
        {"offset_days": -14, "settings": {"time_of_day": "08:30", "timezone": "Europe/Berlin"}},
    )
    settings = validated(config).settings
    assert settings.offset_days == -14
    assert settings.date_field == "custom_fields.renewal_date"
    assert settings.time_of_day == "08:30"  # `settings` wins over the parameter's default
    assert settings.timezone == "Europe/Berlin"
    assert settings.enrollment_limit == "multiple"


def test_extra_conditions_are_anded_with_the_template() -> None:
    extra = {"field": "contact.tags", "operator": "contains", "value": "vip"}
    config = expand("hot_lead_tag_added", {"conditions": [extra]})
    assert config["filters"]["logic"] == "AND"
    assert config["filters"]["conditions"][-1] == extra
    assert len(validated(config).filters.conditions) == 2


def test_expanding_never_changes_the_template() -> None:
    first = expand("deal_lost_win_back")
    first["filters"]["conditions"][0]["value"].append("changed")
    first["settings"]["enrollment_limit"] = "changed"
    assert expand("deal_lost_win_back") == describe(BY_ID["deal_lost_win_back"])["trigger"]
    assert expand("deal_lost_win_back")["filters"]["conditions"][0]["value"] == [
        "spam",
        "duplicate",
    ]


def test_unknown_template_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        expand("make_coffee")
    assert caught.value.title == errors.UNKNOWN_TEMPLATE
    assert caught.value.status == 422
    assert caught.value.pointer == "/template"
    assert "hot_lead_tag_added" in caught.value.detail


@pytest.mark.parametrize(
    ("overrides", "title", "pointer"),
    [
        ({"colour": "red"}, errors.INVALID_TEMPLATE_OVERRIDE, "/overrides/colour"),
        (
            {"trigger_event": "tag_removed"},
            errors.INVALID_TEMPLATE_OVERRIDE,
            "/overrides/trigger_event",
        ),
        ({"conditions": {"field": "tag"}}, errors.INVALID_FILTER, "/overrides/conditions"),
        ({"settings": ["single"]}, errors.INVALID_SETTINGS, "/overrides/settings"),
    ],
)
def test_malformed_overrides_are_refused(
    overrides: dict[str, Any], title: str, pointer: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        expand("hot_lead_tag_added", overrides)
    assert caught.value.title == title
    assert caught.value.pointer == pointer


@pytest.mark.parametrize(
    ("template_id", "overrides", "title"),
    [
        (
            "hot_lead_tag_added",
            {"conditions": [{"field": "tag", "operator": "resembles", "value": "x"}]},
            errors.INVALID_OPERATOR,
        ),
        ("deal_lost_win_back", {"min_deal_value": "a lot"}, errors.INVALID_VALUE),
        ("deal_lost_win_back", {"ignored_reasons": []}, errors.INVALID_VALUE),
        ("birthday_greeting", {"time_of_day": "9am"}, errors.INVALID_SETTINGS),
        ("renewal_reminder", {"date_field": None}, errors.INVALID_SETTINGS),
        ("form_follow_up", {"settings": {"enrollment_limit": "always"}}, errors.INVALID_SETTINGS),
        (
            "hot_lead_tag_added",
            {
                "conditions": [
                    {"field": "tag", "operator": "equals", "value": str(i)} for i in range(20)
                ]
            },
            errors.TOO_MANY_CONDITIONS,
        ),
    ],
)
def test_bad_override_values_fail_the_normal_validation(
    template_id: str, overrides: dict[str, Any], title: str
) -> None:
    config = expand(template_id, overrides)
    with pytest.raises(ConfigError) as caught:
        validated(config)
    assert caught.value.title == title


def test_describe_lists_the_default_trigger_and_where_parameters_go() -> None:
    described = describe(BY_ID["form_follow_up"])
    assert described["trigger"] == expand("form_follow_up")
    params = {p["name"]: p for p in described["parameters"]}
    assert params["form_id"] == {
        "name": "form_id",
        "description": params["form_id"]["description"],
        "default": None,
        "example": "quote-request",
        "target": "filter",
        "field": "form_id",
        "operator": "equals",
    }
    assert params["cooldown_seconds"]["target"] == "setting"
    assert params["cooldown_seconds"]["field"] == "reenroll_cooldown_seconds"
    assert params["cooldown_seconds"]["default"] == 3600
