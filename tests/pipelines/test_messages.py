"""Every stream message round-trips through its one codec (pipelines.messages), and carries
exactly the fields docs/contract.md documents for it (§3 dead letters, §5 enrollment output)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipelines.enrollment import Enrollment
from pipelines.messages import (
    ENROLLMENT_FIELDS,
    Event,
    Rejected,
    decode,
    decode_dead_letter,
    decode_enrollment,
    encode_dead_letter,
    encode_enrollment,
    encode_event,
)
from pipelines.reasons import DeadLetter

CONTRACT = Path(__file__).parents[2] / "docs" / "contract.md"


def _documented(start: str, end: str) -> set[str]:
    """The backticked names in the first column of the table between two headings."""
    text = CONTRACT.read_text()
    section = text[text.index(start) : text.index(end, text.index(start))]
    names: set[str] = set()
    for row in re.findall(r"^\| ([^|]+) \|", section, flags=re.M):
        names |= set(re.findall(r"`([a-z_]+)`", row))
    return names


def _enrollment() -> Enrollment:
    now = datetime(2026, 12, 3, 9, 30, 0, 123456, tzinfo=UTC)
    return Enrollment(
        id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        trigger_id=uuid.uuid4(),
        contact_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        status="triggered",
        run_at=now,
        enrolled_at=now,
        event_data={"tag": "vip", "n": 1},
        single=True,
        ingested_at=now,
    )


def test_the_enrollment_entry_has_the_documented_fields_and_round_trips() -> None:
    assert set(ENROLLMENT_FIELDS) == _documented("### Enrollment output", "Timestamps are")
    e = _enrollment()
    raw = encode_enrollment(e)
    assert set(orjson.loads(raw)) == set(ENROLLMENT_FIELDS)
    back = decode_enrollment(raw)
    assert (
        back.id,
        back.account_id,
        back.workflow_id,
        back.trigger_id,
        back.contact_id,
        back.event_id,
    ) == (e.id, e.account_id, e.workflow_id, e.trigger_id, e.contact_id, e.event_id)
    assert (back.status, back.run_at, back.enrolled_at, back.event_data) == (
        e.status,
        e.run_at,
        e.enrolled_at,
        e.event_data,
    )
    assert orjson.loads(raw)["run_at"] == "2026-12-03T09:30:00.123456+00:00"


def test_a_row_and_an_enrollment_encode_the_same_entry() -> None:
    """The worker encodes an Enrollment, the outbox and the scheduler a database row."""
    e = _enrollment()
    row = {name: getattr(e, name) for name in ENROLLMENT_FIELDS} | {"single": True}
    assert encode_enrollment(row) == encode_enrollment(e)


def test_the_dead_letter_entry_has_the_documented_fields_and_round_trips() -> None:
    rejected = Rejected("hairtrigger:events:3", "17-0", b"{oops", DeadLetter.INVALID_JSON, "bad")
    fields = encode_dead_letter(rejected)
    assert set(fields) == _documented("### Dead letters", "Reasons and their codes")
    back = decode_dead_letter(
        {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in fields.items()}
    )
    assert (back.stream, back.entry_id, back.code, back.reason, back.event) == (
        "hairtrigger:events:3",
        "17-0",
        DeadLetter.INVALID_JSON,
        "bad",
        b"{oops",
    )


def test_every_dead_letter_code_is_documented() -> None:
    text = CONTRACT.read_text()
    assert all(f"`{code.value}`" in text for code in DeadLetter)


def test_an_event_envelope_round_trips() -> None:
    body = {
        "event_id": str(uuid.uuid4()),
        "event_type": "form.submitted",
        "account_id": str(uuid.uuid4()),
        "timestamp": "2026-12-03T09:30:00Z",
        "data": {"contact_id": str(uuid.uuid4()), "form_id": "lead", "form_data": {"b": 2}},
        "metadata": {"source": "api", "depth": 1},
    }
    event = decode("hairtrigger:events:1", "5-0", encode_event(body))
    assert isinstance(event, Event)
    assert str(event.envelope.event_id) == body["event_id"]
    assert str(event.contact_id) == body["data"]["contact_id"]  # type: ignore[index]
    assert event.envelope.data == body["data"]
    assert event.envelope.depth == 1
