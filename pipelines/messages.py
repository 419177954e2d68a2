"""Every stream message, encoded and decoded here and nowhere else (docs/contract.md §3): the
event envelope (msgspec Structs, decoded a batch at a time), the enrollment entry and the
dead-letter entry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import orjson

from pipelines.catalog import BY_EVENT_TYPE, CONTACT_DELETED
from pipelines.event_limits import check_envelope
from pipelines.reasons import DeadLetter


class Metadata(msgspec.Struct, frozen=True):
    source: str | None = None
    caused_by_workflow_id: uuid.UUID | None = None
    depth: int = 0


class Envelope(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    event_type: str
    account_id: uuid.UUID
    timestamp: datetime
    data: dict[str, Any]
    metadata: Metadata | None = None

    @property
    def depth(self) -> int:
        return self.metadata.depth if self.metadata is not None else 0


@dataclass(slots=True)  # not frozen: one is made per event, and frozen init costs 3x
class Event:
    """A decoded, validated event and where it came from."""

    envelope: Envelope
    contact_id: uuid.UUID
    stream: str
    entry_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that cannot be processed, with the reason for the dead-letter stream."""

    stream: str
    entry_id: str
    raw: bytes
    code: DeadLetter
    reason: str  # the human detail: parser message, ids


_decoder = msgspec.json.Decoder(Envelope)
_to_uuid = msgspec.convert
KNOWN_EVENT_TYPES = frozenset(BY_EVENT_TYPE) | {CONTACT_DELETED}


def decode(stream: str, entry_id: str, raw: bytes | None) -> Event | Rejected:
    if raw is None:
        return Rejected(
            stream,
            entry_id,
            b"",
            DeadLetter.MISSING_EVENT_FIELD,
            "missing field 'event' in the stream entry",
        )
    if b"\\u0000" in raw:  # Postgres text and jsonb cannot hold NUL
        return _bad(
            stream,
            entry_id,
            raw,
            DeadLetter.NUL_CHARACTER,
            "the event contains a NUL character (\\u0000)",
        )
    try:
        envelope = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        code = DeadLetter.INVALID_JSON if str(exc).startswith(_NOT_JSON) else None
        return _bad(stream, entry_id, raw, code, f"invalid envelope: {exc}")
    if envelope.event_type not in KNOWN_EVENT_TYPES:
        return _bad(
            stream,
            entry_id,
            raw,
            DeadLetter.UNKNOWN_EVENT_TYPE,
            f"unknown event_type '{envelope.event_type}'",
        )
    if envelope.depth < 0:
        return _bad(stream, entry_id, raw, None, "metadata.depth must not be negative")
    try:
        contact_id = _to_uuid(envelope.data["contact_id"], uuid.UUID)  # C-speed parse
    except KeyError:
        return _bad(stream, entry_id, raw, DeadLetter.MISSING_CONTACT_ID, "missing data.contact_id")
    except msgspec.ValidationError:
        return _bad(
            stream, entry_id, raw, DeadLetter.INVALID_CONTACT_ID, "data.contact_id is not a UUID"
        )
    for key in ("previous_state", "current_state"):
        if envelope.data.get(key) is not None and not isinstance(envelope.data[key], dict):
            return _bad(stream, entry_id, raw, None, f"data.{key} must be an object")
    metadata = {"depth": envelope.metadata.depth} if envelope.metadata else None
    violation = check_envelope(raw, envelope.timestamp, envelope.data, metadata)
    if violation is not None:
        return _bad(stream, entry_id, raw, violation.code, violation.reason)
    return Event(envelope, contact_id, stream, entry_id)


_NOT_JSON = ("JSON is malformed", "Input data was truncated")


def _bad(stream: str, entry_id: str, raw: bytes, code: DeadLetter | None, reason: str) -> Rejected:
    return Rejected(stream, entry_id, raw, code or DeadLetter.INVALID_ENVELOPE, reason)


def decode_batch(
    entries: list[tuple[str, str, bytes | None]],
) -> tuple[list[Event], list[Rejected]]:
    """(stream, entry id, raw JSON) triples -> events to process and entries to dead-letter."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    for stream, entry_id, raw in entries:
        result = decode(stream, entry_id, raw)
        (events if isinstance(result, Event) else rejected).append(result)  # type: ignore[arg-type]
    return events, rejected


def routing_key(raw: bytes) -> tuple[str, str] | None:
    """The (account_id, data.contact_id) an encoded envelope is routed by (docs/contract.md
    §3), or None when it has none (it then keeps the stream it was given)."""
    try:
        body = orjson.loads(raw)
        account, contact = body["account_id"], body["data"]["contact_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(account, str) or not isinstance(contact, str):
        return None
    return account, contact


def encode_event(envelope: Mapping[str, Any]) -> bytes:
    """An envelope as JSON for the `event` field of a shard entry."""
    return orjson.dumps(envelope)


# -- the enrollment entry: `hairtrigger:enrollments`, field `enrollment` ----------------------

ENROLLMENT_FIELDS = (
    "id",
    "account_id",
    "workflow_id",
    "trigger_id",
    "contact_id",
    "event_id",
    "status",
    "run_at",
    "enrolled_at",
    "event_data",
)


class EnrollmentEntry(msgspec.Struct, frozen=True):
    """An enrollment as published; consumers dedupe on `id` (a crash may publish it twice)."""

    id: uuid.UUID
    account_id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_id: uuid.UUID
    contact_id: uuid.UUID
    event_id: uuid.UUID
    status: str
    run_at: datetime
    enrolled_at: datetime
    event_data: dict[str, Any]


def encode_enrollment(enrollment: Any) -> bytes:
    """An enrollment as the stream carries it, from anything with its fields as attributes (an
    `Enrollment`) or as keys (a row): the worker, the outbox and the scheduler all come here."""
    # a row (dict, asyncpg Record) has items; an Enrollment has attributes
    get = getattr(enrollment, "__getitem__", None) or enrollment.__getattribute__
    # asyncpg's UUID is not a type orjson knows: `default=str` writes it as uuid.UUID would be
    return orjson.dumps({name: get(name) for name in ENROLLMENT_FIELDS}, default=str)


_enrollment_decoder = msgspec.json.Decoder(EnrollmentEntry)


def decode_enrollment(raw: bytes) -> EnrollmentEntry:
    return _enrollment_decoder.decode(raw)


# -- the dead-letter entry: `hairtrigger:events:dlq` -----------------------------------------


class DeadLetterEntry(msgspec.Struct, frozen=True):
    stream: str
    entry_id: str
    code: DeadLetter
    reason: str
    event: bytes  # the raw entry as it was (empty when Redis no longer had it)


def encode_dead_letter(rejected: Rejected) -> dict[str, str | bytes]:
    """The fields of a dead-letter entry."""
    return {
        "code": rejected.code.value,
        "reason": rejected.reason,
        "stream": rejected.stream,
        "entry_id": rejected.entry_id,
        "event": rejected.raw,
    }


def decode_dead_letter(fields: Mapping[bytes, bytes]) -> DeadLetterEntry:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    return DeadLetterEntry(
        stream=text("stream"),
        entry_id=text("entry_id"),
        code=DeadLetter(text("code")),
        reason=text("reason"),
        event=fields.get(b"event", b""),
    )
