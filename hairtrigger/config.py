"""One settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".hairtrigger"))
    shards: int = 8
    max_body_bytes: int = 1024 * 1024
    max_events_per_request: int = 1000

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("HAIRTRIGGER_SHARDS must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("HAIRTRIGGER_MAX_BODY_BYTES must be at least 1024")

    @classmethod
    def from_env(cls) -> Settings:
        """Raises ValueError naming the variable that is not a whole number."""
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("HAIRTRIGGER_DATA_DIR", ".hairtrigger")),
            shards=_int(env, "HAIRTRIGGER_SHARDS", 8),
            max_body_bytes=_int(env, "HAIRTRIGGER_MAX_BODY_BYTES", 1024 * 1024),
        )


def _int(env: os._Environ[str], name: str, default: int) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {env[name]!r}") from None
