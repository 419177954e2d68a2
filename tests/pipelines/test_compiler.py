"""The filter compiler: docs/contract.md §4 filter semantics (REQ-E-*), and explain() for
REQ-O-002."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from pipelines.catalog import BY_NAME, TRIGGER_EVENTS, UPDATE_EVENTS, TriggerEvent
from pipelines.compiler import EventView, compile_filters, explain, normalize_key, required_leaves
from pipelines.errors import ConfigError
from pipelines.examples import REALISTIC
from pipelines.filters import EMPTY, OPERATORS, Condition, Group, parse_filters, to_json
from pipelines.triggers import validate_trigger

MISSING = object()


def verdict(
    event: str,
    filters: dict[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    contact: Mapping[str, Any] | None = None,
    previous: Mapping[str, Any] | None = None,
) -> bool:
    """Compile and run a validated filter; explain() must agree with the predicate."""
    trigger_event = BY_NAME[event]
    group = parse_filters(filters, trigger_event)
    view = EventView(data or {}, contact or {}, previous or {})
    matched = compile_filters(group, trigger_event)(view)
    assert isinstance(matched, bool)
    assert explain(group, trigger_event, view)[0] is matched
    return matched


def leaf(field: str, operator: str, value: Any = MISSING) -> dict[str, Any]:
    raw: dict[str, Any] = {"field": field, "operator": operator}
    if value is not MISSING:
        raw["value"] = value
    return {"logic": "AND", "conditions": [raw]}


# (operator, configured value, actual contact value or MISSING, expected)
OPERATOR_CASES: list[tuple[str, Any, Any, bool]] = [
    ("equals", "vip", "VIP ", True),
    ("equals", "vip", "vipx", False),
    ("equals", "Straße", "STRASSE", True),
    ("equals", 15000, "15000", True),
    ("equals", "15000", 15000, True),
    ("equals", 1, "1.0", True),
    ("equals", "1.0", 1, True),
    ("equals", 0.5, ".5", True),
    ("equals", True, True, True),
    ("equals", True, "true", True),
    ("equals", "TRUE", True, True),
    ("equals", False, "False ", True),
    ("equals", True, 1, False),
    ("equals", 1, True, False),
    ("equals", "vip", ["lead", "VIP"], True),
    ("equals", "vip", ["lead"], False),
    ("equals", 7, ["7"], True),
    ("equals", "x", MISSING, False),
    ("equals", "x", None, False),
    ("equals", "x", "", False),
    ("equals", "x", "   ", False),
    ("equals", "x", [], False),
    ("equals", "x", {}, False),
    ("equals", "x", {"x": 1}, False),
    ("not_equals", "vip", "VIP", False),
    ("not_equals", "vip", "lead", True),
    ("not_equals", "vip", MISSING, True),
    ("not_equals", "vip", "", True),
    ("not_equals", "vip", ["vip"], False),
    ("not_equals", 10, "10.0", False),
    ("contains", "pricing", "https://x.com/PRICING/plans", True),
    ("contains", "STOP", "please stop now", True),
    ("contains", "vip", ["VIP", "lead"], True),
    ("contains", "vi", ["vip"], False),
    ("contains", "500", 15000, True),
    ("contains", 15, "a15b", True),
    ("contains", "x", MISSING, False),
    ("contains", "x", "", False),
    ("contains", "x", {"x": 1}, False),
    ("not_contains", "stop", "STOP", False),
    ("not_contains", "stop", "go", True),
    ("not_contains", "stop", MISSING, True),
    ("not_contains", "vip", ["lead"], True),
    ("starts_with", "demo", " Demo call", True),
    ("starts_with", "demo", "call demo", False),
    ("starts_with", "lead-", ["customer", "LEAD-hot"], True),
    ("starts_with", "1", 123, True),
    ("starts_with", "demo", MISSING, False),
    ("ends_with", ".com", "A@B.COM", True),
    ("ends_with", ".com", "a@b.org", False),
    ("ends_with", ".com", "", False),
    ("greater_than", 10000, "15000", True),
    ("greater_than", "10000", 15000, True),
    ("greater_than", 10000, "9999", False),
    ("greater_than", 10000, 10000, False),
    ("greater_than", "99.50", "99.51", True),
    ("greater_than", -1, "-0.5", True),
    ("greater_than", "1e3", 1001, True),
    ("greater_than", 5, "abc", False),
    ("greater_than", 5, True, False),
    ("greater_than", 5, MISSING, False),
    ("greater_than", 5, [10], False),
    ("greater_than", 5, "2024-01-01", False),
    ("greater_than", "2024-01-01", 20240102, False),
    ("greater_than", "2024-01-01", "2024-02-01", True),
    ("greater_than", "2024-01-01", "2023-12-31T23:59:59Z", False),
    ("greater_than", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00+00:00", True),
    ("greater_than", "2024-01-01T10:00:00+02:00", "2024-01-01T09:00:00", True),
    ("greater_than", "2024-01-01T10:00:00", "2024-01-01T11:00:00+02:00", False),
    ("greater_than", "2024-01-01", "2024-01-01T23:00:00Z", False),
    ("greater_than_or_equal", "2024-01-01", "2024-01-01T23:00:00Z", True),
    ("greater_than_or_equal", 5000, "5000", True),
    ("greater_than_or_equal", 5000, 4999.99, False),
    ("less_than", 100, "99", True),
    ("less_than", 100, "100", False),
    ("less_than", "2024-06-01", "2024-05-31", True),
    ("less_than", 100, MISSING, False),
    ("less_than_or_equal", 6, "6", True),
    ("less_than_or_equal", 6, 6.5, False),
    ("less_than_or_equal", "2024-01-01T00:00:00Z", "2024-01-01", True),
    ("in", ["customer", "subscriber"], "Customer", True),
    ("in", ["customer", "subscriber"], "lead", False),
    ("in", [1, 2], "2", True),
    ("in", ["a", "b"], ["x", "B"], True),
    ("in", ["a"], ["x"], False),
    ("in", ["a"], MISSING, False),
    ("in", [True], "true", True),
    ("not_in", ["spam", "duplicate"], "SPAM", False),
    ("not_in", ["spam"], "price", True),
    ("not_in", ["spam"], MISSING, True),
    ("not_in", ["a"], ["x", "A"], False),
    ("is_empty", MISSING, MISSING, True),
    ("is_empty", MISSING, None, True),
    ("is_empty", MISSING, "", True),
    ("is_empty", MISSING, " \t", True),
    ("is_empty", MISSING, [], True),
    ("is_empty", MISSING, {}, True),
    ("is_empty", MISSING, "x", False),
    ("is_empty", MISSING, 0, False),
    ("is_empty", MISSING, False, False),
    ("is_empty", MISSING, ["a"], False),
    ("is_not_empty", MISSING, MISSING, False),
    ("is_not_empty", MISSING, "  ", False),
    ("is_not_empty", MISSING, "a@b.com", True),
    ("is_not_empty", MISSING, 0, True),
]


@pytest.mark.parametrize(("operator", "value", "actual", "expected"), OPERATOR_CASES)
def test_operator_semantics(operator: str, value: Any, actual: Any, expected: bool) -> None:
    """docs/contract.md §4 operators: case-insensitive text, numeric strings as numbers, ISO dates
    as dates, lists (tags) by element, and a missing/empty field matching only is_empty and
    not_*."""
    contact = {} if actual is MISSING else {"f": actual}
    assert verdict("deal_won", leaf("contact.f", operator, value), contact=contact) is expected


@pytest.mark.parametrize(
    ("event", "field", "data", "contact", "previous", "expected"),
    [
        ("tag_added", "tag", {"tag": "x"}, {"tag": "y"}, {}, True),
        ("tag_added", "event.tag", {"tag": "x"}, {"tag": "y"}, {}, True),
        ("tag_added", "contact.tag", {"tag": "y"}, {"tag": "x"}, {}, True),
        ("tag_added", "contact.tag", {"tag": "x"}, {"tag": "y"}, {}, False),
        ("tag_added", "status", {"status": "y"}, {"status": "x"}, {}, True),
        ("tag_added", "previous.status", {}, {"status": "y"}, {"status": "x"}, True),
        ("tag_added", "contact_id", {"contact_id": "x"}, {"contact_id": "y"}, {}, True),
        ("deal_won", "deal_value", {"deal_value": "x"}, {"deal_value": "y"}, {}, True),
        ("form_submitted", "budget", {"form_data": {"budget": "x"}}, {"budget": "y"}, {}, True),
        ("form_submitted", "budget", {"form_data": {"other": 1}}, {"budget": "x"}, {}, True),
        ("form_submitted", "budget", {"form_data": {"budget": None}}, {"budget": "x"}, {}, False),
        ("form_submitted", "budget", {"form_data": "x"}, {"budget": "x"}, {}, True),
        ("form_submitted", "budget", {}, {"budget": "x"}, {}, True),
        (
            "form_submitted",
            "contact.budget",
            {"form_data": {"budget": "y"}},
            {"budget": "x"},
            {},
            True,
        ),
        ("form_submitted", "event.form_data.budget", {"form_data": {"budget": "x"}}, {}, {}, True),
        ("form_submitted", "a.b", {"form_data": {"a": {"b": "x"}}}, {"a": {"b": "y"}}, {}, True),
        ("survey_completed", "score", {"survey_data": {"score": "x"}}, {"score": "y"}, {}, True),
        ("survey_completed", "score", {"form_data": {"score": "y"}}, {"score": "x"}, {}, True),
        (
            "deal_won",
            "contact.custom_fields.region",
            {},
            {"custom_fields": {"region": "X"}},
            {},
            True,
        ),
        ("deal_won", "contact.custom_fields.region", {}, {"custom_fields": "x"}, {}, False),
        ("deal_won", "contact.a.b.c", {}, {"a": {"b": {"c": "x"}}}, {}, True),
        ("deal_won", "contact.tags.x", {}, {"tags": ["x"]}, {}, False),
    ],
)
def test_field_resolution(
    event: str,
    field: str,
    data: dict[str, Any],
    contact: dict[str, Any],
    previous: dict[str, Any],
    expected: bool,
) -> None:
    """docs/contract.md §4 fields: event./contact./previous. prefixes; an unqualified name is the
    event's field, else (forms, surveys) the submitted answer if present, else the contact's."""
    filters = leaf(field, "equals", "x")
    assert verdict(event, filters, data=data, contact=contact, previous=previous) is expected


@pytest.mark.parametrize(
    ("field", "operator", "value", "before", "after", "expected"),
    [
        ("contact.status", "changed", None, "lead", "customer", True),
        ("contact.status", "changed", None, "lead", "lead", False),
        ("contact.status", "changed", None, "Lead", "lead ", False),
        ("contact.status", "changed", None, "15000", 15000, False),
        ("contact.status", "changed", None, MISSING, "lead", True),
        ("contact.status", "changed", None, "lead", MISSING, True),
        ("contact.status", "changed", None, MISSING, MISSING, False),
        ("contact.status", "changed", None, "", MISSING, False),
        ("contact.tags", "changed", None, ["a", "b"], ["B", "a"], False),
        ("contact.tags", "changed", None, ["a"], ["a", "b"], True),
        ("status", "changed", None, "lead", "customer", True),
        ("previous.status", "changed", None, "lead", "customer", True),
        ("current_state.status", "changed", None, "lead", "customer", True),
        ("event.current_state.status", "changed", None, "lead", "customer", True),
        ("contact.status", "changed_from", "lead", "Lead", "customer", True),
        ("contact.status", "changed_from", "lead", "trial", "customer", False),
        ("contact.status", "changed_from", "lead", "lead", "lead", False),
        ("contact.status", "changed_to", "customer", "lead", "CUSTOMER", True),
        ("contact.status", "changed_to", "customer", "customer", "customer", False),
        ("contact.status", "changed_to", "customer", MISSING, "customer", True),
        ("contact.status", "changed_to", "customer", "lead", "trial", False),
        ("contact.tags", "changed_to", "vip", ["a"], ["a", "vip"], True),
        ("contact.score", "changed_to", 80, 79, "80", True),
    ],
)
def test_change_operators_on_contact_updated(
    field: str, operator: str, value: Any, before: Any, after: Any, expected: bool
) -> None:
    """docs/contract.md §4 changed / changed_from / changed_to compare the previous and current
    contact."""
    path = field.rsplit(".", 1)[-1]
    previous = {} if before is MISSING else {path: before}
    current = {} if after is MISSING else {path: after}
    data = {"previous_state": previous, "current_state": current}
    filters = leaf(field, operator, MISSING if value is None else value)
    matched = verdict("contact_updated", filters, data=data, contact=current, previous=previous)
    assert matched is expected


def values(previous_value: Any, field_value: Any) -> dict[str, Any]:
    return {"previous_value": previous_value, "field_value": field_value}


@pytest.mark.parametrize(
    ("field", "operator", "value", "data", "previous", "contact", "expected"),
    [
        ("field_value", "changed", None, values(10, 90), {}, {}, True),
        ("field_value", "changed", None, values(10, "10"), {}, {}, False),
        ("event.field_value", "changed_to", 90, values(1, "90"), {}, {}, True),
        ("field_value", "changed_from", 10, values("10", 11), {}, {}, True),
        ("field_value", "changed_from", 10, values(9, 11), {}, {}, False),
        ("field_value", "changed", None, {"field_value": "x"}, {}, {}, True),
        (
            "custom_fields.score",
            "changed",
            None,
            {"field_value": 5},
            {"custom_fields": {"score": 5}},
            {"custom_fields": {"score": 6}},
            True,
        ),
        (
            "contact.custom_fields.score",
            "changed",
            None,
            values(1, 2),
            {"custom_fields": {"score": 5}},
            {"custom_fields": {"score": 5}},
            False,
        ),
    ],
)
def test_change_operators_on_custom_field_changed(
    field: str,
    operator: str,
    value: Any,
    data: dict[str, Any],
    previous: dict[str, Any],
    contact: dict[str, Any],
    expected: bool,
) -> None:
    """`field_value` compares the event's previous_value and field_value; other paths compare
    the previous and current contact."""
    filters = leaf(field, operator, MISSING if value is None else value)
    matched = verdict(
        "custom_field_changed", filters, data=data, contact=contact, previous=previous
    )
    assert matched is expected


FORM = REALISTIC["form_submitted"][1]  # form_id = lead-form AND (budget > 10000 OR tags has vip)


@pytest.mark.parametrize(
    ("data", "contact", "expected"),
    [
        ({"form_id": "lead-form", "form_data": {"budget": "15000"}}, {}, True),
        ({"form_id": "LEAD-FORM", "form_data": {"budget": 9000}}, {"tags": ["VIP"]}, True),
        ({"form_id": "lead-form", "form_data": {"budget": 9000}}, {"tags": ["lead"]}, False),
        ({"form_id": "other", "form_data": {"budget": 20000}}, {"tags": ["vip"]}, False),
        ({"form_data": {"budget": 20000}}, {}, False),
        ({"form_id": "lead-form"}, {"budget": 20000}, True),
    ],
)
def test_nested_and_or_groups(
    data: dict[str, Any], contact: dict[str, Any], expected: bool
) -> None:
    assert verdict("form_submitted", FORM, data=data, contact=contact) is expected


@pytest.mark.parametrize("logic", ["AND", "OR"])
def test_empty_root_group_matches_every_event(logic: str) -> None:
    """docs/contract.md §4: no conditions means every event of that type matches."""
    group = Group("AND" if logic == "AND" else "OR", ())
    event = BY_NAME["tag_added"]
    view = EventView({}, {}, {})
    assert compile_filters(group, event)(view) is True
    assert explain(group, event, view) == (True, {"logic": logic, "conditions": [], "passed": True})


class Exploding(Mapping[str, Any]):
    """A contact whose every read fails, as a corrupt projection row might."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError(f"cannot read {key}")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 1


