"""The Postgres reads of a trigger backtest, the contacts projection and enrollment history, fed
with the pages of a shard stream's window (`streams.ranges.read_window`). Reads only: nothing
is written anywhere."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterator

from pipelines.backtest import Backtest, RawEntry, Result
from pipelines.messages import Event
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
            await _replay(bt, pool, bt.select(name, page))
    return bt.result()


async def run_merged(
    bt: Backtest, pool: Executor, pages: AsyncIterator[list[tuple[str, list[RawEntry]]]]
) -> Result:
    """The same over several streams (a spread account's shards), each page a time-ordered
    run of entries from one stream after another (`streams.ranges.read_windows`)."""
    with _gc_paused():
        async for page in pages:
            await _replay(bt, pool, [e for name, run in page for e in bt.select(name, run)])
    return bt.result()


async def _replay(bt: Backtest, pool: Executor, events: list[Event]) -> None:
    if not events:
        return
    keys = bt.contacts_to_load(events)
    if keys:
        bt.add_contacts(await stream.load_contacts(pool, keys))
    matches = bt.match(events)
    pairs = bt.history_to_load(matches)
    if pairs:
        bt.add_history(await stream.load_history(pool, pairs))
    bt.settle(matches)


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
