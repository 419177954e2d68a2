"""The loop check over the reachable part of the graph (REQ-N-003): loop keys narrow the
lookup without losing an edge, and a ring-by-ring search names the cycle a search over the
whole account names."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from pipelines.catalog import BY_NAME
from pipelines.examples import all_of, any_of, cond
from pipelines.loop_search import Reach, ask_keys, listen_keys, watched_field
from pipelines.loops import EMITTED_EVENTS, Node, emissions, find_cycle, may_match, node

ACCOUNT = uuid.UUID("00000000-0000-0000-0000-00000000000a")


def wf(
    name: str, event: str, filters: dict[str, Any] | None, *actions: dict[str, Any], rank: int = 0
) -> Node:
    return node(uuid.uuid4(), name, actions, event, filters, (rank,))


def filed(n: Node, account: uuid.UUID = ACCOUNT) -> set[int]:
    return set(listen_keys(account, n.event, n.filters))


def asked(action: dict[str, Any], account: uuid.UUID = ACCOUNT) -> set[int]:
    return {k for e in emissions(action) for k in ask_keys(account, e)}


def on_tag(tag: Any, *more: dict[str, Any]) -> dict[str, Any]:
    return all_of(cond("tag", "equals", tag), *more)


def test_a_pinned_trigger_is_asked_for_by_its_value_only() -> None:
    vip = wf("A", "tag_added", on_tag("vip"))
    assert filed(vip) & asked({"type": "add_tag", "tag": "vip"})
    assert filed(vip) & asked({"type": "add_tag", "tag": " VIP "})  # equals folds case
    assert not filed(vip) & asked({"type": "add_tag", "tag": "gold"})
    assert filed(vip) & asked({"type": "update_field", "field": "tags"})  # which tag: unknown


def test_numbers_and_numeric_text_share_keys_as_equals_does() -> None:
    one = wf("A", "tag_added", on_tag(1))
    assert filed(one) & asked({"type": "add_tag", "tag": "1"})
    assert filed(one) & asked({"type": "add_tag", "tag": "1.0"})
    zero = wf("B", "tag_added", on_tag("-0.0"))
    assert filed(zero) & asked({"type": "add_tag", "tag": "0"})
    huge = wf("C", "tag_added", on_tag("1" * 400))
    assert filed(huge) & asked({"type": "add_tag", "tag": "1" * 400})


def test_a_change_trigger_is_asked_for_by_the_field_it_watches() -> None:
    status = all_of(cond("contact.status", "changed_to", "customer"))
    watcher = wf("A", "contact_updated", status)
    assert watched_field(watcher.filters, watcher.event) == "status"
    assert not filed(watcher) & asked({"type": "add_tag", "tag": "vip"})  # changes the tags
    assert filed(watcher) & asked({"type": "update_field", "field": "status", "value": "customer"})
    nested = wf("B", "contact_updated", all_of(cond("custom_fields.plan", "changed")))
    assert filed(nested) & asked({"type": "update_field", "field": "plan", "value": "pro"})
    either = any_of(cond("contact.status", "changed"), cond("contact.email", "changed"))
    free = wf("C", "contact_updated", either)  # neither change is required
    assert filed(free) & asked({"type": "add_tag", "tag": "vip"})


def test_keys_belong_to_one_account() -> None:
    vip = wf("A", "tag_added", on_tag("vip"))
    other = uuid.UUID("00000000-0000-0000-0000-00000000000b")
    assert not filed(vip, other) & asked({"type": "add_tag", "tag": "vip"})


def test_triggers_no_action_can_reach_get_no_keys() -> None:
    assert filed(wf("A", "form_submitted", None)) == set()
    assert asked({"type": "send_email"}) == set()


# Random graphs: pins, `in` lists, numbers, change conditions, OR groups, empty filters.
_TAGS: list[Any] = ["vip", "VIP", "gold", "1", 1, 2.0, "", "cold"]
_FIELDS = ["status", "score", "custom_fields.vip", "tags", "plan"]


def _random_filters(rng: random.Random, event: str) -> dict[str, Any] | None:
    leaves: list[dict[str, Any]] = []
    if rng.random() < 0.6 and BY_NAME[event].identifying:
        pinned = rng.choice(BY_NAME[event].identifying)
        if rng.random() < 0.3:
            leaves.append(cond(pinned, "in", rng.sample([t for t in _TAGS if t != ""], 2)))
        else:
            leaves.append(cond(pinned, "equals", rng.choice(_TAGS[:-1])))
    if rng.random() < 0.6 and event in ("contact_updated", "custom_field_changed"):
        op = rng.choice(["changed", "changed_to", "changed_from"])
        leaves.append(cond(f"contact.{rng.choice(_FIELDS)}", op, None if op == "changed" else "x"))
    if rng.random() < 0.3:
        leaves.append(cond("contact.status", "equals", rng.choice(["customer", "x"])))
    if not leaves:
        return None
    return any_of(*leaves) if rng.random() < 0.2 else all_of(*leaves)


def _random_action(rng: random.Random) -> dict[str, Any]:
    value = rng.choice([t for t in _TAGS if t != ""])
    return rng.choice(
        [
            {"type": "add_tag", "tag": value},
            {"type": "remove_tag", "tag": value},
            {"type": "move_stage", "pipeline_id": "p", "stage_id": str(value)},
            {"type": "create_deal", "pipeline_id": str(value)},
            {"type": "update_field", "field": rng.choice(_FIELDS), "value": "x"},
            {"type": "update_field", "field": rng.choice(_FIELDS)},
            {"type": "send_email"},
        ]
    )


def _random_graph(rng: random.Random, n: int, actions: float) -> list[Node]:
    events = [*sorted(EMITTED_EVENTS), "form_submitted"]
    nodes = []
    for i in range(n):
        event = rng.choice(events)
        acts = (
            [_random_action(rng) for _ in range(rng.randint(0, 2))]
            if rng.random() < actions
            else []
        )
        nodes.append(node(uuid.uuid4(), f"n{i}", acts, event, _random_filters(rng, event), (i,)))
    return nodes


def test_every_edge_shares_a_key_with_its_emission() -> None:
    rng = random.Random(11)
    nodes = _random_graph(rng, 200, 0.0)
    edges = 0
    for _ in range(400):
        for emission in emissions(_random_action(rng)):
            keys = set(ask_keys(ACCOUNT, emission))
            for target in nodes:
                if target.event == emission.event and may_match(target.filters, emission):
                    assert filed(target) & keys, (target, emission)
                    edges += 1
    assert edges > 1000


class _Store:
    """The lookup of store.workflows.loop_listeners, in memory, counting the rows read."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes = list(nodes)
        self.keys = {n.workflow_id: filed(n) for n in self.nodes}
        self.read = 0

    def search(self, start: Node | None) -> Reach:
        reach = Reach(ACCOUNT, start)
        while (lookup := reach.next()) is not None:
            wanted, known = set(lookup.keys), set(lookup.known)
            found = [
                n
                for n in self.nodes
                if n.workflow_id not in known and self.keys[n.workflow_id] & wanted
            ]
            self.read += len(found)
            reach.add(found)
        return reach


