"""Loop detection over HTTP (REQ-N-003): trigger create/replace, activation and action changes
that would close a loop of active workflows are refused with 409 and the cycle named."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from pipelines import errors
from pipelines.examples import all_of, cond
from store import db
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]

ADD_VIP = {"type": "add_tag", "tag": "vip"}


def on_tag(tag: str, *more: dict[str, Any]) -> dict[str, Any]:
    filters = all_of(cond("tag", "equals", tag), *more)
    return {"trigger_type": "contact", "trigger_event": "tag_added", "filters": filters}


def workflow(
    client: httpx.Client, name: str, trigger: dict[str, Any] | None, *actions: dict[str, Any]
) -> str:
    """A draft workflow with these actions and trigger; its id."""
    created = new_workflow(client, name=name, actions=list(actions))
    if trigger is not None:
        new_trigger(client, created["id"], trigger)
    return str(created["id"])


def set_status(client: httpx.Client, workflow_id: str, status: str) -> httpx.Response:
    return client.patch(f"/workflows/{workflow_id}", json={"status": status})


def activate(client: httpx.Client, workflow_id: str) -> None:
    response = set_status(client, workflow_id, "active")
    assert response.status_code == 200, response.text


def refused(response: httpx.Response, cycle: str) -> dict[str, Any]:
    body = problem(response, 409, errors.WORKFLOW_LOOP)
    assert body["detail"].endswith(f": {cycle}"), body["detail"]
    return body


def test_a_self_loop_trigger_is_refused(tenant: MakeTenant) -> None:
    t = tenant()
    wf = workflow(t.client, "Tag VIPs", None, ADD_VIP)
    activate(t.client, wf)
    response = t.client.post(f"/workflows/{wf}/trigger", json=on_tag("vip"))
    body = refused(response, "Tag VIPs --add_tag:vip--> Tag VIPs")
    assert body["cycle"] == [
        {
            "workflow_id": wf,
            "workflow_name": "Tag VIPs",
            "action_index": 0,
            "action": "add_tag:vip",
            "event": "tag_added",
            "next_workflow_id": wf,
            "next_workflow_name": "Tag VIPs",
        }
    ]
    problem(t.client.get(f"/workflows/{wf}/trigger"), 404, errors.NOT_FOUND)  # nothing saved
    audit = t.client.get(f"/workflows/{wf}/trigger/audit").json()["items"]
    assert [a["action"] for a in audit] == ["workflow.create", "workflow.activate"]


def test_a_self_loop_activation_is_refused_and_the_workflow_stays_draft(tenant: MakeTenant) -> None:
    t = tenant()
    wf = workflow(t.client, "Tag VIPs", on_tag("vip"), ADD_VIP)  # a draft may hold it
    refused(set_status(t.client, wf, "active"), "Tag VIPs --add_tag:vip--> Tag VIPs")
    assert t.client.get(f"/workflows/{wf}").json()["status"] == "draft"


def test_a_two_workflow_cycle_is_refused_with_the_cycle_in_order(tenant: MakeTenant) -> None:
    t = tenant()
    score = {"type": "update_field", "field": "score", "value": 5}
    a = workflow(t.client, "A", on_tag("vip"), {"type": "send_email"}, score)
    on_score = {
        "trigger_type": "contact",
        "trigger_event": "custom_field_changed",
        "filters": all_of(cond("field_name", "equals", "score")),
    }
    b = workflow(t.client, "B", on_score, ADD_VIP)
    activate(t.client, a)
    cycle = "B --add_tag:vip--> A --update_field:score--> B"
    body = refused(set_status(t.client, b, "active"), cycle)
    steps = [(s["workflow_id"], s["action_index"], s["next_workflow_id"]) for s in body["cycle"]]
    assert steps == [(b, 0, a), (a, 1, b)]
    assert t.client.get(f"/workflows/{b}").json()["status"] == "draft"


def test_a_three_workflow_cycle_is_refused_with_the_cycle_in_order(tenant: MakeTenant) -> None:
    t = tenant()
    on_cold = {
        "trigger_type": "contact",
        "trigger_event": "tag_removed",
        "filters": all_of(cond("tag", "equals", "cold")),
    }
    on_won = {
        "trigger_type": "pipeline",
        "trigger_event": "stage_changed",
        "filters": all_of(
            cond("pipeline_id", "equals", "sales"), cond("stage_id", "equals", "won")
        ),
    }
    a = workflow(t.client, "Warm up", on_cold, ADD_VIP)
    to_won = {"type": "move_stage", "pipeline_id": "sales", "stage_id": "won"}
    b = workflow(t.client, "Close VIPs", on_tag("vip"), to_won)
    c = workflow(t.client, "Clean up", on_won, {"type": "remove_tag", "tag": "cold"})
    activate(t.client, a)
    activate(t.client, b)
    body = refused(
        set_status(t.client, c, "active"),
        "Clean up --remove_tag:cold--> Warm up --add_tag:vip--> Close VIPs"
        " --move_stage:sales/won--> Clean up",
    )
    assert [s["workflow_id"] for s in body["cycle"]] == [c, a, b]


def test_a_chain_without_a_cycle_is_accepted(tenant: MakeTenant) -> None:
    t = tenant()
    a = workflow(t.client, "A", on_tag("gold"), ADD_VIP)  # add_tag vip cannot match tag = gold
    activate(t.client, a)
    b = workflow(t.client, "B", on_tag("vip"), {"type": "send_email"})
    activate(t.client, b)


def test_a_filter_that_cannot_match_the_emitted_value_makes_no_edge(tenant: MakeTenant) -> None:
    t = tenant()
    filters = all_of(cond("tag", "in", ["gold", "silver"]))
    trigger = {"trigger_type": "contact", "trigger_event": "tag_added", "filters": filters}
    activate(t.client, workflow(t.client, "A", trigger, ADD_VIP))


def test_a_contact_condition_keeps_the_edge(tenant: MakeTenant) -> None:
    t = tenant()
    trigger = on_tag("vip", cond("contact.status", "equals", "customer"))
    wf = workflow(t.client, "A", trigger, ADD_VIP)
    refused(set_status(t.client, wf, "active"), "A --add_tag:vip--> A")


def test_pausing_a_workflow_breaks_the_cycle(tenant: MakeTenant) -> None:
    t = tenant()
    a = workflow(t.client, "A", on_tag("vip"), {"type": "add_tag", "tag": "gold"})
    b = workflow(t.client, "B", on_tag("gold"), ADD_VIP)
    activate(t.client, a)
    refused(set_status(t.client, b, "active"), "B --add_tag:vip--> A --add_tag:gold--> B")
    assert set_status(t.client, a, "paused").status_code == 200
    activate(t.client, b)  # A is paused: no cycle among active workflows
    refused(set_status(t.client, a, "active"), "A --add_tag:gold--> B --add_tag:vip--> A")
    assert t.client.get(f"/workflows/{a}").json()["status"] == "paused"


def test_deleting_a_trigger_or_a_workflow_breaks_the_cycle(tenant: MakeTenant) -> None:
    t = tenant()
    a = workflow(t.client, "A", on_tag("vip"), {"type": "add_tag", "tag": "gold"})
    b = workflow(t.client, "B", on_tag("gold"), ADD_VIP)
    activate(t.client, a)
    trigger_id = t.client.get(f"/workflows/{a}/trigger").json()["id"]
    assert t.client.delete(f"/workflows/{a}/trigger/{trigger_id}").status_code == 204
    activate(t.client, b)
    assert t.client.delete(f"/workflows/{b}").status_code == 204
    new_trigger(t.client, a, on_tag("vip"))


def test_changing_the_actions_of_an_active_workflow_is_checked(tenant: MakeTenant) -> None:
    t = tenant()
    wf = workflow(t.client, "A", on_tag("vip"), {"type": "send_email"})
    activate(t.client, wf)
    response = t.client.patch(f"/workflows/{wf}", json={"actions": [ADD_VIP]})
    refused(response, "A --add_tag:vip--> A")
    assert t.client.get(f"/workflows/{wf}").json()["actions"] == [{"type": "send_email"}]
    ok = t.client.patch(f"/workflows/{wf}", json={"actions": [{"type": "add_tag", "tag": "x"}]})
    assert ok.status_code == 200, ok.text
    # A draft workflow may hold any actions: it is outside the graph until activated.
    assert set_status(t.client, wf, "draft").status_code == 200
    assert t.client.patch(f"/workflows/{wf}", json={"actions": [ADD_VIP]}).status_code == 200


def test_replacing_a_trigger_is_checked(tenant: MakeTenant) -> None:
    t = tenant()
    wf = workflow(t.client, "A", on_tag("gold"), ADD_VIP)
    activate(t.client, wf)
    trigger = t.client.get(f"/workflows/{wf}/trigger").json()
    url = f"/workflows/{wf}/trigger/{trigger['id']}"
    refused(t.client.put(url, json=on_tag("vip")), "A --add_tag:vip--> A")
    assert t.client.get(f"/workflows/{wf}/trigger").json() == trigger
    inactive = t.client.put(url, json={**on_tag("vip"), "is_active": False})
    assert inactive.status_code == 200, inactive.text  # an inactive trigger is outside the graph
    refused(t.client.put(url, json=on_tag("vip")), "A --add_tag:vip--> A")


def test_other_accounts_workflows_are_not_in_the_graph(tenant: MakeTenant) -> None:
    first, second = tenant(), tenant()
    a = workflow(first.client, "A", on_tag("vip"), {"type": "add_tag", "tag": "gold"})
    activate(first.client, a)
    b = workflow(second.client, "B", on_tag("gold"), ADD_VIP)
    activate(second.client, b)


def test_openapi_documents_the_loop_refusal(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    patch = spec["paths"]["/api/v1/workflows/{workflow_id}"]["patch"]
    assert "Workflow loop detected" in patch["description"]
    assert "409" in patch["responses"]


def _pair(t: Tenant) -> tuple[str, str]:
    """Two draft workflows that form a cycle once both are active."""
    a = workflow(t.client, "A", on_tag("vip"), {"type": "add_tag", "tag": "gold"})
    b = workflow(t.client, "B", on_tag("gold"), ADD_VIP)
    return a, b


def _activate_both(t: Tenant, ids: tuple[str, str]) -> list[int]:
    with ThreadPoolExecutor(2) as pool:
        clients = [
            httpx.Client(base_url=t.client.base_url, headers=t.client.headers, timeout=60)
            for _ in ids
        ]
        try:
            responses = list(pool.map(set_status, clients, ids, ["active", "active"]))
        finally:
            for client in clients:
                client.close()
    for r in responses:
        assert r.status_code == 200 or r.json()["title"] == errors.WORKFLOW_LOOP, r.text
    return sorted(r.status_code for r in responses)


def _active(db_sync: Db, ids: tuple[str, str]) -> int:
    found = db_sync.value(
        "SELECT count(*) FROM workflows WHERE id = ANY($1::uuid[]) AND status = 'active'",
        [uuid.UUID(i) for i in ids],
    )
    return int(found)


def test_concurrent_activations_closing_a_cycle_exactly_one_succeeds(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    for _ in range(3):
        ids = _pair(t)
        assert _activate_both(t, ids) == [200, 409]
        assert _active(db_sync, ids) == 1
        for wf in ids:
            assert t.client.delete(f"/workflows/{wf}").status_code == 204


def test_concurrent_activations_held_at_the_lock_exactly_one_succeeds(
    tenant: MakeTenant, db_sync: Db
) -> None:
    """Both changes are written and both wait for the account's check lock, held here; when it
    is released the checks run one after the other, so the second sees the first's commit."""
    t = tenant()
    ids = _pair(t)

    async def run() -> list[int]:
        conn = await db.connect(db_sync.url)
        try:
            held = conn.transaction()
            await held.start()
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::uuid::text))",
                0x4C6F6F70,
                t.account_id,
            )
            both = asyncio.ensure_future(asyncio.to_thread(_activate_both, t, ids))
            deadline = time.monotonic() + 30
            while (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = $1 AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())",
                    0x4C6F6F70,
                )
                < 2
            ):
                assert not both.done(), "a change did not wait for the check lock"
                assert time.monotonic() < deadline, "the changes never reached the check lock"
                await asyncio.sleep(0.05)
            await held.rollback()
            return await both
        finally:
            await conn.close()

    assert asyncio.run(run()) == [200, 409]
    assert _active(db_sync, ids) == 1


