"""The compiled trigger index (docs/contract.md §5): candidates by event type and pinned values,
incremental changes with version ordering, tenancy (REQ-N-002)."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID, uuid4

import pytest

from pipelines.catalog import BY_NAME, TRIGGER_EVENTS
from pipelines.compiler import EventView, compile_filters
from pipelines.examples import REALISTIC, all_of, any_of, cond
from pipelines.filters import Condition, Group, to_json
from pipelines.index import (
    CompiledTrigger,
    InvalidSpec,
    TriggerIndex,
    TriggerSpec,
    spec_from_config,
)
from pipelines.keying import key_options
from pipelines.sizes import index_bytes
from pipelines.triggers import validate_trigger

ACCOUNT = UUID(int=1)
OTHER_ACCOUNT = UUID(int=2)


def spec(
    event: str,
    filters: dict[str, Any] | None,
    *,
    trigger_id: UUID | None = None,
    account_id: UUID = ACCOUNT,
    live: bool = True,
    version: int = 1,
    settings: dict[str, Any] | None = None,
) -> TriggerSpec:
    settings = REALISTIC[event][2] if settings is None else settings
    config = validate_trigger(BY_NAME[event].category, event, filters, settings)
    return spec_from_config(
        config,
        trigger_id=trigger_id or uuid4(),
        workflow_id=uuid4(),
        account_id=account_id,
        live=live,
        sync_version=version,
    )


def ids(triggers: list[CompiledTrigger]) -> list[UUID]:
    return [t.spec.trigger_id for t in triggers]


def index_of(*specs: TriggerSpec) -> TriggerIndex:
    index = TriggerIndex()
    for one in specs:
        assert index.apply(one)
    return index


def form(form_id: Any, *more: dict[str, Any]) -> dict[str, Any]:
    return all_of(cond("form_id", "equals", form_id), *more)


def test_trigger_is_a_candidate_only_for_its_pinned_value() -> None:
    """docs/contract.md §5: matching cost does not grow with triggers that cannot match."""
    a = spec("form_submitted", form("a"))
    index = index_of(a, *(spec("form_submitted", form(f"other-{i}")) for i in range(500)))
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"})) == [a.trigger_id]
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "b"}) == []
    assert index.candidates(ACCOUNT, "form.submitted", {}) == []


def test_unkeyed_triggers_are_always_candidates() -> None:
    keyed = spec("form_submitted", form("a"))
    loose = spec("form_submitted", all_of(cond("budget", "greater_than", 10)))
    everything = spec("form_submitted", None)
    either = spec("form_submitted", any_of(cond("form_id", "equals", "a"), cond("x", "is_empty")))
    index = index_of(keyed, loose, everything, either)
    unkeyed = {loose.trigger_id, everything.trigger_id, either.trigger_id}
    assert set(ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "b"}))) == unkeyed
    found = ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"}))
    assert sorted(found) == sorted({keyed.trigger_id} | unkeyed)


def test_candidates_are_only_of_the_event_type() -> None:
    index = index_of(spec("form_submitted", None), spec("tag_added", None))
    assert [c.spec.event.name for c in index.candidates(ACCOUNT, "tag_added", {})] == []
    assert [c.spec.event.name for c in index.candidates(ACCOUNT, "contact.tag_added", {})] == [
        "tag_added"
    ]


@pytest.mark.parametrize(
    ("configured", "actual", "expected"),
    [
        ("Lead-Form ", "lead-form", True),
        ("lead-form", "LEAD-FORM", True),
        (42, "42", True),
        ("42", 42.0, True),
        ("42", "42.5", False),
        (True, "true", True),
        (True, 1, False),
        ("a", ["a", "b"], True),
        ("a", ["b"], False),
        ("a", None, False),
    ],
)
def test_keys_are_normalized_like_equals(configured: Any, actual: Any, expected: bool) -> None:
    trigger = spec("form_submitted", form(configured))
    index = index_of(trigger)
    found = ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": actual}))
    assert found == ([trigger.trigger_id] if expected else [])


def test_in_files_the_trigger_under_every_value() -> None:
    plans = spec("subscription_created", all_of(cond("plan_id", "in", ["pro", "Team"])))
    index = index_of(plans)
    for plan, expected in (("pro", True), ("TEAM", True), ("basic", False)):
        found = ids(index.candidates(ACCOUNT, "subscription.created", {"plan_id": plan}))
        assert found == ([plans.trigger_id] if expected else []), plan
    both = index.candidates(ACCOUNT, "subscription.created", {"plan_id": ["pro", "team"]})
    assert ids(both) == [plans.trigger_id]  # once, though filed under both values


@pytest.mark.parametrize("field", ["pipeline_id", "event.pipeline_id"])
def test_event_field_written_either_way_is_keyed(field: str) -> None:
    won = spec("deal_won", all_of(cond(field, "equals", "sales")))
    index = index_of(won)
    assert ids(index.candidates(ACCOUNT, "deal.won", {"pipeline_id": "sales"})) == [won.trigger_id]
    assert index.candidates(ACCOUNT, "deal.won", {"pipeline_id": "support"}) == []


def test_non_identifying_event_field_and_nested_and_groups_are_keyed() -> None:
    sms = spec("sms_received", all_of(all_of(cond("from_number", "equals", "+100"))))
    index = index_of(sms)
    assert ids(index.candidates(ACCOUNT, "sms.received", {"from_number": "+100"})) == [
        sms.trigger_id
    ]
    assert index.candidates(ACCOUNT, "sms.received", {"from_number": "+200"}) == []


def test_identifying_field_is_preferred_to_other_conditions() -> None:
    stage = spec(
        "stage_changed",
        all_of(cond("contact.status", "equals", "lead"), cond("stage_id", "equals", "won")),
    )
    index = index_of(stage)
    data = {"stage_id": "won"}
    assert ids(index.candidates(ACCOUNT, "deal.stage_changed", data, {"status": "x"})) == [
        stage.trigger_id
    ]
    assert index.candidates(ACCOUNT, "deal.stage_changed", {"stage_id": "lost"}) == []


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"tags": ["lead", "VIP"]}, True),
        ({"tags": ["lead"]}, False),
        ({"tags": []}, False),
        ({}, False),
        ({"tags": "vip,lead"}, True),  # text: `contains` is a substring test, so no pruning
        (None, True),  # contact unknown to the index: every contact-keyed trigger
    ],
)
def test_contact_conditions_are_keyed_when_the_contact_is_given(
    contact: dict[str, Any] | None, expected: bool
) -> None:
    vip = spec("birthday", all_of(cond("contact.tags", "contains", "vip")))
    index = index_of(vip)
    found = ids(index.candidates(ACCOUNT, "time.birthday", {}, contact))
    assert found == ([vip.trigger_id] if expected else [])


def test_a_selective_condition_is_preferred_to_a_crowded_one() -> None:
    """Without an identifying field, a trigger goes under the value holding fewest triggers, so
    `status = customer` shared by all does not make every trigger a candidate."""
    triggers = [
        spec(
            "birthday",
            all_of(
                cond("contact.status", "equals", "customer"),
                cond("contact.tags", "contains", f"seg-{i}"),
            ),
        )
        for i in range(50)
    ]
    index = index_of(*triggers)
    contact = {"status": "Customer", "tags": ["seg-7"]}
    found = ids(index.candidates(ACCOUNT, "time.birthday", {}, contact))
    assert triggers[7].trigger_id in found
    assert len(found) <= 2  # the first one filed while both were empty may sit under status


def test_changed_to_is_keyed_on_the_current_value() -> None:
    became = spec("contact_updated", REALISTIC["contact_updated"][1])
    index = index_of(became)
    customer, lead = {"status": "Customer"}, {"status": "lead"}
    found = ids(index.candidates(ACCOUNT, "contact.updated", {}, customer))
    assert found == [became.trigger_id]
    assert index.candidates(ACCOUNT, "contact.updated", {}, lead) == []


def test_replace_moves_the_trigger_to_its_new_key_and_event_type() -> None:
    trigger_id = uuid4()
    index = index_of(spec("form_submitted", form("a"), trigger_id=trigger_id))
    assert index.apply(spec("form_submitted", form("b"), trigger_id=trigger_id, version=2))
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"}) == []
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "b"})) == [trigger_id]
    assert index.apply(spec("tag_added", None, trigger_id=trigger_id, version=3))
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "b"}) == []
    assert ids(index.candidates(ACCOUNT, "contact.tag_added", {"tag": "x"})) == [trigger_id]
    assert index.trigger_count() == 1


def test_a_trigger_that_is_no_longer_live_is_removed() -> None:
    """REQ-S-001: paused, draft or deleted workflows and inactive triggers fire nothing."""
    trigger_id = uuid4()
    keep = spec("form_submitted", form("a"))
    index = index_of(spec("form_submitted", form("a"), trigger_id=trigger_id), keep)
    assert index.apply(
        spec("form_submitted", form("a"), trigger_id=trigger_id, live=False, version=2)
    )
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"})) == [keep.trigger_id]
    assert index.get(trigger_id) is None
    assert index.trigger_count() == 1
    assert not index.apply(spec("form_submitted", None, live=False))  # unknown: nothing to remove


def test_stale_versions_are_ignored() -> None:
    """Issue 3 item 6: version numbers keep a stale update from winning."""
    trigger_id = uuid4()
    index = index_of(spec("form_submitted", form("new"), trigger_id=trigger_id, version=5))
    for version in (4, 5):
        assert not index.apply(
            spec("form_submitted", form("old"), trigger_id=trigger_id, version=version)
        )
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "new"})) == [trigger_id]
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "old"}) == []


def test_removal_leaves_a_tombstone_that_stale_upserts_cannot_revive() -> None:
    trigger_id = uuid4()
    index = index_of(spec("form_submitted", form("a"), trigger_id=trigger_id, version=1))
    assert index.apply(
        spec("form_submitted", form("a"), trigger_id=trigger_id, live=False, version=3)
    )
    assert not index.apply(spec("form_submitted", form("a"), trigger_id=trigger_id, version=2))
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"}) == []
    assert index.apply(spec("form_submitted", form("a"), trigger_id=trigger_id, version=4))
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"})) == [trigger_id]


def _broken(good: TriggerSpec, version: int) -> TriggerSpec:
    """`good` with a filter that parsed once but does not compile."""
    return TriggerSpec(
        good.trigger_id,
        good.workflow_id,
        good.account_id,
        good.event,
        Group("AND", (Condition("x", "bogus", 1),)),
        good.settings,
        True,
        version,
    )


def test_a_filter_that_does_not_compile_is_quarantined_in_place_of_the_old_version() -> None:
    """Issue 21 item 8: it raises nothing; the version it replaced goes too (a restarted
    partition would not have it either), and a newer valid version lifts the quarantine."""
    trigger_id = uuid4()
    good = spec("form_submitted", form("a"), trigger_id=trigger_id)
    keep = spec("form_submitted", form("a"))
    index = index_of(good, keep)
    assert index.apply(_broken(good, 2))
    assert index.get(trigger_id) is None
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"})) == [keep.trigger_id]
    [invalid] = index.invalid()
    assert (invalid.trigger_id, invalid.sync_version) == (trigger_id, 2)
    assert invalid.reason == "ValueError: unknown filter operator 'bogus'"
    assert not index.apply(_broken(good, 2))  # the same version again: nothing new
    assert index.apply(spec("form_submitted", form("b"), trigger_id=trigger_id, version=3))
    assert index.invalid() == []
    assert ids(index.candidates(ACCOUNT, "form.submitted", {"form_id": "b"})) == [trigger_id]


def test_an_invalid_stored_trigger_is_quarantined_and_a_dead_one_is_a_tombstone() -> None:
    trigger_id, dead_id = uuid4(), uuid4()
    good = spec("form_submitted", form("a"), trigger_id=trigger_id)
    index = index_of(good, spec("form_submitted", form("a"), trigger_id=dead_id))
    bad = InvalidSpec(trigger_id, good.workflow_id, ACCOUNT, True, 2, "Invalid filter: x")
    dead = InvalidSpec(dead_id, uuid4(), ACCOUNT, False, 2, "Invalid filter: y")
    assert index.apply_many([bad, dead]) == 2
    assert index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"}) == []
    assert index.invalid() == [bad]  # not live: its configuration no longer matters
    stale = InvalidSpec(trigger_id, good.workflow_id, ACCOUNT, True, 1, "older")
    assert not index.apply(stale)
    assert not index.apply(spec("form_submitted", form("a"), trigger_id=dead_id, version=1))
    assert index.apply(
        spec("form_submitted", form("a"), trigger_id=trigger_id, live=False, version=3)
    )
    assert index.invalid() == []


def test_dropping_an_account_forgets_its_quarantined_triggers() -> None:
    mine = InvalidSpec(uuid4(), uuid4(), ACCOUNT, True, 5, "Invalid filter: x")
    theirs = InvalidSpec(uuid4(), uuid4(), OTHER_ACCOUNT, True, 5, "Invalid filter: y")
    index = index_of(mine, theirs)
    index.drop_account(ACCOUNT)
    assert index.invalid() == [theirs]
    assert index.apply(mine)  # its version was forgotten too: a reload applies in full


def test_apply_many_counts_changes_and_restores_the_garbage_collector() -> None:
    import gc

    trigger_id = uuid4()
    specs = [
        spec("form_submitted", form("a"), trigger_id=trigger_id, version=2),
        spec("form_submitted", form("b"), trigger_id=trigger_id, version=1),  # stale
        spec("tag_added", None),
    ]
    index = TriggerIndex()
    assert gc.isenabled()
    assert index.apply_many(specs) == 2
    assert gc.isenabled()
    assert index.trigger_count() == 2
    compiled = index.get(trigger_id)
    assert compiled is not None
    assert compiled.spec == specs[0]


def test_accounts_are_isolated() -> None:
    """REQ-N-002: an account's events never reach another account's triggers."""
    mine = spec("form_submitted", form("a"))
    mine_unkeyed = spec("form_submitted", None)
    theirs = spec("form_submitted", form("a"), account_id=OTHER_ACCOUNT)
    index = index_of(mine, mine_unkeyed, theirs)
    found = index.candidates(ACCOUNT, "form.submitted", {"form_id": "a"})
    assert {c.spec.account_id for c in found} == {ACCOUNT}
    other = index.candidates(OTHER_ACCOUNT, "form.submitted", {"form_id": "a"})
    assert ids(other) == [theirs.trigger_id]
    assert index.candidates(uuid4(), "form.submitted", {"form_id": "a"}) == []
    assert index.trigger_count(ACCOUNT) == 2
    assert index.trigger_count(OTHER_ACCOUNT) == 1
    assert index.trigger_count(uuid4()) == 0
    assert index.trigger_count() == 3


def test_non_match_loggers_are_the_live_opted_in_triggers_of_the_event_type() -> None:
    """docs/contract.md §6: only triggers with log_non_matches log evaluations that did not
    match."""
    logging = spec("sms_received", None, settings={"log_non_matches": True})
    quiet = spec("sms_received", None, settings={})
    elsewhere = spec("tag_added", None, settings={"log_non_matches": True})
    index = index_of(logging, quiet, elsewhere)
    assert ids(index.non_match_loggers(ACCOUNT, "sms.received")) == [logging.trigger_id]
    assert index.non_match_loggers(OTHER_ACCOUNT, "sms.received") == []
    index.apply(spec("sms_received", None, trigger_id=logging.trigger_id, version=2, settings={}))
    assert index.non_match_loggers(ACCOUNT, "sms.received") == []


def test_removing_every_trigger_empties_the_index() -> None:
    specs = [spec(event, REALISTIC[event][1]) for event in REALISTIC]
    index = index_of(*specs)
    assert index.trigger_count() == len(REALISTIC)
    for one in specs:
        index.apply(spec(one.event.name, None, trigger_id=one.trigger_id, live=False, version=2))
    assert index.trigger_count() == 0
    assert index.account(ACCOUNT) is None


# --- the index never loses a match -----------------------------------------------------------

VALUES: list[Any] = [
    "a",
    "A ",
    "b",
    "15",
    15,
    "15.0",
    "215",
    "b, a",
    True,
    "true",
    "",
    None,
    ["a", "b"],
    ["B"],
]


def _random_filters(rng: random.Random, event_name: str) -> dict[str, Any]:
    event = BY_NAME[event_name]
    fields = [f for f in event.fields if not f.endswith(("_state", "_data"))]
    fields += ["contact.tags", "contact.status", "contact.custom_fields.region", "status"]
    operators = ["equals", "in", "contains", "not_equals", "is_empty", "greater_than"]
    if event_name == "contact_updated":
        operators.append("changed_to")

    def leaf() -> dict[str, Any]:
        operator = rng.choice(operators)
        scalars = [v for v in VALUES if isinstance(v, str | int) and v not in ("", None)]
        if operator == "in":
            return cond(rng.choice(fields), operator, rng.sample(scalars, 2))
        if operator == "is_empty":
            return cond(rng.choice(fields), operator)
        if operator in ("contains", "greater_than"):
            return cond(
                rng.choice(fields),
                operator,
                rng.choice(["14", 14.5] if operator == "greater_than" else ["a", "15", 15]),
            )
        return cond(rng.choice(fields), operator, rng.choice(scalars))

    conditions = [leaf() for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        conditions.append(any_of(leaf(), leaf()))
    return {"logic": "OR" if rng.random() < 0.1 else "AND", "conditions": conditions}


def _random_doc(rng: random.Random, fields: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for field in fields:
        if rng.random() < 0.8:
            head, _, rest = field.partition(".")
            value = rng.choice(VALUES)
            if rest:
                doc.setdefault(head, {})[rest] = value
            else:
                doc[head] = value
    return doc


@pytest.mark.parametrize("event", [e.name for e in TRIGGER_EVENTS])
def test_candidates_include_every_matching_trigger(event: str) -> None:
    """The index may over-approximate but must never drop a trigger whose predicate matches."""
    rng = random.Random(f"index-{event}")
    specs = [spec(event, _random_filters(rng, event)) for _ in range(80)]
    index = index_of(*specs)
    every = [index.get(one.trigger_id) for one in specs]
    trigger_event = BY_NAME[event]
    own = [f for f in trigger_event.fields if not f.endswith(("_state", "_data"))]
    pruned = 0
    for _ in range(150):
        data = _random_doc(rng, own)
        contact = _random_doc(rng, ["tags", "status", "custom_fields.region"])
        view = EventView(data, contact, {})
        found = index.candidates(ACCOUNT, trigger_event.event_type, data, contact)
        assert len(set(ids(found))) == len(found)
        matching = {t.spec.trigger_id for t in every if t is not None and t.predicate(view)}
        assert matching <= set(ids(found))
        pruned += len(every) - len(found)
    assert pruned > 0  # the keys did prune something


# --- a candidate's check is its whole filter's verdict ----------------------------------------


@pytest.mark.parametrize("event", [e.name for e in TRIGGER_EVENTS])
def test_check_gives_the_whole_filters_verdict_on_every_candidate(event: str) -> None:
    """A check may skip the leaf its lookup proved (equals / in, contains on a list), so it must
    agree with the whole filter on every candidate returned for the same data and contact: with
    text, numeric strings, case, lists, repeats, empties, and without a contact at all."""
    rng = random.Random(f"check-{event}")
    specs = [spec(event, _random_filters(rng, event)) for _ in range(80)]
    index = index_of(*specs)
    trigger_event = BY_NAME[event]
    own = [f for f in trigger_event.fields if not f.endswith(("_state", "_data"))]
    residual = 0
    for _ in range(150):
        data = _random_doc(rng, own)
        contact = _random_doc(rng, ["tags", "status", "custom_fields.region"])
        given = None if rng.random() < 0.1 else contact  # then contact-keyed ones use the whole
        previous = contact if rng.random() < 0.3 else _random_doc(rng, ["status", "tags"])
        view = EventView(data, contact, previous)
        for candidate in index.candidates(ACCOUNT, trigger_event.event_type, data, given):
            whole = compile_filters(candidate.spec.filters, trigger_event)
            assert candidate.check(view) is whole(view), to_json(candidate.spec.filters)
            filed = index.get(candidate.spec.trigger_id)
            assert filed is not None
            residual += candidate is filed and _established(filed) is not None
    assert residual > 0  # residual checks did run


def _established(trigger: CompiledTrigger) -> Condition | None:
    options = key_options(trigger.spec.filters, trigger.spec.event)
    chosen = [o for o in options if o.slot == trigger.slot and o.keys == trigger.keys]
    return chosen[0].established if chosen else None


def test_triggers_pinned_alike_share_their_residual_check() -> None:
    """The lookup proves the pinned leaf, so what is left to check is shared (memory, caches)."""
    extra = cond("contact.status", "equals", "customer")
    a, b = spec("form_submitted", form("a", extra)), spec("form_submitted", form("b", extra))
    bare = spec("form_submitted", form("c"))
    index = index_of(a, b, bare)
    first, second, third = (_filed(index, one) for one in (a, b, bare))
    assert first.check is second.check
    customer, lead = EventView({}, {"status": "customer"}, {}), EventView({}, {"status": "x"}, {})
    assert first.check(customer) is True
    assert first.check(lead) is False
    assert third.check(lead) is True  # nothing left to check
    assert first.predicate(customer) is False  # the whole filter still wants form_id a


def _filed(index: TriggerIndex, one: TriggerSpec) -> CompiledTrigger:
    trigger = index.get(one.trigger_id)
    assert trigger is not None
    return trigger


def _sizes(index: TriggerIndex) -> dict[UUID, tuple[int, int]]:
    return {a: (n, size) for a, n, size in index.account_sizes()}


def test_each_account_s_index_size_follows_its_triggers() -> None:
    """The compiled index's size per account (docs/contract.md §15): the sum of its live
    triggers' estimates, through replaces, removals and dropped accounts."""
    small = form("lead-form")
    large = all_of(cond("form_id", "in", [f"form-{n}" for n in range(50)]))
    one, two = spec("form_submitted", small), spec("form_submitted", large)
    theirs = spec("form_submitted", small, account_id=OTHER_ACCOUNT)
    index = index_of(one, two, theirs)
    small_size = index_bytes(one.filters)
    large_size = index_bytes(two.filters)
    assert large_size > small_size > 0
    assert _sizes(index) == {
        ACCOUNT: (2, small_size + large_size),
        OTHER_ACCOUNT: (1, small_size),
    }
    shrunk = spec("form_submitted", small, trigger_id=two.trigger_id, version=2)
    assert index.apply(shrunk)
    assert _sizes(index)[ACCOUNT] == (2, 2 * small_size)
    dead = spec("form_submitted", small, trigger_id=one.trigger_id, live=False, version=2)
    assert index.apply(dead)
    assert _sizes(index)[ACCOUNT] == (1, small_size)
    index.drop_account(OTHER_ACCOUNT)
    assert _sizes(index) == {ACCOUNT: (1, small_size)}
    account = index.account(ACCOUNT)
    assert account is not None
    assert account.index_bytes == small_size