def test_predicate_errors_propagate_to_the_caller() -> None:
    event = BY_NAME["deal_won"]
    group = parse_filters(leaf("contact.status", "equals", "x"), event)
    with pytest.raises(RuntimeError, match="cannot read status"):
        compile_filters(group, event)(EventView({}, Exploding(), {}))


@pytest.mark.parametrize(
    ("logic", "first", "expected"),
    [("AND", "other", False), ("OR", "sales", True)],
)
def test_groups_short_circuit(logic: str, first: str, expected: bool) -> None:
    """The second condition reads the exploding contact; it must not be evaluated."""
    event = BY_NAME["deal_won"]
    group = Group(
        "AND" if logic == "AND" else "OR",
        (Condition("pipeline_id", "equals", "sales"), Condition("contact.x", "is_empty")),
    )
    view = EventView({"pipeline_id": first}, Exploding(), {})
    assert compile_filters(group, event)(view) is expected


@pytest.mark.parametrize(("first", "second"), [(1, True), (0, False), ("1", True), (1, "1")])
def test_shared_compiled_conditions_keep_values_of_different_types_apart(
    first: Any, second: Any
) -> None:
    """Equal conditions share one compiled closure; 1 == True in Python must not merge them."""
    event = BY_NAME["deal_won"]
    view = EventView({}, {"f": first}, {})
    for value in (first, second):
        group = Group("AND", (Condition("contact.f", "equals", value),))
        expected = normalize_key(value) == normalize_key(first)
        assert compile_filters(group, event)(view) is expected


