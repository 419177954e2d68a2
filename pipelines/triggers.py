"""Validation of a whole trigger configuration (docs/contract.md §4, REQ-U-001, REQ-N-001)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines import errors
from pipelines.catalog import BY_NAME, CATEGORIES, TriggerEvent
from pipelines.errors import ConfigError
from pipelines.filters import Group, parse_filters, to_json
from pipelines.settings import TriggerSettings, parse_settings


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    event: TriggerEvent
    filters: Group
    settings: TriggerSettings

    def filters_json(self) -> dict[str, Any]:
        return to_json(self.filters)


def validate_trigger(
    trigger_type: object, trigger_event: object, filters: object, settings: object
) -> TriggerConfig:
    """Check a configuration and return it parsed; raise ConfigError naming the first problem."""
    if trigger_type not in CATEGORIES:
        raise ConfigError(
            errors.INVALID_TRIGGER_TYPE,
            f"'{trigger_type}' is not a trigger type; use one of {', '.join(CATEGORIES)}",
            "/trigger_type",
        )
    event = BY_NAME.get(trigger_event) if isinstance(trigger_event, str) else None
    if event is None:
        raise ConfigError(
            errors.INVALID_TRIGGER_EVENT,
            f"'{trigger_event}' is not a trigger event; see GET /api/v1/catalog",
            "/trigger_event",
        )
    if event.category != trigger_type:
        raise ConfigError(
            errors.EVENT_CATEGORY_MISMATCH,
            f"'{trigger_event}' is a {event.category} event, not a {trigger_type} event",
            "/trigger_event",
        )
    return TriggerConfig(event, parse_filters(filters, event), parse_settings(settings, event))
