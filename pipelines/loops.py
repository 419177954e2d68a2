"""Workflow loops at configuration time (REQ-N-003).

A workflow's actions emit events (add_tag emits tag_added, ...) and an emitted event may match
another workflow's trigger. Among an account's active workflows this is a graph; a change that
closes a cycle in it is refused. A trigger's filter is judged three-valued against the event an
action emits: what the action determines (the tag, the field and its new value, the pipeline)
is tested exactly, with the operators' matching semantics; the rest (the contact's state, ids,
amounts) is unknown and may hold. There is an edge unless the filter is definitely false."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pipelines.catalog import BY_NAME, TriggerEvent
from pipelines.compiler import (
    FieldRef,
    change_refs,
    leaf_test,
    required_leaves,
    resolve_field,
    walk,
)
from pipelines.errors import ConfigError
from pipelines.filters import CHANGE_OPS, EMPTY, Condition, Group, parse_filters
from pipelines.values import normalize_key
from pipelines.workflows import ACTION_FIELDS

Path = tuple[str, ...]
Truth = bool | None  # None: the action does not determine it, so it may hold


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()

# Action type -> the events it may emit (update_field's depend on the field). send_email,
# send_sms, webhook, wait and notify_user emit none a trigger listens to (opens, clicks and
# replies are the recipient's doing).
EMITS: dict[str, tuple[str, ...]] = {
    "add_tag": ("tag_added", "contact_updated"),
    "remove_tag": ("tag_removed", "contact_updated"),
    "update_field": ("contact_updated", "custom_field_changed", "tag_added", "tag_removed"),
    "create_deal": ("deal_created",),
    "move_stage": ("stage_changed",),
}
EMITTED_EVENTS: frozenset[str] = frozenset(e for events in EMITS.values() for e in events)

# The conventional contact fields (docs/contract.md §3): update_field on them emits no
# custom_field_changed. Any other field may be a custom one.
STANDARD_FIELDS: frozenset[str] = frozenset(
    {"email", "phone", "tags", "source", "status", "timezone", "birthday"}
)


@dataclass(frozen=True, slots=True)
class Emission:
    """An event an action emits, as far as the action determines it."""

    event: TriggerEvent
    data: Mapping[str, Any] = field(default_factory=dict)  # event fields it determines
    contact: Mapping[Path, Any] = field(default_factory=dict)  # contact fields known after it
    changed: Path | None = None  # the contact field it changes (update events); None: unknown
    aliases: tuple[Path, ...] = ()  # where else that change may be stored


def emissions(action: Mapping[str, Any]) -> tuple[Emission, ...]:
    """The events `action` emits; none for actions no trigger can see."""
    kind = action.get("type")
    if kind == "add_tag" or kind == "remove_tag":
        tag_event = BY_NAME["tag_added" if kind == "add_tag" else "tag_removed"]
        return (
            Emission(tag_event, _own(action, tag_event)),
            Emission(BY_NAME["contact_updated"], {"changed_fields": ["tags"]}, changed=("tags",)),
        )
    if kind == "update_field":
        return _field_update(action)
    if kind in EMITS:
        return tuple(Emission(BY_NAME[name], _own(action, BY_NAME[name])) for name in EMITS[kind])
    return ()


def _own(action: Mapping[str, Any], event: TriggerEvent) -> dict[str, Any]:
    """The action's values for fields of `event` (tag, pipeline_id, stage_id, deal_value...)."""
    return {name: action[name] for name in event.fields if name in action}


def _field_update(action: Mapping[str, Any]) -> tuple[Emission, ...]:
    name = action.get("field")
    updated = BY_NAME["contact_updated"]
    if not isinstance(name, str) or not name:
        return Emission(updated), Emission(BY_NAME["custom_field_changed"])
    path = tuple(name.split("."))
    known = {path: action["value"]} if "value" in action else {}
    if name == "tags":  # a new list of tags: which ones came or went is not known
        return (
            Emission(updated, {"changed_fields": [name]}, known, path),
            Emission(BY_NAME["tag_added"]),
            Emission(BY_NAME["tag_removed"]),
        )
    if name in STANDARD_FIELDS:
        return (Emission(updated, {"changed_fields": [name]}, known, path),)
    if path[0] == "custom_fields" and len(path) > 1:
        custom_name, alias = ".".join(path[1:]), path[1:]
    else:
        custom_name, alias = name, ("custom_fields", *path)
    data: dict[str, Any] = {"field_name": custom_name}
    if "value" in action:
        data["field_value"] = action["value"]
    return (
        Emission(updated, {}, known, path, (alias,)),
        Emission(BY_NAME["custom_field_changed"], data, known, path, (alias,)),
    )


