"""Trigger backtest: what a trigger (a draft, or the saved one) would have matched and enrolled
over a window of the account's retained events. Reads only: no side effects."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PoolDep, Reader, RedisDep, owned_workflow
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.routes import templates
from api.schemas import TRIGGER_EXAMPLE, BoundedDatetime, TriggerIn
from pipelines import bounds, errors
from pipelines.backtest import Backtest, Change, Result, check_window
from pipelines.errors import ConfigError
from pipelines.index import TriggerSpec, spec_from_config
from pipelines.projection import utc
from pipelines.stored import stored_reason
from pipelines.triggers import validate_trigger
from store import backtest as reads
from store import workflows as store
from streams import ranges, spread
from streams.errors import StreamError

router = APIRouter(
    prefix="/workflows/{workflow_id}/trigger",
    tags=["triggers"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)

DEFAULT_WINDOW = timedelta(hours=24)
LONGEST_WITHOUT_RETENTION = timedelta(days=366)


class BacktestIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "trigger": TRIGGER_EXAMPLE,
                    "from": "2026-11-18T00:00:00Z",
                    "to": "2026-11-25T00:00:00Z",
                },
                {"trigger": None, "from": "2026-11-24T00:00:00Z"},
            ]
        },
    )
    trigger: TriggerIn | None = Field(
        default=None,
        description="A draft configuration, as for POST .../trigger (validated the same way); "
        "null or absent: the saved trigger.",
    )
    start: BoundedDatetime | None = Field(
        default=None, alias="from", description="Window start (inclusive); default `to` - 24 h."
    )
    end: BoundedDatetime | None = Field(
        default=None, alias="to", description="Window end (exclusive); default now."
    )


class BacktestSample(BaseModel):
    event_id: uuid.UUID
    contact_id: uuid.UUID
    event_type: str
    timestamp: datetime
    would_enroll: bool
    reason: str | None = Field(description="Why it would not enroll, e.g. blocked: cooldown.")


class BacktestChange(BaseModel):
    count: int
    sample_event_ids: list[uuid.UUID] = Field(description="Up to 10, in stream order.")


class BacktestDiff(BaseModel):
    newly_matching: BacktestChange = Field(description="Matched by the draft only.")
    no_longer_matching: BacktestChange = Field(description="Matched by the saved trigger only.")


class BacktestOut(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    trigger: Literal["draft", "saved"] = Field(
        description="Which configuration the figures are for."
    )
    retained_since: datetime | None = Field(
        description="When the oldest event still retained on the account's shard arrived: "
        "a window starting earlier is only covered from here."
    )
    events_scanned: int = Field(description="The account's events in the window.")
    matched_events: int
    matched_contacts: int
    would_enroll: int = Field(description="Enrollments, as if the workflow had been active.")
    blocked: dict[str, int] = Field(description="Matches that would not enroll, by reason.")
    samples: list[BacktestSample] = Field(description="The first 10 matches of the window.")
    diff: BacktestDiff | None = Field(
        description="With a draft, against the saved trigger (when there is one)."
    )


def _ms(at: datetime) -> int:
    return (at - bounds.EARLIEST) // timedelta(milliseconds=1)


def _draft(
    body: TriggerIn, trigger_id: uuid.UUID, workflow_id: uuid.UUID, account_id: uuid.UUID
) -> TriggerSpec:
    """Validated exactly like a create; error pointers lead into `trigger`."""
    body = templates.resolve(body)
    try:
        config = validate_trigger(
            body.trigger_type, body.trigger_event, body.filters, body.settings
        )
    except ConfigError as exc:
        raise ConfigError(exc.title, exc.detail, f"/trigger{exc.pointer}", exc.status) from None
    return spec_from_config(
        config, trigger_id=trigger_id, workflow_id=workflow_id, account_id=account_id
    )


def _saved(row: dict[str, Any], account_id: uuid.UUID) -> TriggerSpec:
    config = validate_trigger(
        row["trigger_type"], row["trigger_event"], row["filters"], row["settings"]
    )
    return spec_from_config(
        config, trigger_id=row["id"], workflow_id=row["workflow_id"], account_id=account_id
    )


def _change(change: Change) -> dict[str, Any]:
    return {"count": change.count, "sample_event_ids": change.event_ids}


def _public(result: Result) -> dict[str, Any]:
    out = result.outcome
    diff = result.diff
    return {
        "events_scanned": result.events_scanned,
        "matched_events": out.matched_events,
        "matched_contacts": out.matched_contacts,
        "would_enroll": out.would_enroll,
        "blocked": out.blocked,
        "samples": [asdict(s) for s in out.samples],
        "diff": None
        if diff is None
        else {
            "newly_matching": _change(diff.newly_matching),
            "no_longer_matching": _change(diff.no_longer_matching),
        },
    }


@router.post("/backtest", response_model=BacktestOut)
async def backtest(
    workflow_id: uuid.UUID,
    principal: Reader,
    pool: PoolDep,
    redis: RedisDep,
    request: Request,
    body: Annotated[BacktestIn | None, Body()] = None,
) -> Any:
    """Replay the account's retained events of a window through a trigger: a draft (`trigger`)
    or the saved one. Matching and the enrollment policy are the partition actors' own, as if
    the workflow had been active: deleted contacts, loop depth, `single` (existing enrollments
    count) and the cooldown (between the replay's own enrollments) block as live. With a draft
    and a saved trigger, `diff` lists the events that would start or stop matching.

    The window is by arrival (stream entry time, millisecond resolution), at most the stream
    retention long. Contact conditions see each contact's state as of each event: its current
    projection, with the window's contact events applied in order (one created in the window
    starts empty). Nothing is enrolled, logged or written.
    """
    body = body or BacktestIn()
    account_id = principal.account_id
    await owned_workflow(pool, principal, workflow_id)
    row = await store.live_trigger(pool, workflow_id)
    invalid = (
        None
        if row is None
        else stored_reason(row["trigger_event"], row["filters"], row["settings"])
    )
    saved = _saved(row, account_id) if row is not None and invalid is None else None
    if body.trigger is not None:  # against a saved trigger stored invalid: no diff
        draft = _draft(body.trigger, uuid.uuid4(), workflow_id, account_id)
        bt = Backtest(account_id, draft, saved)
    elif saved is not None:
        bt = Backtest(account_id, saved)
    elif invalid is not None:
        raise ApiError(409, errors.INVALID_STORED_TRIGGER, invalid)
    else:
        detail = f"workflow {workflow_id} has no trigger; send a draft in `trigger`"
        raise ApiError(404, errors.NOT_FOUND, detail)
    now = datetime.now(UTC)
    end = utc(body.end) if body.end is not None else now
    # The default start stays in range too: no stream id is before 1970.
    start = (
        utc(body.start) if body.start is not None else max(end - DEFAULT_WINDOW, bounds.EARLIEST)
    )
    hours = request.app.state.settings.stream_retention_hours
    check_window(start, end, now, timedelta(hours=hours) if hours else LONGEST_WITHOUT_RETENTION)
    try:
        found = await spread.account_streams(redis, account_id, request.app.state.shards)
        if len(found) == 1:
            pages = ranges.read_window(redis, found[0], _ms(start), _ms(end))
            result = await reads.run(bt, pool, found[0], pages)
        else:
            merged = ranges.read_windows(redis, found, _ms(start), _ms(end))
            result = await reads.run_merged(bt, pool, merged)
        firsts = [t for n in found if (t := await ranges.first_entry_time(redis, n)) is not None]
        since = min(firsts, default=None)
    except StreamError as exc:
        detail = f"the event stream is unreachable: {exc}"
        raise ApiError(503, errors.SERVICE_UNAVAILABLE, detail) from exc
    kind = "draft" if body.trigger is not None else "saved"
    return {"from": start, "to": end, "retained_since": since, "trigger": kind, **_public(result)}
