"""Error titles (SPEC §4) and the exception that carries them. One title, one place."""

from __future__ import annotations

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

BAD_REQUEST = "Bad request"
CONFLICT = "Conflict"
METHOD_NOT_ALLOWED = "Method not allowed"
UNSUPPORTED_MEDIA_TYPE = "Unsupported media type"
UNSTORABLE_VALUE = "Value cannot be stored"

TRIGGER_EXISTS = "Trigger already exists"
WORKFLOW_LOOP = "Workflow loop detected"
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


class ConfigError(ValueError):
    """A configuration the user sent is invalid. `pointer` is a JSON pointer into the request."""

    def __init__(self, title: str, detail: str, pointer: str = "", status: int = 400) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.pointer = pointer
        self.status = status
