"""GET /workflows/{id}/trigger/{trigger_id}/preview (REQ-O-001): the trigger's audience among
the account's contacts now; tenant isolation (REQ-U-004), errors as problem documents."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pipelines import errors, scopes
from pipelines.examples import all_of, any_of, cond
from store import accounts
from tests.support.db import Db
from tests.support.factories import Tenant, keyed, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]

CONTACT_TRIGGER: dict[str, Any] = {
    "trigger_type": "contact",
    "trigger_event": "contact_updated",
    "filters": all_of(
        cond("status", "equals", "customer"),
        any_of(cond("score", "greater_than", 10000), cond("contact.tags", "contains", "vip")),
    ),
}


def add_contact(db: Db, account_id: uuid.UUID, deleted: bool = False, **state: Any) -> uuid.UUID:
    """A contact as the projection writes it (tags column from the state's list)."""
    contact_id = uuid.uuid4()
    tags = [str(t) for t in state.get("tags", [])] if isinstance(state.get("tags"), list) else []
    db.run(
        lambda c: c.execute(
            "INSERT INTO contacts (account_id, contact_id, state, tags, deleted)"
            " VALUES ($1, $2, $3, $4, $5)",
            account_id,
            contact_id,
            state,
            tags,
            deleted,
        )
    )
    return contact_id


def with_trigger(t: Tenant, body: dict[str, Any]) -> tuple[str, str]:
    workflow = new_workflow(t.client)
    trigger = new_trigger(t.client, workflow["id"], body)
    return workflow["id"], trigger["id"]


def preview(t: Tenant, wf: str, tr: str) -> Any:
    return t.client.get(f"/workflows/{wf}/trigger/{tr}/preview")


def test_preview_counts_and_samples_the_contacts_that_meet_the_conditions(
    tenant: MakeTenant, db_sync: Db
) -> None:
    """REQ-O-001: numeric strings as numbers, tags case-insensitively, the draft workflow's
    trigger too; deleted contacts never count."""
    t = tenant()
    wf, tr = with_trigger(t, CONTACT_TRIGGER)
    rich = add_contact(db_sync, t.account_id, status="Customer", score="15000", tags=[])
    vip = add_contact(db_sync, t.account_id, status="customer ", score=5, tags=["VIP"])
    add_contact(db_sync, t.account_id, status="customer", score=50, tags=["gold"])
    add_contact(db_sync, t.account_id, status="lead", score=99999, tags=["vip"])
    add_contact(db_sync, t.account_id, deleted=True, status="customer", score=20000)
    response = preview(t, wf, tr)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["estimated_count"] == 2
    assert body["not_previewable"] == []
    samples = {s["contact_id"]: s for s in body["sample_contacts"]}
    assert set(samples) == {str(rich), str(vip)}
    assert samples[str(vip)]["tags"] == ["VIP"]
    assert samples[str(vip)]["state"] == {"status": "customer ", "score": 5, "tags": ["VIP"]}
    assert samples[str(vip)]["updated_at"]


def test_preview_samples_at_most_ten_most_recent_first(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    wf, tr = with_trigger(t, {"trigger_type": "contact", "trigger_event": "contact_created"})
    for i in range(12):
        add_contact(db_sync, t.account_id, n=i)
    body = preview(t, wf, tr).json()
    assert body["estimated_count"] == 12
    assert len(body["sample_contacts"]) == 10
    times = [s["updated_at"] for s in body["sample_contacts"]]
    assert times == sorted(times, reverse=True)


def test_event_conditions_count_every_live_contact_and_are_listed(
    tenant: MakeTenant, db_sync: Db
) -> None:
    """A trigger whose conditions all read the event: every live contact could match."""
    t = tenant()
    body = {
        "trigger_type": "form",
        "trigger_event": "form_submitted",
        "filters": any_of(
            cond("form_id", "equals", "lead-form"), cond("budget", "greater_than", 10000)
        ),
    }
    wf, tr = with_trigger(t, body)
    for status in ("lead", "customer", None):
        add_contact(db_sync, t.account_id, status=status)
    add_contact(db_sync, t.account_id, deleted=True)
    result = preview(t, wf, tr).json()
    assert result["estimated_count"] == 3
    assert [(n["field"], n["operator"], n["value"]) for n in result["not_previewable"]] == [
        ("form_id", "equals", "lead-form"),
        ("budget", "greater_than", 10000),
    ]
    assert all(n["reason"] for n in result["not_previewable"])


def test_mixed_conditions_keep_the_contact_ones(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    body = {
        "trigger_type": "contact",
        "trigger_event": "tag_added",
        "filters": all_of(
            cond("tag", "in", ["vip", "gold"]), cond("contact.source", "equals", "web")
        ),
    }
    wf, tr = with_trigger(t, body)
    web = add_contact(db_sync, t.account_id, source="WEB")
    add_contact(db_sync, t.account_id, source="import")
    result = preview(t, wf, tr).json()
    assert result["estimated_count"] == 1
    assert result["sample_contacts"][0]["contact_id"] == str(web)
    assert result["not_previewable"][0]["value"] == ["vip", "gold"]


def test_preview_sees_only_the_callers_contacts(tenant: MakeTenant, db_sync: Db) -> None:
    """REQ-U-004: another account's contacts never count, even with the same state."""
    a, b = tenant(), tenant()
    wf, tr = with_trigger(a, CONTACT_TRIGGER)
    mine = add_contact(db_sync, a.account_id, status="customer", tags=["vip"])
    for _ in range(3):
        add_contact(db_sync, b.account_id, status="customer", tags=["vip"])
    result = preview(a, wf, tr).json()
    assert result["estimated_count"] == 1
    assert [s["contact_id"] for s in result["sample_contacts"]] == [str(mine)]


def test_hostile_values_are_only_values(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    drop = "'; DROP TABLE contacts; --"
    body = {
        "trigger_type": "contact",
        "trigger_event": "contact_created",
        "filters": any_of(cond("name", "equals", drop), cond("name", "contains", "%_\\")),
    }
    wf, tr = with_trigger(t, body)
    bobby = add_contact(db_sync, t.account_id, name=drop.upper())
    odd = add_contact(db_sync, t.account_id, name="a%_\\b")
    add_contact(db_sync, t.account_id, name="a_b%")
    result = preview(t, wf, tr).json()
    assert {s["contact_id"] for s in result["sample_contacts"]} == {str(bobby), str(odd)}
    assert db_sync.value("SELECT count(*) FROM contacts WHERE account_id = $1", t.account_id) == 3


def test_unknown_workflow_or_trigger_is_404(tenant: MakeTenant) -> None:
    t = tenant()
    wf, tr = with_trigger(t, CONTACT_TRIGGER)
    other_wf, _ = with_trigger(t, CONTACT_TRIGGER)
    problem(preview(t, str(uuid.uuid4()), tr), 404, errors.NOT_FOUND)
    problem(preview(t, wf, str(uuid.uuid4())), 404, errors.NOT_FOUND)
    problem(preview(t, other_wf, tr), 404, errors.NOT_FOUND)  # the trigger of another workflow


def test_deleted_trigger_is_404(tenant: MakeTenant) -> None:
    t = tenant()
    wf, tr = with_trigger(t, CONTACT_TRIGGER)
    assert t.client.delete(f"/workflows/{wf}/trigger/{tr}").status_code == 204
    problem(preview(t, wf, tr), 404, errors.NOT_FOUND)


def test_another_accounts_workflow_is_403(tenant: MakeTenant) -> None:
    """REQ-U-004."""
    a, b = tenant(), tenant()
    wf, tr = with_trigger(a, CONTACT_TRIGGER)
    problem(preview(b, wf, tr), 403, errors.FORBIDDEN)


def test_preview_needs_workflow_read(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    wf, tr = with_trigger(t, CONTACT_TRIGGER)
    path = f"/workflows/{wf}/trigger/{tr}/preview"
    key, _ = db_sync.run(
        lambda c: accounts.create_key(c, t.account_id, [scopes.SCOPE_EVENTS_WRITE])
    )
    with keyed(t, key) as writer:
        problem(writer.get(path), 403, errors.FORBIDDEN)
    with keyed(t, "not-a-key") as nobody:
        problem(nobody.get(path), 401, errors.UNAUTHORIZED)


def test_malformed_ids_are_problems(tenant: MakeTenant) -> None:
    t = tenant()
    response = t.client.get("/workflows/not-a-uuid/trigger/also-not/preview")
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_openapi_documents_the_preview(tenant: MakeTenant) -> None:
    t = tenant()
    spec = t.client.get(str(t.client.base_url).rsplit("/api/v1", 1)[0] + "/openapi.json").json()
    operation = spec["paths"]["/api/v1/workflows/{workflow_id}/trigger/{trigger_id}/preview"]["get"]
    assert "contact conditions" in operation["description"]
    assert {"200", "403", "404"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/Preview")
