"""Starting the partition actors and talking to them from the gateway or the CLI."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import ray

from actors.partition import NAMESPACE, PartitionActor, partition_name
from actors.ray_metrics import RaySink
from actors.scheduler import SCHEDULER_NAME
from actors.worker import WorkerConfig
from pipelines.index import Spec
from pipelines.metrics import MetricDef, Sink
from pipelines.sharding import partition_for, shard_for

log = logging.getLogger(__name__)

# Ray places actors that ask for no resources on a random node and ignores SPREAD for them;
# a token CPU share makes SPREAD place the partitions round-robin over the nodes.
SPREAD_CPUS = 0.001


class Partitions:
    """Handles to the N partition actors of a deployment."""

    def __init__(self, partitions: int, shards: int) -> None:
        self.partitions, self.shards = partitions, shards
        self._handles: dict[int, Any] = {}

    @classmethod
    def start(
        cls, partitions: int, shards: int, database_url: str, redis_url: str, **options: Any
    ) -> Partitions:
        """Create (or find, if already running) the named actors and wait until they are ready."""
        group = cls(partitions, shards)
        for p in range(partitions):
            config = WorkerConfig(p, partitions, shards, database_url, redis_url, **options)
            group._handles[p] = PartitionActor.options(  # type: ignore[attr-defined]
                name=partition_name(p),
                namespace=NAMESPACE,
                get_if_exists=True,
                scheduling_strategy="SPREAD",
                num_cpus=SPREAD_CPUS,
            ).remote(config)
        ray.get([h.ready.remote() for h in group._handles.values()])
        return group

    def handle(self, partition: int) -> Any:
        if partition not in self._handles:
            self._handles[partition] = ray.get_actor(partition_name(partition), NAMESPACE)
        return self._handles[partition]

    def owner(self, account_id: uuid.UUID) -> Any:
        """The actor of the account's home shard."""
        return self.handle(partition_for(shard_for(account_id, self.shards), self.partitions))

    async def push(self, account_id: uuid.UUID, specs: list[Spec]) -> bool:
        """Hand changed triggers to every partition; True once all have applied them. A
        spread account lives on several partitions, and which ones can change at any moment
        (docs/contract.md §3): each partition applies what concerns the accounts it holds, and
        the calls run side by side, so this costs one round trip whatever the count.

        False when a partition failed to apply them: the change has committed, and its
        reconciliation reads it from Postgres (docs/architecture.md §5). The caller bounds the
        wait (api.deps.push_config); a call it abandons still runs on its actor."""
        try:
            await asyncio.gather(
                *(self.handle(p).apply_config.remote(specs) for p in range(self.partitions))
            )
        except (ValueError, ray.exceptions.RayError) as exc:  # ValueError: no actor of that name
            log.warning("config push for account %s failed: %r", account_id, exc)
            return False
        return True

    def stats(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(
            [self.handle(p).stats.remote() for p in range(self.partitions)]
        )
        return result

    def metrics_sink(self, defs: tuple[MetricDef, ...]) -> Sink:
        """A sink to Ray's metrics, for a gateway running in this driver."""
        return RaySink(defs)

    async def metrics(self, wait_s: float = 5.0) -> dict[str, Any]:
        """Every partition's and the scheduler's metric snapshot; an actor that is missing or
        does not answer within `wait_s` seconds is reported as unavailable with the reason."""
        calls = [_ask(lambda p=p: self.handle(p), wait_s) for p in range(self.partitions)]
        calls.append(_ask(lambda: ray.get_actor(SCHEDULER_NAME, NAMESPACE), wait_s))
        *partitions, scheduler = await asyncio.gather(*calls)
        for p, found in enumerate(partitions):
            found.setdefault("partition", p)
        return {"partitions": partitions, "scheduler": scheduler}

    def stop(self) -> None:
        """Drain in-flight batches, then end the actors."""
        handles = [self.handle(p) for p in range(self.partitions)]
        ray.get([h.stop.remote() for h in handles], timeout=120)
        for h in handles:
            ray.kill(h, no_restart=True)


async def _ask(handle: Any, wait_s: float) -> dict[str, Any]:
    try:
        snapshot: dict[str, Any] = await asyncio.wait_for(handle().metrics.remote(), wait_s)
    except TimeoutError:
        return {"available": False, "error": f"no answer within {wait_s:g} s"}
    except (ValueError, ray.exceptions.RayError) as exc:  # ValueError: no actor of that name
        return {"available": False, "error": type(exc).__name__}
    return {"available": True, **snapshot}
