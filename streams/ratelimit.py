"""The Redis half of the rate limiter: GCRA buckets spent atomically by one Lua script on Redis's
clock (the rule itself is pure: pipelines/ratelimit.py)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

# KEYS[1]: the bucket. ARGV: ms per unit, ms of capacity (the window), cost in units.
# Replies [allowed, remaining, retry_after_ms, reset_ms]; a refusal writes nothing.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, capacity, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local after = tat + cost * interval
if after - now > capacity + 0.001 then
  local left = math.floor((capacity - (tat - now)) / interval + 1e-6)
  return {0, left, math.ceil(after - capacity - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', after), 'PX', math.max(math.ceil(after - now), 1))
return {1, math.floor((capacity - (after - now)) / interval + 1e-6), 0, math.ceil(after - now)}
"""


class RedisBuckets:
    """Its own client without retries and with short timeouts: a dead Redis costs a request
    at most one quick failure."""

    def __init__(self, redis_url: str, timeout_s: float) -> None:
        self._redis = Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._script = self._redis.register_script(_GCRA)

    async def spend(self, bucket: str, interval_ms: float, capacity_ms: float, cost: int) -> Any:
        """[allowed, remaining, retry_after_ms, reset_ms] (see the script)."""
        return await self._script(keys=[bucket], args=[interval_ms, capacity_ms, cost])

    async def aclose(self) -> None:
        await self._redis.aclose()
