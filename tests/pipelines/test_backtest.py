"""Backtest replay logic without I/O: figures equal a brute-force replay of the same events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipelines import errors
from pipelines.backtest import Backtest, RawEntry, Result, check_window
from pipelines.enrollment import ContactKey, Last, PairKey
from pipelines.errors import ConfigError
from pipelines.index import TriggerSpec, spec_from_config
from pipelines.projection import Contact
from pipelines.triggers import validate_trigger
from tests.pipelines.backtest_oracle import (
    BIG_LEAD_FORM,
    CONTACT_TYPES,
    VIP_CUSTOMER,
    VIP_OR_HOT,
    Expected,
    Rule,
    big_lead_form,
    brute_force,
    make_events,
    vip_customer,
    vip_or_hot,
)

STREAM = "hairtrigger:events:0"
ACCOUNT, OTHER = uuid.uuid4(), uuid.uuid4()
WORKFLOW, TRIGGER = uuid.uuid4(), uuid.uuid4()
CONTACTS = [uuid.UUID(int=i + 1, version=4) for i in range(12)]


def spec(
    event: str, filters: Any, settings: Any = None, trigger_id: uuid.UUID = TRIGGER
) -> TriggerSpec:
    category = "form" if event == "form_submitted" else "contact"
    config = validate_trigger(category, event, filters, settings)
    return spec_from_config(config, trigger_id=trigger_id, workflow_id=WORKFLOW, account_id=ACCOUNT)


def pages(events: list[dict[str, Any]], size: int = 37) -> list[list[RawEntry]]:
    entries = [
        [f"1795600000000-{i}".encode(), [b"event", orjson.dumps(e)]] for i, e in enumerate(events)
    ]
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def replay(
    bt: Backtest,
    events: list[dict[str, Any]],
    projection: dict[ContactKey, Contact],
    history: dict[PairKey, Last],
) -> Result:
    """What store.backtest.run does, with dicts for Postgres."""
    for page in pages(events):
        found = bt.select(STREAM, page)
        if not found:
            continue
        keys = bt.contacts_to_load(found)
        if keys:
            bt.add_contacts({k: projection[k] for k in keys if k in projection})
        matches = bt.match(found)
        pairs = bt.history_to_load(matches)
        if pairs:
            bt.add_history({p: history[p] for p in pairs if p in history})
        bt.settle(matches)
    return bt.result()


# The contacts projection now, and who is already enrolled in the workflow.
PROJECTION = {
    CONTACTS[0]: ({"status": "customer", "tags": ["newsletter"]}, False),
    CONTACTS[1]: ({"status": "customer", "tags": ["vip"]}, False),
    CONTACTS[2]: ({"status": "customer"}, True),
    CONTACTS[3]: ({"status": "lead", "tags": ["vip"]}, False),
}
ENROLLED_BEFORE = {CONTACTS[1], CONTACTS[5]}


def stores() -> tuple[dict[ContactKey, Contact], dict[PairKey, Last]]:
    projection = {
        (ACCOUNT, c): Contact(dict(state), deleted, datetime.now(UTC))
        for c, (state, deleted) in PROJECTION.items()
    }
    history = {
        (ACCOUNT, WORKFLOW, c): Last(uuid.uuid4(), datetime(2026, 1, 1, tzinfo=UTC))
        for c in ENROLLED_BEFORE
    }
    return projection, history


def expected(events: list[dict[str, Any]], rule: Rule, replayed: set[str]) -> Expected:
    return brute_force(
        events,
        ACCOUNT,
        rule,
        replayed,
        {str(c): v for c, v in PROJECTION.items()},
        {str(c) for c in ENROLLED_BEFORE},
    )


def assert_equal(result: Result, want: Expected) -> None:
    out = result.outcome
    assert result.events_scanned == want.scanned
    assert out.matched_events == want.matched
    assert out.matched_contacts == len(want.contacts)
    assert out.would_enroll == want.would_enroll
    assert out.blocked == dict(want.blocked)
    assert [str(s.event_id) for s in out.samples] == want.matched_ids[:10]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_saved_trigger_figures_equal_a_brute_force_replay(seed: int) -> None:
    events = make_events(ACCOUNT, OTHER, CONTACTS, 600, seed)
    bt = Backtest(ACCOUNT, spec("tag_added", VIP_CUSTOMER))
    result = replay(bt, events, *stores())
    want = expected(events, Rule("contact.tag_added", vip_customer), CONTACT_TYPES)
    assert want.would_enroll  # the data exercises every path
    assert len(want.blocked) >= 2
    assert_equal(result, want)
    assert result.diff is None


@pytest.mark.parametrize("seed", [4, 5])
def test_multiple_with_cooldown_equals_a_brute_force_replay(seed: int) -> None:
    events = make_events(ACCOUNT, OTHER, CONTACTS, 600, seed)
    settings = {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 1800}
    bt = Backtest(ACCOUNT, spec("tag_added", VIP_OR_HOT, settings))
    result = replay(bt, events, *stores())
    want = expected(events, Rule("contact.tag_added", vip_or_hot, False, 1800), CONTACT_TYPES)
    assert want.blocked["blocked: cooldown"]
    assert_equal(result, want)


def test_contact_conditions_see_the_state_as_of_each_event() -> None:
    events = make_events(ACCOUNT, OTHER, CONTACTS, 800, 6)
    form = spec("form_submitted", BIG_LEAD_FORM)
    result = replay(Backtest(ACCOUNT, form), events, *stores())
    replayed = CONTACT_TYPES | {"form.submitted"}
    want = expected(events, Rule("form.submitted", big_lead_form), replayed)
    assert want.matched
    assert_equal(result, want)


def test_diff_of_an_edited_trigger() -> None:
    events = make_events(ACCOUNT, OTHER, CONTACTS, 600, 7)
    saved = spec("tag_added", VIP_CUSTOMER)
    draft = spec("tag_added", VIP_OR_HOT, {"enrollment_limit": "multiple"})
    result = replay(Backtest(ACCOUNT, draft, saved), events, *stores())
    draft_want = expected(events, Rule("contact.tag_added", vip_or_hot, False), CONTACT_TYPES)
    saved_want = expected(events, Rule("contact.tag_added", vip_customer), CONTACT_TYPES)
    assert_equal(result, draft_want)
    assert result.diff is not None
    newly = [i for i in draft_want.matched_ids if i not in set(saved_want.matched_ids)]
    gone = [i for i in saved_want.matched_ids if i not in set(draft_want.matched_ids)]
    assert newly
    assert not gone  # vip-or-hot matches a superset of vip-and-customer
    assert result.diff.newly_matching.count == len(newly)
    assert [str(i) for i in result.diff.newly_matching.event_ids] == newly[:10]
    assert result.diff.no_longer_matching.count == 0


def test_diff_counts_events_no_longer_matching() -> None:
    events = make_events(ACCOUNT, OTHER, CONTACTS, 400, 8)
    saved = spec("tag_added", VIP_OR_HOT)
    draft = spec("tag_added", VIP_CUSTOMER)
    result = replay(Backtest(ACCOUNT, draft, saved), events, *stores())
    draft_ids = expected(events, Rule("contact.tag_added", vip_customer), CONTACT_TYPES).matched_ids
    saved_ids = expected(events, Rule("contact.tag_added", vip_or_hot), CONTACT_TYPES).matched_ids
    gone = [i for i in saved_ids if i not in set(draft_ids)]
    assert result.diff is not None
    assert result.diff.no_longer_matching.count == len(gone) > 0
    assert result.diff.newly_matching.count == 0


def _tag(contact: uuid.UUID, tag: str, minute: int, **extra: Any) -> dict[str, Any]:
    at = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(minutes=minute)
    return {
        "event_id": str(extra.pop("event_id", uuid.uuid4())),
        "event_type": "contact.tag_added",
        "account_id": str(extra.pop("account", ACCOUNT)),
        "timestamp": at.isoformat(),
        "data": {"contact_id": str(contact), "tag": tag},
    }


def test_the_event_that_enrolled_the_contact_counts_as_enrolling() -> None:
    """Postgres holds the enrollment made by an event of the window: that event would enroll
    (it did), a later one is blocked by the single limit."""
    contact, first = uuid.uuid4(), uuid.uuid4()
    events = [_tag(contact, "vip", 0, event_id=first), _tag(contact, "vip", 5)]
    history = {(ACCOUNT, WORKFLOW, contact): Last(first, datetime.now(UTC))}
    result = replay(Backtest(ACCOUNT, spec("tag_added", VIP_OR_HOT)), events, {}, history)
    assert [(s.would_enroll, s.reason) for s in result.outcome.samples] == [
        (True, None),
        (False, "blocked: already_enrolled"),
    ]


def test_other_accounts_and_garbage_are_not_counted() -> None:
    """Only the account's own events count, whatever case its id is written in."""
    contact = uuid.uuid4()
    named = _tag(contact, str(ACCOUNT), 3, account=OTHER)  # names the account, is not its
    events = [
        _tag(contact, "vip", 0),
        _tag(contact, "vip", 1, account=OTHER),
        _tag(contact, "vip", 2, account=str(ACCOUNT).upper()),
        named,
    ]
    first = orjson.dumps(events[0])
    entries: list[RawEntry] = [
        [b"1-1", [b"event", b"{not json"]],
        [b"1-2", [b"other", b"x"]],
        [b"1-3", [b"x", b"1", b"event", first]],
    ]
    entries += pages(events[1:])[0]
    bt = Backtest(ACCOUNT, spec("tag_added", VIP_OR_HOT))
    selected = bt.select(STREAM, entries)
    assert [str(e.envelope.event_id) for e in selected] == [
        events[0]["event_id"],
        events[2]["event_id"],
    ]
    assert bt.scanned == 2


