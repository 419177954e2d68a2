"""Routing (docs/contract.md §3): shard = (h(account) + h(contact) % spread) % shards, with
h = crc32 of the lowercase id; spread 1 is the account's home shard. The table was computed from
the contract's formula by hand, apart from the code; every producer must agree with it
(tests/streams/test_routing.py checks the routers against the same table)."""

from __future__ import annotations

import uuid

import pytest

from pipelines.sharding import account_shards, shard_for
from pipelines.spread import SETTLE_MS, Move, SpreadView, auto_factor, auto_threshold

# (account_id, contact_id, spread, shards) -> shard
TABLE = [
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 1, 8, 0),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 1, 8, 0),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 1, 8, 0),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 2, 8, 1),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 2, 8, 0),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 2, 8, 1),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 4, 8, 1),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 4, 8, 2),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 4, 8, 3),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 8, 8, 1),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 8, 8, 2),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 8, 8, 3),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 3, 5, 4),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 3, 5, 3),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 3, 5, 3),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 3, 3, 0),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "c0ffee00-0000-4000-8000-000000000001", 3, 3, 2),
    ("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f", "7e57ab1e-dead-4bee-8f00-123456789abc", 3, 3, 2),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 1, 8, 3),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 1, 8, 3),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 1, 8, 3),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 2, 8, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 2, 8, 3),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 2, 8, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 4, 8, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 4, 8, 5),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 4, 8, 6),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 8, 8, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 8, 8, 5),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 8, 8, 6),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 3, 5, 0),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 3, 5, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 3, 5, 4),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 3, 3, 2),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "c0ffee00-0000-4000-8000-000000000001", 3, 3, 1),
    ("9A2C4E6F-1B3D-4F5A-8C7E-0D2F4A6B8C0E", "7e57ab1e-dead-4bee-8f00-123456789abc", 3, 3, 1),
]


@pytest.mark.parametrize(("account", "contact", "spread", "shards", "shard"), TABLE)
def test_the_routing_formula(
    account: str, contact: str, spread: int, shards: int, shard: int
) -> None:
    assert shard_for(account, shards, contact, spread) == shard
    assert shard_for(account.upper(), shards, contact.upper(), spread) == shard
    assert shard in account_shards(account, shards, spread)


def test_an_account_spreads_over_consecutive_shards_from_home() -> None:
    account = TABLE[0][0]
    home = shard_for(account, 8)
    assert account_shards(account, 8) == [home]
    assert account_shards(account, 8, 3) == [home, (home + 1) % 8, (home + 2) % 8]
    assert sorted(account_shards(account, 8, 8)) == list(range(8))
    assert account_shards(account, 8, 99) == account_shards(account, 8, 8)  # bounded
    assert shard_for(account, 8, None, 4) == home  # no contact: home


def test_a_move_record_round_trips_and_junk_reads_as_none() -> None:
    move = Move(1, 4, 1_700_000_000_000, 4)
    assert Move.decode(move.encode()) == move
    assert move.cutoff_ms == 1_700_000_000_000 + SETTLE_MS
    for junk in ("", "1:2:3", "a:b:c:d", "1:2:3:4:5"):
        assert Move.decode(junk) is None


def test_the_view_reads_absent_as_one_and_widest_from_the_last_move() -> None:
    ua, ub = uuid.UUID(TABLE[0][0]), uuid.UUID(TABLE[-1][0])
    view = SpreadView({ua: 2}, {ua: Move(8, 2, 0, 8)}, frozenset())
    assert view.factor(ua) == 2
    assert view.widest(ua) == 8
    assert view.factor(ub) == 1
    assert view.widest(ub) == 1


def test_auto_spread_doubles_past_the_threshold_up_to_the_shard_count() -> None:
    assert auto_factor(1, 2999, 3000, 8) is None
    assert auto_factor(1, 3001, 3000, 8) == 2
    assert auto_factor(2, 9000, 3000, 8) == 4
    assert auto_factor(4, 9000, 3000, 6) == 6
    assert auto_factor(8, 9000, 3000, 8) is None
    assert auto_factor(1, 9000, 0, 8) is None  # 0: off


def test_a_partition_falling_behind_spreads_smaller_accounts() -> None:
    assert auto_threshold(3000, 500, 100, 50_000, 4000) == 500  # backlog grew past a batch
    assert auto_threshold(3000, 500, 60_000, 50_000, 4000) == 3000  # catching up
    assert auto_threshold(3000, 500, 0, 3000, 4000) == 3000  # less than a batch behind
    assert auto_threshold(3000, 0, 0, 50_000, 4000) == 3000  # busy rule off
