"""Account settings, catalog and OpenAPI."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from pipelines import errors
from tests.support.factories import Tenant
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


def test_account_settings_round_trip(tenant: MakeTenant) -> None:
    t = tenant(timezone="Europe/Berlin")
    current = t.client.get("/account/settings").json()
    assert current["timezone"] == "Europe/Berlin"
    assert current["business_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    hours = {"days": ["sat", "mon"], "start": "08:30", "end": "12:00"}
    wanted = {"timezone": "America/Chicago", "business_hours": hours}
    response = t.client.put("/account/settings", json=wanted)
    assert response.status_code == 200, response.text
    assert response.json()["business_hours"]["days"] == ["mon", "sat"]
    assert t.client.get("/account/settings").json() == response.json()


def test_account_settings_validation(tenant: MakeTenant) -> None:
    t = tenant()
    problem(
        t.client.put("/account/settings", json={"timezone": "Moon/Base"}),
        400,
        errors.INVALID_TIMEZONE,
    )
    bad_hours = {
        "timezone": "UTC",
        "business_hours": {"days": ["mon"], "start": "17:00", "end": "09:00"},
    }
    problem(t.client.put("/account/settings", json=bad_hours), 400, errors.INVALID_BUSINESS_HOURS)
    problem(t.client.put("/account/settings", json={}), 422, errors.MISSING_FIELD)
    assert t.client.get("/account/settings").json()["timezone"] == "UTC"


def test_account_settings_changes_are_audited(tenant: MakeTenant) -> None:
    t = tenant(timezone="Europe/Berlin")
    first = {
        "timezone": "America/Chicago",
        "business_hours": {"days": ["mon"], "start": "08:00", "end": "12:00"},
    }
    assert t.client.put("/account/settings", json=first).status_code == 200
    refused = t.client.put("/account/settings", json={"timezone": "Moon/Base"})
    assert refused.status_code == 400  # refused: not a change, so not audited
    assert t.client.put("/account/settings", json={"timezone": "Asia/Tokyo"}).status_code == 200
    page = t.client.get("/account/settings/audit", params={"limit": 1})
    assert page.status_code == 200, page.text
    [update] = page.json()["items"]
    assert update["action"] == "account.settings.update"
    assert update["actor_key_id"] == str(t.key_id)
    assert update["workflow_id"] is None
    assert update["before"]["timezone"] == "Europe/Berlin"
    assert update["after"] == first
    rest = t.client.get("/account/settings/audit", params={"cursor": page.json()["next_cursor"]})
    [second] = rest.json()["items"]
    assert rest.json()["next_cursor"] is None
    assert (second["before"], second["after"]["timezone"]) == (first, "Asia/Tokyo")
    assert second["after"]["business_hours"]["start"] == "09:00"  # omitted: back to the default
    # another account sees none of it; a read-only key may read its own trail
    other = tenant(scopes=("workflow:read",))
    assert other.client.get("/account/settings/audit").json() == {"items": [], "next_cursor": None}
    # nor do the workflow audit trails show account-level rows
    created = t.client.post("/workflows", json={"name": "w"}).json()
    trail = t.client.get(f"/workflows/{created['id']}/trigger/audit").json()["items"]
    assert [e["action"] for e in trail] == ["workflow.create"]


def test_catalog_lists_26_events_and_operators(api_url: str) -> None:
    body = httpx.get(f"{api_url}/api/v1/catalog").json()
    events = [e for c in body["categories"] for e in c["events"]]
    assert len(body["categories"]) == 7
    assert len(events) == 26
    form = next(e for e in events if e["trigger_event"] == "form_submitted")
    assert form["identifying_fields"] == ["form_id"]
    assert form["event_type"] == "form.submitted"
    assert len(body["operators"]) == 17
    assert body["limits"] == {"max_conditions": 20, "max_depth": 3}


def test_openapi_documents_the_api_with_examples(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/workflows",
        "/api/v1/workflows/{workflow_id}",
        "/api/v1/workflows/{workflow_id}/trigger",
        "/api/v1/workflows/{workflow_id}/trigger/{trigger_id}",
        "/api/v1/workflows/{workflow_id}/trigger/audit",
        "/api/v1/account/settings",
        "/api/v1/events",
        "/api/v1/catalog",
    ):
        assert path in paths, path
    create = paths["/api/v1/workflows/{workflow_id}/trigger"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "422"):
        assert "application/problem+json" in create[status]["content"], status
    problem_schema = spec["components"]["schemas"]["Problem"]
    assert {"title", "status", "detail"} <= set(problem_schema["properties"])
    trigger_in = spec["components"]["schemas"]["TriggerIn"]
    assert trigger_in["examples"][0]["trigger_event"] == "form_submitted"
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    docs = httpx.get(f"{api_url}/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
