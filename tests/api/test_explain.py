"""The test endpoint (REQ-O-002), and the logs, enrollments and audit views (docs/contract.md
§6)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from pipelines import errors
from pipelines.examples import all_of, any_of, cond
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]

FORM_TRIGGER: dict[str, Any] = {
    "trigger_type": "form",
    "trigger_event": "form_submitted",
    "filters": all_of(
        cond("form_id", "equals", "lead-form"),
        any_of(cond("budget", "greater_than", 10000), cond("contact.tags", "contains", "vip")),
    ),
}


def add_contact(db: Db, account_id: uuid.UUID, **state: Any) -> uuid.UUID:
    contact_id = uuid.uuid4()
    db.run(
        lambda c: c.execute(
            "INSERT INTO contacts (account_id, contact_id, state, tags, deleted)"
            " VALUES ($1, $2, $3, $4, $5)",
            account_id,
            contact_id,
            {k: v for k, v in state.items() if k != "deleted"},
            state.get("tags", []),
            state.get("deleted", False),
        )
    )
    return contact_id


def activate(t: Tenant, workflow_id: str) -> None:
    assert t.client.patch(f"/workflows/{workflow_id}", json={"status": "active"}).status_code == 200


def form_workflow(t: Tenant, status: str = "active") -> tuple[str, str]:
    workflow = new_workflow(t.client)
    trigger = new_trigger(t.client, workflow["id"], FORM_TRIGGER)
    if status == "active":
        activate(t, workflow["id"])
    return workflow["id"], trigger["id"]


def run_test(t: Tenant, wf: str, tr: str, contact: uuid.UUID, **data: Any) -> Any:
    return t.client.post(
        f"/workflows/{wf}/trigger/{tr}/test",
        json={"contact_id": str(contact), "simulate_event_data": data},
    )


def counts(db: Db, account_id: uuid.UUID) -> tuple[int, int]:
    enrolled = db.value(
        "SELECT count(*) FROM workflow_enrollments WHERE account_id = $1", account_id
    )
    tests = db.value(
        "SELECT count(*) FROM trigger_execution_logs WHERE account_id = $1 AND is_test", account_id
    )
    return enrolled, tests


def test_matching_contact_explains_every_condition_and_enrolls_nobody(
    tenant: MakeTenant, db_sync: Db, redis_url: str
) -> None:
    t = tenant()
    wf, tr = form_workflow(t)
    vip = add_contact(db_sync, t.account_id, tags=["VIP"], email="a@example.com")
    with redis.Redis.from_url(redis_url) as client:
        before = {
            k: client.xlen(k) for k in client.keys("hairtrigger:*") if client.type(k) == b"stream"
        }
        response = run_test(t, wf, tr, vip, form_id="Lead-Form", form_data={"budget": "500"})
        after = {
            k: client.xlen(k) for k in client.keys("hairtrigger:*") if client.type(k) == b"stream"
        }
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["matched"], body["would_enroll"], body["reason"]) == (True, True, None)
    assert body["contact_known"] is True
    assert body["status"] == "triggered"
    tree = body["conditions"]
    assert (tree["logic"], tree["passed"]) == ("AND", True)
    form_leaf, group = tree["conditions"]
    assert form_leaf == {
        "field": "form_id",
        "operator": "equals",
        "value": "lead-form",
        "actual": "Lead-Form",
        "passed": True,
    }
    budget, tags = group["conditions"]
    assert (budget["actual"], budget["passed"]) == ("500", False)
    assert (tags["actual"], tags["passed"]) == (["VIP"], True)
    assert group["passed"] is True
    # a test log row, and nothing else: no enrollment, no stream entry
    assert counts(db_sync, t.account_id) == (0, 1)
    assert before == after
    log = db_sync.fetch("SELECT * FROM trigger_execution_logs WHERE id = $1", body["log_id"])[0]
    assert (log["is_test"], log["matched"], log["enrolled"]) == (True, True, False)
    assert log["details"]["conditions"] == tree


def test_non_matching_contact_says_which_condition_failed(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    wf, tr = form_workflow(t)
    plain = add_contact(db_sync, t.account_id, tags=["newsletter"])
    body = run_test(t, wf, tr, plain, form_id="lead-form", form_data={"budget": 9000}).json()
    assert (body["matched"], body["would_enroll"], body["reason"]) == (False, False, "not_matched")
    budget, tags = body["conditions"]["conditions"][1]["conditions"]
    assert (budget["actual"], budget["passed"]) == (9000, False)
    assert (tags["actual"], tags["passed"]) == (["newsletter"], False)
    assert counts(db_sync, t.account_id) == (0, 1)
    assert (
        db_sync.value(
            "SELECT failure_reason FROM trigger_execution_logs WHERE id = $1", body["log_id"]
        )
        == "not_matched"
    )


def test_reasons_it_would_not_enroll(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    wf, tr = form_workflow(t, status="draft")
    contact = add_contact(db_sync, t.account_id, tags=["vip"])
    lead = {"form_id": "lead-form"}
    assert run_test(t, wf, tr, contact, **lead).json()["reason"] == "blocked: workflow_draft"
    activate(t, wf)
    t.client.patch(f"/workflows/{wf}", json={"status": "paused"})
    assert run_test(t, wf, tr, contact, **lead).json()["reason"] == "blocked: workflow_paused"
    activate(t, wf)
    put = t.client.put(f"/workflows/{wf}/trigger/{tr}", json={**FORM_TRIGGER, "is_active": False})
    assert put.status_code == 200
    assert run_test(t, wf, tr, contact, **lead).json()["reason"] == "blocked: trigger_inactive"
    t.client.put(f"/workflows/{wf}/trigger/{tr}", json=FORM_TRIGGER)
    # enrolled before, with the default enrollment_limit single
    db_sync.run(
        lambda c: c.execute(
            "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id,"
            " contact_id, event_id, status, run_at, single) VALUES ($1, $2, $3, $4, $5, $6,"
            " 'triggered', now(), true)",
            uuid.uuid4(),
            t.account_id,
            uuid.UUID(wf),
            uuid.UUID(tr),
            contact,
            uuid.uuid4(),
        )
    )
    body = run_test(t, wf, tr, contact, **lead).json()
    assert (body["matched"], body["would_enroll"]) == (True, False)
    assert body["reason"] == "blocked: already_enrolled"
    gone = add_contact(db_sync, t.account_id, tags=["vip"], deleted=True)
    assert run_test(t, wf, tr, gone, **lead).json()["reason"] == "blocked: contact_deleted"
    assert counts(db_sync, t.account_id) == (1, 5)  # only the row this test inserted


def test_outside_business_hours_it_would_queue(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    opens = 13 if datetime.now(UTC).hour < 12 else 1  # an hour that is not now
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hours = {"days": days, "start": f"{opens:02d}:00", "end": f"{opens + 1:02d}:00"}
    put = t.client.put("/account/settings", json={"timezone": "UTC", "business_hours": hours})
    assert put.status_code == 200, put.text
    workflow = new_workflow(t.client)
    settings = {"respect_business_hours": True}
    trigger = new_trigger(
        t.client, workflow["id"], {**FORM_TRIGGER, "filters": None, "settings": settings}
    )
    activate(t, workflow["id"])
    contact = add_contact(db_sync, t.account_id)
    body = run_test(t, workflow["id"], trigger["id"], contact).json()
    assert (body["would_enroll"], body["status"]) == (True, "queued")
    run_at = datetime.fromisoformat(body["run_at"])
    assert (run_at.hour, run_at.minute) == (opens, 0)
    assert run_at > datetime.now(UTC)


def test_test_endpoint_failure_modes(tenant: MakeTenant, db_sync: Db) -> None:
    t, other = tenant(), tenant()
    wf, tr = form_workflow(t)
    contact = add_contact(db_sync, t.account_id)
    stranger = add_contact(db_sync, other.account_id)
    # an unknown contact, and another account's, are tested as new contacts: nothing leaks
    for unknown in (uuid.uuid4(), stranger):
        body = run_test(t, wf, tr, unknown, form_id="lead-form").json()
        assert (body["contact_known"], body["matched"]) == (False, False)
        tags = body["conditions"]["conditions"][1]["conditions"][1]
        assert tags["actual"] is None
    problem(run_test(t, wf, str(uuid.uuid4()), contact), 404, errors.NOT_FOUND)
    problem(run_test(other, wf, tr, stranger), 403, errors.FORBIDDEN)
    bad = run_test(t, wf, tr, contact, current_state="not an object")
    assert (
        problem(bad, 400, errors.INVALID_EVENT)["detail"] == "data.current_state must be an object"
    )
    missing = t.client.post(f"/workflows/{wf}/trigger/{tr}/test", json={})
    problem(missing, 422, errors.MISSING_FIELD)
    assert counts(db_sync, t.account_id) == (0, 2)  # the two test runs above


def add_logs(db: Db, account_id: uuid.UUID, workflow_id: uuid.UUID, n: int, **kw: Any) -> None:
    db.run(
        lambda c: c.executemany(
            "INSERT INTO trigger_execution_logs (account_id, workflow_id, trigger_id, contact_id,"
            " event_id, event_type, matched, enrolled, failure_reason, created_at)"
            " VALUES ($1, $2, $3, $4, $5, 'contact.tag_added', $6, $6, $7, $8)",
            [
                (
                    account_id,
                    workflow_id,
                    uuid.uuid4(),
                    kw.get("contact", uuid.uuid4()),
                    uuid.uuid4(),
                    kw.get("matched", True),
                    kw.get("reason"),
                    kw.get("at", datetime.now(UTC)),
                )
                for _ in range(n)
            ],
        )
    )


def all_pages(t: Tenant, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = t.client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_trigger_logs_filter_and_page(tenant: MakeTenant, db_sync: Db) -> None:
    t, other = tenant(), tenant()
    wf_a, wf_b = uuid.uuid4(), uuid.uuid4()
    contact = uuid.uuid4()
    old = datetime.now(UTC) - timedelta(days=2)
    add_logs(db_sync, t.account_id, wf_a, 7)
    add_logs(db_sync, t.account_id, wf_a, 3, matched=False, reason="not_matched", contact=contact)
    add_logs(db_sync, t.account_id, wf_b, 4, at=old)
    add_logs(db_sync, other.account_id, wf_a, 5)
    everything = all_pages(t, "/trigger-logs", limit=4)
    assert len(everything) == 14
    ids = [row["id"] for row in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 14
    assert len(all_pages(t, "/trigger-logs", workflow_id=str(wf_a), limit=2)) == 10
    misses = all_pages(t, "/trigger-logs", matched="false")
    assert [m["failure_reason"] for m in misses] == ["not_matched"] * 3
    assert len(all_pages(t, "/trigger-logs", contact_id=str(contact))) == 3
    since = (old + timedelta(days=1)).isoformat()
    assert len(all_pages(t, "/trigger-logs", **{"from": since})) == 10
    assert len(all_pages(t, "/trigger-logs", to=since)) == 4
    # account B sees only its own five
    assert len(all_pages(other, "/trigger-logs", workflow_id=str(wf_a))) == 5
    problem(t.client.get("/trigger-logs", params={"cursor": "garbage"}), 400, errors.INVALID_CURSOR)
    window = {"from": since, "to": old.isoformat()}
    problem(t.client.get("/trigger-logs", params=window), 400, errors.BAD_REQUEST)


def add_enrollments(db: Db, account_id: uuid.UUID, workflow_id: str, n: int, **kw: Any) -> None:
    at = kw.get("at", datetime.now(UTC))
    db.run(
        lambda c: c.executemany(
            "INSERT INTO workflow_enrollments (id, account_id, workflow_id, trigger_id,"
            " contact_id, event_id, status, run_at, enrolled_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            [
                (
                    uuid.uuid4(),
                    account_id,
                    uuid.UUID(workflow_id),
                    uuid.uuid4(),
                    kw.get("contact", uuid.uuid4()),
                    uuid.uuid4(),
                    kw.get("status", "triggered"),
                    at,
                )
                for _ in range(n)
            ],
        )
    )


def test_enrollments_view_filters_pages_and_isolates(tenant: MakeTenant, db_sync: Db) -> None:
    t, other = tenant(), tenant()
    wf = new_workflow(t.client)["id"]
    contact = uuid.uuid4()
    same_instant = datetime.now(UTC)  # ties on enrolled_at are broken by id across pages
    add_enrollments(db_sync, t.account_id, wf, 9, at=same_instant)
    add_enrollments(db_sync, t.account_id, wf, 2, status="queued", contact=contact)
    add_enrollments(db_sync, t.account_id, str(uuid.uuid4()), 3)  # another workflow
    items = all_pages(t, f"/workflows/{wf}/enrollments", limit=3)
    assert len({i["id"] for i in items}) == len(items) == 11
    keys = [(i["enrolled_at"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    queued = all_pages(t, f"/workflows/{wf}/enrollments", status="queued")
    assert [q["contact_id"] for q in queued] == [str(contact)] * 2
    assert len(all_pages(t, f"/workflows/{wf}/enrollments", contact_id=str(contact))) == 2
    problem(other.client.get(f"/workflows/{wf}/enrollments"), 403, errors.FORBIDDEN)
    problem(
        t.client.get(f"/workflows/{wf}/enrollments", params={"status": "x"}),
        422,
        errors.VALIDATION_FAILED,
    )
    bad = t.client.get(f"/workflows/{wf}/enrollments", params={"cursor": "WyJ4IiwieSJd"})
    problem(bad, 400, errors.INVALID_CURSOR)
    # deleted workflows keep their history readable
    assert t.client.delete(f"/workflows/{wf}").status_code == 204
    assert len(all_pages(t, f"/workflows/{wf}/enrollments")) == 11


@pytest.mark.parametrize("view", ["audit", "enrollments"])
def test_account_b_cannot_read_account_a(tenant: MakeTenant, view: str) -> None:
    a, b = tenant(), tenant()
    wf, _ = form_workflow(a)
    path = f"/workflows/{wf}/trigger/audit" if view == "audit" else f"/workflows/{wf}/enrollments"
    assert a.client.get(path).status_code == 200
    problem(b.client.get(path), 403, errors.FORBIDDEN)
    if view == "audit":
        actions = [e["action"] for e in a.client.get(path).json()["items"]]
        assert "trigger.create" in actions


def test_time_trigger_and_contact_event_dry_runs(tenant: MakeTenant, db_sync: Db) -> None:
    """A time trigger is tested as the scheduler would emit it; a contact event first applies to
    (a copy of) the contact, as the actors do."""
    t = tenant()
    birthday = new_workflow(t.client)
    trigger = new_trigger(
        t.client,
        birthday["id"],
        {
            "trigger_type": "time",
            "trigger_event": "birthday",
            "filters": all_of(cond("contact.tags", "contains", "vip")),
        },
    )
    activate(t, birthday["id"])
    vip = add_contact(db_sync, t.account_id, tags=["vip"], birthday="1990-02-28")
    assert run_test(t, birthday["id"], trigger["id"], vip).json()["would_enroll"] is True
    tagged = new_workflow(t.client)
    on_tag = new_trigger(
        t.client,
        tagged["id"],
        {
            "trigger_type": "contact",
            "trigger_event": "tag_added",
            "filters": all_of(cond("contact.tags", "contains", "hot")),
        },
    )
    activate(t, tagged["id"])
    body = run_test(t, tagged["id"], on_tag["id"], vip, tag="hot").json()
    assert body["matched"] is True
    assert body["conditions"]["conditions"][0]["actual"] == ["vip", "hot"]
    state = db_sync.value("SELECT state FROM contacts WHERE contact_id = $1", vip)
    assert state["tags"] == ["vip"]  # the projection itself is untouched


def test_a_new_contact_can_be_tested_for_contact_created(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    trigger = new_trigger(
        t.client,
        workflow["id"],
        {
            "trigger_type": "contact",
            "trigger_event": "contact_created",
            "filters": all_of(cond("contact.source", "equals", "website")),
        },
    )
    activate(t, workflow["id"])
    state = {"current_state": {"source": "Website", "email": "new@example.com"}}
    body = run_test(t, workflow["id"], trigger["id"], uuid.uuid4(), **state).json()
    assert (body["contact_known"], body["matched"], body["would_enroll"]) == (False, True, True)
    assert body["conditions"]["conditions"][0]["actual"] == "Website"
