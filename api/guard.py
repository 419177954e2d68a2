"""Request bodies are parsed strictly (orjson) and checked before any route sees them.

orjson refuses NaN, Infinity, numbers that overflow a double and lone surrogates, which
Python's json accepts; NUL characters (which Postgres cannot store) and absurd nesting are
refused here. Routes then validate the already-parsed body as usual."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.problems import ApiError
from pipelines import errors

MAX_JSON_DEPTH = 100


def check_json(value: Any, depth: int = 0) -> None:
    """Raise ApiError if `value` nests too deep or holds a NUL character."""
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, errors.MALFORMED_JSON, f"JSON nests deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, errors.MALFORMED_JSON, "text must not contain NUL (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, depth + 1)
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            body = await request.body()
            kind = request.headers.get("content-type", "")
            if body and (not kind or "json" in kind):
                try:
                    value = orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    detail = f"the body is not valid JSON: {exc}"
                    raise ApiError(400, errors.MALFORMED_JSON, detail) from None
                check_json(value)
                request._json = value  # what FastAPI validates next
            return await handler(request)

        return guarded
