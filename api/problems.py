"""RFC 9457 problem documents for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from pipelines import errors
from pipelines.errors import ConfigError
from pipelines.quotas import QuotaExceeded

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPES_PATH = "/api/v1/problems"  # GET TYPES_PATH/{slug} describes a problem type
# Each title's `type`: a URI reference to its description (titles without one: about:blank).
TYPES = {title: f"{TYPES_PATH}/{errors.problem_slug(title)}" for title in errors.DESCRIPTIONS}


_TITLES = {
    400: errors.BAD_REQUEST,
    401: errors.UNAUTHORIZED,
    403: errors.FORBIDDEN,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    409: errors.CONFLICT,
    413: errors.BODY_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA_TYPE,
    422: errors.VALIDATION_FAILED,
    500: errors.INTERNAL_ERROR,
    503: errors.SERVICE_UNAVAILABLE,
}


class Problem(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(
        default="about:blank",
        description="Names the kind of problem; GET it for a description.",
        examples=[f"{TYPES_PATH}/invalid-filter-operator"],
    )
    title: str = Field(examples=[errors.INVALID_OPERATOR])
    status: int = Field(examples=[400])
    detail: str = Field(examples=["'resembles' is not an operator; use one of equals, ..."])
    instance: str | None = Field(default=None, examples=["/api/v1/workflows/{id}/trigger"])
    pointer: str | None = Field(
        default=None,
        description="JSON pointer to the offending part of the request",
        examples=["/filters/conditions/1/operator"],
    )


def _described(text: str) -> dict[str, Any]:
    return {"model": Problem, "description": text, "content": {MEDIA_TYPE: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("Invalid configuration or malformed JSON"),
    401: _described("No valid API key"),
    403: _described("Missing scope, or another account's resource"),
    404: _described("No such resource"),
    409: _described(
        "Conflict with the current state (e.g. Trigger already exists, Workflow loop detected,"
        " Quota exceeded)"
    ),
    413: _described("Request body too large"),
    422: _described("Missing required field or wrong type, or a value out of range"),
    # Outages only, never the input: retry after Retry-After.
    503: _described("Postgres or Redis does not answer"),
}


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(status: int, title: str, detail: str, instance: str = "", **extra: Any) -> Response:
    kind = TYPES.get(title, "about:blank")
    body: dict[str, Any] = {"type": kind, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return "/" + "/".join(parts)


async def _on_validation(request: Request, exc: RequestValidationError) -> Response:
    found = exc.errors()
    if any(e.get("type") == "json_invalid" for e in found):
        return problem(400, errors.MALFORMED_JSON, "the body is not valid JSON", request.url.path)
    items = [
        {"pointer": _pointer(tuple(e.get("loc", ()))), "detail": str(e.get("msg", ""))}
        for e in found
    ]
    missing = [i["pointer"] for i, e in zip(items, found, strict=True) if e["type"] == "missing"]
    if missing:
        title, detail = errors.MISSING_FIELD, f"missing: {', '.join(missing)}"
    else:
        title = errors.VALIDATION_FAILED
        detail = "; ".join(f"{i['pointer']}: {i['detail']}" for i in items)
    return problem(422, title, detail, request.url.path, errors=items)


async def _on_config(request: Request, exc: ConfigError) -> Response:
    return problem(exc.status, exc.title, exc.detail, request.url.path, pointer=exc.pointer)


async def _on_quota(request: Request, exc: QuotaExceeded) -> Response:
    return problem(409, exc.title, exc.detail, request.url.path, **exc.extra())


async def _on_api(request: Request, exc: ApiError) -> Response:
    return problem(exc.status, exc.title, exc.detail, request.url.path, **exc.extra)


async def _on_http(request: Request, exc: HTTPException) -> Response:
    title = _TITLES.get(exc.status_code, "Error")
    return problem(exc.status_code, title, str(exc.detail), request.url.path)


async def _on_unstorable(request: Request, exc: Exception) -> Response:
    return problem(400, errors.UNSTORABLE_VALUE, str(exc), request.url.path)


async def _on_outage(request: Request, exc: Exception) -> Response:
    log.warning("database unreachable on %s %s: %r", request.method, request.url.path, exc)
    response = problem(
        503,
        errors.SERVICE_UNAVAILABLE,
        "the database does not answer; retry shortly",
        request.url.path,
    )
    response.headers["Retry-After"] = "1"
    return response


async def _on_crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, errors.INTERNAL_ERROR, "an unexpected error occurred", request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(ConfigError, _on_config)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _on_api)  # type: ignore[arg-type]
    app.add_exception_handler(QuotaExceeded, _on_quota)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _on_http)  # type: ignore[arg-type]
    # Backstops: a value that slipped past validation but cannot be stored or encoded.
    app.add_exception_handler(asyncpg.DataError, _on_unstorable)
    app.add_exception_handler(orjson.JSONEncodeError, _on_unstorable)
    # The database down or gone mid-request: 503 with Retry-After, not a 500.
    for outage in (
        OSError,
        asyncpg.InterfaceError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
    ):
        app.add_exception_handler(outage, _on_outage)
    app.add_exception_handler(Exception, _on_crash)
