"""A brute-force backtest for the tests: random event streams, and the expected figures
computed naively, event by event, with hand-written predicates (no compiler, no index)."""

from __future__ import annotations

import copy
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CONTACT_TYPES = {
    "contact.created",
    "contact.updated",
    "contact.tag_added",
    "contact.tag_removed",
    "contact.custom_field_changed",
    "contact.deleted",
}
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class Rule:
    """A trigger as the oracle sees it: its event type and a plain predicate."""

    event_type: str
    matches: Callable[[dict[str, Any], dict[str, Any]], bool]  # (event data, contact state)
    single: bool = True
    cooldown_s: int = 0


@dataclass
class Expected:
    scanned: int = 0
    matched: int = 0
    contacts: set[str] = field(default_factory=set)
    would_enroll: int = 0
    blocked: Counter[str] = field(default_factory=Counter)
    matched_ids: list[str] = field(default_factory=list)


def _state(r: random.Random) -> dict[str, Any]:
    return {
        "status": r.choice(["lead", "customer"]),
        "tags": r.sample(["vip", "newsletter", "hot"], r.randint(0, 2)),
    }


def _data(r: random.Random, kind: str) -> dict[str, Any]:
    if kind in ("contact.created", "contact.updated"):
        return {"current_state": _state(r)}
    if kind in ("contact.tag_added", "contact.tag_removed"):
        return {"tag": r.choice(["vip", "hot", "cold", "VIP"])}
    if kind == "form.submitted":
        return {
            "form_id": r.choice(["lead-form", "other"]),
            "form_data": {"budget": r.choice([500, 15000, "20000"])},
        }
    if kind == "email.opened":
        return {"campaign_id": "nov", "email_id": str(uuid.UUID(int=r.getrandbits(128)))}
    return {}


KINDS = [
    "contact.created",
    "contact.updated",
    "contact.tag_added",
    "contact.tag_added",
    "contact.tag_removed",
    "contact.deleted",
    "form.submitted",
    "form.submitted",
    "email.opened",
]


def make_events(
    account: uuid.UUID, other: uuid.UUID, contacts: list[uuid.UUID], count: int, seed: int
) -> list[dict[str, Any]]:
    """`count` envelopes a minute apart, mostly `account`'s, with redeliveries (same event
    again) and some events past the loop depth limit."""
    r = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(count):
        if events and r.random() < 0.03:
            events.append(copy.deepcopy(r.choice(events)))
            continue
        kind = r.choice(KINDS[:-1] if r.random() < 0.05 else KINDS)
        if r.random() < 0.01:
            kind = "contact.deleted"
        events.append(
            {
                "event_id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
                "event_type": kind,
                "account_id": str(other if r.random() < 0.15 else account),
                "timestamp": (START + timedelta(minutes=i)).isoformat(),
                "data": {"contact_id": str(r.choice(contacts)), **_data(r, kind)},
                "metadata": {"source": "test", "depth": 11 if r.random() < 0.03 else 0},
            }
        )
    return events


def _apply(kind: str, data: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data.get("current_state"), dict):
        return copy.deepcopy(data["current_state"])
    tags = list(state.get("tags") or [])
    if kind == "contact.tag_added" and data["tag"].lower() not in {t.lower() for t in tags}:
        return {**state, "tags": [*tags, data["tag"]]}
    if kind == "contact.tag_removed":
        return {**state, "tags": [t for t in tags if t.lower() != data["tag"].lower()]}
    return state


def brute_force(
    events: list[dict[str, Any]],
    account: uuid.UUID,
    rule: Rule,
    replayed: set[str],
    projection: dict[str, tuple[dict[str, Any], bool]],
    enrolled_before: set[str],
    loop_limit: int = 10,
) -> Expected:
    """The window's figures for `rule`. `replayed`: the event types the backtest replays
    (contact events and its triggers' types); `projection`: contact id -> (state, deleted) now;
    `enrolled_before`: contacts with an enrollment in the workflow already."""
    out = Expected()
    seen: set[str] = set()
    state: dict[str, dict[str, Any]] = {}
    deleted: dict[str, bool] = {}
    enrolled = set(enrolled_before) if rule.single else set()
    last_at: dict[str, datetime] = {}
    for e in events:
        if e["account_id"] != str(account) or e["event_id"] in seen:
            continue
        seen.add(e["event_id"])
        out.scanned += 1
        kind, data, contact = e["event_type"], e["data"], e["data"]["contact_id"]
        if kind not in replayed:
            continue
        if contact not in state:
            start = (
                ({}, False) if kind == "contact.created" else projection.get(contact, ({}, False))
            )
            state[contact], deleted[contact] = copy.deepcopy(start[0]), start[1]
        if kind in CONTACT_TYPES:
            state[contact] = _apply(kind, data, state[contact])
            deleted[contact] = deleted[contact] or kind == "contact.deleted"
        view = (
            data["current_state"] if isinstance(data.get("current_state"), dict) else state[contact]
        )
        if kind != rule.event_type or not rule.matches(data, view):
            continue
        out.matched += 1
        out.contacts.add(contact)
        out.matched_ids.append(e["event_id"])
        at = datetime.fromisoformat(e["timestamp"])
        if deleted[contact]:
            out.blocked["blocked: contact_deleted"] += 1
        elif e["metadata"]["depth"] > loop_limit:
            out.blocked["blocked: loop_depth_exceeded"] += 1
        elif rule.single and contact in enrolled:
            out.blocked["blocked: already_enrolled"] += 1
        elif (
            not rule.single
            and contact in last_at
            and (at - last_at[contact] < timedelta(seconds=rule.cooldown_s))
        ):
            out.blocked["blocked: cooldown"] += 1
        else:
            out.would_enroll += 1
            enrolled.add(contact)
            last_at[contact] = at
    return out


def vip_customer(data: dict[str, Any], contact: dict[str, Any]) -> bool:
    """tag equals vip AND contact.status equals customer."""
    return str(data.get("tag", "")).lower() == "vip" and contact.get("status") == "customer"


def vip_or_hot(data: dict[str, Any], contact: dict[str, Any]) -> bool:
    """tag in [vip, hot]."""
    return str(data.get("tag", "")).lower() in ("vip", "hot")


def big_lead_form(data: dict[str, Any], contact: dict[str, Any]) -> bool:
    """form_id equals lead-form AND budget > 10000 AND contact.tags contains vip."""
    tags = [t.lower() for t in contact.get("tags") or []]
    budget = float((data.get("form_data") or {}).get("budget", 0))
    return data.get("form_id") == "lead-form" and budget > 10000 and "vip" in tags


VIP_CUSTOMER = {
    "logic": "AND",
    "conditions": [
        {"field": "tag", "operator": "equals", "value": "vip"},
        {"field": "contact.status", "operator": "equals", "value": "customer"},
    ],
}
VIP_OR_HOT = {
    "logic": "AND",
    "conditions": [{"field": "tag", "operator": "in", "value": ["vip", "hot"]}],
}
BIG_LEAD_FORM = {
    "logic": "AND",
    "conditions": [
        {"field": "form_id", "operator": "equals", "value": "lead-form"},
        {"field": "budget", "operator": "greater_than", "value": 10000},
        {"field": "contact.tags", "operator": "contains", "value": "vip"},
    ],
}
