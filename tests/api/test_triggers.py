"""Trigger configuration over HTTP: every catalog event, validation, 409, audit (docs/contract.md
§4)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pipelines import errors
from pipelines.examples import REALISTIC, all_of, cond, trigger_body
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


@pytest.mark.parametrize("event", sorted(REALISTIC))
def test_every_catalog_event_configures_and_round_trips(tenant: MakeTenant, event: str) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    body = trigger_body(event)
    created = new_trigger(t.client, workflow["id"], body)
    assert created["workflow_id"] == workflow["id"]
    assert created["trigger_type"] == body["trigger_type"]
    assert created["trigger_event"] == event
    assert created["filters"] == body["filters"]
    assert body["settings"].items() <= created["settings"].items()
    assert created["is_active"] is True
    assert created["version"] == 1
    assert created["created_at"]
    assert created["updated_at"]
    fetched = t.client.get(f"/workflows/{workflow['id']}/trigger")
    assert fetched.status_code == 200
    assert fetched.json() == created


REFUSED: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "invalid type",
        {"trigger_type": "webinar", "trigger_event": "tag_added"},
        400,
        errors.INVALID_TRIGGER_TYPE,
    ),
    (
        "invalid event",
        {"trigger_type": "contact", "trigger_event": "nope"},
        400,
        errors.INVALID_TRIGGER_EVENT,
    ),
    (
        "category mismatch",
        {"trigger_type": "payment", "trigger_event": "tag_added"},
        400,
        errors.EVENT_CATEGORY_MISMATCH,
    ),
    (
        "invalid operator",
        {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": all_of(cond("tag", "resembles", "vip")),
        },
        400,
        errors.INVALID_OPERATOR,
    ),
    (
        "wrong value type",
        {
            "trigger_type": "payment",
            "trigger_event": "payment_received",
            "filters": all_of(cond("amount", "greater_than", "a lot")),
        },
        400,
        errors.INVALID_VALUE,
    ),
    (
        "21 conditions",
        {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": all_of(*(cond("tag", "equals", str(i)) for i in range(21))),
        },
        400,
        errors.TOO_MANY_CONDITIONS,
    ),
    (
        "bad settings",
        {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "settings": {"enrollment_limit": "always"},
        },
        400,
        errors.INVALID_SETTINGS,
    ),
    ("missing trigger_type", {"trigger_event": "tag_added"}, 422, errors.MISSING_FIELD),
    ("missing trigger_event", {"trigger_type": "contact"}, 422, errors.MISSING_FIELD),
    (
        "condition missing value",
        {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": all_of({"field": "tag", "operator": "equals"}),
        },
        422,
        errors.MISSING_FIELD,
    ),
    (
        "type is a number",
        {"trigger_type": 7, "trigger_event": "tag_added"},
        422,
        errors.VALIDATION_FAILED,
    ),
    (
        "unknown top-level field",
        {"trigger_type": "contact", "trigger_event": "tag_added", "priority": 1},
        422,
        errors.VALIDATION_FAILED,
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "title"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_invalid_trigger_is_refused_and_nothing_is_saved(
    tenant: MakeTenant, db_sync: Db, body: dict[str, Any], status: int, title: str
) -> None:
    """REQ-U-001 / REQ-N-001."""
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger", json=body)
    problem(response, status, title)
    assert (
        db_sync.value("SELECT count(*) FROM workflow_triggers WHERE account_id = $1", t.account_id)
        == 0
    )
    assert t.client.get(f"/workflows/{workflow['id']}/trigger").status_code == 404


def test_missing_field_is_named(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger", json={"trigger_type": "form"})
    body = problem(response, 422, errors.MISSING_FIELD)
    assert "trigger_event" in body["detail"]
    assert body["errors"][0]["pointer"] == "/trigger_event"


def test_invalid_operator_names_the_condition(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    filters = all_of(cond("tag", "equals", "a"), cond("tag", "resembles", "b"))
    response = t.client.post(
        f"/workflows/{workflow['id']}/trigger",
        json={"trigger_type": "contact", "trigger_event": "tag_added", "filters": filters},
    )
    body = problem(response, 400, errors.INVALID_OPERATOR)
    assert body["pointer"] == "/filters/conditions/1/operator"
    assert "resembles" in body["detail"]


def test_second_trigger_is_409(tenant: MakeTenant) -> None:
    """REQ-U-002."""
    t = tenant()
    workflow = new_workflow(t.client)
    new_trigger(t.client, workflow["id"], trigger_body("tag_added"))
    again = t.client.post(f"/workflows/{workflow['id']}/trigger", json=trigger_body("deal_won"))
    problem(again, 409, errors.TRIGGER_EXISTS)


def test_concurrent_creates_give_one_201_and_one_409(tenant: MakeTenant, db_sync: Db) -> None:
    """REQ-U-002 under a race: the database's unique index decides."""
    t = tenant()
    workflow = new_workflow(t.client)
    for _ in range(5):
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def post(event: str, barrier: threading.Barrier, statuses: list[int]) -> None:
            barrier.wait()
            r = t.client.post(f"/workflows/{workflow['id']}/trigger", json=trigger_body(event))
            statuses.append(r.status_code)

        threads = [
            threading.Thread(target=post, args=(e, barrier, statuses))
            for e in ("tag_added", "deal_won")
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(statuses) == [201, 409]
        live = t.client.get(f"/workflows/{workflow['id']}/trigger").json()
        assert (
            t.client.delete(f"/workflows/{workflow['id']}/trigger/{live['id']}").status_code == 204
        )
    live_rows = db_sync.value(
        "SELECT count(*) FROM workflow_triggers WHERE workflow_id = $1 AND deleted_at IS NULL",
        workflow["id"],
    )
    assert live_rows == 0


def test_replace_validates_and_bumps_version(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    created = new_trigger(t.client, workflow["id"], trigger_body("tag_added"))
    url = f"/workflows/{workflow['id']}/trigger/{created['id']}"
    bad = {**trigger_body("tag_added"), "filters": all_of(cond("tag", "like", "x"))}
    problem(t.client.put(url, json=bad), 400, errors.INVALID_OPERATOR)
    replaced = t.client.put(url, json={**trigger_body("form_submitted"), "is_active": False})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == created["id"]
    assert body["trigger_event"] == "form_submitted"
    assert body["is_active"] is False
    assert body["version"] == 2
    assert body["created_at"] == created["created_at"]
    assert t.client.get(f"/workflows/{workflow['id']}/trigger").json() == body


def test_delete_is_soft_and_allows_a_new_trigger(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    created = new_trigger(t.client, workflow["id"], trigger_body("tag_added"))
    url = f"/workflows/{workflow['id']}/trigger/{created['id']}"
    assert t.client.delete(url).status_code == 204
    assert t.client.get(f"/workflows/{workflow['id']}/trigger").status_code == 404
    problem(t.client.delete(url), 404, errors.NOT_FOUND)
    problem(t.client.put(url, json=trigger_body("tag_added")), 404, errors.NOT_FOUND)
    kept = db_sync.fetch("SELECT deleted_at FROM workflow_triggers WHERE id = $1", created["id"])
    assert kept[0]["deleted_at"] is not None
    new_trigger(t.client, workflow["id"], trigger_body("deal_won"))


def test_audit_records_create_update_delete_with_key_and_before_after(tenant: MakeTenant) -> None:
    """REQ-U-003."""
    t = tenant()
    workflow = new_workflow(t.client)
    created = new_trigger(t.client, workflow["id"], trigger_body("tag_added"))
    url = f"/workflows/{workflow['id']}/trigger/{created['id']}"
    updated = t.client.put(url, json=trigger_body("tag_removed")).json()
    assert (
        t.client.patch(f"/workflows/{workflow['id']}", json={"status": "active"}).status_code == 200
    )
    assert t.client.delete(url).status_code == 204

    page = t.client.get(f"/workflows/{workflow['id']}/trigger/audit")
    assert page.status_code == 200
    entries = page.json()["items"]
    assert [e["action"] for e in entries] == [
        "workflow.create",
        "trigger.create",
        "trigger.update",
        "workflow.activate",
        "trigger.delete",
    ]
    assert {e["actor_key_id"] for e in entries} == {str(t.key_id)}
    create, update, activate, delete = entries[1], entries[2], entries[3], entries[4]
    assert create["before"] is None
    assert create["after"] == created
    assert update["before"] == created
    assert update["after"] == updated
    assert activate["before"]["status"] == "draft"
    assert activate["after"]["status"] == "active"
    assert delete["before"] == updated
    assert delete["after"] is None
    assert all(e["created_at"] for e in entries)


def test_audit_pages_with_a_cursor(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    for name in ("a", "b", "c"):
        t.client.patch(f"/workflows/{workflow['id']}", json={"name": name})
    first = t.client.get(f"/workflows/{workflow['id']}/trigger/audit", params={"limit": 2}).json()
    assert len(first["items"]) == 2
    rest = t.client.get(
        f"/workflows/{workflow['id']}/trigger/audit", params={"cursor": first["next_cursor"]}
    ).json()
    assert [e["after"]["name"] for e in rest["items"]] == ["b", "c"]
    assert rest["next_cursor"] is None
    bad = t.client.get(f"/workflows/{workflow['id']}/trigger/audit", params={"cursor": "zz"})
    problem(bad, 400, errors.INVALID_CURSOR)


def test_workflow_delete_is_audited_and_the_trail_stays_readable(tenant: MakeTenant) -> None:
    """REQ-U-003: the audit trail outlives the workflow."""
    t = tenant()
    workflow = new_workflow(t.client)
    trigger = new_trigger(t.client, workflow["id"], trigger_body("tag_added"))
    assert t.client.delete(f"/workflows/{workflow['id']}").status_code == 204
    page = t.client.get(f"/workflows/{workflow['id']}/trigger/audit")
    assert page.status_code == 200, page.text
    last = page.json()["items"][-1]
    assert last["action"] == "workflow.delete"
    assert last["trigger_id"] == trigger["id"]
    assert last["before"]["id"] == workflow["id"]
    assert last["after"] is None
    assert last["actor_key_id"] == str(t.key_id)


def test_trigger_create_racing_workflow_delete_leaves_no_live_orphan(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    for _ in range(10):
        workflow = new_workflow(t.client)
        barrier = threading.Barrier(2)

        def create(barrier: threading.Barrier = barrier, wf: str = workflow["id"]) -> None:
            barrier.wait()
            t.client.post(f"/workflows/{wf}/trigger", json=trigger_body("tag_added"))

        def delete(barrier: threading.Barrier = barrier, wf: str = workflow["id"]) -> None:
            barrier.wait()
            t.client.delete(f"/workflows/{wf}")

        threads = [threading.Thread(target=create), threading.Thread(target=delete)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    orphans = db_sync.value(
        "SELECT count(*) FROM workflow_triggers t JOIN workflows w ON w.id = t.workflow_id"
        " WHERE t.account_id = $1 AND t.deleted_at IS NULL AND w.deleted_at IS NOT NULL",
        t.account_id,
    )
    assert orphans == 0
