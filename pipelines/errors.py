"""Error titles (docs/contract.md §4), what each one means, and the exception that carries them. One
title, one place: the API names every problem type after its title (`problem_slug`)."""

from __future__ import annotations

import re

INVALID_TRIGGER_TYPE = "Invalid trigger type"
INVALID_TRIGGER_EVENT = "Invalid trigger event"
EVENT_CATEGORY_MISMATCH = "Trigger event does not belong to trigger type"
INVALID_OPERATOR = "Invalid filter operator"
INVALID_VALUE = "Invalid filter value"
INVALID_FIELD = "Invalid filter field"
INVALID_FILTER = "Invalid filter"
TOO_MANY_CONDITIONS = "Maximum 20 filter conditions allowed"
TOO_DEEP = "Maximum filter depth of 3 exceeded"
INVALID_SETTINGS = "Invalid trigger settings"
INVALID_ACTION = "Invalid workflow action"
INVALID_STATUS_TRANSITION = "Invalid status transition"
INVALID_TIMEZONE = "Invalid timezone"
INVALID_BUSINESS_HOURS = "Invalid business hours"
INVALID_EVENT = "Invalid event"
MISSING_FIELD = "Missing required field"
INVALID_WINDOW = "Invalid backtest window"
UNKNOWN_TEMPLATE = "Unknown trigger template"
INVALID_TEMPLATE_OVERRIDE = "Invalid template override"
INVALID_STORED_TRIGGER = "Stored trigger is invalid"

BAD_REQUEST = "Bad request"
CONFLICT = "Conflict"
METHOD_NOT_ALLOWED = "Method not allowed"
UNSUPPORTED_MEDIA_TYPE = "Unsupported media type"
UNSTORABLE_VALUE = "Value cannot be stored"

TRIGGER_EXISTS = "Trigger already exists"
WORKFLOW_LOOP = "Workflow loop detected"
QUOTA_EXCEEDED = "Quota exceeded"
NOT_FOUND = "Not found"
FORBIDDEN = "Forbidden"
UNAUTHORIZED = "Unauthorized"
MALFORMED_JSON = "Malformed JSON"
VALIDATION_FAILED = "Request validation failed"
INVALID_CURSOR = "Invalid cursor"
BODY_TOO_LARGE = "Request body too large"
SERVICE_UNAVAILABLE = "Service unavailable"
RATE_LIMITED = "Rate limit exceeded"
INVALID_IDEMPOTENCY_KEY = "Invalid idempotency key"
IDEMPOTENCY_KEY_REUSED = "Idempotency key reused with another request"
REQUEST_IN_PROGRESS = "Request in progress"
INTERNAL_ERROR = "Internal server error"


