"""Trigger preview (REQ-O-001): the SQL condition pipelines/preview.py compiles counts exactly the
contacts the matcher's own predicate accepts (not-previewable conditions taken as satisfied).

The proof is brute force: a few hundred varied contacts are written through the projection's
writer, read back as the matcher sees them, and every filter of a table (and a few hundred random
ones) is evaluated both ways. The SQL twins of the value rules (migration 0004_preview) are also
checked one by one against pipelines/values.py on large corpora."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from pipelines import values
from pipelines.catalog import BY_NAME, TriggerEvent
from pipelines.compiler import EventView, compile_filters
from pipelines.errors import ConfigError
from pipelines.filters import Condition, Group, parse_filters
from pipelines.preview import (
    CHANGE,
    EVENT_FIELD,
    PREVIOUS,
    SUBMITTED,
    compile_preview,
    key_text,
    not_previewable_reason,
    number_text,
)
from pipelines.projection import Contact
from store import accounts, db, stream
from store.preview import SAMPLE_SIZE, preview
from tests.support.db import Db

HOSTILE = ["'; DROP TABLE contacts; --", "50%", "a_b", "back\\slash", "quo\"te's", "$1", "\\x00"]
STATUSES: list[Any] = [
    "customer",
    "Customer ",
    "LEAD",
    "lead",
    "  ",
    "",
    None,
    ["customer", "vip"],
    ["Lead"],
    [],
    5,
    "5",
    True,
    "true",
    {"a": 1},
    {},
    "Straße",
    "STRASSE",
    "İstanbul",
    "ǅemal",
    "\uff26\uff35\uff2c\uff2c",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    *HOSTILE,
]
SOURCES: list[Any] = ["web", "Web", "import", "api", "referral", ["web", "ads"], None, 7, "WEB "]
TAG_POOL: list[Any] = [
    "vip",
    "VIP ",
    "gold",
    "Gold",
    " new",
    "5",
    5,
    5.0,
    "5.0",
    True,
    "true",
    None,
    "",
    ["nested"],
    {"o": 1},
    "ß",
    "SS",
    "emoji😀",
    "١٢",
    *HOSTILE,
]
NUMBERS: list[Any] = [
    0,
    1,
    -3,
    42,
    9999,
    10000,
    10001,
    15000,
    12.5,
    0.1,
    1e16,
    10**17 + 1,
    2**63,
    2**64 - 1,
    -(2**63),
    "15000",
    " 15000 ",
    "1e4",
    "10000.0",
    "١٢٣",
    "-7",
    ".5",
    "abc",
    "",
    True,
    False,
    None,
    [1, 2],
    {"n": 1},
    "inf",
    "1e999",
    "0.30000000000000004",
    0.30000000000000004,
    "NaN",
]
DATES: list[Any] = [
    "1990-05-17",
    "1990-05-17T23:30:00-05:00",
    "1990-05-18T01:00:00Z",
    "1990-05-17 08:00",
    "2024-W03-1",
    "20240115",
    "17/05/1990",
    "",
    None,
    19900517,
    "1990-05-17 ",
    "2024-02-29",
    "2023-02-29",
    "2024-01-15T10:30:00.123456+05:30",
    "9999-12-30T23:00:00-05:00",
    "0001-01-02",
    "2025-01-01T00:00:00",
    "2025-01-01T00:00:00+14:00",
    ["2024-01-01"],
    True,
]
NAMES: list[Any] = ["Ann", "ANN", "anna", "Zoë", "Øyvind", "Straße", "İlker", "", None, *HOSTILE]


def _contact_states(rng: random.Random, n: int) -> list[dict[str, Any]]:
    states = []
    for i in range(n):
        state: dict[str, Any] = {}
        pick: list[tuple[str, list[Any]]] = [
            ("status", STATUSES),
            ("source", SOURCES),
            ("score", NUMBERS),
            ("amount", NUMBERS),
            ("birthday", DATES),
            ("signup_date", DATES),
            ("name", NAMES),
            ("email", NAMES),
        ]
        for field, pool in pick:
            if rng.random() < 0.85:
                state[field] = rng.choice(pool)
        roll = rng.random()
        if roll < 0.6:
            state["tags"] = rng.sample(TAG_POOL, rng.randint(0, 4))
        elif roll < 0.7:
            state["tags"] = rng.choice(["vip, gold", "VIP", 5, None, {"vip": True}, ""])
        if rng.random() < 0.5:
            state["vip"] = rng.choice([True, False, "TRUE", "yes", 1, 0, "1", "false"])
        if rng.random() < 0.6:
            state["custom_fields"] = rng.choice(
                [
                    {
                        "plan": rng.choice(["Pro", "pro ", "Free", 3]),
                        "seats": rng.choice(NUMBERS),
                        "renewal": rng.choice(DATES),
                        "nested": {"x": rng.choice(["y", "Y", 1])},
                    },
                    {"plan": None},
                    "not an object",
                    [],
                    {},
                ]
            )
        if i % 50 == 0:
            state = {}
        states.append(state)
    return states


def _write(url: str, account_id: uuid.UUID, states: list[dict[str, Any]], deleted: int) -> None:
    async def go() -> None:
        conn = await db.connect(url)
        try:
            contacts = {
                (account_id, uuid.uuid4()): Contact(state, i < deleted, datetime.now(UTC))
                for i, state in enumerate(states)
            }
            await stream.write_batch(conn, contacts, [], [], {})
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def projection(db_sync: Db) -> Iterator[tuple[uuid.UUID, list[tuple[uuid.UUID, dict[str, Any]]]]]:
    """An account with 400 varied contacts (the first 20 deleted), written by the projection's
    writer; another account holds the same states. Yields the account and its live contacts
    as the matcher reads them (jsonb through orjson)."""
    states = _contact_states(random.Random(20270615), 400)
    account_id = db_sync.run(lambda c: accounts.create_account(c, "preview"))
    other = db_sync.run(lambda c: accounts.create_account(c, "preview elsewhere"))
    _write(db_sync.url, account_id, states, deleted=20)
    _write(db_sync.url, other, states, deleted=0)
    rows = db_sync.fetch(
        "SELECT contact_id, state FROM contacts WHERE account_id = $1 AND NOT deleted", account_id
    )
    yield account_id, [(r["contact_id"], r["state"]) for r in rows]
    db_sync.run(lambda c: c.execute("DELETE FROM accounts WHERE id = ANY($1)", [account_id, other]))


ALWAYS = Condition("event.__preview__", "is_empty")  # true on EventView(data={})


def satisfiable(group: Group, event: TriggerEvent) -> Group:
    """The filter with its not-previewable conditions replaced by one that always holds."""
    return Group(
        group.logic,
        tuple(
            satisfiable(node, event)
            if isinstance(node, Group)
            else ALWAYS
            if not_previewable_reason(node, event)
            else node
            for node in group.conditions
        ),
    )


def brute_force(
    group: Group, event: TriggerEvent, contacts: list[tuple[uuid.UUID, dict[str, Any]]]
) -> set[uuid.UUID]:
    predicate = compile_filters(satisfiable(group, event), event)
    return {c for c, state in contacts if predicate(EventView(data={}, contact=state, previous={}))}


def sql_matches(db_sync: Db, account_id: uuid.UUID, group: Group, event: TriggerEvent) -> set[Any]:
    query = compile_preview(group, event, first_param=2)
    rows = db_sync.fetch(
        "SELECT contact_id FROM contacts c WHERE c.account_id = $1 AND NOT c.deleted AND "
        + query.where,
        account_id,
        *query.params,
    )
    return {r["contact_id"] for r in rows}


def cond(field: str, operator: str, *value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"field": field, "operator": operator}
    if value:
        raw["value"] = value[0]
    return raw


def AND(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": list(conditions)}


def OR(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "OR", "conditions": list(conditions)}


# (event, filters): every operator, nesting, numeric strings, ISO dates, booleans, missing
# fields, lists, hostile values, and conditions that are not about the contact.
TABLE: list[tuple[str, dict[str, Any]]] = [
    ("contact_created", AND()),
    ("contact_created", OR()),
    ("contact_created", AND(cond("status", "equals", "customer"))),
    ("contact_created", AND(cond("contact.status", "equals", "CUSTOMER"))),
    ("contact_created", AND(cond("status", "equals", "straße"))),
    ("contact_created", AND(cond("status", "equals", "σίσυφος"))),
    ("contact_created", AND(cond("status", "equals", "ǆemal"))),
    ("contact_created", AND(cond("status", "equals", "full"))),
    ("contact_created", AND(cond("status", "equals", 5))),
    ("contact_created", AND(cond("status", "equals", "5.0"))),
    ("contact_created", AND(cond("status", "equals", True))),
    ("contact_created", AND(cond("status", "equals", "TRUE"))),
    ("contact_created", AND(cond("status", "equals", ""))),
    ("contact_created", AND(cond("status", "equals", "   "))),
    ("contact_created", AND(cond("status", "not_equals", "customer"))),
    ("contact_created", AND(cond("status", "not_equals", ""))),
    ("contact_created", AND(cond("status", "in", ["lead", "customer", 5]))),
    ("contact_created", AND(cond("status", "not_in", ["lead", "customer"]))),
    ("contact_created", AND(cond("status", "contains", "cust"))),
    ("contact_created", AND(cond("status", "contains", "SS"))),
    ("contact_created", AND(cond("status", "not_contains", "e"))),
    ("contact_created", AND(cond("status", "starts_with", "LE"))),
    ("contact_created", AND(cond("status", "ends_with", "ER"))),
    ("contact_created", AND(cond("status", "is_empty"))),
    ("contact_created", AND(cond("status", "is_not_empty"))),
    ("contact_created", AND(cond("source", "in", ["web", "import"]))),
    ("contact_created", AND(cond("source", "equals", 7))),
    ("contact_created", AND(cond("source", "not_in", ["web"]))),
    ("contact_created", AND(cond("tags", "contains", "vip"))),
    ("contact_created", AND(cond("contact.tags", "contains", "VIP"))),
    ("contact_created", AND(cond("tags", "contains", 5))),
    ("contact_created", AND(cond("tags", "contains", "5"))),
    ("contact_created", AND(cond("tags", "contains", "true"))),
    ("contact_created", AND(cond("tags", "contains", "ss"))),
    ("contact_created", AND(cond("tags", "contains", "gol"))),
    ("contact_created", AND(cond("tags", "not_contains", "vip"))),
    ("contact_created", AND(cond("tags", "equals", "gold"))),
    ("contact_created", AND(cond("tags", "in", ["gold", "new", 12]))),
    ("contact_created", AND(cond("tags", "not_in", ["gold"]))),
    ("contact_created", AND(cond("tags", "starts_with", "go"))),
    ("contact_created", AND(cond("tags", "ends_with", "😀"))),
    ("contact_created", AND(cond("tags", "is_empty"))),
    ("contact_created", AND(cond("tags", "is_not_empty"))),
    ("contact_created", AND(cond("score", "greater_than", 10000))),
    ("contact_created", AND(cond("score", "greater_than", "10000"))),
    ("contact_created", AND(cond("score", "greater_than_or_equal", 10000))),
    ("contact_created", AND(cond("score", "less_than", 0.5))),
    ("contact_created", AND(cond("score", "less_than_or_equal", "1e4"))),
    ("contact_created", AND(cond("score", "greater_than", 1e16))),
    ("contact_created", AND(cond("score", "greater_than", 10**17))),
    ("contact_created", AND(cond("score", "equals", 0.30000000000000004))),
    ("contact_created", AND(cond("score", "equals", 15000))),
    ("contact_created", AND(cond("score", "equals", "15000.0"))),
    ("contact_created", AND(cond("score", "equals", 123))),
    ("contact_created", AND(cond("score", "contains", "1"))),
    ("contact_created", AND(cond("score", "contains", 0.1))),
    ("contact_created", AND(cond("score", "starts_with", "1e"))),
    ("contact_created", AND(cond("score", "ends_with", "000"))),
    ("contact_created", AND(cond("score", "greater_than", "2000-01-01"))),
    ("contact_created", AND(cond("amount", "less_than", -1))),
    ("contact_created", AND(cond("amount", "is_empty"))),
    ("contact_created", AND(cond("birthday", "greater_than", "1990-05-17"))),
    ("contact_created", AND(cond("birthday", "less_than_or_equal", "1990-05-17"))),
    ("contact_created", AND(cond("birthday", "greater_than", "1990-05-17T12:00:00Z"))),
    ("contact_created", AND(cond("birthday", "less_than", "1990-05-18T03:00:00+05:00"))),
    ("contact_created", AND(cond("signup_date", "greater_than_or_equal", "2024-01-15"))),
    ("contact_created", AND(cond("signup_date", "less_than", "2024-01-15T05:00:00"))),
    ("contact_created", AND(cond("signup_date", "equals", "2024-02-29"))),
    ("contact_created", AND(cond("vip", "equals", True))),
    ("contact_created", AND(cond("vip", "equals", "false"))),
    ("contact_created", AND(cond("vip", "not_equals", True))),
    ("contact_created", AND(cond("vip", "equals", 1))),
    ("contact_created", AND(cond("vip", "in", [True, "yes"]))),
    ("contact_created", AND(cond("custom_fields.plan", "equals", "pro"))),
    ("contact_created", AND(cond("custom_fields.seats", "greater_than", 100))),
    ("contact_created", AND(cond("custom_fields.renewal", "less_than", "2000-01-01"))),
    ("contact_created", AND(cond("custom_fields.nested.x", "equals", "y"))),
    ("contact_created", AND(cond("custom_fields.nested", "is_not_empty"))),
    ("contact_created", AND(cond("custom_fields.0", "is_empty"))),
    ("contact_created", AND(cond("custom_fields", "is_empty"))),
    ("contact_created", AND(cond("nowhere", "is_empty"))),
    ("contact_created", AND(cond("nowhere", "equals", "x"))),
    ("contact_created", AND(cond("nowhere", "not_contains", "x"))),
    ("contact_created", AND(cond("nowhere.deep.er", "not_in", ["x"]))),
    *[
        ("contact_created", AND(cond("name", op, v)))
        for v in HOSTILE
        for op in ("equals", "contains", "starts_with", "not_equals")
    ],
    *[("contact_created", AND(cond("tags", "contains", v))) for v in HOSTILE],
    ("contact_created", AND(cond("name", "equals", "zoë"))),
    ("contact_created", AND(cond("name", "equals", "i̇lker"))),
    ("contact_created", AND(cond("name", "starts_with", "øy"))),
    (
        "contact_created",
        AND(
            cond("status", "equals", "customer"),
            OR(cond("score", "greater_than", 10000), cond("tags", "contains", "vip")),
        ),
    ),
    (
        "contact_created",
        OR(
            AND(cond("status", "in", ["lead", "customer"]), cond("source", "equals", "web")),
            AND(
                cond("tags", "contains", "gold"),
                OR(cond("vip", "equals", True), cond("score", "less_than", 10)),
            ),
        ),
    ),
    (
        "contact_created",
        AND(
            cond("tags", "not_contains", "vip"),
            OR(cond("birthday", "is_empty"), cond("birthday", "greater_than", "1990-01-01")),
            cond("status", "not_in", ["lead"]),
        ),
    ),
    # not about the contact: an AND drops them, an OR holding one holds
    ("tag_added", AND(cond("tag", "equals", "vip"))),
    ("tag_added", AND(cond("tag", "equals", "vip"), cond("status", "equals", "lead"))),
    ("tag_added", OR(cond("tag", "equals", "vip"), cond("status", "equals", "lead"))),
    ("tag_added", AND(cond("event.tag", "equals", "vip"), cond("contact.tags", "contains", "vip"))),
    ("form_submitted", AND(cond("form_id", "equals", "f"), cond("budget", "greater_than", 10))),
    (
        "form_submitted",
        AND(cond("budget", "greater_than", 10), cond("contact.score", "less_than", 1)),
    ),
    (
        "form_submitted",
        OR(cond("email", "contains", "@"), cond("contact.status", "equals", "lead")),
    ),
    ("contact_updated", AND(cond("status", "changed_to", "customer"))),
    ("contact_updated", AND(cond("status", "changed"), cond("status", "equals", "customer"))),
    ("contact_updated", AND(cond("previous.status", "equals", "lead"), cond("status", "is_empty"))),
    ("contact_updated", OR(cond("status", "changed_from", "lead"), cond("tags", "contains", "x"))),
    ("contact_updated", AND(cond("current_state.status", "equals", "lead"))),
    ("deal_won", AND(cond("deal_value", "greater_than", 1000), cond("source", "equals", "web"))),
    (
        "custom_field_changed",
        AND(cond("field_value", "changed_to", "x"), cond("custom_fields.plan", "equals", "Pro")),
    ),
    ("birthday", AND(cond("vip", "equals", True), cond("event.occurrence", "is_not_empty"))),
]


@pytest.mark.parametrize(("event_name", "raw"), TABLE)
def test_preview_counts_what_the_matcher_accepts(
    db_sync: Db,
    projection: tuple[uuid.UUID, list[tuple[uuid.UUID, dict[str, Any]]]],
    event_name: str,
    raw: dict[str, Any],
) -> None:
    """REQ-O-001: the SQL condition selects exactly the contacts the compiled predicate accepts,
    with the not-previewable conditions taken as satisfied."""
    account_id, contacts = projection
    event = BY_NAME[event_name]
    group = parse_filters(raw, event)
    assert sql_matches(db_sync, account_id, group, event) == brute_force(group, event, contacts)


def test_table_is_not_trivial(
    projection: tuple[uuid.UUID, list[tuple[uuid.UUID, dict[str, Any]]]],
) -> None:
    """The contacts tell the filters apart: most filters of the table match some contacts and
    miss others."""
    _, contacts = projection
    sizes = [
        len(brute_force(parse_filters(raw, BY_NAME[e]), BY_NAME[e], contacts)) for e, raw in TABLE
    ]
    assert len(contacts) == 380
    assert sum(0 < n < len(contacts) for n in sizes) > len(TABLE) * 0.75


FIELDS = [
    "status",
    "source",
    "tags",
    "score",
    "amount",
    "birthday",
    "signup_date",
    "name",
    "vip",
    "custom_fields.plan",
    "custom_fields.seats",
    "custom_fields.renewal",
    "contact.tags",
    "nowhere",
]
SCALARS: list[Any] = [
    "customer",
    "LEAD",
    "vip",
    "gold",
    "5",
    5,
    5.0,
    10000,
    "15000",
    0.1,
    True,
    False,
    "true",
    "straße",
    "Pro",
    "",
    "1990-05-17",
    "2024-01-15T10:30:00Z",
    "web",
    "ss",
    "1e4",
    *HOSTILE,
]
ORDERED: list[Any] = [
    0,
    1,
    10000,
    "15000",
    12.5,
    "-7",
    "1990-05-17",
    "2024-01-15T05:00:00+02:00",
    "0001-01-01",
    "2025-01-01",
]


def _random_condition(rng: random.Random) -> dict[str, Any]:
    field = rng.choice(FIELDS)
    op = rng.choice(
        [
            "equals",
            "not_equals",
            "contains",
            "not_contains",
            "starts_with",
            "ends_with",
            "greater_than",
            "less_than",
            "greater_than_or_equal",
            "less_than_or_equal",
            "in",
            "not_in",
            "is_empty",
            "is_not_empty",
        ]
    )
    if op in ("is_empty", "is_not_empty"):
        return cond(field, op)
    if op in ("in", "not_in"):
        return cond(field, op, rng.sample(SCALARS, rng.randint(1, 4)))
    if op.startswith(("greater", "less")):
        return cond(field, op, rng.choice(ORDERED))
    pool = (
        [v for v in SCALARS if not isinstance(v, bool)]
        if "with" in op or "contain" in op
        else SCALARS
    )
    return cond(field, op, rng.choice(pool))


def _random_group(rng: random.Random, depth: int) -> dict[str, Any]:
    nodes = [
        _random_group(rng, depth + 1)
        if depth < 3 and rng.random() < 0.3
        else _random_condition(rng)
        for _ in range(rng.randint(1, 4))
    ]
    return {"logic": rng.choice(["AND", "OR"]), "conditions": nodes}


def test_random_filters_agree_with_the_matcher(
    db_sync: Db, projection: tuple[uuid.UUID, list[tuple[uuid.UUID, dict[str, Any]]]]
) -> None:
    """300 random nested filters over the same contacts: SQL and brute force agree on each."""
    account_id, contacts = projection
    rng = random.Random(42)
    checked = 0
    event = BY_NAME["contact_created"]
    while checked < 300:
        try:
            group = parse_filters(_random_group(rng, 1), event)
        except ConfigError:
            continue
        expected = brute_force(group, event, contacts)
        assert sql_matches(db_sync, account_id, group, event) == expected, group
        checked += 1


def test_store_preview_counts_samples_and_keeps_tenants_apart(
    db_sync: Db, projection: tuple[uuid.UUID, list[tuple[uuid.UUID, dict[str, Any]]]]
) -> None:
    """store.preview: the count of live contacts of this account only (the other account holds
    the same states; deleted contacts never count), and up to 10 samples that match."""
    account_id, contacts = projection
    event = BY_NAME["contact_created"]
    group = parse_filters(AND(cond("tags", "contains", "vip")), event)
    expected = brute_force(group, event, contacts)

    async def go() -> Any:
        conn = await db.connect(db_sync.url)
        try:
            return await preview(conn, account_id, group, event)
        finally:
            await conn.close()

    total, samples, query = asyncio.run(go())
    assert total == len(expected) > SAMPLE_SIZE
    assert len(samples) == SAMPLE_SIZE
    assert {s.contact_id for s in samples} <= expected
    assert [s.updated_at for s in samples] == sorted((s.updated_at for s in samples), reverse=True)
    assert query.not_previewable == ()


# Pure: what the compiler writes.


def test_values_travel_only_as_parameters() -> None:
    """Injection-proof by construction: neither values nor field names appear in the SQL."""
    event = BY_NAME["contact_created"]
    raw = AND(
        *[cond(f"f{i}", "equals", v) for i, v in enumerate(HOSTILE)],
        cond("tags", "contains", "'; DROP TABLE contacts; --"),
        cond("custom_fields.weird-name_1", "starts_with", "%_"),
    )
    query = compile_preview(parse_filters(raw, event), event, first_param=2)
    for value in ["f0", "weird-name_1", "custom_fields", "DROP", "%_", "\\", '"']:
        assert value not in query.where
    assert set(re.findall(r"'[^']*'", query.where)) == {"'array'"}  # the templates' only literal
    assert "'; drop table contacts; --" in query.params
    assert "weird-name_1" in query.params


def test_parameters_are_numbered_from_the_first_given() -> None:
    event = BY_NAME["contact_created"]
    query = compile_preview(parse_filters(AND(cond("status", "equals", "x")), event), event, 5)
    numbers = {int(part.split("::")[0]) for part in query.where.split("$")[1:]}
    assert numbers == set(range(5, 5 + len(query.params)))


@pytest.mark.parametrize(
    ("event_name", "field", "operator", "reason"),
    [
        ("tag_added", "tag", "equals", EVENT_FIELD),
        ("tag_added", "event.tag", "equals", EVENT_FIELD),
        ("form_submitted", "budget", "equals", SUBMITTED),
        ("survey_completed", "answer", "equals", SUBMITTED),
        ("contact_updated", "previous.status", "equals", PREVIOUS),
        ("contact_updated", "status", "changed_to", CHANGE),
        ("contact_updated", "current_state.status", "equals", EVENT_FIELD),
        ("deal_won", "contact_id", "equals", EVENT_FIELD),
        ("form_submitted", "contact.email", "equals", None),
        ("tag_added", "status", "equals", None),
        ("birthday", "custom_fields.plan", "equals", None),
    ],
)
def test_not_previewable_reasons(event_name: str, field: str, operator: str, reason: str) -> None:
    condition = Condition(field, operator, None if operator == "changed" else "x")
    assert not_previewable_reason(condition, BY_NAME[event_name]) == reason


def test_event_conditions_are_listed_and_satisfied() -> None:
    """An AND drops them; an OR holding one holds as a whole; all are listed."""
    event = BY_NAME["tag_added"]

    def compiled(raw: dict[str, Any]) -> Any:
        return compile_preview(parse_filters(raw, event), event)

    only_event = compiled(AND(cond("tag", "equals", "vip"), cond("tag", "in", ["a"])))
    assert only_event.where == "TRUE"
    assert only_event.params == ()
    assert [(n.field, n.operator, n.value) for n in only_event.not_previewable] == [
        ("tag", "equals", "vip"),
        ("tag", "in", ("a",)),
    ]
    either = compiled(OR(cond("tag", "equals", "vip"), cond("status", "equals", "x")))
    assert either.where == "TRUE"
    assert len(either.not_previewable) == 1
    both = compiled(AND(cond("tag", "equals", "vip"), cond("status", "equals", "x")))
    assert "ht_key" in both.where
    assert len(both.not_previewable) == 1


def test_values_that_match_nothing_compile_to_false() -> None:
    event = BY_NAME["contact_created"]
    for raw in (
        cond("status", "equals", "  "),
        cond("status", "contains", " "),
        cond("status", "starts_with", ""),
    ):
        assert compile_preview(parse_filters(AND(raw), event), event).where == "FALSE"
    negated = compile_preview(parse_filters(AND(cond("status", "not_equals", "")), event), event)
    assert negated.where == "TRUE"


def test_key_text_and_number_text_follow_normalize_key() -> None:
    assert key_text(" VIP ") == "s:vip"
    assert key_text("Straße") == "s:strasse"
    assert key_text("15000") == key_text(15000) == key_text(15000.0) == "n:15000"
    assert key_text("1e4") == "n:10000"
    assert key_text(True) == key_text("TRUE") == "b:true"
    assert key_text("") is None
    assert key_text("  ") is None
    assert number_text(0.1) == "0.1"
    assert number_text(1.5e-7) == "0.00000015"
    assert number_text(float("inf")) == "Infinity"
    assert number_text(-0.0) == "0"
    assert number_text(2.0**60) == str(2**60)


# The SQL twins of pipelines/values.py, one by one.


def _sql_values(db_sync: Db, sql: str, items: list[Any]) -> list[Any]:
    rows = db_sync.fetch(
        f"SELECT {sql} AS v FROM unnest($1::text[]) WITH ORDINALITY AS u(s, i) ORDER BY i", items
    )
    return [r["v"] for r in rows]


def test_sql_casefold_and_strip_match_python_for_every_character(db_sync: Db) -> None:
    chars = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    alone = [c for c in chars if c.casefold() != c or ord(c) < 0x3000]
    assert _sql_values(db_sync, "ht_fold(s)", alone) == [c.casefold() for c in alone]
    mixed = ["".join(chars[i : i + 300]) for i in range(0, len(chars), 300)]
    assert _sql_values(db_sync, "ht_fold(s)", mixed) == [s.casefold() for s in mixed]
    spaced = [f"{c}x{c}" for c in chars[:0x3100]]
    assert _sql_values(db_sync, "ht_strip(s)", spaced) == [s.strip() for s in spaced]


def _numeric_texts(rng: random.Random) -> list[str]:
    texts = [
        "15000",
        " 15000 ",
        "1.50",
        "+5",
        "-0",
        ".5",
        "5.",
        "1e5",
        "1E-5",
        "1e999",
        "-1e999",
        "1e-400",
        "0.30000000000000001",
        "9007199254740993",
        "9007199254740993.0",
        "1" * 4000,
        "1" * 4001,
        "0" * 4000 + "5",
        "١٢٣",
        "\u0661.\u0665",
        "٣e٢",
        "1_000",
        "1,5",
        "",
        "abc",
        "1e",
        "e5",
        ".",
        "+",
        "-.5e-3",
        "0x10",
        "\u30007\u3000",
        "1e99999999999999999999",
        "0e99999999999999999999",
        "0." + "0" * 20000 + "1",
        "1" + "0" * 2000 + ".5",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "true",
        "ß",
    ]
    for _ in range(500):
        text = str(rng.randint(0, 10 ** rng.randint(1, 25)))
        if rng.random() < 0.7:
            text += "." + str(rng.randint(0, 10 ** rng.randint(0, 20)))
        if rng.random() < 0.5:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 330))
        texts.append(rng.choice(["", "-", "+", " "]) + text)
    return texts


def test_sql_numbers_and_keys_of_text_match_python(db_sync: Db) -> None:
    """as_number and normalize_key of str: numeric text (Unicode digits, exponents, overflow,
    numbers past 4000 digits), booleans and casefolded text."""
    texts = _numeric_texts(random.Random(1))
    numbers = [None if (n := values.as_number(t)) is None else number_text(n) for t in texts]
    assert _sql_values(db_sync, "ht_canon(ht_num_text(s))", texts) == numbers
    assert _sql_values(db_sync, "ht_text_key(s)", texts) == [key_text(t) for t in texts]


def test_sql_reads_json_numbers_as_the_matcher_does(db_sync: Db) -> None:
    """jsonb numbers as orjson reads them: ints within 64 bits, doubles otherwise; their keys,
    numbers and text (str() of the int or the double) match pipelines/values.py."""
    rng = random.Random(2)
    literals = [
        "0",
        "-0",
        "1.0",
        "1.50",
        "1e2",
        "1.5e-3",
        "0.1",
        "0.30000000000000001",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1e-400",
        "9007199254740993.0",
        "1e300",
        "0.000015",
        "0.0001",
        "4503599627370497.5",
    ]
    for _ in range(500):
        literals.append(
            f"{rng.choice(['', '-'])}{rng.randint(0, 10 ** rng.randint(1, 22))}"
            f"{rng.choice(['', '.' + str(rng.randint(0, 10 ** rng.randint(1, 18)))])}"
            f"{rng.choice(['', 'e' + str(rng.randint(-320, 290))])}"
        )
    docs = [f'{{"v": {n}}}' for n in literals]
    rows = db_sync.fetch(
        "SELECT d AS d, ht_canon(ht_num(d -> 'v')) AS n, ht_key(d -> 'v') AS k,"
        " ht_text(d -> 'v') AS t"
        " FROM unnest($1::text[]::jsonb[]) WITH ORDINALITY AS u(d, i) ORDER BY i",
        docs,
    )
    for literal, row in zip(literals, rows, strict=True):
        value = row["d"]["v"]
        number = values.as_number(value)
        expected = (
            None if number is None else number_text(number),
            key_text(value),
            values.as_text(value),
        )
        assert (row["n"], row["k"], row["t"]) == expected, literal


def _key(value: Any) -> str | None:
    """ht_key's text: key_text of a scalar, a marker for a non-empty list or object."""
    if isinstance(value, list | dict):
        return None if not value else "*list" if isinstance(value, list) else "*obj"
    return key_text(value)


