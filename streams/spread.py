"""Spread factors in Redis (docs/contract.md §3): reading every account's factor and last move,
changing a factor, and telling whether a shard has processed everything up to a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from pipelines.sharding import account_shards
from pipelines.spread import Move, SpreadView, bounded, factor_of
from streams import names

GROUP = names.CONSUMER_GROUP

# Compare-and-set of one account's factor: refused when the move record changed since the
# caller looked (ARGV[5]), or when an auto change meets a pinned account. The move is stamped
# with Redis's clock, the clock entry ids are made of.
_SET = """
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 1
local seen = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if seen ~= ARGV[5] then return {-2, old} end
if ARGV[3] == 'auto' and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return {-1, old} end
if ARGV[3] == 'pin' then redis.call('SADD', KEYS[3], ARGV[1]) end
if ARGV[3] == 'unpin' then redis.call('SREM', KEYS[3], ARGV[1]) end
local new = tonumber(ARGV[2])
if new == old then return {0, old} end
local widest = math.max(old, new, tonumber(ARGV[4]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], new)
redis.call('HSET', KEYS[2], ARGV[1], old .. ':' .. new .. ':' .. now .. ':' .. widest)
return {1, new}
"""
_KEYS = [names.SPREAD_KEY, names.SPREAD_MOVES_KEY, names.SPREAD_PINNED_KEY]


class SpreadSettling(Exception):
    """The account's last change has not settled yet: its old shards still hold events written
    before the cutoff, so another move now could reorder a contact's events."""

    def __init__(self, account_id: uuid.UUID, move: Move) -> None:
        super().__init__(
            f"account {account_id} changed spread {move.old} -> {move.new} moments ago; its old"
            " shards are still processing the events sent before the change: try again shortly"
        )
        self.move = move


@dataclass(frozen=True, slots=True)
class Change:
    account_id: uuid.UUID
    spread: int
    changed: bool
    refused_pinned: bool = False


def _uuid(key: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(_text(key))
    except ValueError:
        return None  # not an account's field: ignored


def _uuids(raw: Any) -> dict[uuid.UUID, str]:
    return {a: _text(v) for k, v in (raw or {}).items() if (a := _uuid(k)) is not None}


def _view(factors: Any, moves: Any, pinned: Any, shards: int) -> SpreadView:
    """Unreadable factors count as 1 (docs/contract.md §3), unreadable moves as none."""
    parsed = {a: factor_of(v, shards) for a, v in _uuids(factors).items()}
    found = {a: m for a, v in _uuids(moves).items() if (m := Move.decode(v)) is not None}
    members = frozenset(a for p in pinned or () if (a := _uuid(p)) is not None)
    return SpreadView(parsed, found, members)


async def read_view(client: Redis, shards: int) -> SpreadView:
    """Every account's factor, last move and pin, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(names.SPREAD_KEY)
        pipe.hgetall(names.SPREAD_MOVES_KEY)
        pipe.smembers(names.SPREAD_PINNED_KEY)
        factors, moves, pinned = await pipe.execute()
    return _view(factors, moves, pinned, shards)


async def account_streams(client: Redis, account_id: uuid.UUID, shards: int) -> list[str]:
    """Every shard stream that can hold the account's events: those of the widest factor it
    has had (readers of its past, such as backtests, need them all)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hget(names.SPREAD_KEY, str(account_id))
        pipe.hget(names.SPREAD_MOVES_KEY, str(account_id))
        factor, move = await pipe.execute()
    view = _view(
        {str(account_id): factor} if factor is not None else {},
        {str(account_id): move} if move is not None else {},
        (),
        shards,
    )
    return [
        names.events_stream(s) for s in account_shards(account_id, shards, view.widest(account_id))
    ]


def _raw_id_ms(value: Any) -> int:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return int(text.split("-")[0])


async def drained_through(client: Redis, shard: int, cutoff_ms: int) -> bool:
    """Has the consumer group of `shard` acknowledged every entry added up to `cutoff_ms`, and
    is that time past (so that no producer can still add one)?"""
    stream = names.events_stream(shard)
    seconds, micros = await client.time()
    if seconds * 1000 + micros // 1000 <= cutoff_ms:
        return False
    try:
        groups: Any = await client.xinfo_groups(stream)
    except ResponseError:  # no such stream: nothing was ever written there
        return True
    group = next((g for g in groups if _text(g["name"]) == GROUP), None)
    if group is None:
        return not await client.xrange(stream, "-", f"{cutoff_ms}-18446744073709551615", count=1)
    if int(group["pending"]):
        summary: Any = await client.xpending(stream, GROUP)
        if summary["min"] is not None and _raw_id_ms(summary["min"]) <= cutoff_ms:
            return False
    last = _text(group["last-delivered-id"])
    if _raw_id_ms(last) > cutoff_ms:
        return True
    later: Any = await client.xrange(
        stream, f"({last}", f"{cutoff_ms}-18446744073709551615", count=1
    )
    return not later


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def set_spread(
    client: Redis, account_id: uuid.UUID, spread: int, shards: int, how: str = "pin"
) -> Change:
    """Set an account's factor (bounded to 1..shards). `how`: "pin" (an operator's value, which
    auto-spread keeps), "unpin" (back to auto, the factor kept), or "auto" (auto-spread's own
    change, refused for a pinned account). Raises SpreadSettling, when the factor would change,
    while the last move settles (pinning or unpinning alone is always let through)."""
    view = await read_view(client, shards)
    move = view.moves.get(account_id)
    if move is not None and bounded(spread, shards) != view.factor(account_id):
        for shard in account_shards(account_id, shards, move.old):
            if not await drained_through(client, shard, move.cutoff_ms):
                raise SpreadSettling(account_id, move)
    reply: Any = await client.eval(
        _SET,
        3,
        *_KEYS,
        str(account_id),
        bounded(spread, shards),
        how,
        view.widest(account_id),
        move.encode() if move else "",
    )
    code, factor = int(reply[0]), int(reply[1])
    if code == -2:  # another change got in between: it is the one settling now
        latest = (await read_view(client, shards)).moves.get(account_id)
        raise SpreadSettling(account_id, latest or Move(factor, factor, 0, factor))
    return Change(account_id, factor, code == 1, code == -1)
