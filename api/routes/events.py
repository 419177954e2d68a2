"""Event ingest over HTTP: validated envelopes go onto their account's shard stream."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request

from api.deps import EventWriter, PoolDep, RedisDep
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import Accepted, EventIn
from pipelines import errors
from pipelines.catalog import ENGINE_EVENT_PREFIXES
from pipelines.event_limits import check_envelope
from pipelines.messages import KNOWN_EVENT_TYPES, encode_event
from store import ingest as outbox
from streams.errors import StreamError
from streams.events import Router, add_events

log = logging.getLogger(__name__)
OUTBOX_CHECK_S = 0.5
router = APIRouter(tags=["events"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES)


@router.post("/events", status_code=202, response_model=Accepted)
async def ingest(
    body: EventIn | list[EventIn],
    principal: EventWriter,
    redis: RedisDep,
    pool: PoolDep,
    request: Request,
) -> Any:
    """Accept one event envelope or a list of them; 202 once all are in their shard stream.

    While Redis is unreachable the events are held in Postgres (`held: true`, still 202) and
    relayed to their shards, in order per account, once it is back."""
    events = body if isinstance(body, list) else [body]
    limit: int = request.app.state.settings.max_events_per_request
    if not events or len(events) > limit:
        raise ApiError(400, errors.INVALID_EVENT, f"send between 1 and {limit} events")
    for i, event in enumerate(events):
        _check(i, event)
        if event.account_id != principal.account_id:
            raise ApiError(403, errors.FORBIDDEN, "events may only be sent for the key's account")
    batch, reachable = await _routed(request, events)
    held = await _hold_if_needed(pool, redis, principal.account_id, batch, reachable)
    return {"accepted": len(events), "event_ids": [e.event_id for e in events], "held": held}


def _check(i: int, event: EventIn) -> None:
    """Refuse what the engine would dead-letter, so that a 202 means "will be processed"."""
    kind = event.event_type
    if kind.startswith(ENGINE_EVENT_PREFIXES):
        raise ApiError(
            400,
            errors.INVALID_EVENT,
            f"'{kind}' events are emitted by the engine only; a tenant may not send them",
            pointer=f"/{i}/event_type",
        )
    if kind not in KNOWN_EVENT_TYPES:
        raise ApiError(
            400,
            errors.INVALID_EVENT,
            f"'{kind}' is not an event type; see GET /api/v1/catalog",
            pointer=f"/{i}/event_type",
        )
    metadata = event.metadata.model_dump() if event.metadata is not None else None
    violation = check_envelope(None, event.timestamp, event.data.model_dump(), metadata)
    if violation is not None:
        raise ApiError(
            400, errors.INVALID_EVENT, violation.reason, pointer=f"/{i}{violation.pointer}"
        )


async def _routed(request: Request, events: list[EventIn]) -> tuple[list[outbox.Held], bool]:
    """(account, shard stream, envelope JSON) of each event, and whether Redis answered.
    Routing reads spread factors from Redis; when it cannot, the events are held for their
    accounts' home shards (the relay keeps their order)."""
    router: Router = request.app.state.router
    keys = [(e.account_id, e.data.contact_id) for e in events]
    try:
        streams, reachable = await router.streams(request.app.state.redis, keys), True
    except StreamError as exc:
        log.warning("Redis unreachable, holding %d events: %s", len(events), exc)
        streams = [router.home_stream(e.account_id) for e in events]
        reachable = False
    batch = [
        (e.account_id, stream, encode_event(e.model_dump(mode="json", exclude_none=True)))
        for e, stream in zip(events, streams, strict=True)
    ]
    return batch, reachable


async def _hold_if_needed(
    pool: PoolDep,
    redis: RedisDep,
    account_id: uuid.UUID,
    batch: list[outbox.Held],
    reachable: bool,
) -> bool:
    """XADD the batch; when Redis is unreachable, or the account already has events held (they
    must go first), keep it in the ingest outbox instead. True when held."""
    try:  # ingest must not need Postgres to be up, nor wait for a slow one
        waiting = await asyncio.wait_for(outbox.holds_events(pool, account_id), OUTBOX_CHECK_S)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.warning("cannot see the ingest outbox, sending to Redis: %r", exc)
        waiting = False
    if not waiting and reachable:
        try:
            await add_events(redis, [(stream, payload) for _, stream, payload in batch])
            return False
        except StreamError as exc:
            log.warning("Redis unreachable, holding %d events: %s", len(batch), exc)
    try:
        await outbox.hold(pool, batch)
    except (asyncpg.PostgresError, OSError) as exc:
        raise ApiError(
            503,
            errors.SERVICE_UNAVAILABLE,
            "neither the event stream nor the database answers",
        ) from exc
    return True
