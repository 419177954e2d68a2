"""The partition actor: a named, restartable Ray actor around one PartitionWorker."""

from __future__ import annotations

import os
from typing import Any

import ray

from actors.logs import configure as configure_logging
from actors.loop_thread import LoopThread
from actors.ray_metrics import RaySink
from actors.worker import PartitionWorker, WorkerConfig
from pipelines.index import Spec
from pipelines.stream_metrics import PARTITION_METRICS
from streams import names

NAMESPACE = "hairtrigger"


def partition_name(partition: int) -> str:
    return names.partition_consumer(partition)


async def _snapshot(worker: PartitionWorker) -> dict[str, Any]:
    return worker.metrics_snapshot()  # on the worker's loop: no record is half done


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class PartitionActor:
    """Its worker runs on an event loop in a thread of its own, started at construction, so a
    restarted actor resumes consuming without being told to."""

    def __init__(self, config: WorkerConfig) -> None:
        configure_logging()
        self._thread = LoopThread("worker")
        self._worker = PartitionWorker(config, RaySink(PARTITION_METRICS))
        self._serving = self._thread.submit(self._worker.serve())
        self._call = self._thread.call

    def ready(self) -> bool:
        """Blocks until the index is rebuilt and the consumer groups exist."""
        self._call(self._worker.wait_ready(), timeout=None)
        return True

    def apply_config(self, specs: list[Spec]) -> int:
        return self._call(self._worker.apply_config(specs))

    def stats(self) -> dict[str, Any]:
        return self._worker.stats()

    def metrics(self) -> dict[str, Any]:
        """The worker's metric state (counters, gauges, histograms) as plain data."""
        return self._call(_snapshot(self._worker))

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> bool:
        """Drain the batch in flight and stop consuming."""
        self._call(self._worker.stop())
        self._serving.result(timeout=60)
        return True
