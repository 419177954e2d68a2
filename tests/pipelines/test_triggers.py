"""Validation of trigger configurations: REQ-U-001 / REQ-N-001 (nothing invalid is accepted)."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines import errors
from pipelines.errors import ConfigError
from pipelines.examples import REALISTIC, all_of, any_of, cond
from pipelines.filters import Condition, Group, count_conditions, to_json
from pipelines.triggers import validate_trigger


@pytest.mark.parametrize("event", sorted(REALISTIC))
def test_realistic_configuration_is_valid_and_round_trips(event: str) -> None:
    trigger_type, filters, settings = REALISTIC[event]
    config = validate_trigger(trigger_type, event, filters, settings)
    assert config.event.name == event
    assert to_json(config.filters) == filters
    again = validate_trigger(
        trigger_type, event, to_json(config.filters), config.settings.to_json()
    )
    assert again == config


def test_nested_groups_parse_into_dataclasses() -> None:
    config = validate_trigger("form", "form_submitted", REALISTIC["form_submitted"][1], None)
    assert config.filters == Group(
        "AND",
        (
            Condition("form_id", "equals", "lead-form"),
            Group(
                "OR",
                (
                    Condition("budget", "greater_than", 10000),
                    Condition("contact.tags", "contains", "vip"),
                ),
            ),
        ),
    )


@pytest.mark.parametrize("filters", [None, {}, {"logic": "AND", "conditions": []}])
def test_no_conditions_means_every_event_matches(filters: Any) -> None:
    config = validate_trigger("contact", "tag_added", filters, None)
    assert config.filters == Group("AND", ())


def test_logic_is_case_insensitive_and_defaults_to_and() -> None:
    config = validate_trigger(
        "contact", "tag_added", {"conditions": [cond("tag", "equals", "a")]}, None
    )
    assert config.filters.logic == "AND"
    filters = {"logic": "or", "conditions": [cond("tag", "equals", "a")]}
    config = validate_trigger("contact", "tag_added", filters, None)
    assert config.filters.logic == "OR"


def twenty_one() -> dict[str, Any]:
    return all_of(*(cond("tag", "equals", f"t{i}") for i in range(21)))


def spread_21() -> dict[str, Any]:
    """21 leaves spread over groups so that no one group has more than 20 entries."""
    return all_of(
        any_of(*(cond("tag", "equals", f"a{i}") for i in range(11))),
        any_of(*(cond("tag", "equals", f"b{i}") for i in range(10))),
    )


def depth(n: int) -> dict[str, Any]:
    node: dict[str, Any] = cond("tag", "equals", "x")
    for _ in range(n):
        node = all_of(node)
    return node


INVALID: list[tuple[str, str, str, Any, Any, str, str]] = [
    # (id, trigger_type, trigger_event, filters, settings, title, pointer)
    (
        "unknown type",
        "webinar",
        "tag_added",
        None,
        None,
        errors.INVALID_TRIGGER_TYPE,
        "/trigger_type",
    ),
    (
        "unknown event",
        "contact",
        "tag_exploded",
        None,
        None,
        errors.INVALID_TRIGGER_EVENT,
        "/trigger_event",
    ),
    (
        "event of other category",
        "form",
        "tag_added",
        None,
        None,
        errors.EVENT_CATEGORY_MISMATCH,
        "/trigger_event",
    ),
    (
        "unknown operator",
        "contact",
        "tag_added",
        all_of(cond("tag", "sounds_like", "x")),
        None,
        errors.INVALID_OPERATOR,
        "/filters/conditions/0/operator",
    ),
    (
        "operator not text",
        "contact",
        "tag_added",
        all_of({"field": "tag", "operator": 3, "value": "x"}),
        None,
        errors.INVALID_OPERATOR,
        "/filters/conditions/0/operator",
    ),
    (
        "changed on non-update event",
        "contact",
        "tag_added",
        all_of(cond("tag", "changed")),
        None,
        errors.INVALID_OPERATOR,
        "/filters/conditions/0/operator",
    ),
    (
        "21 conditions in one group",
        "contact",
        "tag_added",
        twenty_one(),
        None,
        errors.TOO_MANY_CONDITIONS,
        "/filters/conditions",
    ),
    (
        "21 conditions over groups",
        "contact",
        "tag_added",
        spread_21(),
        None,
        errors.TOO_MANY_CONDITIONS,
        "/filters",
    ),
    (
        "depth 4",
        "contact",
        "tag_added",
        depth(4),
        None,
        errors.TOO_DEEP,
        "/filters/conditions/0/conditions/0/conditions/0",
    ),
    (
        "greater_than text",
        "payment",
        "payment_received",
        all_of(cond("amount", "greater_than", "lots")),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "greater_than a date with no UTC time",
        "payment",
        "payment_received",
        all_of(cond("amount", "greater_than", "0001-01-01T00:00:00+14:00")),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "greater_than bool",
        "payment",
        "payment_received",
        all_of(cond("amount", "greater_than", True)),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "in scalar",
        "contact",
        "tag_added",
        all_of(cond("tag", "in", "vip")),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "in empty list",
        "contact",
        "tag_added",
        all_of(cond("tag", "in", [])),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "in nested list",
        "contact",
        "tag_added",
        all_of(cond("tag", "in", [["a"]])),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "equals object",
        "contact",
        "tag_added",
        all_of(cond("tag", "equals", {"a": 1})),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "contains bool",
        "contact",
        "tag_added",
        all_of(cond("tag", "contains", False)),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "is_empty with value",
        "contact",
        "tag_added",
        all_of({"field": "tag", "operator": "is_empty", "value": "x"}),
        None,
        errors.INVALID_VALUE,
        "/filters/conditions/0/value",
    ),
    (
        "equals without value",
        "contact",
        "tag_added",
        all_of({"field": "tag", "operator": "equals"}),
        None,
        errors.MISSING_FIELD,
        "/filters/conditions/0/value",
    ),
    (
        "condition without field",
        "contact",
        "tag_added",
        all_of({"operator": "is_empty"}),
        None,
        errors.MISSING_FIELD,
        "/filters/conditions/0/field",
    ),
    (
        "bad field path",
        "contact",
        "tag_added",
        all_of(cond("tag..x", "is_empty")),
        None,
        errors.INVALID_FIELD,
        "/filters/conditions/0/field",
    ),
    (
        "bare prefix",
        "contact",
        "tag_added",
        all_of(cond("contact", "is_empty")),
        None,
        errors.INVALID_FIELD,
        "/filters/conditions/0/field",
    ),
    (
        "event field the event lacks",
        "contact",
        "tag_added",
        all_of(cond("event.form_id", "is_empty")),
        None,
        errors.INVALID_FIELD,
        "/filters/conditions/0/field",
    ),
    (
        "bad logic",
        "contact",
        "tag_added",
        {"logic": "XOR", "conditions": []},
        None,
        errors.INVALID_FILTER,
        "/filters/logic",
    ),
    (
        "conditions not a list",
        "contact",
        "tag_added",
        {"logic": "AND", "conditions": {}},
        None,
        errors.INVALID_FILTER,
        "/filters/conditions",
    ),
    (
        "filters not an object",
        "contact",
        "tag_added",
        [cond("tag", "is_empty")],
        None,
        errors.INVALID_FILTER,
        "/filters",
    ),
    (
        "unknown condition key",
        "contact",
        "tag_added",
        all_of({"field": "tag", "operator": "is_empty", "negate": True}),
        None,
        errors.INVALID_FILTER,
        "/filters/conditions/0",
    ),
    (
        "empty nested group",
        "contact",
        "tag_added",
        all_of(any_of()),
        None,
        errors.INVALID_FILTER,
        "/filters/conditions/0",
    ),
    (
        "condition not an object",
        "contact",
        "tag_added",
        all_of("tag = vip"),
        None,  # type: ignore[arg-type]
        errors.INVALID_FILTER,
        "/filters/conditions/0",
    ),
]


@pytest.mark.parametrize(
    ("trigger_type", "trigger_event", "filters", "settings", "title", "pointer"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_configuration_is_refused_with_its_title(
    trigger_type: str, trigger_event: str, filters: Any, settings: Any, title: str, pointer: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_trigger(trigger_type, trigger_event, filters, settings)
    assert caught.value.title == title
    assert caught.value.pointer == pointer
    assert caught.value.detail


def test_twenty_conditions_are_allowed() -> None:
    filters = all_of(*(cond("tag", "equals", f"t{i}") for i in range(20)))
    config = validate_trigger("contact", "tag_added", filters, None)
    assert count_conditions(config.filters) == 20


def test_depth_three_is_allowed() -> None:
    config = validate_trigger("contact", "tag_added", depth(3), None)
    assert count_conditions(config.filters) == 1


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("greater_than", 10),
        ("greater_than", 9.5),
        ("greater_than", "15000"),
        ("less_than", "2026-01-31"),
        ("less_than_or_equal", "2026-01-31T10:00:00Z"),
        ("equals", True),
        ("not_equals", 0),
        ("in", ["a", 1, 2.5, False]),
        ("not_in", ["x"]),
        ("starts_with", "ab"),
        ("ends_with", "@example.com"),
        ("contains", 42),
        ("not_contains", "x"),
        ("is_empty", None),
        ("is_not_empty", None),
    ],
)
def test_value_types_per_operator_accepted(operator: str, value: Any) -> None:
    filters = all_of(cond("amount", operator, value))
    config = validate_trigger("payment", "payment_received", filters, None)
    (leaf,) = config.filters.conditions
    assert isinstance(leaf, Condition)
    assert leaf.operator == operator


@pytest.mark.parametrize("operator", ["changed", "changed_from", "changed_to"])
@pytest.mark.parametrize("event", ["contact_updated", "custom_field_changed"])
def test_change_operators_on_update_events(operator: str, event: str) -> None:
    value = None if operator == "changed" else "lead"
    config = validate_trigger(
        "contact", event, all_of(cond("contact.status", operator, value)), None
    )
    assert count_conditions(config.filters) == 1


@pytest.mark.parametrize(
    "field",
    [
        "form_id",
        "event.form_data.budget",
        "budget",
        "contact.custom_fields.plan",
        "previous.status",
        "event.contact_id",
    ],
)
def test_field_paths_accepted(field: str) -> None:
    config = validate_trigger("form", "form_submitted", all_of(cond(field, "is_not_empty")), None)
    assert count_conditions(config.filters) == 1