# What each problem means and what to do about it: served at /api/v1/problems/{slug}, where
# every problem document's `type` points.
DESCRIPTIONS: dict[str, str] = {
    INVALID_TRIGGER_TYPE: "`trigger_type` is not one of the catalog's categories (GET /catalog).",
    INVALID_TRIGGER_EVENT: "`trigger_event` is not an event of the catalog (GET /catalog).",
    EVENT_CATEGORY_MISMATCH: "The event exists, but under another `trigger_type`; use the "
    "category the catalog lists it under.",
    INVALID_OPERATOR: "A condition's `operator` is not one of the 17 filter operators.",
    INVALID_VALUE: "A condition's `value` has the wrong type for its operator (a list for "
    "in/not_in, none for is_empty/is_not_empty/changed, a number or ISO date for orderings).",
    INVALID_FIELD: "A condition reads a field the event or the contact cannot have, or uses "
    "changed* outside contact_updated / custom_field_changed.",
    INVALID_FILTER: "The filter tree is not a group of conditions and groups (`logic` AND/OR, "
    "`conditions`), or a nested group is empty.",
    TOO_MANY_CONDITIONS: "A trigger's filters hold at most 20 leaf conditions.",
    TOO_DEEP: "Filter groups nest at most 3 levels deep.",
    INVALID_SETTINGS: "A trigger setting is unknown or out of range (enrollment_limit, "
    "cooldown, time-trigger settings such as date_field, cron, time_of_day).",
    INVALID_ACTION: "A workflow action is not a known action type or lacks its fields.",
    INVALID_STATUS_TRANSITION: "The workflow cannot move from its status to the one asked "
    "for (e.g. draft to paused); activate it first.",
    INVALID_TIMEZONE: "Not an IANA time zone name (e.g. Europe/Berlin).",
    INVALID_BUSINESS_HOURS: "Business hours need known weekdays and a start before the end, "
    "as HH:MM.",
    INVALID_EVENT: "An event envelope is invalid: unknown event type, missing fields, or "
    "another account's event.",
    MISSING_FIELD: "The request lacks a required field; `errors` and `detail` name it.",
    INVALID_WINDOW: "A backtest window needs `from` before `to`, `from` not in the future, and "
    "at most the stream retention between them.",
    UNKNOWN_TEMPLATE: "No trigger template has this name (GET /trigger-templates lists them).",
    INVALID_TEMPLATE_OVERRIDE: "A template override names a setting or filter the template "
    "does not have, or gives it an invalid value.",
    INVALID_STORED_TRIGGER: "The trigger as saved no longer passes validation (edited past the "
    "API, restored from an old backup, or refused by a stricter version); matching skips it. "
    "GET the trigger for its `reason`, then replace it with PUT.",
    BAD_REQUEST: "The request cannot be served as sent.",
    CONFLICT: "The request conflicts with the resource's current state.",
    METHOD_NOT_ALLOWED: "This path does not serve that HTTP method.",
    UNSUPPORTED_MEDIA_TYPE: "Send the body as application/json.",
    UNSTORABLE_VALUE: "A value passed validation but cannot be stored or encoded (e.g. a "
    "number or date beyond the database's range).",
    TRIGGER_EXISTS: "A workflow has one trigger; replace it with PUT instead.",
    QUOTA_EXCEEDED: "The change would take the account past one of its quotas (workflows, "
    "triggers, filter_bytes per trigger, index_bytes); `quota`, `limit`, `use` and `requested` "
    "say which and by how much. GET /account/settings shows every quota with its use; delete "
    "what is no longer needed, or ask the operator to raise the quota.",
    WORKFLOW_LOOP: "The change would let workflows trigger each other forever; the problem's "
    "`cycle` names the workflows and the actions that close it.",
    NOT_FOUND: "No such resource in the caller's account.",
    FORBIDDEN: "The API key lacks the scope this call needs, or the resource belongs to "
    "another account.",
    UNAUTHORIZED: "No valid API key: send `Authorization: Bearer <key>`.",
    MALFORMED_JSON: "The body is not strict JSON (no NaN/Infinity, numbers a double can hold, "
    "no lone surrogates or NUL, nesting of at most 100 levels).",
    VALIDATION_FAILED: "A field has the wrong type or shape, or is out of its range (dates: "
    "1970-01-01 to 2199-12-31 UTC); `errors` lists each with a JSON pointer.",
    INVALID_CURSOR: "The `cursor` is not one this API handed out; start again without it.",
    BODY_TOO_LARGE: "The request body is over the limit (1 MiB unless "
    "HAIRTRIGGER_MAX_BODY_BYTES says otherwise).",
    SERVICE_UNAVAILABLE: "A server behind the API does not answer; retry after `Retry-After` "
    "seconds.",
    RATE_LIMITED: "The key's or account's budget is spent; retry after `Retry-After` seconds "
    "(the RateLimit-* headers show the budget).",
    INVALID_IDEMPOTENCY_KEY: "An `Idempotency-Key` is 1 to 255 visible ASCII characters (no "
    "spaces), e.g. a UUID.",
    IDEMPOTENCY_KEY_REUSED: "This `Idempotency-Key` was used for a different request; use a "
    "new key for a new request.",
    REQUEST_IN_PROGRESS: "The first request with this `Idempotency-Key` is still running; retry "
    "it after `Retry-After` seconds to get its response.",
    INTERNAL_ERROR: "An unexpected error; it is logged with the request path.",
}


def problem_slug(title: str) -> str:
    """The problem type's name: its title in lowercase words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class ConfigError(ValueError):
    """A configuration the user sent is invalid. `pointer` is a JSON pointer into the request."""

    def __init__(self, title: str, detail: str, pointer: str = "", status: int = 400) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.status = status


def describe(exc: BaseException) -> str:
    """One line for an error met reading a stored configuration: a ConfigError's title, detail
    and pointer; anything else by its type and message."""
    if isinstance(exc, ConfigError):
        return f"{exc}" + (f" (at {exc.pointer})" if exc.pointer else "")
    return f"{type(exc).__name__}: {exc}"
