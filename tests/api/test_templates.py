"""Trigger templates over HTTP: the list, and triggers configured from a template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pipelines import errors, scopes
from pipelines.templates import BY_ID, TEMPLATES, expand
from pipelines.triggers import validate_trigger
from tests.support.db import Db
from tests.support.factories import Tenant, new_trigger, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]
IDS = [t.id for t in TEMPLATES]


def examples(template_id: str) -> dict[str, Any]:
    return {p.name: p.example for p in BY_ID[template_id].parameters if p.example is not None}


def stored_form(config: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """What the API stores for a configuration: its validated, canonical form."""
    parsed = validate_trigger(
        config["trigger_type"], config["trigger_event"], config["filters"], config["settings"]
    )
    return (
        config["trigger_type"],
        parsed.event.name,
        parsed.filters_json(),
        parsed.settings.to_json(),
    )


def saved_triggers(db_sync: Db, t: Tenant) -> int:
    count: int = db_sync.value(
        "SELECT count(*) FROM workflow_triggers WHERE account_id = $1", t.account_id
    )
    return count


def test_list_shows_every_template_with_its_trigger_and_parameters(tenant: MakeTenant) -> None:
    t = tenant(scopes=(scopes.SCOPE_WORKFLOW_READ,))
    response = t.client.get("/trigger-templates")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert [item["id"] for item in listed] == IDS
    for item in listed:
        assert item["name"]
        assert item["description"]
        assert item["trigger"] == expand(item["id"])
        assert item["parameters"]
        for param in item["parameters"]:
            assert set(param) == {
                "name",
                "description",
                "default",
                "example",
                "target",
                "field",
                "operator",
            }
            assert param["target"] in ("filter", "setting")
    one = t.client.get("/trigger-templates/hot_lead_tag_added")
    assert one.status_code == 200
    assert one.json() == listed[IDS.index("hot_lead_tag_added")]


def test_list_needs_a_key_with_workflow_read(tenant: MakeTenant, api_url: str) -> None:
    problem(httpx.get(f"{api_url}/api/v1/trigger-templates"), 401, errors.UNAUTHORIZED)
    writer = tenant(scopes=(scopes.SCOPE_EVENTS_WRITE,))
    problem(writer.client.get("/trigger-templates"), 403, errors.FORBIDDEN)


def test_unknown_template_in_the_list_is_404(tenant: MakeTenant) -> None:
    t = tenant()
    problem(t.client.get("/trigger-templates/make_coffee"), 404, errors.NOT_FOUND)


@pytest.mark.parametrize("template_id", IDS)
def test_every_template_configures_a_trigger(tenant: MakeTenant, template_id: str) -> None:
    t = tenant()
    for overrides in ({}, examples(template_id)):
        workflow = new_workflow(t.client)
        body = (
            {"template": template_id, "overrides": overrides}
            if overrides
            else {"template": template_id}
        )
        created = new_trigger(t.client, workflow["id"], body)
        expected = stored_form(expand(template_id, overrides))
        assert (
            created["trigger_type"],
            created["trigger_event"],
            created["filters"],
            created["settings"],
        ) == expected
        assert created["is_active"] is True
        fetched = t.client.get(f"/workflows/{workflow['id']}/trigger").json()
        assert fetched == created


def test_template_with_overrides_equals_the_hand_written_trigger(tenant: MakeTenant) -> None:
    t = tenant()
    by_template = new_trigger(
        t.client,
        new_workflow(t.client)["id"],
        {
            "template": "deal_lost_win_back",
            "overrides": {
                "pipeline_id": "sales",
                "min_deal_value": 5000,
                "settings": {"respect_business_hours": True},
                "conditions": [{"field": "contact.tags", "operator": "contains", "value": "vip"}],
            },
            "is_active": False,
        },
    )
    by_hand = new_trigger(
        t.client,
        new_workflow(t.client)["id"],
        {
            "trigger_type": "pipeline",
            "trigger_event": "deal_lost",
            "filters": {
                "logic": "AND",
                "conditions": [
                    {"field": "pipeline_id", "operator": "equals", "value": "sales"},
                    {"field": "loss_reason", "operator": "not_in", "value": ["spam", "duplicate"]},
                    {"field": "deal_value", "operator": "greater_than_or_equal", "value": 5000},
                    {"field": "contact.tags", "operator": "contains", "value": "vip"},
                ],
            },
            "settings": {"enrollment_limit": "multiple", "respect_business_hours": True},
            "is_active": False,
        },
    )
    same = ("trigger_type", "trigger_event", "filters", "settings", "is_active")
    assert {k: by_template[k] for k in same} == {k: by_hand[k] for k in same}


@pytest.mark.parametrize(
    ("overrides", "status", "title", "pointer"),
    [
        (
            {"conditions": [{"field": "tag", "operator": "resembles", "value": "x"}]},
            400,
            errors.INVALID_OPERATOR,
            "/filters/conditions/1/operator",
        ),
        ({"tag": ["a", "b"]}, 400, errors.INVALID_VALUE, "/filters/conditions/0/value"),
        (
            {"settings": {"enrollment_limit": "always"}},
            400,
            errors.INVALID_SETTINGS,
            "/settings/enrollment_limit",
        ),
        ({"colour": "red"}, 400, errors.INVALID_TEMPLATE_OVERRIDE, "/overrides/colour"),
        ({"conditions": "tag is vip"}, 400, errors.INVALID_FILTER, "/overrides/conditions"),
    ],
)
def test_bad_overrides_give_the_normal_problem_and_save_nothing(
    tenant: MakeTenant,
    db_sync: Db,
    overrides: dict[str, Any],
    status: int,
    title: str,
    pointer: str,
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(
        f"/workflows/{workflow['id']}/trigger",
        json={"template": "hot_lead_tag_added", "overrides": overrides},
    )
    body = problem(response, status, title)
    assert body["pointer"] == pointer
    assert saved_triggers(db_sync, t) == 0


def test_unknown_template_is_422_naming_the_templates(tenant: MakeTenant, db_sync: Db) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(
        f"/workflows/{workflow['id']}/trigger", json={"template": "make_coffee"}
    )
    body = problem(response, 422, errors.UNKNOWN_TEMPLATE)
    assert body["pointer"] == "/template"
    assert "make_coffee" in body["detail"]
    assert "hot_lead_tag_added" in body["detail"]
    assert saved_triggers(db_sync, t) == 0


REFUSED_BODIES: list[tuple[str, dict[str, Any], str, str]] = [
    ("neither template nor fields", {}, errors.MISSING_FIELD, "/trigger_type"),
    ("only overrides", {"overrides": {"tag": "vip"}}, errors.MISSING_FIELD, "/trigger_type"),
    (
        "template and trigger_type",
        {"template": "hot_lead_tag_added", "trigger_type": "contact"},
        errors.VALIDATION_FAILED,
        "/trigger_type",
    ),
    (
        "template and filters",
        {"template": "hot_lead_tag_added", "filters": {"conditions": []}},
        errors.VALIDATION_FAILED,
        "/filters",
    ),
    (
        "overrides not an object",
        {"template": "hot_lead_tag_added", "overrides": ["vip"]},
        errors.VALIDATION_FAILED,
        "/overrides",
    ),
    (
        "template not text",
        {"template": 7, "trigger_type": "contact", "trigger_event": "tag_added"},
        errors.VALIDATION_FAILED,
        "/template",
    ),
]


@pytest.mark.parametrize(
    ("body", "title", "pointer"),
    [r[1:] for r in REFUSED_BODIES],
    ids=[r[0] for r in REFUSED_BODIES],
)
def test_malformed_bodies_are_422_naming_the_field(
    tenant: MakeTenant, body: dict[str, Any], title: str, pointer: str
) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger", json=body)
    problem_body = problem(response, 422, title)
    assert pointer in [e["pointer"] for e in problem_body["errors"]]


def test_neither_template_nor_fields_names_both_fields(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    response = t.client.post(f"/workflows/{workflow['id']}/trigger", json={"is_active": True})
    body = problem(response, 422, errors.MISSING_FIELD)
    assert body["detail"] == "missing: /trigger_type, /trigger_event"


def test_replace_accepts_a_template_too(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    created = new_trigger(t.client, workflow["id"], {"template": "hot_lead_tag_added"})
    url = f"/workflows/{workflow['id']}/trigger/{created['id']}"
    replaced = t.client.put(url, json={"template": "form_follow_up", "overrides": {"form_id": "q"}})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == created["id"]
    assert body["version"] == 2
    assert body["trigger_event"] == "form_submitted"
    assert body["filters"]["conditions"] == [
        {"field": "form_id", "operator": "equals", "value": "q"}
    ]
    bad = t.client.put(url, json={"template": "form_follow_up", "overrides": {"form_id": {}}})
    problem(bad, 400, errors.INVALID_VALUE)


def test_audit_records_the_expanded_configuration(tenant: MakeTenant) -> None:
    t = tenant()
    workflow = new_workflow(t.client)
    created = new_trigger(
        t.client, workflow["id"], {"template": "hot_lead_tag_added", "overrides": {"tag": "vip"}}
    )
    entries = t.client.get(f"/workflows/{workflow['id']}/trigger/audit").json()["items"]
    after = next(e["after"] for e in entries if e["action"] == "trigger.create")
    assert after["filters"] == created["filters"]
    assert after["filters"]["conditions"][0]["value"] == "vip"


def test_openapi_documents_templates(api_url: str) -> None:
    spec = httpx.get(f"{api_url}/openapi.json").json()
    listing = spec["paths"]["/api/v1/trigger-templates"]["get"]
    assert "template" in listing["description"]
    assert "application/problem+json" in listing["responses"]["403"]["content"]
    trigger_in = spec["components"]["schemas"]["TriggerIn"]
    assert "template" in trigger_in["properties"]
    overrides = trigger_in["properties"]["overrides"]["description"]
    assert "settings" in overrides
    assert "conditions" in overrides
    assert any("template" in example for example in trigger_in["examples"])
