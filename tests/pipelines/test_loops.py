"""Loop detection at configuration time (REQ-N-003): emitted events, three-valued filters,
cycles through the changed workflow."""

from __future__ import annotations

import itertools
import random
import uuid
from typing import Any

import pytest

from pipelines.catalog import BY_NAME
from pipelines.compiler import EventView, compile_filters
from pipelines.examples import all_of, any_of, cond
from pipelines.filters import parse_filters
from pipelines.loops import (
    EMITS,
    EMITTED_EVENTS,
    Emission,
    Graph,
    Node,
    cycle_json,
    describe,
    emissions,
    evaluate,
    find_cycle,
    label,
    may_match,
    node,
)
from pipelines.workflows import ACTION_FIELDS

ADD_VIP = {"type": "add_tag", "tag": "vip"}


def wf(name: str, event: str, filters: dict[str, Any] | None, *actions: dict[str, Any]) -> Node:
    return node(uuid.uuid4(), name, actions, event, filters)


def emitted(action: dict[str, Any], event: str) -> Emission:
    (found,) = [e for e in emissions(action) if e.event.name == event]
    return found


def verdict(action: dict[str, Any], event: str, filters: dict[str, Any]) -> bool | None:
    return evaluate(parse_filters(filters, BY_NAME[event]), emitted(action, event))


def test_actions_emit_the_catalog_events_they_cause() -> None:
    def names(action: dict[str, Any]) -> list[str]:
        return [e.event.name for e in emissions(action)]

    assert names(ADD_VIP) == ["tag_added", "contact_updated"]
    assert names({"type": "remove_tag", "tag": "x"}) == ["tag_removed", "contact_updated"]
    assert names({"type": "update_field", "field": "status", "value": "customer"}) == [
        "contact_updated"
    ]
    assert names({"type": "update_field", "field": "score", "value": 5}) == [
        "contact_updated",
        "custom_field_changed",
    ]
    assert names({"type": "update_field", "field": "tags", "value": ["a"]}) == [
        "contact_updated",
        "tag_added",
        "tag_removed",
    ]
    assert names({"type": "create_deal", "pipeline_id": "sales"}) == ["deal_created"]
    assert names({"type": "move_stage", "pipeline_id": "sales", "stage_id": "won"}) == [
        "stage_changed"
    ]
    for quiet in ("send_email", "send_sms", "webhook", "wait", "notify_user", "unknown"):
        assert names({"type": quiet}) == []
    assert set(EMITS) <= set(ACTION_FIELDS)
    assert all(name in BY_NAME for name in EMITTED_EVENTS)


def test_emissions_carry_what_the_action_determines() -> None:
    assert emitted(ADD_VIP, "tag_added").data == {"tag": "vip"}
    deal = emitted({"type": "create_deal", "pipeline_id": "p", "deal_value": 9}, "deal_created")
    assert deal.data == {"pipeline_id": "p", "deal_value": 9}
    stage = emitted({"type": "move_stage", "pipeline_id": "p", "stage_id": "s"}, "stage_changed")
    assert stage.data == {"pipeline_id": "p", "stage_id": "s"}
    custom = emitted(
        {"type": "update_field", "field": "custom_fields.score", "value": 90},
        "custom_field_changed",
    )
    assert custom.data == {"field_name": "score", "field_value": 90}
    assert custom.contact == {("custom_fields", "score"): 90}


def test_labels_name_the_action_and_its_values() -> None:
    assert label(ADD_VIP) == "add_tag:vip"
    assert label({"type": "update_field", "field": "score", "value": 1}) == "update_field:score"
    assert label({"type": "move_stage", "pipeline_id": "s", "stage_id": "won"}) == (
        "move_stage:s/won"
    )
    assert label({"type": "send_email", "template": "t"}) == "send_email"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (all_of(cond("tag", "equals", "vip")), True),
        (all_of(cond("tag", "equals", " VIP ")), True),  # the matcher's semantics: case, blanks
        (all_of(cond("event.tag", "equals", "vip")), True),
        (all_of(cond("tag", "equals", "gold")), False),
        (all_of(cond("tag", "in", ["gold", "silver"])), False),
        (all_of(cond("tag", "not_in", ["gold", "silver"])), True),
        (all_of(cond("tag", "not_equals", "vip")), False),
        (all_of(cond("tag", "starts_with", "v")), True),
        (all_of(cond("tag", "is_empty")), False),
        (all_of(cond("contact.status", "equals", "customer")), None),
        (all_of(cond("tag", "equals", "vip"), cond("contact.status", "equals", "x")), None),
        (all_of(cond("tag", "equals", "gold"), cond("contact.status", "equals", "x")), False),
        (any_of(cond("tag", "equals", "gold"), cond("contact.status", "equals", "x")), None),
        (any_of(cond("tag", "equals", "vip"), cond("contact.status", "equals", "x")), True),
        (any_of(cond("tag", "equals", "gold"), cond("tag", "equals", "red")), False),
        (all_of(cond("contact_id", "is_not_empty")), None),
        ({}, True),
    ],
)
def test_filters_are_judged_three_valued(filters: dict[str, Any], expected: bool | None) -> None:
    assert verdict(ADD_VIP, "tag_added", filters) is expected
    group = parse_filters(filters, BY_NAME["tag_added"])
    assert may_match(group, emitted(ADD_VIP, "tag_added")) is (expected is not False)


