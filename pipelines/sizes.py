"""How big a trigger is (docs/contract.md §15): its filters as stored JSON, and an estimate of
what they cost compiled into a partition's index. Both are computed from the parsed filter
alone, so the gateway (enforcing quotas at write time) and the partition (reporting its
accounts' index sizes) arrive at the same figure."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import orjson

from pipelines.filters import Condition, Group, to_json

# Measured with tracemalloc on the index's worst case, values filed under an identifying field
# (docs/decisions.md §16): what a trigger with no conditions costs (spec, compiled trigger, the
# index's entries), each leaf (parsed, compiled, filed) with its value, each further value of a
# list (parsed, in the compiled set, a key of its own), and each byte of text (the parsed
# string and its normalized copies). Shared residuals and leaves make the real cost lower.
TRIGGER_COST = 320
LEAF_COST = 1300
LIST_VALUE_COST = 300
TEXT_BYTE_COST = 3
# A partition's stats name its largest accounts only: it may hold thousands.
LARGEST_REPORTED = 20


def filter_bytes(filters: Group) -> int:
    """The filters as stored and returned: compact JSON, UTF-8 bytes."""
    return len(orjson.dumps(to_json(filters)))


def index_bytes(filters: Group) -> int:
    """An upper estimate of the trigger's memory in a partition's index, in bytes."""
    return TRIGGER_COST + _group_bytes(filters)


def _group_bytes(group: Group) -> int:
    total = 0
    for node in group.conditions:
        total += _group_bytes(node) if isinstance(node, Group) else _leaf_bytes(node)
    return total


def _leaf_bytes(leaf: Condition) -> int:
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    text = len(leaf.field.encode()) + sum(len(v.encode()) for v in values if isinstance(v, str))
    return LEAF_COST + LIST_VALUE_COST * max(len(values) - 1, 0) + TEXT_BYTE_COST * text


def index_report(
    accounts: Iterable[tuple[UUID, int, int]], largest: int = LARGEST_REPORTED
) -> dict[str, Any]:
    """A partition's index for its stats, from (account id, live triggers, index bytes) per
    account: the totals, and the accounts with the largest estimates, largest first."""
    found = list(accounts)
    top = heapq.nlargest(largest, found, key=lambda a: (a[2], a[1], a[0]))
    return {
        "accounts": len(found),
        "triggers": sum(a[1] for a in found),
        "index_bytes": sum(a[2] for a in found),
        "largest_accounts": [
            {"account_id": str(a), "triggers": t, "index_bytes": b} for a, t, b in top
        ],
    }
