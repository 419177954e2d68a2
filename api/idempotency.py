"""The Idempotency-Key header: a retried POST, PUT or PATCH gets the first response back.

An ASGI middleware: for a keyed request of a valid API key it claims the key in Postgres (per
account), runs the request, and keeps the response; a retry with the same key and the same
request gets that response again (with `Idempotent-Replayed: true`) without acting twice. The
same key on another request is a 422; while the first request still runs, a retry gets a 409
with Retry-After. Keys expire after 24 hours and are pruned every 10 minutes, by the first
keyed request after that. Requests without the header pass straight through.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import asyncpg
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from pipelines import errors
from pipelines import idempotency as rules
from pipelines.idempotency import Verdict
from store import accounts
from store import idempotency as store
from store.db import Conn

log = logging.getLogger(__name__)
_CLAIM_ATTEMPTS = 3
_RETRY_AFTER_S = 1


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._next_prune = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        if scope["type"] == "http" and scope["method"] in rules.METHODS:
            key = Headers(scope=scope).get(rules.HEADER)
        if key is None:
            await self.app(scope, receive, send)
        else:
            await self._keyed(key, scope, receive, send)

    async def _keyed(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if (why := rules.key_problem(key)) is not None:
            await problem(400, errors.INVALID_IDEMPOTENCY_KEY, why, path)(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # the body limit
            await problem(exc.status_code, errors.BODY_TOO_LARGE, str(exc.detail), path)(
                scope, receive, send
            )
            return
        receive = _replaying(body, receive)
        query = scope.get("query_string", b"").decode("latin-1")
        system: asyncpg.Pool = scope["app"].state.pool  # finding the key: across accounts
        pool: asyncpg.Pool = scope["app"].state.api_pool  # the key table: under RLS
        try:
            await self._prune_if_due(system)
            async with system.acquire() as conn:
                caller = await _caller(conn, Headers(scope=scope))
            outcome: uuid.UUID | Response | None = None
            if caller is not None:
                incoming = rules.fingerprint(scope["method"], path, query, body, str(caller[1]))
                async with store.account_connection(pool, caller[0]) as conn:
                    outcome = await _claim(conn, caller[0], key, incoming, path)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("idempotency keys unavailable: %r", exc)  # so is the key lookup
            detail = f"{rules.HEADER} cannot be checked now (the database does not answer)"
            response = problem(503, errors.SERVICE_UNAVAILABLE, detail, path)
            response.headers["Retry-After"] = str(_RETRY_AFTER_S)
            await response(scope, receive, send)
            return
        if caller is None or outcome is None:  # no valid API key: the route answers 401
            await self.app(scope, receive, send)
        elif isinstance(outcome, Response):
            await outcome(scope, receive, send)
        else:
            await _Claim(pool, caller[0], key, outcome).run(self.app, scope, receive, send)

    async def _prune_if_due(self, pool: asyncpg.Pool) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + rules.PRUNE_EVERY_S
        removed = await store.prune(pool, rules.TTL_S)
        if removed:
            log.info("pruned %d expired idempotency keys", removed)


async def _claim(
    conn: Conn, account_id: uuid.UUID, key: str, incoming: bytes, path: str
) -> uuid.UUID | Response:
    """The claim id when this request may run; else the response it gets instead."""
    for _ in range(_CLAIM_ATTEMPTS):
        claim_id = await store.claim(conn, account_id, key, incoming, rules.TTL_S, rules.LEASE_S)
        if claim_id is not None:
            return claim_id
        found = await store.find(conn, account_id, key, rules.TTL_S)
        if found is None:
            continue  # the holder gave the key up in between
        seen = rules.verdict(
            found.fingerprint, found.done, found.lease_over, found.expired, incoming
        )
        if seen is Verdict.REPLAY:
            return _replay(found)
        if seen is Verdict.MISMATCH:
            detail = (
                f"this {rules.HEADER} was used for another request (method, path or body)"
                " in the last 24 hours; send a new key for a new request"
            )
            return problem(422, errors.IDEMPOTENCY_KEY_REUSED, detail, path)
        if seen is Verdict.IN_PROGRESS:
            break
    detail = f"a request with this {rules.HEADER} is still running; retry shortly"
    response = problem(409, errors.REQUEST_IN_PROGRESS, detail, path)
    response.headers["Retry-After"] = str(_RETRY_AFTER_S)
    return response


class _Claim:
    """A claimed key: run the request, then keep its response or give the key up."""

    def __init__(
        self, pool: asyncpg.Pool, account_id: uuid.UUID, key: str, claim_id: uuid.UUID
    ) -> None:
        self.pool, self.account_id, self.key, self.claim_id = pool, account_id, key, claim_id

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await app(scope, receive, capture)
        except BaseException:
            await self._release()
            raise
        body = b"".join(chunks)
        # Kept before the client hears the answer: a retry never finds the effect unrecorded.
        await self._settle(start["status"], start.get("headers", []), body)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def _settle(self, status: int, raw: list[tuple[bytes, bytes]], body: bytes) -> None:
        if not rules.kept(status):
            await self._release()
            return
        headers = rules.replayed_headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        )
        try:
            async with store.account_connection(self.pool, self.account_id) as conn:
                await store.complete(
                    conn, self.account_id, self.key, self.claim_id, status, headers, body
                )
        except (asyncpg.PostgresError, OSError):
            # The client still gets its answer; a retry after the lease would run again.
            log.exception("could not keep the response for an idempotency key")

    async def _release(self) -> None:
        try:
            async with store.account_connection(self.pool, self.account_id) as conn:
                await store.release(conn, self.account_id, self.key, self.claim_id)
        except (asyncpg.PostgresError, OSError):
            log.exception("could not release an idempotency key; it lapses with its lease")


def _replay(found: store.Stored) -> Response:
    assert found.status is not None
    response = Response(found.body or b"", found.status)
    for name, value in found.headers or []:
        response.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    response.raw_headers.append((b"idempotent-replayed", b"true"))
    return response


async def _caller(conn: Conn, headers: Headers) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(account_id, key_id) of a valid bearer key."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = await accounts.find_key(conn, token.strip())
    return (found.account_id, found.key_id) if found else None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body read already, then the client's own messages."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


def document(app: FastAPI) -> None:
    """Add the Idempotency-Key header to every POST, PUT and PATCH in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            for item in schema.get("paths", {}).values():
                for method, operation in item.items():
                    if method.upper() in rules.METHODS:
                        operation.setdefault("parameters", []).append(_PARAMETER)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PARAMETER: dict[str, Any] = {
    "name": rules.HEADER,
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": rules.MAX_KEY_LENGTH,
        "pattern": rules.KEY_PATTERN,
    },
    "description": (
        "Makes a retry safe: a second request with the same key and the same body gets the "
        "first response again (header `Idempotent-Replayed: true`) without acting twice. "
        "Keys are per account and kept 24 hours; the same key with another request is a 422, "
        "and while the first request still runs a retry gets a 409 with Retry-After."
    ),
}
