"""Keys, scopes and tenancy (REQ-U-004): 401 without a valid key, 403 without the scope or
for another account's resources, and lists never show another account's rows."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from pipelines import errors, scopes
from pipelines.examples import trigger_body
from tests.support.db import Db
from tests.support.factories import Tenant, keyed, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


def test_no_key_or_a_bad_key_is_401(tenant: MakeTenant, api_url: str) -> None:
    t = tenant()
    with httpx.Client(base_url=f"{api_url}/api/v1") as anonymous:
        response = anonymous.get("/workflows")
        problem(response, 401, errors.UNAUTHORIZED)
        assert response.headers["www-authenticate"] == "Bearer"
    forged = t.key[:-4] + "AAAA"
    for key in ("nonsense", forged, f"ht_{'0' * 32}_x"):
        with keyed(t, key) as client:
            problem(client.get("/workflows"), 401, errors.UNAUTHORIZED)


def test_revoked_key_is_401(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    assert t.client.get("/workflows").status_code == 200
    db_sync.run(
        lambda c: c.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", t.key_id)
    )
    problem(t.client.get("/workflows"), 401, errors.UNAUTHORIZED)


def test_missing_scopes_are_403(tenant: MakeTenant) -> None:
    reader = tenant(scopes=(scopes.SCOPE_WORKFLOW_READ,))
    problem(reader.client.post("/workflows", json={"name": "x"}), 403, errors.FORBIDDEN)
    problem(reader.client.put("/account/settings", json={"timezone": "UTC"}), 403, errors.FORBIDDEN)
    writer = tenant(scopes=(scopes.SCOPE_EVENTS_WRITE,))
    problem(writer.client.get("/workflows"), 403, errors.FORBIDDEN)
    editor = tenant(scopes=(scopes.SCOPE_WORKFLOW_EDIT,))
    problem(editor.client.get("/workflows"), 403, errors.FORBIDDEN)
    assert editor.client.post("/workflows", json={"name": "x"}).status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/workflows/{wf}", None),
        ("PATCH", "/workflows/{wf}", {"status": "active"}),
        ("DELETE", "/workflows/{wf}", None),
        ("GET", "/workflows/{wf}/trigger", None),
        ("POST", "/workflows/{wf}/trigger", trigger_body("deal_won")),
        ("PUT", "/workflows/{wf}/trigger/{tr}", trigger_body("deal_won")),
        ("DELETE", "/workflows/{wf}/trigger/{tr}", None),
        ("GET", "/workflows/{wf}/trigger/audit", None),
    ],
)
def test_another_accounts_workflow_is_403_and_unchanged(
    tenant: MakeTenant, method: str, path: str, body: dict[str, object] | None
) -> None:
    """REQ-U-004."""
    owner, intruder = tenant(), tenant()
    wf = new_workflow(owner.client)
    tr = new_trigger(owner.client, wf["id"], trigger_body("tag_added"))
    url = path.format(wf=wf["id"], tr=tr["id"])
    response = intruder.client.request(method, url, json=body)
    problem(response, 403, errors.FORBIDDEN)
    assert owner.client.get(f"/workflows/{wf['id']}").json() == wf
    assert owner.client.get(f"/workflows/{wf['id']}/trigger").json() == tr


def test_lists_show_only_the_callers_rows(tenant: MakeTenant) -> None:
    a, b = tenant(), tenant()
    new_workflow(a.client, name="mine")
    assert b.client.get("/workflows").json()["items"] == []
    assert [w["name"] for w in a.client.get("/workflows").json()["items"]] == ["mine"]
    assert b.client.get("/account/settings").json()["account_id"] == str(b.account_id)
