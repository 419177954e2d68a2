"""GET /api/v1/stats from the actors' metric snapshots and the streams' lag. Pure: no I/O.

System-wide figures: per partition, per shard, per reason, per route; the metrics hold nothing
keyed by account or contact (pipelines.metrics refuses such tags). A partition's index report
names its largest accounts; here only its totals are shown (docs/operations.md §11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipelines import stream_metrics as sm
from pipelines.metrics import by_tag, distribution, percentiles, total
from pipelines.sharding import partition_for

Snapshot = Mapping[str, Any]


def _counts(snaps: Sequence[Snapshot], where: Mapping[str, str] | None) -> dict[str, Any]:
    def t(name: str) -> int:
        return int(sum(total(s, name, where) for s in snaps))

    def by(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in snaps:
            for reason, n in by_tag(s, name, "reason", where).items():
                out[reason] = out.get(reason, 0) + int(n)
        return dict(sorted(out.items()))

    return {
        "consumed": t(sm.CONSUMED),
        "matched": t(sm.MATCHED),
        "enrolled": t(sm.ENROLLED),
        "queued": t(sm.QUEUED),
        "blocked": by(sm.BLOCKED),
        "dead_lettered": by(sm.DEAD_LETTERED),
        "filter_errors": t(sm.FILTER_ERRORS),
    }


def _partition(found: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"partition": found["partition"], "available": found["available"]}
    if not found["available"]:
        return {**out, "error": found.get("error")}
    snap = found["metrics"]
    return {
        **out,
        "started_at": found["started_at"],
        "shards": list(found["shards"]),
        "index": _totals(found.get("index")),
        **_counts([snap], None),
        "published": int(total(snap, sm.PUBLISHED)),
        "batch_errors": int(total(snap, sm.BATCH_ERRORS)),
        "invalid_triggers": int(total(snap, sm.TRIGGERS_INVALID)),
        "batch_size": percentiles(distribution([snap], sm.BATCH_SIZE)),
        "match_ms": percentiles(distribution([snap], sm.MATCH_MS)),
        "commit_latency_ms": percentiles(distribution([snap], sm.COMMIT_LATENCY_MS)),
    }


def _shard(
    lag: Mapping[str, Any], snaps: Sequence[Snapshot], partitions: int | None
) -> dict[str, Any]:
    shard = int(lag["shard"])
    out: dict[str, Any] = {
        "shard": shard,
        "partition": None if partitions is None else partition_for(shard, partitions),
        "stream_length": lag["length"],
        "pending": lag["pending"],
        "lag": lag["lag"],
    }
    if partitions is None:
        return out
    where = {"shard": str(shard)}
    latency = distribution(snaps, sm.COMMIT_LATENCY_MS, where)
    return {**out, **_counts(snaps, where), "commit_latency_ms": percentiles(latency)}


def _scheduler(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    if not found["available"]:
        return {"available": False, "error": found.get("error")}
    snap = found["metrics"]
    return {
        "available": True,
        "started_at": found["started_at"],
        "emitted": {k: int(v) for k, v in sorted(by_tag(snap, sm.EMITTED, "event").items())},
        "skipped": int(total(snap, sm.SKIPPED)),
        "stale": int(total(snap, sm.STALE)),
        "released": int(total(snap, sm.RELEASED)),
        "ticks": int(total(snap, sm.TICKS)),
    }


def _gateway(snap: Snapshot) -> list[dict[str, Any]]:
    routes: dict[str, dict[str, int]] = {}
    for s in snap.get(sm.HTTP_REQUESTS, {}).get("series", []):
        by_status = routes.setdefault(s["tags"]["route"], {})
        by_status[s["tags"]["status"]] = by_status.get(s["tags"]["status"], 0) + int(s["value"])
    return [
        {
            "route": route,
            "requests": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "ms": percentiles(distribution([snap], sm.HTTP_MS, {"route": route})),
        }
        for route, by_status in sorted(routes.items())
    ]


def build_report(
    actors: Mapping[str, Any] | None,
    partitions: int | None,
    lags: Sequence[Mapping[str, Any]],
    dead_letter_length: int,
    waiting: int,
    gateway: Snapshot,
) -> dict[str, Any]:
    """`actors`: {"partitions": [...], "scheduler": ...} as actors.client.Partitions.metrics
    returns it, or None when the API runs without actors (then only the Redis and Postgres
    figures are known). `lags`: {"shard", "length", "pending", "lag"} per shard."""
    found = list(actors["partitions"]) if actors is not None else []
    snaps = [p["metrics"] for p in found if p["available"]]
    known = partitions if actors is not None else None
    lag_values = [x["lag"] for x in lags]
    streams = {
        "stream_length": sum(x["length"] for x in lags),
        "pending": sum(x["pending"] for x in lags),
        "lag": None if None in lag_values else sum(lag_values),
        "dead_letter_length": dead_letter_length,
        "enrollments_waiting": waiting,
    }
    counts = _counts(snaps, None) if actors is not None else {}
    return {
        "actors_running": actors is not None and all(p["available"] for p in found),
        "totals": {**counts, **streams},
        "partitions": [_partition(p) for p in found],
        "shards": [_shard(x, snaps, known) for x in lags],
        "scheduler": _scheduler(actors.get("scheduler")) if actors is not None else None,
        "gateway": _gateway(gateway),
    }


def _totals(index: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A partition's index report without the accounts it names: every `stats:read` key sees
    this page, and no account may learn another's id from it."""
    if index is None:
        return None
    return {k: v for k, v in index.items() if k != "largest_accounts"}
