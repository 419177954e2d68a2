"""Bad requests always get a problem document, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from pipelines import errors
from tests.support.db import Db
from tests.support.factories import Tenant, new_workflow
from tests.support.problems import problem

MakeTenant = Callable[..., Tenant]


def test_malformed_json_is_400(tenant: MakeTenant) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    for raw in (b'{"trigger_type": "form"', b"\xff\xfe", b"[1, 2,,]", b"nan"):
        response = t.client.post(
            f"/workflows/{wf['id']}/trigger",
            content=raw,
            headers={"content-type": "application/json"},
        )
        problem(response, 400, errors.MALFORMED_JSON)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        {"trigger_type": ["form"], "trigger_event": "form_submitted"},
        {"trigger_type": "form", "trigger_event": "form_submitted", "filters": "everything"},
        {"trigger_type": "form", "trigger_event": "form_submitted", "settings": [1]},
        {"trigger_type": "form", "trigger_event": "form_submitted", "is_active": "maybe"},
        {"trigger_type": "form", "trigger_event": "form_submitted", "extra": 1},
    ],
)
def test_wrong_types_and_unknown_fields_are_422(tenant: MakeTenant, body: object) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    response = t.client.post(f"/workflows/{wf['id']}/trigger", json=body)
    problem(response, 422, errors.VALIDATION_FAILED)


def test_bad_path_ids_are_422_not_500(tenant: MakeTenant) -> None:
    t = tenant()
    problem(t.client.get("/workflows/not-a-uuid"), 422, errors.VALIDATION_FAILED)
    problem(t.client.get("/workflows", params={"limit": 0}), 422, errors.VALIDATION_FAILED)


def test_unknown_routes_and_methods_are_problems(tenant: MakeTenant) -> None:
    t = tenant()
    problem(t.client.get("/nowhere"), 404, errors.NOT_FOUND)
    problem(t.client.put("/workflows"), 405, "Method not allowed")


def test_huge_declared_body_is_413(tenant: MakeTenant) -> None:
    t = tenant()
    huge = b'{"name": "' + b"x" * (300 * 1024) + b'"}'
    response = t.client.post(
        "/workflows", content=huge, headers={"content-type": "application/json"}
    )
    problem(response, 413, errors.BODY_TOO_LARGE)


def test_huge_streamed_body_is_413(tenant: MakeTenant) -> None:
    t = tenant()

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    response = t.client.post(
        "/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(response, 413, errors.BODY_TOO_LARGE)
    assert t.client.get("/workflows").json()["items"] == []


def test_deep_json_nesting_is_refused(tenant: MakeTenant) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    deep = '{"conditions": [' * 30 + "]}" * 30
    raw = '{"trigger_type": "contact", "trigger_event": "tag_added", "filters": ' + deep + "}"
    response = t.client.post(
        f"/workflows/{wf['id']}/trigger",
        content=raw.encode(),
        headers={"content-type": "application/json"},
    )
    problem(response, 400, errors.TOO_DEEP)


NASTY: list[tuple[str, bytes]] = [
    (
        "NUL in a value",
        b'{"trigger_type": "contact", "trigger_event": "tag_added",'
        b' "filters": {"conditions": [{"field": "tag", "operator": "equals",'
        b' "value": "a\\u0000"}]}}',
    ),
    (
        "lone surrogate",
        b'{"trigger_type": "contact", "trigger_event": "tag_added",'
        b' "filters": {"conditions": [{"field": "tag", "operator": "equals",'
        b' "value": "\\ud800"}]}}',
    ),
    (
        "NaN",
        b'{"trigger_type": "payment", "trigger_event": "payment_received", "filters":'
        b' {"conditions": [{"field": "amount", "operator": "greater_than", "value": NaN}]}}',
    ),
    (
        "1e400",
        b'{"trigger_type": "payment", "trigger_event": "payment_received", "filters":'
        b' {"conditions": [{"field": "amount", "operator": "greater_than", "value": 1e400}]}}',
    ),
    (
        "nesting 300 deep",
        b'{"trigger_type": "contact", "trigger_event": "tag_added", "settings": '
        + b'{"a": ' * 300
        + b"1"
        + b"}" * 300
        + b"}",
    ),
]


@pytest.mark.parametrize("raw", [n[1] for n in NASTY], ids=[n[0] for n in NASTY])
def test_json_that_cannot_be_stored_is_refused_not_500(
    tenant: MakeTenant, db_sync: Db, raw: bytes
) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    response = t.client.post(
        f"/workflows/{wf['id']}/trigger", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert t.client.get(f"/workflows/{wf['id']}/trigger").status_code == 404
    assert (
        db_sync.value("SELECT count(*) FROM workflow_triggers WHERE account_id = $1", t.account_id)
        == 0
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\u0000b"},
        {"name": "x", "actions": [{"type": "add_tag", "tag": "vip", "n": 2**70}]},
        {"name": "x", "actions": [{"type": "add_tag", "tag": "\ud800"}]},
    ],
    ids=["NUL in name", "huge integer in an action", "lone surrogate in an action"],
)
def test_workflow_bodies_that_cannot_be_stored_are_refused(
    tenant: MakeTenant, body: dict[str, object]
) -> None:
    t = tenant()
    raw = json.dumps(body).encode()
    response = t.client.post(
        "/workflows", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code != 201:
        assert response.headers["content-type"] == "application/problem+json"
    assert t.client.get("/workflows").status_code == 200


def test_null_settings_take_their_defaults(tenant: MakeTenant) -> None:
    t = tenant()
    wf = new_workflow(t.client)
    body = {
        "trigger_type": "time",
        "trigger_event": "recurring_schedule",
        "settings": {"every": 2, "days_of_week": None, "catch_up_hours": None},
    }
    response = t.client.post(f"/workflows/{wf['id']}/trigger", json=body)
    assert response.status_code == 201, response.text
    settings = response.json()["settings"]
    assert settings["catch_up_hours"] == 24
    assert settings["every"] == 2
    assert "days_of_week" not in settings


def test_integers_beyond_64_bits_are_read_as_doubles(tenant: MakeTenant) -> None:
    """JSON numbers are IEEE doubles (as in JavaScript); none makes the API fail."""
    t = tenant()
    wf = new_workflow(t.client)
    raw = (
        b'{"trigger_type": "payment", "trigger_event": "payment_received", "filters":'
        b' {"conditions": [{"field": "amount", "operator": "equals",'
        b' "value": 18446744073709551616}]}}'
    )
    response = t.client.post(
        f"/workflows/{wf['id']}/trigger", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["filters"]["conditions"][0]["value"] == 2.0**64
