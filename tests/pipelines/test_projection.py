"""The contacts projection: how contact events change a contact (docs/contract.md §3)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from pipelines.messages import Envelope
from pipelines.projection import Contact, apply, date_fields
from pipelines.sharding import partition_for, shard_for, shards_of

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def env(kind: str, at: datetime = T0, **data: object) -> Envelope:
    return Envelope(uuid.uuid4(), kind, uuid.uuid4(), at, {"contact_id": str(uuid.uuid4()), **data})


def test_created_updated_tags_custom_fields_deleted() -> None:
    c = Contact()
    assert apply(c, env("contact.created", current_state={"email": "a@b.co", "tags": ["x"]}))
    assert apply(c, env("contact.tag_added", T0 + timedelta(seconds=1), tag="VIP"))
    assert apply(c, env("contact.tag_added", T0 + timedelta(seconds=2), tag="vip"))
    assert c.tags == ["x", "VIP"]
    assert apply(c, env("contact.tag_removed", T0 + timedelta(seconds=3), tag="X"))
    assert c.tags == ["VIP"]
    assert apply(
        c,
        env(
            "contact.custom_field_changed",
            T0 + timedelta(seconds=4),
            field_name="plan",
            field_value="pro",
        ),
    )
    assert c.state["custom_fields"] == {"plan": "pro"}
    assert apply(c, env("contact.deleted", T0 + timedelta(seconds=5)))
    assert c.deleted


def test_an_older_event_never_overwrites_a_newer_state() -> None:
    c = Contact()
    apply(c, env("contact.updated", T0, current_state={"status": "customer"}))
    assert not apply(
        c, env("contact.updated", T0 - timedelta(minutes=1), current_state={"status": "lead"})
    )
    assert c.state == {"status": "customer"}


def test_naive_timestamps_are_utc() -> None:
    c = Contact()
    apply(c, env("contact.created", datetime(2026, 1, 1, 9, 0), current_state={}))
    assert c.event_ts == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_sharding_spreads_shards_over_partitions() -> None:
    """docs/contract.md §3: shard = crc32(lowercase account id) % shards."""
    account = uuid.UUID("0b8f1c3e-8f7d-4f5e-9a43-2d1c3b4a5e6f")
    assert shard_for(account, 8) == shard_for(str(account).upper(), 8)
    assert 0 <= shard_for(account, 8) < 8
    owned = [shards_of(p, 8, 3) for p in range(3)]
    assert sorted(s for part in owned for s in part) == list(range(8))
    assert all(partition_for(s, 3) == p for p, part in enumerate(owned) for s in part)


def test_a_deletion_holds_even_if_it_is_older() -> None:
    """REQ-N-004: a late-arriving contact.deleted still deletes."""
    c = Contact()
    apply(c, env("contact.updated", T0, current_state={"status": "customer"}))
    assert apply(c, env("contact.deleted", T0 - timedelta(minutes=5)))
    assert c.deleted
    assert c.state == {"status": "customer"}


def test_date_fields_leave_out_the_first_and_last_date() -> None:
    """asyncpg stores 0001-01-01 and 9999-12-31 as -infinity / infinity: no day to plan on."""
    state = {"birthday": "0001-01-01", "renewal": "9999-12-31", "signup": "2020-02-29"}
    assert date_fields(state) == {"signup": date(2020, 2, 29)}