def label(action: Mapping[str, Any]) -> str:
    """How a cycle names an action: `add_tag:vip`, `move_stage:sales/won`, `update_field:score`."""
    kind = str(action.get("type"))
    values = [str(action.get(name)) for name in ACTION_FIELDS.get(kind, ()) if name in action]
    return f"{kind}:{'/'.join(values)}" if values else kind


def may_match(filters: Group, emission: Emission) -> bool:
    """False only when no event this emission stands for can pass `filters`."""
    return _group(filters, emission) is not False


def evaluate(filters: Group, emission: Emission) -> Truth:
    """The filter's verdict on the emitted event: True, False, or None when it depends on what
    the action does not determine."""
    return _group(filters, emission)


def _group(group: Group, emission: Emission) -> Truth:
    if not group.conditions:
        return True
    results = [
        _group(node, emission) if isinstance(node, Group) else _leaf(node, emission)
        for node in group.conditions
    ]
    decisive = group.logic == "OR"  # the part verdict that settles the group
    if any(r is decisive for r in results):
        return decisive
    if any(r is None for r in results):
        return None
    return not decisive


def _leaf(condition: Condition, emission: Emission) -> Truth:
    if condition.operator in CHANGE_OPS:
        return _change_leaf(condition, emission)
    actual = _known(resolve_field(condition.field, emission.event), emission)
    if actual is UNKNOWN:
        return None
    return bool(leaf_test(condition.operator, condition.value)(actual))


def _known(ref: FieldRef, emission: Emission) -> Any:
    """The value a condition reads there, or UNKNOWN."""
    if ref.source == "contact":
        return emission.contact.get(ref.path, UNKNOWN)
    if ref.source != "event":
        return UNKNOWN  # the previous state, the submitted answers
    head, rest = ref.path[0], ref.path[1:]
    if head == "current_state" and rest:
        return emission.contact.get(rest, UNKNOWN)
    if head in emission.data:
        return walk(emission.data[head], rest)
    return UNKNOWN


def _change_leaf(condition: Condition, emission: Emission) -> Truth:
    _, after = change_refs(condition.field, emission.event)
    if after.source == "event":  # custom_field_changed's field_value: the event is the change
        changed: Truth = True
        new = emission.data.get(after.path[0], UNKNOWN) if len(after.path) == 1 else UNKNOWN
    else:
        changed = _was_changed(after.path, emission)
        new = emission.contact.get(after.path, UNKNOWN)
    if changed is False:
        return False
    if condition.operator == "changed":
        return changed
    if new is UNKNOWN:
        return None
    equal = bool(leaf_test("equals", condition.value)(new))
    if condition.operator == "changed_to":
        return changed if equal else False
    return False if equal else None  # changed_from: the previous value differs from the new one


def _was_changed(path: Path, emission: Emission) -> Truth:
    if emission.changed is None:
        return None
    if path == emission.changed:
        return True
    for other in (emission.changed, *emission.aliases):
        if path[: len(other)] == other or other[: len(path)] == path:
            return None  # part of it, or the object around it
    return False  # one update event changes one field


@dataclass(frozen=True, slots=True)
class Node:
    """An active workflow with a live, active trigger. `rank` is where it sorts among the
    account's workflows (creation order): a search over part of the graph that sorts its nodes
    by it names the cycle a search over the whole graph names."""

    workflow_id: uuid.UUID
    name: str
    actions: tuple[Mapping[str, Any], ...]
    event: TriggerEvent
    filters: Group
    rank: tuple[Any, ...] = ()


def node(
    workflow_id: uuid.UUID,
    name: str,
    actions: Iterable[Any],
    trigger_event: str,
    filters: object,
    rank: tuple[Any, ...] = (),
) -> Node:
    """A node from stored rows. A filter that no longer parses counts as matching everything."""
    event = BY_NAME[trigger_event]
    kept = tuple(a for a in actions if isinstance(a, Mapping))
    return Node(workflow_id, name, kept, event, stored_filters(filters, event), rank)


