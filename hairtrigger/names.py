"""Every Redis key, stream name and API scope Hairtrigger uses, in one place."""

from __future__ import annotations

EVENTS_STREAM_PREFIX = "hairtrigger:events:"
DLQ_STREAM = "hairtrigger:events:dlq"
ENROLLMENTS_STREAM = "hairtrigger:enrollments"
META_KEY = "hairtrigger:meta"
META_SHARDS_FIELD = "shards"
CONSUMER_GROUP = "hairtrigger"
EVENT_FIELD = "event"
ENROLLMENT_FIELD = "enrollment"
RATE_LIMIT_PREFIX = "hairtrigger:ratelimit:"

SCOPE_WORKFLOW_READ = "workflow:read"
SCOPE_WORKFLOW_EDIT = "workflow:edit"
SCOPE_EVENTS_WRITE = "events:write"
SCOPE_STATS_READ = "stats:read"  # deployment-wide figures: for operators, not every tenant
TENANT_SCOPES: tuple[str, ...] = (SCOPE_WORKFLOW_READ, SCOPE_WORKFLOW_EDIT, SCOPE_EVENTS_WRITE)
SCOPES: tuple[str, ...] = (*TENANT_SCOPES, SCOPE_STATS_READ)


def events_stream(shard: int) -> str:
    return f"{EVENTS_STREAM_PREFIX}{shard}"


def rate_limit_bucket(kind: str, owner: object) -> str:
    """The Redis key of one rate budget's bucket: `kind` is writes, reads or events."""
    return f"{RATE_LIMIT_PREFIX}{kind}:{owner}"


def partition_consumer(partition: int) -> str:
    """The consumer name (and Ray actor name) of a partition."""
    return f"partition-{partition}"
