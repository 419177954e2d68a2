"""How big a trigger is (docs/contract.md §15): its filters as stored JSON, and the estimate of
its compiled index, which must not fall below what the index really takes."""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipelines.examples import REALISTIC, all_of, any_of, cond
from pipelines.filters import Group, to_json
from pipelines.index import TriggerIndex, spec_from_config
from pipelines.sizes import TRIGGER_COST, filter_bytes, index_bytes, index_report
from pipelines.triggers import TriggerConfig, validate_trigger

ROOT = Path(__file__).resolve().parents[2]


def config(filters: dict[str, Any] | None, event: str = "form_submitted") -> TriggerConfig:
    category = "contact" if event == "tag_added" else "form"
    return validate_trigger(category, event, filters, {})


def parsed(filters: dict[str, Any] | None, event: str = "form_submitted") -> Group:
    return config(filters, event).filters


@pytest.mark.parametrize("event", sorted(REALISTIC))
def test_filter_bytes_are_the_stored_json_compact(event: str) -> None:
    trigger_type, filters, settings = REALISTIC[event]
    found = validate_trigger(trigger_type, event, filters, settings)
    assert filter_bytes(found.filters) == len(orjson.dumps(to_json(found.filters)))
    assert filter_bytes(found.filters) == len(orjson.dumps(found.filters_json()))


def test_text_is_counted_in_utf8_bytes() -> None:
    ascii_ = parsed(all_of(cond("form_id", "equals", "aaaa")))
    accented = parsed(all_of(cond("form_id", "equals", "ääää")))
    assert filter_bytes(accented) == filter_bytes(ascii_) + 4
    assert index_bytes(accented) == index_bytes(ascii_) + 3 * 4


def test_the_estimate_grows_with_leaves_list_values_and_text() -> None:
    empty = parsed(None)
    one = parsed(all_of(cond("form_id", "equals", "a")))
    two = parsed(all_of(cond("form_id", "equals", "a"), cond("budget", "greater_than", 5)))
    nested = parsed(all_of(cond("form_id", "equals", "a"), any_of(cond("budget", "less_than", 5))))
    listed = parsed(all_of(cond("form_id", "in", ["a", "b", "c"])))
    longer = parsed(all_of(cond("form_id", "equals", "a" * 100)))
    assert index_bytes(empty) == TRIGGER_COST
    assert TRIGGER_COST < index_bytes(one) < index_bytes(two) == index_bytes(nested)
    assert index_bytes(one) < index_bytes(listed)
    assert index_bytes(one) < index_bytes(longer)


def _measured(make: Callable[[int], TriggerConfig], count: int) -> tuple[float, float]:
    """(bytes the index takes per trigger, the estimate per trigger)."""
    account = uuid.uuid4()
    configs = [make(n) for n in range(count)]
    specs = [
        spec_from_config(c, trigger_id=uuid.uuid4(), workflow_id=uuid.uuid4(), account_id=account)
        for c in configs
    ]
    gc.collect()
    tracemalloc.start()
    try:
        index = TriggerIndex()
        index.apply_many(specs)
        gc.collect()
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert index.trigger_count() == count
    return taken / count, sum(index_bytes(c.filters) for c in configs) / count


SHAPES: dict[str, Callable[[int], TriggerConfig]] = {
    "no conditions": lambda n: config(None, "tag_added"),
    "one identifying value": lambda n: config(all_of(cond("tag", "equals", f"t{n}")), "tag_added"),
    "long text": lambda n: config(all_of(cond("tag", "equals", f"t{n}" + "x" * 1000)), "tag_added"),
    "20 conditions": lambda n: config(
        all_of(*(cond(f"answer_{k}", "greater_than", n + k) for k in range(20)))
    ),
    "identifying list of 1000": lambda n: config(
        all_of(cond("form_id", "in", [f"form-{n}-{k}" for k in range(1000)]))
    ),
    "contact list of 1000": lambda n: config(
        all_of(cond("contact.city", "not_in", [f"c-{n}-{k}" for k in range(1000)]))
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_estimate_is_not_below_what_the_index_takes(shape: str) -> None:
    """The quota is a memory budget only if the estimate holds: measured with tracemalloc on
    shapes from the smallest to the largest a trigger can be (within 10 % for noise), in a
    fresh interpreter (a test session's caches and threads would count otherwise)."""
    count = 20 if "1000" in shape else 200
    code = (
        "from tests.pipelines.test_sizes import SHAPES, _measured;"
        f" print(*_measured(SHAPES[{shape!r}], {count}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    taken, estimated = map(float, out.stdout.split())
    assert taken <= estimated * 1.1, (shape, taken, estimated)


def test_the_report_names_the_largest_accounts_first() -> None:
    sizes = [(uuid.UUID(int=n), n, 1000 * n) for n in range(1, 31)]
    report = index_report(sizes, largest=3)
    assert report["accounts"] == 30
    assert report["triggers"] == sum(range(1, 31))
    assert report["index_bytes"] == 1000 * sum(range(1, 31))
    assert report["largest_accounts"] == [
        {"account_id": str(uuid.UUID(int=n)), "triggers": n, "index_bytes": 1000 * n}
        for n in (30, 29, 28)
    ]
    assert index_report([]) == {
        "accounts": 0,
        "triggers": 0,
        "index_bytes": 0,
        "largest_accounts": [],
    }