def stored_filters(filters: object, event: TriggerEvent) -> Group:
    """A stored filter, parsed; one that no longer parses counts as matching everything."""
    try:
        return parse_filters(filters, event)
    except ConfigError:
        return EMPTY


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of a cycle: `source`'s action number `action_index` emits `event`, which
    `target`'s trigger may match."""

    source: Node
    action_index: int
    action: str
    event: str
    target: Node


class Graph:
    """The nodes by trigger event and, within an event, by the values a required `equals` or
    `in` condition on an event field admits: an emitted tag meets only the triggers that can
    take it, and those that pin nothing."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes = list(nodes)
        self._free: dict[str, list[int]] = {}
        self._pinned: dict[str, dict[str, dict[Hashable, list[int]]]] = {}
        self._any: dict[str, dict[str, list[int]]] = {}  # every node pinned on that field
        for position, n in enumerate(self.nodes):
            pin = pin_of(n.filters, n.event)
            if pin is None:
                self._free.setdefault(n.event.name, []).append(position)
                continue
            name, keys = pin
            table = self._pinned.setdefault(n.event.name, {}).setdefault(name, {})
            for key in keys:
                table.setdefault(key, []).append(position)
            self._any.setdefault(n.event.name, {}).setdefault(name, []).append(position)

    def candidates(self, emission: Emission) -> list[Node]:
        """The nodes whose trigger may take `emission`, in their given order (a superset)."""
        event = emission.event.name
        found = list(self._free.get(event, ()))
        for name, table in self._pinned.get(event, {}).items():
            value = emission.data.get(name, UNKNOWN)
            if isinstance(value, str | int | float):  # bool is an int
                found += table.get(normalize_key(value), ())
            else:
                found += self._any[event][name]
        return [self.nodes[position] for position in sorted(set(found))]

    def edges(self, source: Node) -> Iterator[Step]:
        for index, action in enumerate(source.actions):
            for emission in emissions(action):
                for target in self.candidates(emission):
                    if may_match(target.filters, emission):
                        yield Step(source, index, label(action), emission.event.name, target)


def pin_of(filters: Group, event: TriggerEvent) -> tuple[str, frozenset[Hashable]] | None:
    """An event field and the keys every match's value has, from a required equals/in."""
    for leaf in required_leaves(filters):
        if leaf.operator not in ("equals", "in"):
            continue
        ref = resolve_field(leaf.field, event)
        if ref.source == "event" and len(ref.path) == 1 and ref.path[0] in event.fields:
            values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
            return ref.path[0], frozenset(k for k in map(normalize_key, values) if k is not None)
    return None


def find_cycle(nodes: Iterable[Node], through: uuid.UUID) -> list[Step] | None:
    """A shortest cycle through workflow `through`, from it back to it; None if there is none."""
    graph = Graph(nodes)
    start = next((n for n in graph.nodes if n.workflow_id == through), None)
    if start is None:
        return None
    reached: dict[uuid.UUID, Step | None] = {start.workflow_id: None}  # how each was first reached
    queue = deque([start])
    while queue:
        for step in graph.edges(queue.popleft()):
            if step.target.workflow_id == through:
                return _path(reached, step)
            if step.target.workflow_id not in reached:
                reached[step.target.workflow_id] = step
                queue.append(step.target)
    return None


def _path(reached: Mapping[uuid.UUID, Step | None], last: Step) -> list[Step]:
    steps = [last]
    before = reached[last.source.workflow_id]
    while before is not None:
        steps.append(before)
        before = reached[before.source.workflow_id]
    return steps[::-1]


def describe(cycle: list[Step]) -> str:
    """`A --add_tag:vip--> B --update_field:score--> A`."""
    return cycle[0].source.name + "".join(f" --{s.action}--> {s.target.name}" for s in cycle)


def cycle_json(cycle: list[Step]) -> list[dict[str, Any]]:
    """The steps of a cycle for a problem document's `cycle` member."""
    return [
        {
            "workflow_id": str(s.source.workflow_id),
            "workflow_name": s.source.name,
            "action_index": s.action_index,
            "action": s.action,
            "event": s.event,
            "next_workflow_id": str(s.target.workflow_id),
            "next_workflow_name": s.target.name,
        }
        for s in cycle
    ]
