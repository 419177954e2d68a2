"""Every Redis key, stream name, consumer group and entry field Hairtrigger uses, in one place
(docs/contract.md §3)."""

from __future__ import annotations

EVENTS_STREAM_PREFIX = "hairtrigger:events:"
DLQ_STREAM = "hairtrigger:events:dlq"
ENROLLMENTS_STREAM = "hairtrigger:enrollments"
META_KEY = "hairtrigger:meta"
META_SHARDS_FIELD = "shards"
SPREAD_KEY = "hairtrigger:spread"  # hash: account id -> spread factor (absent: 1)
SPREAD_MOVES_KEY = "hairtrigger:spread:moves"  # hash: account id -> its last change (Move)
SPREAD_PINNED_KEY = "hairtrigger:spread:pinned"  # set: accounts auto-spread leaves alone
CONSUMER_GROUP = "hairtrigger"
EVENT_FIELD = "event"
ENROLLMENT_FIELD = "enrollment"
# Set on an event a partition moved to the shard its routing names (it came on another one): a
# second move of the same event is refused (dead-lettered), so views that disagree cannot
# bounce it between partitions.
REROUTED_FIELD = "rerouted_from"
RATE_LIMIT_PREFIX = "hairtrigger:ratelimit:"


def events_stream(shard: int) -> str:
    return f"{EVENTS_STREAM_PREFIX}{shard}"


def rate_limit_bucket(kind: str, owner: object) -> str:
    """The Redis key of one rate budget's bucket: `kind` is writes, reads or events."""
    return f"{RATE_LIMIT_PREFIX}{kind}:{owner}"


def partition_consumer(partition: int) -> str:
    """The consumer name (and Ray actor name) of a partition."""
    return f"partition-{partition}"
