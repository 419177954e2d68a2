"""The Redis side of stream retention: a partition trims its own shards by age (XTRIM MINID ~,
processed entries only) and by length (XTRIM MAXLEN ~, a memory cap), and reports entries that
were deleted before its consumer group ever received them."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pipelines.messages import Rejected
from pipelines.reasons import DeadLetter
from pipelines.retention import GroupProgress, lost_before_delivery, trim_floor
from streams import names

log = logging.getLogger(__name__)
MAX_TRIM_CALLS = 100  # per stream and round: up to about a million entries

LOST_REASON = (
    "were trimmed or deleted from the stream before they were delivered"
    " (is stream_max_len too small for the backlog?)"
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamRetention:
    """Approximate trimming by age, bounded by what every consumer group has processed, and
    by length (`max_len`, 0 for none), which may cut a backlog: such losses are reported."""

    def __init__(
        self, redis: Redis, streams: list[str], retention_s: float, max_len: int = 0
    ) -> None:
        self.redis, self.streams = redis, streams
        self.retention_ms, self.max_len = int(retention_s * 1000), max_len
        self.trimmed = 0
        self._reported: dict[str, str] = {}  # stream -> the loss already dead-lettered

    async def run(self, now_ms: int) -> list[Rejected]:
        """Trim every stream; return the losses to dead-letter (each reported once)."""
        lost: list[Rejected] = []
        for name in self.streams:
            groups = await self._groups(name)
            floor = trim_floor(now_ms, self.retention_ms, await self._progress(name, groups))
            removed = 0
            if floor is not None:
                removed += await self._trim(name, minid=floor)
            if self.max_len and int(await self.redis.xlen(name)) > self.max_len:
                removed += await self._trim(name, maxlen=self.max_len)
            if removed:
                self.trimmed += removed
                log.info("retention: trimmed %d entries from %s", removed, name)
            found = await self._loss(name, await self._groups(name))  # progress after the trim
            if found is not None:
                lost.append(found)
        return lost

    async def _trim(self, name: str, **how: Any) -> int:
        """XTRIM ~ in steps: Redis stops an approximate trim after about 10,000 entries (100 x
        stream-node-max-entries), which keeps each call short but falls behind a busy stream."""
        removed = 0
        for _ in range(MAX_TRIM_CALLS):
            step = int(await self.redis.xtrim(name, approximate=True, **how))
            removed += step
            if not step:
                break
        return removed

    async def _groups(self, name: str) -> list[dict[str, Any]]:
        try:
            return list(await self.redis.xinfo_groups(name))
        except ResponseError as exc:  # no stream yet
            if "no such key" in str(exc).lower():
                return []
            raise

    async def _progress(self, name: str, groups: list[dict[str, Any]]) -> list[GroupProgress]:
        progress = []
        for group in groups:
            oldest = None
            if int(group["pending"]):
                summary: Any = await self.redis.xpending(name, group["name"])
                oldest = _text(summary["min"]) if summary.get("min") else None
            progress.append(GroupProgress(_text(group["last-delivered-id"]), oldest))
        return progress

    async def _loss(self, name: str, groups: list[dict[str, Any]]) -> Rejected | None:
        ours = [g for g in groups if _text(g["name"]) == names.CONSUMER_GROUP]
        if not ours:
            return None
        group = ours[0]
        info: Any = await self.redis.xinfo_stream(name)
        first = info.get("first-entry")
        loss = lost_before_delivery(
            group["last-delivered-id"],
            group.get("lag"),
            int(info["length"]),
            first[0] if first else None,
            info["last-generated-id"],
            info.get("max-deleted-entry-id"),
        )
        if loss is None or self._reported.get(name) == loss.up_to:
            return None
        self._reported[name] = loss.up_to
        after = _text(group["last-delivered-id"])
        count = "entries" if loss.count is None else f"{loss.count} entries"
        reason = f"{count} after {after} up to this id {LOST_REASON}"
        log.error("%s: %s %s", name, loss.up_to, reason)
        return Rejected(name, loss.up_to, b"", DeadLetter.TRIMMED, reason)
