"""What a Redis failure looks like to the code above `streams/`: one exception type to catch."""

from __future__ import annotations

from redis.exceptions import RedisError as StreamError
from redis.exceptions import ResponseError

__all__ = ["ResponseError", "StreamError", "no_such_key"]


def no_such_key(exc: BaseException) -> bool:
    """XINFO on a stream that does not exist (yet)."""
    return "no such key" in str(exc).lower()