def test_a_contact_created_in_the_window_starts_empty() -> None:
    """Deleted now, created (and so alive) in the window: its first events could enroll."""
    contact = uuid.uuid4()
    data = {"contact_id": str(contact), "current_state": {"status": "customer"}}
    created = {**_tag(contact, "", 0), "event_type": "contact.created", "data": data}
    events = [created, _tag(contact, "vip", 1)]
    projection = {(ACCOUNT, contact): Contact({"status": "lead"}, True, datetime.now(UTC))}
    result = replay(Backtest(ACCOUNT, spec("tag_added", VIP_CUSTOMER)), events, projection, {})
    assert (result.outcome.matched_events, result.outcome.would_enroll) == (1, 1)
    result = replay(Backtest(ACCOUNT, spec("tag_added", VIP_CUSTOMER)), events[1:], projection, {})
    assert (result.outcome.matched_events, result.outcome.would_enroll) == (0, 0)


NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("start", "end", "detail"),
    [
        (NOW, NOW, "'from' must be before 'to'"),
        (NOW, NOW - timedelta(hours=1), "'from' must be before 'to'"),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2), "'from' is in the future"),
        (NOW - WEEK - timedelta(seconds=1), NOW, "longer than the 168 hours"),
    ],
)
def test_bad_windows_are_refused(start: datetime, end: datetime, detail: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_window(start, end, NOW, WEEK)
    assert caught.value.title == errors.INVALID_WINDOW
    assert detail in caught.value.detail


def test_a_window_as_long_as_the_retention_is_fine() -> None:
    check_window(NOW - WEEK, NOW, NOW, WEEK)
    check_window(NOW - timedelta(hours=1), NOW + timedelta(hours=5), NOW, WEEK)  # ends later
    check_window(datetime(2026, 11, 25, 11), datetime(2026, 11, 25, 12), NOW, WEEK)  # naive: UTC


def test_a_time_trigger_draft_replays_the_saved_triggers_time_events() -> None:
    """time.* events name the trigger they were emitted for: the draft stands in for the saved
    trigger (a pass each), and events emitted for another trigger match neither."""
    saved_config = validate_trigger("time", "birthday", VIP_CUSTOMER_CONTACT, None)
    saved = spec_from_config(
        saved_config, trigger_id=TRIGGER, workflow_id=WORKFLOW, account_id=ACCOUNT
    )
    draft_config = validate_trigger("time", "birthday", None, None)
    draft = spec_from_config(
        draft_config, trigger_id=uuid.uuid4(), workflow_id=WORKFLOW, account_id=ACCOUNT
    )
    customer, lead = CONTACTS[0], CONTACTS[3]  # per PROJECTION
    events = [_birthday(customer, TRIGGER), _birthday(lead, TRIGGER), _birthday(lead, uuid.uuid4())]
    result = replay(Backtest(ACCOUNT, draft, saved), events, *stores())
    assert result.outcome.matched_events == 2
    assert result.diff is not None
    assert result.diff.newly_matching.event_ids == [uuid.UUID(events[1]["event_id"])]
    assert result.diff.no_longer_matching.count == 0


VIP_CUSTOMER_CONTACT = {
    "logic": "AND",
    "conditions": [{"field": "contact.status", "operator": "equals", "value": "customer"}],
}


def _birthday(contact: uuid.UUID, trigger_id: uuid.UUID) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "time.birthday",
        "account_id": str(ACCOUNT),
        "timestamp": "2026-11-20T09:00:00+00:00",
        "data": {
            "contact_id": str(contact),
            "trigger_id": str(trigger_id),
            "occurrence": "2026-11-20",
        },
    }
