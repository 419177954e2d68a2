"""Enrollment policy end to end (docs/contract.md §5): REQ-S-001 active workflows only, REQ-N-002
tenancy, REQ-S-002 single vs multiple, REQ-N-004 deleted contacts, REQ-N-003 loop depth,
duplicates."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pipelines.enrollment import (
    DEFAULT_LOOP_LIMIT,
)
from pipelines.examples import all_of, cond
from pipelines.reasons import Blocked
from tests.support.db import Db, enrollments, logs
from tests.support.factories import Tenant, active_workflow, event, tenants_on_shards
from tests.support.streams import Streams

MakeTenant = Callable[..., Tenant]
HOT = all_of(cond("tag", "equals", "hot"))


def tagged(account_id: uuid.UUID, contact_id: uuid.UUID, **kw: object) -> dict[str, object]:
    return event(account_id, "contact.tag_added", contact_id, tag="hot", **kw)  # type: ignore[arg-type]


def test_draft_and_paused_workflows_fire_nothing(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """REQ-S-001."""
    t = live_tenant()
    draft, _ = active_workflow(t.client, "contact", "tag_added", HOT, status="draft")
    paused, _ = active_workflow(t.client, "contact", "tag_added", HOT, status="paused")
    active, _ = active_workflow(t.client, "contact", "tag_added", HOT)
    streams.send([tagged(t.account_id, uuid.uuid4())])
    streams.wait_drained()
    assert [str(r["workflow_id"]) for r in enrollments(db_sync, t.account_id)] == [active["id"]]
    # resuming the paused one makes it fire for the next event
    t.client.patch(f"/workflows/{paused['id']}", json={"status": "active"})
    streams.send([tagged(t.account_id, uuid.uuid4())])
    streams.wait_drained()
    fired = sorted(str(r["workflow_id"]) for r in enrollments(db_sync, t.account_id))
    assert fired == sorted([active["id"], active["id"], paused["id"]])
    assert draft["id"] not in fired


def test_an_accounts_events_never_reach_another_accounts_triggers(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """REQ-N-002."""
    a, b = tenants_on_shards(live_tenant, streams, lambda x, y: x == y)  # one actor sees both
    active_workflow(a.client, "contact", "tag_added", HOT)
    active_workflow(b.client, "contact", "tag_added", HOT)
    contact = uuid.uuid4()  # the same contact id in both accounts
    streams.send([tagged(a.account_id, contact)])
    streams.wait_drained()
    assert len(enrollments(db_sync, a.account_id)) == 1
    assert enrollments(db_sync, b.account_id) == []


def test_single_enrollment_blocks_second_match(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """REQ-S-002."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, {"enrollment_limit": "single"})
    contact = uuid.uuid4()
    streams.send([tagged(t.account_id, contact), tagged(t.account_id, contact)])
    streams.wait_drained()
    streams.send([tagged(t.account_id, contact)])
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 1
    reasons = [r["failure_reason"] for r in logs(db_sync, t.account_id)]
    assert reasons == [None, Blocked.ALREADY_ENROLLED.text, Blocked.ALREADY_ENROLLED.text]


def test_multiple_enrollment_reenrolls_on_each_new_event(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"})
    contact = uuid.uuid4()
    streams.send([tagged(t.account_id, contact) for _ in range(3)])
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 3


def test_multiple_with_cooldown_blocks_until_it_passes(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    settings = {"enrollment_limit": "multiple", "reenroll_cooldown_seconds": 3600}
    active_workflow(t.client, "contact", "tag_added", HOT, settings)
    contact = uuid.uuid4()
    streams.send([tagged(t.account_id, contact), tagged(t.account_id, contact)])
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 1
    assert [r["failure_reason"] for r in logs(db_sync, t.account_id)] == [
        None,
        Blocked.COOLDOWN.text,
    ]


def test_deleted_contacts_never_enroll(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """REQ-N-004."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT)
    gone, kept = uuid.uuid4(), uuid.uuid4()
    streams.send(
        [
            event(t.account_id, "contact.created", gone, current_state={"email": "a@b.co"}),
            event(t.account_id, "contact.deleted", gone),
        ]
    )
    streams.wait_drained()
    streams.send([tagged(t.account_id, gone), tagged(t.account_id, kept)])
    streams.wait_drained()
    assert [r["contact_id"] for r in enrollments(db_sync, t.account_id)] == [kept]
    blocked = [r for r in logs(db_sync, t.account_id) if r["contact_id"] == gone]
    assert [r["failure_reason"] for r in blocked] == [Blocked.CONTACT_DELETED.text]


def test_loop_depth_over_the_limit_is_blocked(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    """REQ-N-003 at run time."""
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"})
    ok, looping = uuid.uuid4(), uuid.uuid4()
    streams.send(
        [
            tagged(t.account_id, ok, depth=DEFAULT_LOOP_LIMIT),
            tagged(t.account_id, looping, depth=DEFAULT_LOOP_LIMIT + 1),
        ]
    )
    streams.wait_drained()
    assert [r["contact_id"] for r in enrollments(db_sync, t.account_id)] == [ok]
    blocked = [r for r in logs(db_sync, t.account_id) if r["contact_id"] == looping]
    assert [r["failure_reason"] for r in blocked] == [Blocked.LOOP_DEPTH_EXCEEDED.text]


def test_duplicate_event_ids_enroll_once(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    active_workflow(t.client, "contact", "tag_added", HOT, {"enrollment_limit": "multiple"})
    contact, event_id = uuid.uuid4(), uuid.uuid4()
    duplicate = tagged(t.account_id, contact, event_id=event_id)
    streams.send([duplicate, duplicate])
    streams.wait_drained()
    streams.send([duplicate])
    streams.wait_drained()
    assert len(enrollments(db_sync, t.account_id)) == 1
    assert len(streams.enrollments(t.account_id)) == 1
    assert len(logs(db_sync, t.account_id)) == 1


def test_non_matches_are_logged_only_when_opted_in(
    live_tenant: MakeTenant, streams: Streams, db_sync: Db
) -> None:
    t = live_tenant()
    quiet, _ = active_workflow(t.client, "contact", "tag_added", HOT)
    chatty, _ = active_workflow(t.client, "contact", "tag_added", HOT, {"log_non_matches": True})
    streams.send([event(t.account_id, "contact.tag_added", tag="cold")])
    streams.wait_drained()
    rows = logs(db_sync, t.account_id)
    assert [(str(r["workflow_id"]), r["failure_reason"], r["matched"]) for r in rows] == [
        (chatty["id"], "not_matched", False)
    ]
    assert quiet["id"] != chatty["id"]
