"""The Postgres reads of a trigger backtest, the contacts projection and enrollment history, fed
with the pages of a shard stream's window (`streams.ranges.read_window`). Reads only: nothing
is written anywhere."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterator

from pipelines.backtest import Backtest, RawEntry, Result
from store import stream
from store.db import Executor


async def run(
    bt: Backtest, pool: Executor, name: str, pages: AsyncIterator[list[RawEntry]]
) -> Result:
    """Feed the window's pages of stream `name` through `bt`, doing the reads it asks for.

    The cyclic GC is paused meanwhile, as for an index rebuild: replies and events are
    short-lived objects by the million that reference counting frees, and the collections they
    would set off cost a third of the replay. Other requests run meanwhile; their cycles wait
    for the end."""
    with _gc_paused():
        async for page in pages:
            events = bt.select(name, page)
            if not events:
                continue
            keys = bt.contacts_to_load(events)
            if keys:
                bt.add_contacts(await stream.load_contacts(pool, keys))
            matches = bt.match(events)
            pairs = bt.history_to_load(matches)
            if pairs:
                bt.add_history(await stream.load_history(pool, pairs))
            bt.settle(matches)
    return bt.result()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Off, then back on unless it was off already (backtests may overlap: the one that found
    it on turns it back on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