def test_unknown_operator_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="unknown filter operator"):
        compile_filters(Group("AND", (Condition("x", "matches", "y"),)), BY_NAME["deal_won"])


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (15000, ("n", 15000)),
        ("15000", ("n", 15000)),
        (15000.0, ("n", 15000)),
        (" 1.5e3 ", ("n", 1500)),
        ("VIP ", ("s", "vip")),
        (True, ("b", True)),
        ("true", ("b", True)),
        ("False", ("b", False)),
        (None, None),
        ("", None),
        ("  ", None),
        ([], None),
        ({}, None),
    ],
)
def test_normalize_key_maps_equal_values_together(value: Any, key: Any) -> None:
    assert normalize_key(value) == key
    if key is not None:
        hash(normalize_key(value))


def test_normalize_key_keeps_booleans_apart_from_numbers() -> None:
    assert normalize_key(True) != normalize_key(1)
    assert normalize_key(0) != normalize_key(False)


def test_explain_annotates_every_node_with_actual_and_passed() -> None:
    """REQ-O-002: the test endpoint shows the filter tree with actual and passed per leaf."""
    event = BY_NAME["form_submitted"]
    group = parse_filters(FORM, event)
    view = EventView({"form_id": "lead-form", "form_data": {"budget": 500}}, {"tags": ["x"]}, {})
    matched, tree = explain(group, event, view)
    assert matched is False
    budget = {"field": "budget", "operator": "greater_than", "value": 10000}
    tags = {"field": "contact.tags", "operator": "contains", "value": "vip"}
    assert tree == {
        "logic": "AND",
        "passed": False,
        "conditions": [
            {
                "field": "form_id",
                "operator": "equals",
                "value": "lead-form",
                "actual": "lead-form",
                "passed": True,
            },
            {
                "logic": "OR",
                "passed": False,
                "conditions": [
                    {**budget, "actual": 500, "passed": False},
                    {**tags, "actual": ["x"], "passed": False},
                ],
            },
        ],
    }


