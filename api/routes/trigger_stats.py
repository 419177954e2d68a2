"""Per-trigger analytics (docs/contract.md §6): what a workflow's trigger did, per hour or day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import PoolDep, Reader, owned_workflow
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from api.schemas import BoundedDatetime
from pipelines import errors
from pipelines.trigger_stats import Tally, hour_of, percentile_ms, rollup
from store import trigger_stats

router = APIRouter(
    prefix="/workflows/{workflow_id}/trigger",
    tags=["triggers"],
    route_class=GuardedRoute,
    responses=PROBLEM_RESPONSES,
)
MAX_WINDOW = {"hour": timedelta(days=31), "day": timedelta(days=366)}


class Latency(BaseModel):
    p50: int | None = Field(description="ms, upper bound of its histogram bucket")
    p95: int | None


class Counts(BaseModel):
    evaluated: int = Field(
        description="Events the trigger was checked against. An event redelivered after a "
        "crash between its commit and its acknowledgement is counted again; the other counts "
        "are exact."
    )
    matched: int
    enrolled: int
    blocked: dict[str, int] = Field(examples=[{"blocked: already_enrolled": 3}])
    errors: int = Field(description="Evaluations whose filter failed.")
    latency_ms: Latency = Field(description="XADD to enrollment committed.")


class Bucket(Counts):
    start: datetime


class StatsOut(BaseModel):
    workflow_id: uuid.UUID
    bucket: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    totals: Counts
    buckets: list[Bucket] = Field(description="Buckets with activity, oldest first.")


def _counts(t: Tally) -> dict[str, Any]:
    return {
        "evaluated": t.evaluated,
        "matched": t.matched,
        "enrolled": t.enrolled,
        "blocked": {reason.text: n for reason, n in t.blocked.items()},
        "errors": t.errors,
        "latency_ms": {"p50": percentile_ms(t.latency, 0.5), "p95": percentile_ms(t.latency, 0.95)},
    }


@router.get("/stats", response_model=StatsOut, response_model_by_alias=True)
async def trigger_stats_view(
    workflow_id: uuid.UUID,
    principal: Reader,
    pool: PoolDep,
    since: Annotated[
        BoundedDatetime | None, Query(alias="from", description="Default: `to` - 24 h.")
    ] = None,
    until: Annotated[BoundedDatetime | None, Query(alias="to", description="Default: now.")] = None,
    bucket: Literal["hour", "day"] = "hour",
    trigger_id: uuid.UUID | None = None,
) -> Any:
    """Evaluated, matched, enrolled, blocked by reason and p50/p95 latency per hour or UTC day.

    Kept up to date by every batch the actors commit (no scan of the log tables). Hours are
    whole: `from` rounds down and `to` up to the hour. Windows of up to 31 days by hour or
    366 days by day."""
    await owned_workflow(pool, principal, workflow_id, deleted=True)
    end = until or datetime.now(UTC)
    start = since or end - timedelta(hours=24)
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError(
            400, errors.BAD_REQUEST, "'from' and 'to' need a UTC offset", pointer="/from"
        )
    start, end = (
        hour_of(start),
        hour_of(end + timedelta(minutes=59, seconds=59, microseconds=999999)),
    )
    if start >= end:
        raise ApiError(400, errors.BAD_REQUEST, "'from' must be before 'to'", pointer="/from")
    if end - start > MAX_WINDOW[bucket]:
        raise ApiError(
            400,
            errors.BAD_REQUEST,
            f"at most {MAX_WINDOW[bucket].days} days by {bucket}",
            pointer="/to",
        )
    rows = await trigger_stats.hourly(
        pool, principal.account_id, workflow_id, start, end, trigger_id
    )
    totals = Tally()
    for _, t in rows:
        totals.add(t)
    return {
        "workflow_id": workflow_id,
        "bucket": bucket,
        "from": start,
        "to": end,
        "totals": _counts(totals),
        "buckets": [{"start": at, **_counts(t)} for at, t in rollup(rows, bucket)],
    }
