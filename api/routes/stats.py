"""System-wide processing figures: partitions, shards, scheduler, API routes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import Operator, RedisDep, SystemPoolDep
from api.guard import GuardedRoute
from api.problems import PROBLEM_RESPONSES, ApiError
from pipelines import errors
from pipelines.stats_report import build_report
from store.stats import queued_enrollments
from streams.errors import StreamError
from streams.lag import dead_letter_count, shard_lag

router = APIRouter(tags=["stats"], route_class=GuardedRoute, responses=PROBLEM_RESPONSES)


@runtime_checkable
class MetricsSource(Protocol):
    """The partition actors (actors.client.Partitions) as the gateway reaches them."""

    partitions: int

    async def metrics(self, wait_s: float = 5.0) -> dict[str, Any]: ...


class Percentiles(BaseModel):
    """Estimated from the histogram's buckets (narrowed by the smallest and largest values)."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class Counts(BaseModel):
    consumed: int = Field(description="Valid events processed and committed")
    matched: int = Field(description="(event, trigger) matches")
    enrolled: int = Field(description="Enrollments written, triggered or queued")
    queued: int = Field(description="Of those, queued for business hours")
    blocked: dict[str, int] = Field(description="Matches that did not enroll, by reason")
    dead_lettered: dict[str, int] = Field(description="Entries sent to the DLQ, by reason")
    filter_errors: int = Field(description="Filters that raised at evaluation")


class FlowCounts(BaseModel):
    """What the partition actors counted (null without them)."""

    consumed: int | None = None
    matched: int | None = None
    enrolled: int | None = None
    queued: int | None = None
    blocked: dict[str, int] | None = None
    dead_lettered: dict[str, int] | None = None
    filter_errors: int | None = None


class Flow(FlowCounts):
    commit_latency_ms: Percentiles | None = Field(
        default=None, description="Per event, from XADD (the entry id's time) to the commit"
    )


class IndexStats(BaseModel):
    """The partition's compiled trigger index, sized by the estimate its quotas use."""

    accounts: int = Field(description="Accounts with live triggers in this partition")
    triggers: int
    index_bytes: int = Field(description="Estimated memory of every account's index, summed")


class PartitionStats(Flow):
    partition: int
    available: bool
    error: str | None = None
    started_at: str | None = Field(default=None, description="Counts are since this time")
    shards: list[int] | None = None
    published: int | None = None
    batch_errors: int | None = None
    invalid_triggers: int | None = Field(
        default=None,
        description="Live triggers this partition skips because their stored configuration no"
        " longer validates (the log names each; GET its trigger for the reason)",
    )
    batch_size: Percentiles | None = None
    match_ms: Percentiles | None = Field(default=None, description="Time to match one batch")
    index: IndexStats | None = None


class ShardStats(Flow):
    shard: int
    partition: int | None = Field(description="The owner; null without partition actors")
    stream_length: int
    pending: int = Field(description="Delivered, not yet acknowledged")
    lag: int | None = Field(description="Not yet delivered; null when Redis cannot tell")


class SchedulerStats(BaseModel):
    available: bool
    error: str | None = None
    started_at: str | None = None
    emitted: dict[str, int] | None = Field(default=None, description="Time events, by event")
    skipped: int | None = None
    stale: int | None = None
    released: int | None = Field(default=None, description="Queued enrollments released")
    ticks: int | None = None


class RouteStats(BaseModel):
    route: str = Field(examples=["POST /api/v1/workflows/{workflow_id}/trigger"])
    requests: int
    by_status: dict[str, int]
    ms: Percentiles


class Totals(FlowCounts):
    stream_length: int
    pending: int
    lag: int | None
    dead_letter_length: int = Field(description="Entries in hairtrigger:events:dlq")
    enrollments_waiting: int = Field(description="Queued enrollments waiting for business hours")


class Stats(BaseModel):
    actors_running: bool
    totals: Totals
    partitions: list[PartitionStats]
    shards: list[ShardStats]
    scheduler: SchedulerStats | None
    gateway: list[RouteStats] = Field(description="This API process's requests by route")


@router.get("/stats", response_model=Stats)
async def get_stats(
    principal: Operator, request: Request, redis: RedisDep, pool: SystemPoolDep
) -> Any:
    """Processing figures for the whole deployment (needs the `stats:read` scope: they show
    every tenant's traffic in aggregate, so give it to operators' keys only).

    Counts come from the partition actors and the scheduler (since each started: see
    `started_at`); stream length, pending and lag per shard from Redis. Without actors (the
    API alone) only the Redis and Postgres figures are given. Nothing here is per account."""
    source = request.app.state.sync
    actors = await source.metrics() if isinstance(source, MetricsSource) else None
    shards: int = request.app.state.shards
    try:
        lags = [asdict(x) for x in await shard_lag(redis, list(range(shards)))]
        dead = await dead_letter_count(redis)
    except StreamError as exc:
        raise ApiError(503, errors.SERVICE_UNAVAILABLE, f"Redis is unreachable: {exc}") from exc
    waiting = await queued_enrollments(pool)
    partitions = source.partitions if isinstance(source, MetricsSource) else None
    gateway = request.app.state.metrics.snapshot()
    return build_report(actors, partitions, lags, dead, waiting, gateway)
