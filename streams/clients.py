"""Redis clients that retry a dropped connection instead of failing the call at once."""

from __future__ import annotations

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

__all__ = ["AsyncRedis", "SyncRedis", "async_client", "gateway_client", "sync_client"]
SyncRedis = redis.Redis
_RETRIES = 5
_ON = [ConnectionError, TimeoutError]


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=1.0, base=0.05)


def async_client(url: str) -> AsyncRedis:
    return AsyncRedis.from_url(
        url, retry=AsyncRetry(_backoff(), _RETRIES), retry_on_error=_ON, health_check_interval=30
    )


def gateway_client(url: str) -> AsyncRedis:
    """For request handlers: a Redis that hangs (rather than refusing) must not hang requests;
    ingest then holds the events in Postgres instead."""
    return AsyncRedis.from_url(
        url,
        retry=AsyncRetry(_backoff(), _RETRIES),
        retry_on_error=_ON,
        health_check_interval=30,
        socket_connect_timeout=2,
        socket_timeout=5,
    )


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, retry=Retry(_backoff(), _RETRIES), retry_on_error=_ON, health_check_interval=30
    )