def test_explain_shows_previous_and_current_for_change_operators() -> None:
    event = BY_NAME["contact_updated"]
    group = parse_filters(REALISTIC["contact_updated"][1], event)
    view = EventView({}, {"status": "customer"}, {"status": "lead"})
    matched, tree = explain(group, event, view)
    assert matched is True
    assert tree["conditions"][0] | {} == {
        "field": "contact.status",
        "operator": "changed_to",
        "value": "customer",
        "previous": "lead",
        "actual": "customer",
        "passed": True,
    }


def test_explain_output_is_json_safe() -> None:
    from datetime import date
    from uuid import uuid4

    event = BY_NAME["deal_won"]
    group = parse_filters(leaf("contact.f", "is_not_empty"), event)
    odd = {"f": {"when": date(2024, 1, 2), "id": uuid4(), "tags": ("a",), "nan": float("nan")}}
    _, tree = explain(group, event, EventView({}, odd, {}))
    json.dumps(tree, allow_nan=False)
    assert tree["conditions"][0]["actual"]["when"] == "2024-01-02"


# --- explain agrees with compile_filters on generated filters and events --------------------

VALUES: list[Any] = [
    "vip",
    "VIP ",
    "Lead",
    "customer",
    "lead-form",
    "sales",
    "pro",
    "",
    "  ",
    "15000",
    15000,
    "99.50",
    99.5,
    0,
    -3,
    "1e3",
    True,
    False,
    "true",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "2023-12-31T23:00:00+02:00",
    "https://x.com/pricing",
    "STOP please",
]
ACTUALS: list[Any] = [*VALUES, None, [], ["vip", "lead"], ["VIP"], [1, "2"], {}, {"a": 1}]
CONTACT_FIELDS = ["status", "tags", "email", "score", "custom_fields.region", "birthday"]


