"""Decoding the event envelope (docs/contract.md §3): valid events pass, everything else gets a
reason."""

from __future__ import annotations

import uuid

import orjson
import pytest

from pipelines.messages import Event, Rejected, decode, decode_batch

ACCOUNT, CONTACT, EVENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def raw(**overrides: object) -> bytes:
    body: dict[str, object] = {
        "event_id": str(EVENT),
        "event_type": "contact.tag_added",
        "account_id": str(ACCOUNT),
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"contact_id": str(CONTACT), "tag": "vip"},
        "metadata": {"source": "api", "depth": 2},
    }
    body.update(overrides)
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


def test_valid_envelope_decodes() -> None:
    event = decode("s", "1-0", raw())
    assert isinstance(event, Event)
    assert event.contact_id == CONTACT
    assert event.envelope.event_id == EVENT
    assert event.envelope.depth == 2
    assert event.envelope.data["tag"] == "vip"


def test_metadata_is_optional_and_null_allowed() -> None:
    for metadata in (..., None):
        event = decode("s", "1-0", raw(metadata=metadata))
        assert isinstance(event, Event)
        assert event.envelope.depth == 0


REJECTS: list[tuple[str, bytes | None, str]] = [
    ("no payload", None, "missing field 'event'"),
    ("not JSON", b"{nope", "invalid envelope"),
    ("not an object", b"[1, 2]", "invalid envelope"),
    ("bad event id", raw(event_id="x"), "invalid envelope"),
    ("missing event id", raw(event_id=...), "invalid envelope"),
    ("bad account id", raw(account_id=7), "invalid envelope"),
    ("bad timestamp", raw(timestamp="yesterday"), "invalid envelope"),
    ("unknown type", raw(event_type="contact.sneezed"), "unknown event_type"),
    ("no contact", raw(data={"tag": "x"}), "missing data.contact_id"),
    ("contact not uuid", raw(data={"contact_id": "bob"}), "not a UUID"),
    (
        "state not object",
        raw(data={"contact_id": str(CONTACT), "current_state": [1]}),
        "must be an object",
    ),
    ("negative depth", raw(metadata={"depth": -1}), "must not be negative"),
    ("NUL", raw(data={"contact_id": str(CONTACT), "tag": "a\u0000"}), "NUL"),
]


@pytest.mark.parametrize(
    ("payload", "reason"), [r[1:] for r in REJECTS], ids=[r[0] for r in REJECTS]
)
def test_bad_entries_are_rejected_with_a_reason(payload: bytes | None, reason: str) -> None:
    result = decode("hairtrigger:events:3", "5-1", payload)
    assert isinstance(result, Rejected)
    assert reason in result.reason
    assert (result.stream, result.entry_id) == ("hairtrigger:events:3", "5-1")


def test_batch_splits_good_from_bad_in_order() -> None:
    events, rejected = decode_batch([("s", "1-0", raw()), ("s", "2-0", b"x"), ("s", "3-0", raw())])
    assert [e.entry_id for e in events] == ["1-0", "3-0"]
    assert [r.entry_id for r in rejected] == ["2-0"]
