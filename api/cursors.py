"""Opaque page cursors: URL-safe base64 of a small JSON list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import orjson

from api.problems import ApiError
from pipelines import bounds, errors


def encode(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def decode(cursor: str, arity: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise ApiError(400, errors.INVALID_CURSOR, "the cursor was not issued by this API")
    return values


def decode_id(cursor: str) -> int:
    """A cursor of one integer id (encode(id))."""
    (found,) = decode(cursor, 1)
    if not bounds.is_int8(found):
        raise ApiError(400, errors.INVALID_CURSOR, "the cursor is malformed")
    return found


def id_page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of rows keyed by integer `id`: the rows and, when the page is full, the cursor
    of the next one (encode(last id))."""
    next_cursor = encode(rows[-1]["id"]) if len(rows) == limit else None
    return {"items": rows, "next_cursor": next_cursor}


def encode_keyset(at: datetime, row_id: uuid.UUID) -> str:
    return encode(at.isoformat(), str(row_id))


def decode_keyset(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A (timestamp, uuid) cursor made by encode_keyset."""
    at, row_id = decode(cursor, 2)
    try:
        return bounds.check_datetime(datetime.fromisoformat(at)), uuid.UUID(row_id)
    except (TypeError, ValueError):
        raise ApiError(400, errors.INVALID_CURSOR, "the cursor is malformed") from None
