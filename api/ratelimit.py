"""Rate limits: config calls per API key (writes and reads apart), event ingest per account.

The budgets live in Redis, so every gateway process draws on the same ones. One Lua script
(GCRA, see pipelines/ratelimit.py) checks and spends a budget atomically on Redis's clock, so
gateways need not agree on the time. While Redis does not answer, each gateway process keeps
the budgets in its own memory for a few seconds at a time and logs it: the limits still hold,
per process (n gateways let up to n budgets through), and they never make the service wait on
Redis. Route files stay as they are; api/app.py attaches the dependencies.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Caller, EventWriter
from api.problems import MEDIA_TYPE, ApiError, Problem
from pipelines import errors
from pipelines.config import Settings
from pipelines.ratelimit import Budget, Decision, LocalBuckets, decision
from streams import names
from streams.errors import StreamError
from streams.ratelimit import RedisBuckets

log = logging.getLogger(__name__)

PAUSE_S = 2.0  # how long the limiter keeps to local buckets after Redis failed to answer
_TIMEOUT_S = 0.5
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_STATE = "rate_limit_headers"  # request.state: the headers the response gets


class RateLimiter:
    """Spends budgets in Redis; in this process's memory while Redis is unreachable."""

    def __init__(self, redis_url: str, pause_s: float = PAUSE_S) -> None:
        # Its own client without retries and with short timeouts: a dead Redis costs a
        # request at most one quick failure, then the limiter pauses.
        self._buckets = RedisBuckets(redis_url, _TIMEOUT_S)
        self._pause_s = pause_s
        self._paused_until = 0.0
        self._local = LocalBuckets()

    async def charge(self, bucket: str, budget: Budget, cost: int) -> Decision:
        if time.monotonic() < self._paused_until:
            return self._local_charge(bucket, budget, cost)
        try:
            reply = await self._buckets.spend(bucket, budget.interval_ms, budget.capacity_ms, cost)
        except (StreamError, OSError) as exc:
            self._paused_until = time.monotonic() + self._pause_s
            log.warning(
                "rate limits kept in this process for %.0f s: Redis does not answer (%s)",
                self._pause_s,
                exc,
            )
            return self._local_charge(bucket, budget, cost)
        return decision(budget, reply)

    def _local_charge(self, bucket: str, budget: Budget, cost: int) -> Decision:
        return self._local.charge(bucket, budget, cost, time.monotonic() * 1000)

    async def aclose(self) -> None:
        await self._buckets.aclose()


async def _spend(
    request: Request, bucket: str, budget: Budget | None, cost: int, detail: str
) -> None:
    if budget is None:
        return
    limiter: RateLimiter = request.app.state.limiter
    found = await limiter.charge(bucket, budget, cost)
    setattr(request.state, _STATE, found.headers())
    if not found.allowed:
        raise ApiError(429, errors.RATE_LIMITED, f"{detail}; retry in {found.retry_after_s} s")


async def limit_config(request: Request, principal: Caller) -> None:
    """Config calls spend the API key's budget: writes (POST, PUT, PATCH, DELETE) one, reads
    another."""
    settings: Settings = request.app.state.settings
    if request.method in _READS:
        kind, budget, what = "reads", settings.rate_reads, "reads"
    else:
        kind, budget, what = "writes", settings.rate_writes, "changes"
    bucket = names.rate_limit_bucket(kind, principal.key_id)
    await _spend(request, bucket, budget, 1, f"this API key's budget for {what} is {budget}")


async def limit_events(request: Request, principal: EventWriter) -> None:
    """Event ingest spends the account's budget, one unit per event: a batch passes or is
    refused whole."""
    settings: Settings = request.app.state.settings
    try:
        body = await request.json()
    except ValueError:
        return  # the route refuses it
    cost = len(body) if isinstance(body, list) else 1
    if not 1 <= cost <= settings.max_events_per_request:
        return  # the route refuses it
    budget = settings.rate_events
    bucket = names.rate_limit_bucket("events", principal.account_id)
    detail = f"the account's budget for events is {budget}; this batch of {cost} is refused whole"
    await _spend(request, bucket, budget, cost, detail)


_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "The budget: units per window"),
        ("RateLimit-Remaining", "Units left now"),
        ("RateLimit-Reset", "Seconds until the whole budget is back"),
        ("Retry-After", "Seconds to wait before retrying"),
    )
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "Rate limit exceeded (the API key's, or for events the account's)",
        "content": {MEDIA_TYPE: {}},
        "headers": _HEADERS,
    }
}
PER_KEY: dict[str, Any] = {"dependencies": [Depends(limit_config)], "responses": _RESPONSES}
PER_ACCOUNT_EVENTS: dict[str, Any] = {
    "dependencies": [Depends(limit_events)],
    "responses": _RESPONSES,
}


class RateLimitHeaders:
    """Adds the RateLimit-* (and Retry-After) headers a limit dependency left to every
    response: successes, 204s and problems alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            found: list[tuple[str, str]] | None = state.get(_STATE)
            if message["type"] == "http.response.start" and found:
                extra = [(k.lower().encode(), v.encode()) for k, v in found]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, sending)