def _random_value(rng: random.Random, operator: str) -> Any:
    if operator in ("in", "not_in"):
        return rng.sample([v for v in VALUES if v != ""], rng.randint(1, 3))
    if operator.startswith(("greater", "less")):
        return rng.choice(["15000", 10000, 99.5, "-1", "2024-01-01", "2024-01-01T09:00:00Z"])
    if operator in ("contains", "not_contains", "starts_with", "ends_with"):
        return rng.choice([v for v in VALUES if isinstance(v, str) or type(v) is int])
    return rng.choice(VALUES)


def _random_field(rng: random.Random, event: TriggerEvent) -> str:
    own = [f for f in event.fields if not f.endswith(("_state", "_data"))]
    choices = [f"contact.{f}" for f in CONTACT_FIELDS] + [f"previous.{f}" for f in CONTACT_FIELDS]
    choices += own + [f"event.{f}" for f in own] + ["budget", "score", "status"]
    return rng.choice(choices)


def _random_condition(rng: random.Random, event: TriggerEvent) -> dict[str, Any]:
    operators = [o for o in OPERATORS if event.name in UPDATE_EVENTS or not o.startswith("changed")]
    operator = rng.choice(operators)
    raw: dict[str, Any] = {"field": _random_field(rng, event), "operator": operator}
    if operator not in ("is_empty", "is_not_empty", "changed"):
        raw["value"] = _random_value(rng, operator)
    return raw


