"""The contacts projection (docs/contract.md §3): how contact events change a contact's current
state."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pipelines.catalog import CONTACT_DELETED
from pipelines.messages import Envelope


@dataclass(slots=True)
class Contact:
    state: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    event_ts: datetime | None = None

    def copy(self) -> Contact:
        """A copy a batch can change and throw away if it fails (apply() replaces nested
        values, never mutates them in place)."""
        return Contact(dict(self.state), self.deleted, self.event_ts)

    @property
    def tags(self) -> list[str]:
        tags = self.state.get("tags")
        return [str(t) for t in tags] if isinstance(tags, list) else []


def utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def is_contact_event(event_type: str) -> bool:
    return event_type.startswith("contact.")


def apply(contact: Contact, envelope: Envelope) -> bool:
    """Apply a contact.* event in place; False when it is older than what the state holds."""
    ts = utc(envelope.timestamp)
    kind = envelope.event_type
    if kind == CONTACT_DELETED and not contact.deleted:  # a deletion holds whatever its time
        contact.deleted = True
        return True
    if contact.event_ts is not None and ts < contact.event_ts:
        return False
    data = envelope.data
    current = data.get("current_state")
    if kind == CONTACT_DELETED:
        contact.deleted = True
    elif isinstance(current, dict):
        contact.state = copy.deepcopy(current)
    elif kind == "contact.tag_added":
        tags = contact.tags
        tag = str(data.get("tag", ""))
        if tag and tag.casefold() not in {t.casefold() for t in tags}:
            contact.state["tags"] = [*tags, tag]
    elif kind == "contact.tag_removed":
        tag = str(data.get("tag", "")).casefold()
        contact.state["tags"] = [t for t in contact.tags if t.casefold() != tag]
    elif kind == "contact.custom_field_changed" and data.get("field_name"):
        fields = contact.state.get("custom_fields")
        fields = dict(fields) if isinstance(fields, dict) else {}
        fields[str(data["field_name"])] = data.get("field_value")
        contact.state["custom_fields"] = fields
    contact.event_ts = ts
    return True


def date_fields(state: dict[str, Any]) -> dict[str, date]:
    """The contact's ISO dates by field path (top level and custom_fields.*), for time triggers."""
    found: dict[str, date] = {}
    custom = state.get("custom_fields")
    items = list(state.items())
    if isinstance(custom, dict):
        items += [(f"custom_fields.{k}", v) for k, v in custom.items()]
    for name, value in items:
        if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
            try:
                day = date.fromisoformat(value[:10])
            except ValueError:
                continue
            if date.min < day < date.max:  # asyncpg stores those two as -infinity / infinity
                found[name] = day
    return found
