"""One settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import quotas
from pipelines.quotas import Quotas
from pipelines.ratelimit import Budget, parse_budget

# Default rate budgets (docs/operations.md §8): config writes and reads per API key per minute;
# events per account per second, about a quarter of what the box ingests end to end.
DEFAULT_WRITES = Budget(100, 60)
DEFAULT_READS = Budget(1000, 60)
DEFAULT_EVENTS = Budget(5000, 1)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".hairtrigger"))
    shards: int = 8
    max_body_bytes: int = 1024 * 1024
    max_events_per_request: int = 1000
    # Rate budgets (None = no limit): config calls per API key, event ingest per account.
    rate_writes: Budget | None = DEFAULT_WRITES
    rate_reads: Budget | None = DEFAULT_READS
    rate_events: Budget | None = DEFAULT_EVENTS
    # Shard streams: processed entries older than this are trimmed (0 = kept forever); this
    # much history is what a trigger backtest can replay.
    stream_retention_hours: int = 168
    # Length cap per shard stream (approximate; 0 = none), applied by the owning partition:
    # a memory bound when events arrive faster than the retention can age them out.
    stream_max_len: int = 1_000_000
    # Execution logs are kept this many days after their event's timestamp, ended enrollments
    # this many days after they enrolled (0 = kept forever): docs/operations.md §15. Both
    # outlast the stream retention, so a replayable event still finds its rows and dedupes.
    log_retention_days: int = 30
    enrollment_retention_days: int = 365
    # Per account, enforced at write time (docs/contract.md §15).
    quotas: Quotas = field(default_factory=Quotas)
    # How long a config write waits for the partitions to apply it (docs/operations.md §3);
    # past it the write answers, committed, with the push pending: reconciliation delivers it.
    config_push_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("HAIRTRIGGER_SHARDS must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("HAIRTRIGGER_MAX_BODY_BYTES must be at least 1024")
        if self.stream_retention_hours < 0:
            raise ValueError("HAIRTRIGGER_STREAM_RETENTION_HOURS must not be negative")
        if self.stream_max_len < 0:
            raise ValueError("HAIRTRIGGER_STREAM_MAX_LEN must not be negative")
        if not 0 < self.config_push_timeout_s <= 600:
            raise ValueError("HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S must be above 0 and at most 600")
        for name, days in (
            ("HAIRTRIGGER_LOG_RETENTION_DAYS", self.log_retention_days),
            ("HAIRTRIGGER_ENROLLMENT_RETENTION_DAYS", self.enrollment_retention_days),
        ):
            if days < 0:
                raise ValueError(f"{name} must not be negative")
            if days and self.stream_retention_hours and days * 24 < self.live_hours:
                raise ValueError(
                    f"{name} must be at least {-(-self.live_hours // 24)} days: a day past"
                    " HAIRTRIGGER_STREAM_RETENTION_HOURS, within which events can be replayed"
                )
        if self.rate_events is not None and self.rate_events.limit < self.max_events_per_request:
            # Otherwise a full-size batch could never pass and would be refused forever.
            raise ValueError(
                f"HAIRTRIGGER_RATE_EVENTS must allow at least {self.max_events_per_request}"
                " events (one full batch) per window"
            )

    @property
    def live_hours(self) -> int:
        """How long an enrollment stays in the live table: the stream retention (events can be
        replayed that long) and a day more; 0 (the streams keep everything) keeps them all."""
        return self.stream_retention_hours + 24 if self.stream_retention_hours else 0

    @classmethod
    def from_env(cls) -> Settings:
        """Raises ValueError naming the variable that is malformed."""
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("HAIRTRIGGER_DATA_DIR", ".hairtrigger")),
            shards=_int(env, "HAIRTRIGGER_SHARDS", 8),
            max_body_bytes=_int(env, "HAIRTRIGGER_MAX_BODY_BYTES", 1024 * 1024),
            rate_writes=_budget(env, "HAIRTRIGGER_RATE_WRITES", DEFAULT_WRITES),
            rate_reads=_budget(env, "HAIRTRIGGER_RATE_READS", DEFAULT_READS),
            rate_events=_budget(env, "HAIRTRIGGER_RATE_EVENTS", DEFAULT_EVENTS),
            stream_retention_hours=_int(env, "HAIRTRIGGER_STREAM_RETENTION_HOURS", 168),
            stream_max_len=_int(env, "HAIRTRIGGER_STREAM_MAX_LEN", 1_000_000),
            log_retention_days=_int(env, "HAIRTRIGGER_LOG_RETENTION_DAYS", 30),
            enrollment_retention_days=_int(env, "HAIRTRIGGER_ENROLLMENT_RETENTION_DAYS", 365),
            quotas=_quotas(env),
            config_push_timeout_s=_float(env, "HAIRTRIGGER_CONFIG_PUSH_TIMEOUT_S", 2.0),
        )


def _int(env: os._Environ[str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {env[name]!r}") from None


def _float(env: os._Environ[str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {env[name]!r}") from None


def _budget(env: os._Environ[str], name: str, default: Budget) -> Budget | None:
    if name not in env:
        return default
    try:
        return parse_budget(env[name])
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _quotas(env: os._Environ[str]) -> Quotas:
    defaults = Quotas()
    return Quotas(
        **{
            name: _int(env, quotas.env_name(name), getattr(defaults, name))
            for name in quotas.names()
        }
    )
