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

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("HAIRTRIGGER_DATA_DIR", ".hairtrigger")),
            shards=int(env.get("HAIRTRIGGER_SHARDS", "8")),
            max_body_bytes=int(env.get("HAIRTRIGGER_MAX_BODY_BYTES", str(1024 * 1024))),
        )
