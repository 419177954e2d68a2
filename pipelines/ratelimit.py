"""Rate budgets and what a limiter's answer means to a client (the headers), without I/O.

A budget is `limit` units per `window` seconds, all of which may be spent at once. The limiter
(api/ratelimit.py) enforces it with GCRA: one stored number per bucket, the theoretical arrival
time (TAT). Each unit moves the TAT on by `window / limit`; a request of `cost` units is
allowed while the TAT it would leave is at most `window` ahead of now. A refused request
changes nothing, so a refused batch costs nothing and can be retried whole.

`gcra` is the same arithmetic as the limiter's Lua script, for the buckets a gateway keeps in
its own memory while Redis does not answer (`LocalBuckets`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_FORMAT = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")
_OFF = {"off", "0", "none", "unlimited"}


@dataclass(frozen=True, slots=True)
class Budget:
    """`limit` units per `window` seconds."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate budget needs a limit of at least 1 and a positive window")

    @property
    def interval_ms(self) -> float:
        """How much one unit moves the TAT on: the time for one unit to come back."""
        return self.window * 1000 / self.limit

    @property
    def capacity_ms(self) -> float:
        return self.window * 1000

    def __str__(self) -> str:
        named = {1: "second", 60: "minute", 3600: "hour"}.get(int(self.window))
        if named is None or self.window != int(self.window):
            return f"{self.limit} per {self.window:g} s"
        return f"{self.limit} per {named}"


def parse_budget(text: str) -> Budget | None:
    """`"100/min"`, `"5000/s"`, `"1000/h"`; `"off"` (or `"0"`) means no limit."""
    if text.strip().lower() in _OFF:
        return None
    found = _FORMAT.match(text.lower())
    if found is None or found.group(2) not in _UNITS:
        raise ValueError(f"expected a budget like '100/min', '5000/s' or 'off', not {text!r}")
    return Budget(int(found.group(1)), _UNITS[found.group(2)])


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer for one request against one budget."""

    budget: Budget
    allowed: bool
    remaining: int
    retry_after_ms: float
    reset_ms: float

    def headers(self) -> list[tuple[str, str]]:
        """RateLimit-* on every counted response; Retry-After too when refused."""
        found = [
            ("RateLimit-Limit", str(self.budget.limit)),
            ("RateLimit-Remaining", str(max(self.remaining, 0))),
            ("RateLimit-Reset", str(_seconds(self.reset_ms, minimum=0))),
            ("RateLimit-Policy", f"{self.budget.limit};w={_seconds(self.budget.capacity_ms)}"),
        ]
        if not self.allowed:
            found.append(("Retry-After", str(self.retry_after_s)))
        return found

    @property
    def retry_after_s(self) -> int:
        return _seconds(self.retry_after_ms)


def decision(budget: Budget, reply: list[int]) -> Decision:
    """Read the limiter script's reply: [allowed, remaining, retry_after_ms, reset_ms]."""
    allowed, remaining, retry_after_ms, reset_ms = reply
    return Decision(budget, bool(allowed), int(remaining), float(retry_after_ms), float(reset_ms))


def gcra(tat_ms: float | None, now_ms: float, budget: Budget, cost: int) -> tuple[float, list[int]]:
    """Spend `cost` units of a bucket whose TAT is `tat_ms` (None: never used or expired), as
    the Lua script does: the TAT to keep (unchanged when refused) and the reply
    [allowed, remaining, retry_after_ms, reset_ms]."""
    interval, capacity = budget.interval_ms, budget.capacity_ms
    tat = now_ms if tat_ms is None or tat_ms < now_ms else tat_ms
    after = tat + cost * interval
    if after - now_ms > capacity + 0.001:
        left = math.floor((capacity - (tat - now_ms)) / interval + 1e-6)
        return tat, [0, left, math.ceil(after - capacity - now_ms), math.ceil(tat - now_ms)]
    left = math.floor((capacity - (after - now_ms)) / interval + 1e-6)
    return after, [1, left, 0, math.ceil(after - now_ms)]


class LocalBuckets:
    """Buckets in one process's memory. A full table first forgets the buckets whose TAT has
    passed (they are full again), so it holds at most the buckets in use within one window."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._max = max_buckets

    def charge(self, bucket: str, budget: Budget, cost: int, now_ms: float) -> Decision:
        tat, reply = gcra(self._tats.get(bucket), now_ms, budget, cost)
        if bucket not in self._tats and len(self._tats) >= self._max:
            self._tats = {b: t for b, t in self._tats.items() if t > now_ms}
        if tat > now_ms:
            self._tats[bucket] = tat
        else:
            self._tats.pop(bucket, None)
        return decision(budget, reply)

    def __len__(self) -> int:
        return len(self._tats)


def _seconds(ms: float, minimum: int = 1) -> int:
    """Whole seconds, rounded up: a client that waits this long is never early."""
    return max(math.ceil(ms / 1000), minimum)