SET_STATUS = {"type": "update_field", "field": "status", "value": "customer"}


@pytest.mark.parametrize(
    ("action", "filters", "expected"),
    [
        (SET_STATUS, all_of(cond("contact.status", "changed_to", "customer")), True),
        (SET_STATUS, all_of(cond("contact.status", "changed_to", "lead")), False),
        (SET_STATUS, all_of(cond("contact.status", "changed")), True),
        (SET_STATUS, all_of(cond("contact.status", "changed_from", "customer")), False),
        (SET_STATUS, all_of(cond("contact.status", "changed_from", "lead")), None),
        (SET_STATUS, all_of(cond("contact.email", "changed")), False),  # one field per update
        (SET_STATUS, all_of(cond("contact.status", "equals", "customer")), True),
        (SET_STATUS, all_of(cond("event.current_state.status", "equals", "lead")), False),
        (SET_STATUS, all_of(cond("previous.status", "equals", "lead")), None),
        (SET_STATUS, all_of(cond("changed_fields", "contains", "status")), True),
        (SET_STATUS, all_of(cond("changed_fields", "contains", "email")), False),
        (ADD_VIP, all_of(cond("contact.tags", "changed")), True),
        (ADD_VIP, all_of(cond("contact.status", "changed_to", "customer")), False),
        (ADD_VIP, all_of(cond("contact.tags", "contains", "vip")), None),
        (
            {"type": "update_field", "field": "custom_fields.score"},  # no value: unknown
            all_of(cond("contact.custom_fields.score", "changed_to", 5)),
            None,
        ),
        (
            {"type": "update_field", "field": "score", "value": 1},  # maybe custom_fields.score
            all_of(cond("contact.custom_fields.score", "changed")),
            None,
        ),
        (
            {"type": "update_field", "field": "score", "value": 1},
            all_of(cond("contact.custom_fields", "changed")),
            None,
        ),
    ],
)
def test_contact_updates_determine_the_changed_field(
    action: dict[str, Any], filters: dict[str, Any], expected: bool | None
) -> None:
    assert verdict(action, "contact_updated", filters) is expected


SET_SCORE = {"type": "update_field", "field": "custom_fields.score", "value": 90}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            all_of(cond("field_name", "equals", "score"), cond("field_value", "greater_than", 80)),
            True,
        ),
        (
            all_of(cond("field_name", "equals", "score"), cond("field_value", "less_than", 50)),
            False,
        ),
        (all_of(cond("field_name", "equals", "rating")), False),
        (all_of(cond("field_value", "changed_to", "90")), True),
        (all_of(cond("field_value", "changed_from", 90)), False),
        (all_of(cond("field_value", "changed_from", 10)), None),
        (all_of(cond("previous_value", "less_than", 10)), None),
    ],
)
def test_custom_field_changes(filters: dict[str, Any], expected: bool | None) -> None:
    assert verdict(SET_SCORE, "custom_field_changed", filters) is expected


def test_pipeline_actions_pin_the_pipeline_and_stage() -> None:
    create = {"type": "create_deal", "pipeline_id": "sales"}
    both = all_of(cond("pipeline_id", "equals", "sales"), cond("deal_value", "greater_than", 5))
    assert verdict(create, "deal_created", both) is None
    assert verdict(create, "deal_created", all_of(cond("pipeline_id", "equals", "ops"))) is False
    move = {"type": "move_stage", "pipeline_id": "sales", "stage_id": "won"}
    pinned = all_of(cond("pipeline_id", "equals", "sales"), cond("stage_id", "equals", "won"))
    assert verdict(move, "stage_changed", pinned) is True
    other = all_of(cond("stage_id", "equals", "lost"))
    assert verdict(move, "stage_changed", other) is False


