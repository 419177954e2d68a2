"""An asyncio event loop on a thread of its own, for Ray actors whose work runs from their
constructor on (so a restarted actor resumes by itself) and whose methods are plain calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name=name).start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the loop; the future resolves when it ends."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Run `coro` on the loop and wait for its result."""
        return self.submit(coro).result(timeout)
