"""Workflows over HTTP: create, list, status transitions, actions, soft delete."""

from __future__ import annotations

from collections.abc import Callable

from pipelines import errors
from pipelines.examples import trigger_body
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


def test_new_workflows_are_draft(tenant: MakeTenant) -> None:
    t = tenant()
    created = new_workflow(t.client, description="d", actions=[{"type": "add_tag", "tag": "vip"}])
    assert created["status"] == "draft"
    assert created["actions"] == [{"type": "add_tag", "tag": "vip"}]
    assert t.client.get(f"/workflows/{created['id']}").json() == created


def test_status_transitions(tenant: MakeTenant) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    url = f"/workflows/{wf['id']}"
    problem(t.client.patch(url, json={"status": "paused"}), 409, errors.INVALID_STATUS_TRANSITION)
    problem(t.client.patch(url, json={"status": "gone"}), 400, errors.INVALID_STATUS_TRANSITION)
    for status in ("active", "paused", "active", "draft", "active"):
        response = t.client.patch(url, json={"status": status})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    assert t.client.get(url).json()["version"] == 6


def test_invalid_actions_are_refused(tenant: MakeTenant) -> None:
    t = tenant()
    response = t.client.post("/workflows", json={"name": "x", "actions": [{"type": "add_tag"}]})
    problem(response, 400, errors.INVALID_ACTION)
    wf = new_workflow(t.client)
    response = t.client.patch(f"/workflows/{wf['id']}", json={"actions": [{"type": "teleport"}]})
    problem(response, 400, errors.INVALID_ACTION)


def test_missing_name_is_422_naming_the_field(tenant: MakeTenant) -> None:
    t = tenant()
    body = problem(t.client.post("/workflows", json={}), 422, errors.MISSING_FIELD)
    assert "/name" in body["detail"]


def test_list_pages_through_all_workflows(tenant: MakeTenant) -> None:
    t = tenant()
    ids = [new_workflow(t.client, name=f"w{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = t.client.get("/workflows", params=params).json()
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_delete_is_soft_and_takes_the_trigger(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    new_trigger(t.client, wf["id"], trigger_body("tag_added"))
    assert t.client.delete(f"/workflows/{wf['id']}").status_code == 204
    problem(t.client.get(f"/workflows/{wf['id']}"), 404, errors.NOT_FOUND)
    assert t.client.get("/workflows").json()["items"] == []
    rows = db_sync.fetch(
        "SELECT w.deleted_at AS w, t.deleted_at AS t FROM workflows w"
        " JOIN workflow_triggers t ON t.workflow_id = w.id WHERE w.id = $1",
        wf["id"],
    )
    assert rows[0]["w"] is not None
    assert rows[0]["t"] is not None
