"""Trigger configurations as stored, read back under the validation they were saved with.

A row that no longer passes (a hand edit, a restored backup, a stricter upgrade) must not stop
whoever reads it: it becomes an InvalidSpec carrying the reason, which matching skips
(pipelines.index), and the API reports with the trigger (docs/contract.md §4)."""

from __future__ import annotations

from typing import Any, Protocol

from pipelines import errors
from pipelines.catalog import BY_NAME, TriggerEvent
from pipelines.compiler import compile_filters
from pipelines.filters import parse_filters
from pipelines.index import InvalidSpec, Spec, TriggerSpec
from pipelines.settings import parse_settings


class Row(Protocol):
    """A stored row by column name (an asyncpg Record, a dict)."""

    def __getitem__(self, column: str, /) -> Any: ...


def read_spec(row: Row) -> Spec:
    """A stored trigger (id, workflow_id, account_id, trigger_event, filters, settings, live,
    sync_version) as a spec, or as an InvalidSpec when it does not parse. Not compiled: the
    index compiles once, and quarantines what fails there."""
    try:
        event = _event(row["trigger_event"])
        spec = TriggerSpec(
            trigger_id=row["id"],
            workflow_id=row["workflow_id"],
            account_id=row["account_id"],
            event=event,
            filters=parse_filters(row["filters"], event),
            settings=parse_settings(row["settings"], event),
            live=row["live"],
            sync_version=row["sync_version"],
        )
    except Exception as exc:  # whatever a stored value trips, the row is skipped, never fatal
        return InvalidSpec(
            row["id"],
            row["workflow_id"],
            row["account_id"],
            row["live"],
            row["sync_version"],
            errors.describe(exc),
        )
    return spec


def stored_reason(trigger_event: str, filters: object, settings: object) -> str | None:
    """Why a stored configuration cannot be matched (parsed and compiled as the partitions do),
    or None when it can."""
    try:
        event = _event(trigger_event)
        group = parse_filters(filters, event)
        parse_settings(settings, event)
        compile_filters(group, event)
    except Exception as exc:  # as read_spec
        return errors.describe(exc)
    return None


def _event(name: str) -> TriggerEvent:
    event = BY_NAME.get(name)
    if event is None:
        raise errors.ConfigError(
            errors.INVALID_TRIGGER_EVENT, f"{name!r} is not an event of the catalog"
        )
    return event
