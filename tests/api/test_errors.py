"""Bad requests always get a problem document, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from pipelines import errors
from tests.api.helpers import new_workflow, problem
from tests.conftest import Tenant

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
    deep = '{"conditions": [' * 200 + "]}" * 200
    raw = '{"trigger_type": "contact", "trigger_event": "tag_added", "filters": ' + deep + "}"
    response = t.client.post(
        f"/workflows/{wf['id']}/trigger",
        content=raw.encode(),
        headers={"content-type": "application/json"},
    )
    problem(response, 400, errors.TOO_DEEP)