def test_a_self_loop_is_found() -> None:
    a = wf("Tag VIPs", "tag_added", all_of(cond("tag", "equals", "vip")), ADD_VIP)
    cycle = find_cycle([a], a.workflow_id)
    assert cycle is not None
    assert describe(cycle) == "Tag VIPs --add_tag:vip--> Tag VIPs"
    assert cycle_json(cycle) == [
        {
            "workflow_id": str(a.workflow_id),
            "workflow_name": "Tag VIPs",
            "action_index": 0,
            "action": "add_tag:vip",
            "event": "tag_added",
            "next_workflow_id": str(a.workflow_id),
            "next_workflow_name": "Tag VIPs",
        }
    ]


def test_a_two_workflow_cycle_is_named_in_order_from_the_changed_workflow() -> None:
    a = wf(
        "A",
        "tag_added",
        all_of(cond("tag", "equals", "vip")),
        {"type": "send_email"},
        {"type": "update_field", "field": "score", "value": 5},
    )
    b = wf("B", "custom_field_changed", all_of(cond("field_name", "equals", "score")), ADD_VIP)
    found = find_cycle([a, b], b.workflow_id)
    assert found is not None
    assert describe(found) == "B --add_tag:vip--> A --update_field:score--> B"
    assert [s.action_index for s in found] == [0, 1]
    assert [s.event for s in found] == ["tag_added", "custom_field_changed"]
    again = find_cycle([a, b], a.workflow_id)
    assert again is not None
    assert describe(again) == "A --update_field:score--> B --add_tag:vip--> A"


def test_a_three_workflow_cycle_is_named_in_order() -> None:
    a = wf("A", "tag_removed", all_of(cond("tag", "equals", "cold")), ADD_VIP)
    b = wf(
        "B",
        "tag_added",
        all_of(cond("tag", "equals", "vip")),
        {"type": "move_stage", "pipeline_id": "sales", "stage_id": "won"},
    )
    c = wf(
        "C",
        "stage_changed",
        all_of(cond("stage_id", "equals", "won")),
        {"type": "remove_tag", "tag": "cold"},
    )
    found = find_cycle([c, b, a], a.workflow_id)
    assert found is not None
    assert describe(found) == (
        "A --add_tag:vip--> B --move_stage:sales/won--> C --remove_tag:cold--> A"
    )
    assert find_cycle([a, b], a.workflow_id) is None  # without C the chain is open


def test_no_cycle_when_the_emitted_value_cannot_match() -> None:
    a = wf("A", "tag_added", all_of(cond("tag", "equals", "gold")), ADD_VIP)
    assert find_cycle([a], a.workflow_id) is None
    b = wf("B", "tag_added", all_of(cond("tag", "in", ["gold", "silver"])), ADD_VIP)
    assert find_cycle([b], b.workflow_id) is None


def test_setting_the_tags_field_may_add_any_tag() -> None:
    tags = {"type": "update_field", "field": "tags", "value": ["vip"]}
    a = wf("A", "tag_added", all_of(cond("tag", "equals", "vip")), tags)
    assert find_cycle([a], a.workflow_id) is not None


def test_a_contact_condition_keeps_the_edge() -> None:
    filters = all_of(cond("tag", "equals", "vip"), cond("contact.status", "equals", "customer"))
    a = wf("A", "tag_added", filters, ADD_VIP)
    assert find_cycle([a], a.workflow_id) is not None


def test_the_shortest_cycle_is_named() -> None:
    a = wf(
        "A",
        "tag_added",
        all_of(cond("tag", "in", ["vip", "gold"])),
        {"type": "add_tag", "tag": "gold"},
        ADD_VIP,
    )
    b = wf("B", "tag_added", all_of(cond("tag", "equals", "gold")), {"type": "add_tag", "tag": "x"})
    c = wf("C", "tag_added", all_of(cond("tag", "equals", "x")), ADD_VIP)
    found = find_cycle([a, b, c], a.workflow_id)
    assert found is not None
    assert describe(found) == "A --add_tag:gold--> A"


def test_cycles_elsewhere_do_not_block_an_unrelated_workflow() -> None:
    looping = wf("L", "tag_added", all_of(cond("tag", "equals", "vip")), ADD_VIP)
    feeder = wf("F", "form_submitted", {}, ADD_VIP)  # feeds the loop, is not on it
    assert find_cycle([looping, feeder], feeder.workflow_id) is None
    assert find_cycle([looping, feeder], uuid.uuid4()) is None


def test_a_stored_filter_that_no_longer_parses_matches_everything() -> None:
    broken = {"logic": "AND", "conditions": [{"field": "tag", "operator": "resembles"}]}
    a = wf("A", "tag_added", broken, {"type": "add_tag", "tag": "anything"})
    assert find_cycle([a], a.workflow_id) is not None