def test_sql_keys_texts_and_emptiness_of_any_json_match_python(db_sync: Db) -> None:
    samples: list[Any] = [
        *STATUSES,
        *SOURCES,
        *TAG_POOL,
        *NUMBERS,
        *DATES,
        *NAMES,
        [["a"], {"b": 1}, None, "", "A"],
        [None],
        [""],
        {"": None},
    ]
    docs = [{"v": v} for v in samples]
    rows = db_sync.fetch(
        "SELECT ht_key(d -> 'v') AS k, ht_keys(d -> 'v') AS ks, ht_text(d -> 'v') AS t,"
        " ht_empty(d -> 'v') AS e, ht_empty(d -> 'nothing') AS missing"
        " FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(d, i) ORDER BY i",
        docs,
    )
    for value, row in zip(samples, rows, strict=True):
        assert row["k"] == _key(value), value
        if isinstance(value, list):
            assert row["ks"] == [k for k in map(_key, value) if k is not None], value
        else:
            assert row["ks"] == ([] if value is None or isinstance(value, dict) else ["*scalar"])
        assert row["t"] == values.as_text(value), value
        assert row["e"] is values.is_empty(value)
        assert row["missing"] is True


def _date_texts(rng: random.Random, n: int) -> list[str]:
    base = [
        "2024-01-15",
        "2024-01-15T10:30:00",
        "2024-01-15T10:30:00Z",
        "2024-01-15 10:30",
        "2024-01-15T10:30:00+05:30",
        "2024-01-15T10:30:00.123456-08:00",
        "20240115",
        "20240115T103000",
        "2024-W03-1",
        "2024W031",
        "2024-W03",
        "2024W03T10",
        "2020-W53-7T23:59:59.999999+23:59",
        "0001-01-01T00:00+01:00",
        "9999-12-31T23:59:59-00:01",
        "2024-02-29",
        "2023-02-29",
        "2024-01-15T10:30:00,5",
        "2024-01-15T10",
        "2024-01-15T1030",
        "2024-01-15T10:30:00:12",
        "2024-01-15T10:+05:00",
        "2024-01-15é10:30",
        "2024-01-15\U0001f60010:30",
        " 2024-01-15 ",
        "20240101ab",
        "2024-01-15T10:30:00+05:99",
        "2024-01-15T10:30+0000:00.5",
        "2024-01-15T24:00",
        "2024-01-15T10:30:00Zx",
        "2024-W01x1",
        "\u0661\u0662\u0663\u0664-01-01",
        "2015-W53-5",
        "2016-W53-1",
        "2024-01-15T10:30:00+05:30:15.5",
        "2024-01-15T10:30:00+24:00",
        "0000-01-01",
    ]
    texts = list(base)
    alphabet = "0123456789-:TZ+., Wé\u00a0x"
    for _ in range(n):
        chars = list(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            kind = rng.randrange(3)
            if kind == 0:
                chars[i] = rng.choice(alphabet)
            elif kind == 1:
                chars.insert(i, rng.choice(alphabet))
            elif len(chars) > 1:
                del chars[i]
        texts.append("".join(chars))
    for _ in range(n // 2):
        text = f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"
        if rng.random() < 0.7:
            text += rng.choice("T ") + f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}"
            if rng.random() < 0.5:
                text += f":{rng.randint(0, 60):02d}.{rng.randint(0, 10 ** rng.randint(1, 8))}"
            if rng.random() < 0.6:
                text += rng.choice(["Z", f"{rng.choice('+-')}{rng.randint(0, 25):02d}:30"])
        texts.append(text)
    return texts


def test_sql_dates_match_python_fromisoformat(db_sync: Db) -> None:
    """as_when: every format Python 3.11's fromisoformat reads (week dates, basic formats, any
    separator, offsets with seconds), its quirks, and UTC conversion with overflow."""
    texts = _date_texts(random.Random(3), 3000)
    rows = db_sync.fetch(
        "SELECT ht_when(to_jsonb(s)) AS w, ht_is_date(to_jsonb(s)) AS d"
        " FROM unnest($1::text[]) WITH ORDINALITY AS u(s, i) ORDER BY i",
        texts,
    )
    got = [None if r["w"] is None else (r["w"], r["d"]) for r in rows]
    assert got == [values.as_when(t) for t in texts]
    assert sum(g is not None for g in got) > len(texts) / 3


def test_a_preview_that_runs_too_long_is_cancelled(db_sync: Db) -> None:
    """The statement timeout: the route turns the cancellation into a 503 problem."""

    async def go() -> None:
        conn = await db.connect(db_sync.url)
        try:
            account_id = await accounts.create_account(conn, "big", "UTC")
            await conn.execute(
                "INSERT INTO contacts (account_id, contact_id, state) SELECT $1,"
                " gen_random_uuid(), jsonb_build_object('notes', md5(i::text))"
                " FROM generate_series(1, 50000) AS i",
                account_id,
            )
            event = BY_NAME["contact_created"]
            group = parse_filters(AND(cond("notes", "ends_with", "zz")), event)  # unindexed
            with pytest.raises(asyncpg.QueryCanceledError):
                await preview(conn, account_id, group, event, timeout_ms=1)
            total, _, _ = await preview(conn, account_id, group, event)  # the default: enough
            assert total == 0  # md5 is hex: never ends with zz
            await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        finally:
            await conn.close()

    asyncio.run(go())
