"""Opaque page cursors: URL-safe base64 of a small JSON list."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from api.problems import ApiError
from pipelines import errors


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