# Soundness: a definite verdict must be what matching says on every concrete event the action
# can emit. Generated filters over what the action determines and what it does not.
_LEAVES = [
    cond("tag", "equals", "vip"),
    cond("tag", "equals", "gold"),
    cond("tag", "not_equals", "vip"),
    cond("tag", "contains", "i"),
    cond("tag", "ends_with", "p"),
    cond("tag", "is_empty"),
    cond("tag", "in", ["vip", "x"]),
    cond("contact.status", "equals", "customer"),
    cond("contact.tags", "contains", "vip"),
    cond("status", "is_empty"),
    cond("previous.status", "not_equals", "lead"),
]
_CONTACTS = [{}, {"status": "customer"}, {"status": "lead", "tags": ["vip"]}, {"tags": []}]


def _random_filter(rng: random.Random) -> dict[str, Any]:
    def group(depth: int) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 3)):
            nested = depth < 3 and rng.random() < 0.3
            parts.append(group(depth + 1) if nested else rng.choice(_LEAVES))
        return {"logic": rng.choice(["AND", "OR"]), "conditions": parts}

    return group(1)


def test_definite_verdicts_agree_with_matching_on_every_consistent_event() -> None:
    rng = random.Random(3)
    event = BY_NAME["tag_added"]
    emission = emitted(ADD_VIP, "tag_added")
    definite = 0
    for _ in range(400):
        group = parse_filters(_random_filter(rng), event)
        expected = evaluate(group, emission)
        predicate = compile_filters(group, event)
        outcomes = {
            predicate(EventView({"tag": "vip", "contact_id": "c"}, contact, previous))
            for contact, previous in itertools.product(_CONTACTS, _CONTACTS)
        }
        if expected is not None:
            definite += 1
            assert outcomes == {expected}, (group, expected)
    assert definite > 50


_VALUES = ["vip", "VIP ", "gold", "15000", 15000, 1.5, True, "true", "sales", "won", ""]


def _random_node(rng: random.Random, i: int) -> Node:
    event = rng.choice(["tag_added", "stage_changed", "custom_field_changed"])
    field_name = {"tag_added": "tag", "stage_changed": "stage_id"}.get(event, "field_name")
    leaves: list[dict[str, Any]] = []
    shape = rng.random()
    if shape < 0.4:
        leaves.append(cond(field_name, "equals", rng.choice(_VALUES[:-1])))
    elif shape < 0.7:
        leaves.append(cond(field_name, "in", rng.sample(_VALUES[:-1], 2)))
    elif shape < 0.8:
        others = {
            "stage_changed": ["pipeline_id", "previous_stage_id"],  # maybe undetermined
            "custom_field_changed": ["field_value"],
        }
        pinned = rng.choice(others.get(event, [field_name]))
        leaves.append(cond(pinned, "equals", rng.choice(_VALUES[:-1])))
    if rng.random() < 0.5:
        leaves.append(cond("contact.status", "equals", "customer"))
    filters = any_of(*leaves) if rng.random() < 0.2 and leaves else all_of(*leaves)
    return node(uuid.uuid4(), f"n{i}", [], event, filters if leaves else {})


def _random_action(rng: random.Random) -> dict[str, Any]:
    value = rng.choice(_VALUES)
    return rng.choice(
        [
            {"type": "add_tag", "tag": value},
            {"type": "move_stage", "pipeline_id": rng.choice(_VALUES), "stage_id": value},
            {
                "type": "update_field",
                "field": rng.choice(["score", "custom_fields.vip"]),
                "value": value,
            },
            {"type": "update_field", "field": str(value) or "x"},
        ]
    )


def test_the_graph_index_finds_exactly_the_edges_full_evaluation_finds() -> None:
    rng = random.Random(7)
    nodes = [_random_node(rng, i) for i in range(80)]
    graph = Graph(nodes)
    edges = 0
    for _ in range(300):
        action = _random_action(rng)
        for emission in emissions(action):
            everyone = [n for n in nodes if n.event == emission.event]
            expected = [n for n in everyone if may_match(n.filters, emission)]
            assert [n for n in graph.candidates(emission) if may_match(n.filters, emission)] == (
                expected
            )
            edges += len(expected)
        source = wf("s", "birthday", None, action)
        assert len(list(graph.edges(source))) == sum(
            sum(1 for n in nodes if n.event == e.event and may_match(n.filters, e))
            for e in emissions(action)
        )
    assert edges > 300
