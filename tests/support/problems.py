"""Small helpers for API tests."""

from __future__ import annotations

from typing import Any

import httpx

from pipelines import errors


def problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem with this status and title; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] == title, body
    assert body["detail"]
    assert body["type"] == f"/api/v1/problems/{errors.problem_slug(title)}", body
    return body


def new_workflow(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Follow up", **fields}
    response = client.post("/workflows", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def new_trigger(client: httpx.Client, workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/workflows/{workflow_id}/trigger", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