@pytest.mark.parametrize("seed", range(6))
def test_the_ring_search_names_the_cycle_the_whole_graph_names(seed: int) -> None:
    rng = random.Random(seed)
    nodes = _random_graph(rng, 120, 0.7)
    store = _Store(reversed(nodes))  # the store's order does not matter: ranks do
    cycles = 0
    for start in nodes:
        whole = find_cycle([n for n in nodes if n.event.name in EMITTED_EVENTS], start.workflow_id)
        found = store.search(start).cycle()
        assert found == whole
        cycles += whole is not None
    assert cycles > 0


def test_a_loop_closed_through_a_long_chain_is_found() -> None:
    chain = [
        wf(f"W{i}", "tag_added", on_tag(f"t{i}"), {"type": "add_tag", "tag": f"t{i + 1}"}, rank=i)
        for i in range(40)
    ]
    closing = wf("Close", "tag_added", on_tag("t40"), {"type": "add_tag", "tag": "t0"}, rank=40)
    reach = _Store([*chain, closing]).search(chain[0])
    cycle = reach.cycle()
    assert cycle is not None
    assert [s.source.name for s in cycle] == [*(n.name for n in chain), "Close"]
    open_chain = _Store(chain).search(chain[0])
    assert open_chain.cycle() is None


def test_an_unrelated_big_account_changes_neither_the_answer_nor_what_is_read() -> None:
    a = wf("A", "tag_added", on_tag("vip"), {"type": "add_tag", "tag": "gold"}, rank=1)
    b = wf("B", "tag_added", on_tag("gold"), {"type": "add_tag", "tag": "vip"}, rank=2)
    status = all_of(cond("contact.status", "changed_to", "customer"))
    crowd = []
    for i in range(3000):
        event, filters = [
            ("tag_added", on_tag(f"other-{i}")),
            ("contact_updated", status),
            ("form_submitted", None),
        ][i % 3]
        crowd.append(wf(f"c{i}", event, filters, {"type": "add_tag", "tag": f"x{i}"}, rank=9 + i))
    small, big = _Store([a, b]), _Store([a, b, *crowd])
    cycle = big.search(a).cycle()
    assert cycle is not None
    assert cycle == small.search(a).cycle()
    assert big.read == small.read == 1


def test_a_workflow_nothing_can_reach_is_not_searched() -> None:
    start = wf("Form", "form_submitted", None, {"type": "add_tag", "tag": "vip"})
    assert Reach(ACCOUNT, start).next() is None
    assert Reach(ACCOUNT, start).cycle() is None
    assert Reach(ACCOUNT, None).cycle() is None
