"""Idempotency rules: keys, request fingerprints, what is kept and what a retry gets."""

from __future__ import annotations

import pytest

from pipelines.idempotency import (
    Verdict,
    fingerprint,
    kept,
    key_problem,
    replayed_headers,
    verdict,
)


@pytest.mark.parametrize("key", ["a", "0b6f3c8e-54b5-4a3e-9b1c-2f0e6f9f8d11", "x" * 255, "a:b/c"])
def test_good_keys(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\there", "caf\u00e9"])
def test_bad_keys(key: str) -> None:
    assert "Idempotency-Key" in (key_problem(key) or "")


def test_a_json_body_counts_by_value() -> None:
    one = fingerprint("POST", "/api/v1/workflows", "", b'{"name": "A", "description": "d"}')
    same = fingerprint("post", "/api/v1/workflows", "", b'{"description":"d",\n"name":"A"}')
    assert one == same
    assert one != fingerprint("POST", "/api/v1/workflows", "", b'{"name": "B"}')
    assert one != fingerprint("PUT", "/api/v1/workflows", "", b'{"name": "A", "description": "d"}')
    assert one != fingerprint("POST", "/api/v1/workflow", "", b'{"name": "A", "description": "d"}')
    assert one != fingerprint("POST", "/api/v1/workflows", "x=1", b'{"name":"A","description":"d"}')


def test_a_body_that_is_not_json_counts_byte_for_byte() -> None:
    assert fingerprint("POST", "/p", "", b"{nope") == fingerprint("POST", "/p", "", b"{nope")
    assert fingerprint("POST", "/p", "", b"{nope") != fingerprint("POST", "/p", "", b"{nope ")
    # Parts are length-prefixed: moving bytes between path and query is another request.
    assert fingerprint("POST", "/pa", "", b"") != fingerprint("POST", "/p", "a", b"")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, True),
        (201, True),
        (202, True),
        (204, True),
        (400, True),
        (404, True),
        (409, True),
        (422, True),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_which_responses_are_replayed(status: int, expected: bool) -> None:
    assert kept(status) is expected


def test_replays_repeat_the_responses_own_headers_only() -> None:
    headers = [
        ("content-type", "application/json"),
        ("Location", "/api/v1/workflows/1"),
        ("content-length", "12"),
        ("date", "today"),
        ("server", "uvicorn"),
        ("RateLimit-Remaining", "3"),
        ("ratelimit-limit", "100"),
        ("Retry-After", "5"),
    ]
    assert replayed_headers(headers) == [
        ["content-type", "application/json"],
        ["Location", "/api/v1/workflows/1"],
    ]


A, B = b"a", b"b"


@pytest.mark.parametrize(
    ("stored", "done", "lease_over", "expired", "incoming", "expected"),
    [
        (A, True, False, False, A, Verdict.REPLAY),
        (A, True, False, False, B, Verdict.MISMATCH),
        (A, False, False, False, A, Verdict.IN_PROGRESS),
        (A, False, False, False, B, Verdict.MISMATCH),
        (A, False, True, False, A, Verdict.RETRY),  # its request crashed: take over
        (A, False, True, False, B, Verdict.MISMATCH),
        (A, True, False, True, B, Verdict.RETRY),  # expired: the key is free again
        (A, True, False, True, A, Verdict.RETRY),
    ],
)
def test_what_a_request_gets_when_its_key_is_taken(
    stored: bytes, done: bool, lease_over: bool, expired: bool, incoming: bytes, expected: Verdict
) -> None:
    assert verdict(stored, done, lease_over, expired, incoming) is expected
