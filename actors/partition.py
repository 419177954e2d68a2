"""The partition actor: a named, restartable Ray actor around one PartitionWorker."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import ray

from actors.worker import PartitionWorker, WorkerConfig
from hairtrigger import names
from hairtrigger.logs import configure as configure_logging
from pipelines.index import TriggerSpec

NAMESPACE = "hairtrigger"
T = TypeVar("T")


def partition_name(partition: int) -> str:
    return names.partition_consumer(partition)


@ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class PartitionActor:
    """Its worker runs on an event loop in a thread of its own, started at construction, so a
    restarted actor resumes consuming without being told to."""

    def __init__(self, config: WorkerConfig) -> None:
        configure_logging()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="worker").start()
        self._worker = PartitionWorker(config)
        self._serving = asyncio.run_coroutine_threadsafe(self._worker.serve(), self._loop)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def ready(self) -> bool:
        """Blocks until the index is rebuilt and the consumer groups exist."""
        self._call(self._worker.wait_ready(), timeout=None)
        return True

    def apply_config(self, specs: list[TriggerSpec]) -> int:
        return self._call(self._worker.apply_config(specs))

    def stats(self) -> dict[str, Any]:
        return self._worker.stats()

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> bool:
        """Drain the batch in flight and stop consuming."""
        self._call(self._worker.stop())
        self._serving.result(timeout=60)
        return True
