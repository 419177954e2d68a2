"""Emails and phone numbers are masked in application logs (docs/contract.md §4)."""

from __future__ import annotations

import logging

import pytest

from actors.logs import MaskingFilter, configure, mask


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("contact jane.doe@example.com joined", "contact j***@example.com joined"),
        ("call +1 415 555 0199 now", "call ***99 now"),
        ("sms from 07700-900123", "sms from ***23"),
        ("order 12345 for 3 items", "order 12345 for 3 items"),
        ("id 5b7f6a52-3c55-4a0e-9d43-51a3b0a1c001", "id 5b7f6a52-3c55-4a0e-9d43-51a3b0a1c001"),
    ],
)
def test_mask(raw: str, masked: str) -> None:
    assert mask(raw) == masked


def test_filter_masks_formatted_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("hairtrigger.test")
    logger.addFilter(MaskingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="hairtrigger.test"):
            logger.info("enrolled %s (%s)", "bob@corp.io", "+44 20 7946 0958")
    finally:
        logger.filters.clear()
    assert caplog.messages == ["enrolled b***@corp.io (***58)"]


def test_configure_masks_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure()
        log = logging.getLogger("hairtrigger.test")
        log.info("welcome %s", "ann@example.org")
        try:
            raise ValueError("bad contact +1 212 555 0123 / ann@example.org")
        except ValueError:
            log.exception("failed")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "welcome a***@example.org" in err
    assert "ann@example.org" not in err
    assert "555 0123" not in err
    assert "ValueError: bad contact ***23" in err
