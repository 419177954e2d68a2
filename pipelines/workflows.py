"""Workflow rules: status transitions and declared actions (docs/contract.md §4)."""

from __future__ import annotations

from typing import Any

from pipelines import errors
from pipelines.errors import ConfigError

STATUSES: tuple[str, ...] = ("draft", "active", "paused")
_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {("draft", "active"), ("active", "paused"), ("paused", "active")}
    | {(s, "draft") for s in STATUSES}
)
MAX_ACTIONS = 50

# Action type -> the fields it requires. Actions that change a contact or a deal are what loop
# detection reads: they emit events other triggers listen to.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "add_tag": ("tag",),
    "remove_tag": ("tag",),
    "update_field": ("field",),
    "create_deal": ("pipeline_id",),
    "move_stage": ("pipeline_id", "stage_id"),
    "send_email": (),
    "send_sms": (),
    "webhook": ("url",),
    "wait": (),
    "notify_user": (),
}


def check_transition(current: str, wanted: str) -> None:
    if wanted not in STATUSES:
        raise ConfigError(
            errors.INVALID_STATUS_TRANSITION,
            f"'{wanted}' is not a status; use one of {', '.join(STATUSES)}",
            "/status",
        )
    if current != wanted and (current, wanted) not in _TRANSITIONS:
        raise ConfigError(
            errors.INVALID_STATUS_TRANSITION,
            f"a {current} workflow cannot become {wanted}",
            "/status",
            status=409,
        )


def check_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(actions) > MAX_ACTIONS:
        raise ConfigError(
            errors.INVALID_ACTION, f"at most {MAX_ACTIONS} actions are allowed", "/actions"
        )
    for i, action in enumerate(actions):
        kind = action.get("type")
        if kind not in ACTION_FIELDS:
            raise ConfigError(
                errors.INVALID_ACTION,
                f"'{kind}' is not an action type; use one of {', '.join(ACTION_FIELDS)}",
                f"/actions/{i}/type",
            )
        for field in ACTION_FIELDS[kind]:
            value = action.get(field)
            if not isinstance(value, str) or not value:
                raise ConfigError(
                    errors.INVALID_ACTION,
                    f"a {kind} action needs '{field}' (text)",
                    f"/actions/{i}/{field}",
                )
    return actions
