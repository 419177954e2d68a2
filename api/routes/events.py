"""Event ingest over HTTP: validated envelopes go onto their account's shard stream."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from redis.exceptions import RedisError

from api.deps import EventWriter, RedisDep
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import Accepted, EventIn
from hairtrigger import names
from pipelines import errors
from pipelines.envelope import KNOWN_EVENT_TYPES
from pipelines.sharding import shard_for

router = APIRouter(tags=["events"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES)


@router.post("/events", status_code=202, response_model=Accepted)
async def ingest(
    body: EventIn | list[EventIn], principal: EventWriter, redis: RedisDep, request: Request
) -> Any:
    """Accept one event envelope or a list of them; 202 once all are in their shard stream."""
    events = body if isinstance(body, list) else [body]
    limit: int = request.app.state.settings.max_events_per_request
    if not events or len(events) > limit:
        raise ApiError(400, errors.INVALID_EVENT, f"send between 1 and {limit} events")
    for i, event in enumerate(events):
        if event.event_type not in KNOWN_EVENT_TYPES:
            raise ApiError(
                400,
                errors.INVALID_EVENT,
                f"'{event.event_type}' is not an event type; see GET /api/v1/catalog",
                pointer=f"/{i}/event_type",
            )
        if event.account_id != principal.account_id:
            raise ApiError(403, errors.FORBIDDEN, "events may only be sent for the key's account")
    shards: int = request.app.state.shards
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for event in events:
                payload = orjson.dumps(event.model_dump(mode="json", exclude_none=True))
                stream = names.events_stream(shard_for(event.account_id, shards))
                pipe.xadd(stream, {names.EVENT_FIELD: payload})
            await pipe.execute()
    except RedisError as exc:
        raise ApiError(
            503, errors.SERVICE_UNAVAILABLE, f"the event stream is unreachable: {exc}"
        ) from exc
    return {"accepted": len(events), "event_ids": [e.event_id for e in events]}