def _random_group(rng: random.Random, event: TriggerEvent, depth: int) -> dict[str, Any]:
    conditions = [
        _random_group(rng, event, depth + 1)
        if depth < 3 and rng.random() < 0.25
        else _random_condition(rng, event)
        for _ in range(rng.randint(1, 4))
    ]
    return {"logic": rng.choice(["AND", "OR"]), "conditions": conditions}


def _random_doc(rng: random.Random, fields: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for field in fields:
        if rng.random() < 0.7:
            head, _, rest = field.partition(".")
            if rest:
                doc.setdefault(head, {})[rest] = rng.choice(ACTUALS)
            else:
                doc[head] = rng.choice(ACTUALS)
    return doc


def _random_view(rng: random.Random, event: TriggerEvent) -> EventView:
    data = _random_doc(rng, [f for f in event.fields if not f.endswith(("_state", "_data"))])
    if event.name in ("form_submitted", "survey_completed"):
        data[event.fields[1]] = _random_doc(rng, ["budget", "score", "status"])
    data["previous_value"] = rng.choice(ACTUALS)
    fields = [*CONTACT_FIELDS, "budget", "score"]
    return EventView(data, _random_doc(rng, fields), _random_doc(rng, fields))


@pytest.mark.parametrize("event", [e.name for e in TRIGGER_EVENTS])
def test_explain_agrees_with_compiled_predicate_on_generated_cases(event: str) -> None:
    """REQ-O-002: the explanation's verdict is the matcher's verdict, for any filter and event."""
    rng = random.Random(f"explain-{event}")
    trigger_event = BY_NAME[event]
    groups = [parse_filters(REALISTIC[event][1], trigger_event), EMPTY]
    groups += [
        parse_filters(_random_group(rng, trigger_event, 1), trigger_event) for _ in range(60)
    ]
    matched = 0
    for group in groups:
        predicate = compile_filters(group, trigger_event)
        for _ in range(25):
            view = _random_view(rng, trigger_event)
            verdict_, tree = explain(group, trigger_event, view)
            assert verdict_ is predicate(view), (to_json(group), view)
            assert tree["passed"] is verdict_
            json.dumps(tree, allow_nan=False)
            matched += verdict_
    assert 0 < matched < len(groups) * 25  # the generator exercises both outcomes


# --- a residual predicate agrees with the whole one wherever its leaf holds -------------------


def _outcome(predicate: Callable[[EventView], bool], view: EventView) -> object:
    try:
        return predicate(view)
    except Exception as exc:  # both must raise alike
        return type(exc)


@pytest.mark.parametrize("event", [e.name for e in TRIGGER_EVENTS])
def test_residual_agrees_with_the_whole_filter_where_its_leaf_holds(event: str) -> None:
    """compile_filters(..., established=leaf) skips a required leaf; wherever that leaf holds,
    it must give the whole filter's verdict, and it is shared by alike residuals."""
    rng = random.Random(f"residual-{event}")
    trigger_event = BY_NAME[event]
    held = 0
    for _ in range(60):
        try:
            group = parse_filters(_random_group(rng, trigger_event, 1), trigger_event)
        except ConfigError:  # over the condition limit
            continue
        whole = compile_filters(group, trigger_event)
        for leaf in required_leaves(group):
            alone = compile_filters(Group("AND", (leaf,)), trigger_event)
            residual = compile_filters(group, trigger_event, leaf)
            assert residual is compile_filters(group, trigger_event, leaf)
            for _ in range(25):
                view = _random_view(rng, trigger_event)
                if _outcome(alone, view) is True:
                    held += 1
                    assert _outcome(residual, view) == _outcome(whole, view), to_json(group)
    assert held > 100


def test_residual_drops_the_leaf_only_where_every_match_needs_it() -> None:
    event = BY_NAME["form_submitted"]
    pin = Condition("form_id", "equals", "a")
    other = Condition("contact.score", "greater_than", 10)
    nested = Group("AND", (Group("OR", (Group("AND", (pin,)),)), other))
    assert list(required_leaves(nested)) == [pin, other]
    rich, poor = EventView({}, {"score": 20}, {}), EventView({}, {"score": 5}, {})
    residual = compile_filters(nested, event, pin)
    assert residual(rich) is True
    assert residual(poor) is False
    assert compile_filters(Group("AND", (pin,)), event, pin)(poor) is True  # nothing left
    either = Group("AND", (pin, Group("OR", (pin, other))))  # the same leaf, also optional
    assert list(required_leaves(either)) == [pin]
    assert compile_filters(either, event, pin)(poor) is False  # the OR still needs a side
    assert compile_filters(either, event, pin)(EventView({"form_id": "a"}, {}, {})) is True


def test_a_date_beyond_the_calendar_in_utc_is_not_a_date() -> None:
    """'0001-01-01T00:00:00+05:00' has no UTC instant: compared as not-a-date, no error."""
    config = validate_trigger(
        "contact",
        "contact_updated",
        {
            "conditions": [
                {"field": "contact.renewal", "operator": "greater_than", "value": "2026-01-01"}
            ]
        },
        None,
    )
    predicate = compile_filters(config.filters, config.event)
    assert predicate(EventView({}, {"renewal": "0001-01-01T00:00:00+05:00"}, {})) is False
