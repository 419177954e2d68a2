"""RFC 9457 problem documents, as the API's error answers are checked."""

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