def test_a_loop_closed_through_a_long_chain_is_refused(tenant: MakeTenant) -> None:
    """The check reads the workflows ring by ring (pipelines.loop_search): twelve rings here."""
    t = tenant()
    names = [f"W{i}" for i in range(12)]
    for i, name in enumerate(names):
        tag = {"type": "add_tag", "tag": f"t{i + 1}"}
        activate(t.client, workflow(t.client, name, on_tag(f"t{i}"), tag))
    closing = workflow(t.client, "Close", on_tag("t12"), {"type": "add_tag", "tag": "t0"})
    steps = " ".join(f"--add_tag:t{i + 1}--> {name}" for i, name in enumerate(names[1:]))
    cycle = f"Close --add_tag:t0--> W0 {steps} --add_tag:t12--> Close"
    body = refused(set_status(t.client, closing, "active"), cycle)
    assert len(body["cycle"]) == 13


def test_a_trigger_saved_before_loop_keys_existed_still_closes_a_loop(
    tenant: MakeTenant, db_sync: Db
) -> None:
    t = tenant()
    a, b = _pair(t)
    activate(t.client, a)
    db_sync.value(
        "UPDATE workflow_triggers SET loop_keys = NULL WHERE workflow_id = $1", uuid.UUID(a)
    )
    refused(set_status(t.client, b, "active"), "B --add_tag:vip--> A --add_tag:gold--> B")


def test_replacing_a_trigger_files_it_under_its_new_values(tenant: MakeTenant) -> None:
    t = tenant()
    a = workflow(t.client, "A", on_tag("gold"), ADD_VIP)
    b = workflow(t.client, "B", on_tag("vip"), {"type": "add_tag", "tag": "silver"})
    activate(t.client, a)
    activate(t.client, b)
    trigger = t.client.get(f"/workflows/{a}/trigger").json()
    response = t.client.put(f"/workflows/{a}/trigger/{trigger['id']}", json=on_tag("silver"))
    refused(response, "A --add_tag:vip--> B --add_tag:silver--> A")
