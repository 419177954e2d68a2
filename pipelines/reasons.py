"""Why an entry was dead-lettered and why a match did not enroll, as codes (docs/contract.md §3,
§5). Metrics, stats and logs read the code; the human detail travels beside it."""

from __future__ import annotations

from enum import StrEnum


class DeadLetter(StrEnum):
    """Why a stream entry went to the dead-letter stream instead of being processed."""

    MISSING_EVENT_FIELD = "missing_event_field"
    NUL_CHARACTER = "nul_character"
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_CONTACT_ID = "missing_contact_id"
    INVALID_CONTACT_ID = "invalid_contact_id"
    UNKNOWN_ACCOUNT = "unknown_account"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    TOO_DEEP = "too_deep"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    MISROUTED = "misrouted"
    UNPROCESSABLE = "unprocessable"  # raised the same way on its own, twice
    TOO_MANY_DELIVERIES = "too_many_deliveries"
    TRIMMED = "trimmed"


class Blocked(StrEnum):
    """Why a match (or, in a dry run, a would-be match) did not enroll."""

    ALREADY_ENROLLED = "already_enrolled"
    COOLDOWN = "cooldown"
    CONTACT_DELETED = "contact_deleted"
    LOOP_DEPTH_EXCEEDED = "loop_depth_exceeded"
    # only a dry run meets these: live matching never offers such triggers
    WORKFLOW_DRAFT = "workflow_draft"
    WORKFLOW_PAUSED = "workflow_paused"
    TRIGGER_INACTIVE = "trigger_inactive"

    @property
    def text(self) -> str:
        """As logs, stats and the API show it: `blocked: <code>`."""
        return f"{BLOCKED_PREFIX}{self.value}"


BLOCKED_PREFIX = "blocked: "
ERROR_PREFIX = "error: "
NOT_MATCHED = "not_matched"
# The reasons a live batch can decide (the stats table has a column for each).
ENROLLMENT_BLOCKS: tuple[Blocked, ...] = (
    Blocked.ALREADY_ENROLLED,
    Blocked.COOLDOWN,
    Blocked.CONTACT_DELETED,
    Blocked.LOOP_DEPTH_EXCEEDED,
)
_BY_TEXT = {b.text: b for b in Blocked}


def blocked_of(failure_reason: str | None) -> Blocked | None:
    """The code of a stored `blocked: <code>` reason (None for any other reason)."""
    return _BY_TEXT.get(failure_reason) if failure_reason else None


def filter_error(exc: BaseException) -> str:
    """The logged reason of a filter that raised at evaluation."""
    return f"{ERROR_PREFIX}{type(exc).__name__}: {exc}"
