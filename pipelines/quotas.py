"""Quotas per account (docs/contract.md §15): their defaults, the rule that refuses a write
past one, and the view `GET /account/settings` shows. Counting is the store's."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pipelines import errors

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per account. `filter_bytes` is per trigger (pipelines.sizes.filter_bytes); `index_bytes`
    is the account's compiled index, the sum of its triggers' estimates (sizes.index_bytes).
    Segments, custom event types and exit rules are counted by those features, once they are
    built; until then their use is 0."""

    workflows: int = 20_000
    triggers: int = 20_000
    filter_bytes: int = 64 * 1024
    index_bytes: int = 128 * MIB
    segments: int = 1_000
    event_types: int = 200
    exit_rules: int = 50_000

    def __post_init__(self) -> None:
        for name in names():
            if getattr(self, name) < 1:
                raise ValueError(f"{env_name(name)} must be at least 1")
        if self.filter_bytes < MIN_FILTER_BYTES:
            raise ValueError(f"{env_name('filter_bytes')} must be at least {MIN_FILTER_BYTES}")


# A filter of 20 short conditions takes about 1 KB: a smaller cap would refuse ordinary triggers.
MIN_FILTER_BYTES = 1024


def names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Quotas))


def env_name(quota: str) -> str:
    """The variable that sets the quota: HAIRTRIGGER_QUOTA_WORKFLOWS, ..."""
    return f"HAIRTRIGGER_QUOTA_{quota.upper()}"


class QuotaExceeded(Exception):
    """A write would take the account past a quota: `use` is what it uses now (for
    `filter_bytes`, the refused trigger's size), `requested` what the write adds."""

    title = errors.QUOTA_EXCEEDED

    def __init__(self, quota: str, limit: int, use: int, requested: int) -> None:
        self.quota, self.limit, self.use, self.requested = quota, limit, use, requested
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        if self.quota == "filter_bytes":
            return (
                f"the trigger's filters take {self.use} bytes as JSON; the quota filter_bytes"
                f" allows {self.limit} per trigger"
            )
        return (
            f"the account uses {self.use} of its quota {self.quota} ({self.limit}); this change"
            f" needs {self.requested} more. Delete some, or ask the operator to raise"
            f" {env_name(self.quota)}"
        )

    def extra(self) -> dict[str, Any]:
        return {
            "quota": self.quota,
            "limit": self.limit,
            "use": self.use,
            "requested": self.requested,
        }


def refuse_growth(quota: str, limit: int, use_after: int, added: int) -> None:
    """Raise QuotaExceeded when a write that added `added` left the use at `use_after` past
    `limit`. A write that adds nothing is never refused, so an account over a lowered quota can
    still edit and delete."""
    if added > 0 and use_after > limit:
        raise QuotaExceeded(quota, limit, use_after - added, added)


def refuse_large_filter(limit: int, size: int) -> None:
    if size > limit:
        raise QuotaExceeded("filter_bytes", limit, size, size)


@dataclass(frozen=True, slots=True)
class Usage:
    """What an account uses: live workflows and triggers, its largest trigger's filter bytes,
    the sum of its triggers' index estimates."""

    workflows: int = 0
    triggers: int = 0
    largest_filter_bytes: int = 0
    index_bytes: int = 0


def view(quotas: Quotas, usage: Usage) -> dict[str, dict[str, int]]:
    """Each quota with its limit and the account's use."""
    use = {
        "workflows": usage.workflows,
        "triggers": usage.triggers,
        "filter_bytes": usage.largest_filter_bytes,
        "index_bytes": usage.index_bytes,
    }
    return {name: {"limit": getattr(quotas, name), "use": use.get(name, 0)} for name in names()}
