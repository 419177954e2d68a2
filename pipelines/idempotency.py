"""Idempotency keys, the rules without I/O: which requests take one, what makes two requests
the same, which responses are kept for replay, and what a request finding the key taken gets.
"""

from __future__ import annotations

import enum
import hashlib
import re

import orjson

HEADER = "Idempotency-Key"
METHODS = frozenset({"POST", "PUT", "PATCH"})
TTL_S = 24 * 3600  # a key answers with its first response for this long
LEASE_S = 30  # a claim whose request has not finished by then is taken to have crashed
PRUNE_EVERY_S = 600
MAX_KEY_LENGTH = 255
_KEY = re.compile(r"[!-~]+")  # visible ASCII, e.g. a UUID
KEY_PATTERN = f"^{_KEY.pattern}$"  # the same, as the OpenAPI document declares it
_NOT_REPLAYED = frozenset(
    {"content-length", "date", "server", "connection", "transfer-encoding", "set-cookie"}
)


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an idempotency key, or None when it can."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        return f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, e.g. a UUID"
    return None


def fingerprint(method: str, path: str, query: str, body: bytes, caller: str = "") -> bytes:
    """What identifies a request: method, path, query, body and the API key (`caller`) that
    sent it, so another key of the account never gets a replay. A JSON body counts by value,
    so a client that re-serialises it with other spacing or key order sends the same body."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (
        method.upper().encode(),
        path.encode(),
        query.encode(),
        canonical,
        caller.encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def kept(status: int) -> bool:
    """Whether a response is replayed to retries. Not a 429 (refused before acting) nor a 5xx
    (failed on the server's side): the key is given up and a retry runs afresh."""
    return status < 500 and status != 429


def replayed_headers(headers: list[tuple[str, str]]) -> list[list[str]]:
    """The headers a replay repeats: the response's own, not transport or rate-limit ones."""
    return [
        [name, value]
        for name, value in headers
        if name.lower() not in _NOT_REPLAYED
        and not name.lower().startswith("ratelimit-")
        and name.lower() != "retry-after"
    ]


class Verdict(enum.Enum):
    REPLAY = "replay"  # the first request finished: its response again
    MISMATCH = "mismatch"  # the key was used for another request: 422
    IN_PROGRESS = "in_progress"  # the first request still runs: 409 with Retry-After
    RETRY = "retry"  # the key was freed or may be taken over: claim again


def verdict(stored: bytes, done: bool, lease_over: bool, expired: bool, incoming: bytes) -> Verdict:
    """What a request with fingerprint `incoming` gets when its key is already taken."""
    if expired:
        return Verdict.RETRY
    if stored != incoming:
        return Verdict.MISMATCH
    if done:
        return Verdict.REPLAY
    return Verdict.RETRY if lease_over else Verdict.IN_PROGRESS
