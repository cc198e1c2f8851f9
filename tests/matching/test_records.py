"""The responder's records table: bulk upsert, tombstones, and reading changes by version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.db import NodeBase
from gateway.identifiers import Identifier, IdentifierKind
from nodes.records import (
    changed_id_ranges,
    changed_since,
    count_changed,
    current_version,
    delete_records,
    live_records,
    upsert_records,
)
from tests.postgres import Databases, opened

PHONE = IdentifierKind.PHONE
CARD = IdentifierKind.BANK_CARD


def phone(n: int) -> Identifier:
    return Identifier(PHONE, f"+86138{n:08d}")


@pytest.fixture
def engine(databases: Databases) -> Iterator[Engine]:
    """A fresh node database on the module's backend (SQLite, then PostgreSQL)."""
    with opened(databases.url("node")) as engine:
        NodeBase.metadata.create_all(engine)
        yield engine


def test_upsert_adds_changes_and_skips_unchanged(engine: Engine) -> None:
    first = upsert_records(engine, [(phone(i), {"status": "ACTIVE"}) for i in range(5000)])
    assert (first.added, first.changed, first.unchanged) == (5000, 0, 0)
    assert current_version(engine) == 1
    batch = [(phone(i), {"status": "ACTIVE"}) for i in range(10)]
    batch += [(phone(i), {"status": "CLOSED"}) for i in range(10, 13)]
    batch += [(phone(9000), {"status": "NEW"}), (Identifier(CARD, "6212261234567890128"), {})]
    second = upsert_records(engine, batch)
    assert (second.added, second.changed, second.unchanged) == (2, 3, 10)
    changed = list(changed_since(engine, 1))
    assert sorted(r.value for r in changed) == sorted(
        [
            "+8613800000010",
            "+8613800000011",
            "+8613800000012",
            "+8613800009000",
            "6212261234567890128",
        ]
    )
    assert {r.version for r in changed} == {2}
    assert changed[0].identifier().kind in (PHONE, CARD)


def test_the_last_of_duplicate_identifiers_wins(engine: Engine) -> None:
    result = upsert_records(engine, [(phone(1), {"s": "a"}), (phone(1), {"s": "b"})])
    assert (result.added, result.changed) == (1, 0)
    assert [r.attribute_map() for r in live_records(engine)] == [{"s": "b"}]


def test_delete_leaves_a_tombstone_that_changed_since_reports(engine: Engine) -> None:
    upsert_records(engine, [(phone(i), {}) for i in range(4)])
    assert delete_records(engine, [phone(1), phone(2), phone(77)]) == 2
    assert delete_records(engine, [phone(1)]) == 0
    assert [r.value for r in live_records(engine)] == ["+8613800000000", "+8613800000003"]
    tombstones = list(changed_since(engine, 1))
    assert [(r.value, r.deleted) for r in tombstones] == [
        ("+8613800000001", 1),
        ("+8613800000002", 1),
    ]
    upsert_records(engine, [(phone(1), {})])
    assert [r.deleted for r in changed_since(engine, current_version(engine) - 1)] == [0]


def test_live_records_filters_by_kind_and_attributes(engine: Engine) -> None:
    upsert_records(
        engine,
        [
            (phone(1), {"status": "ACTIVE"}),
            (phone(2), {"status": "DORMANT"}),
            (Identifier(CARD, "6212261234567890128"), {"status": "ACTIVE"}),
        ],
    )
    assert [r.value for r in live_records(engine, PHONE, {"status": "ACTIVE"})] == [
        "+8613800000001"
    ]
    assert len(list(live_records(engine, None, {"status": "ACTIVE"}, page=1))) == 2
    assert len(list(live_records(engine, CARD))) == 1


def test_changed_since_honours_until_and_id_ranges(engine: Engine) -> None:
    upsert_records(engine, [(phone(i), {}) for i in range(10)])
    upsert_records(engine, [(phone(i), {"x": "1"}) for i in range(3)])
    assert count_changed(engine, 0, 1) == 7
    assert len(list(changed_since(engine, 0, until=1))) == 7
    ranges = list(changed_id_ranges(engine, 0, 2, 4))
    assert [count for _, _, count in ranges] == [4, 4, 2]
    first, last, _ = ranges[1]
    assert [r.id for r in changed_since(engine, 0, until=2, ids=(first, last))] == list(
        range(first, last + 1)
    )
    assert count_changed(engine, 0, 2, live_only=True) == 10


def test_changed_id_ranges_with_gaps_count_only_changed_rows(engine: Engine) -> None:
    """Changed ids that are not one unbroken run are numbered, not cut by arithmetic."""
    upsert_records(engine, [(phone(i), {}) for i in range(10)])
    ids = [r.id for r in changed_since(engine, 0, until=1)]
    upsert_records(engine, [(phone(i), {"x": "2"}) for i in (0, 4, 5, 9)])
    ranges = list(changed_id_ranges(engine, 1, 2, 3))
    assert ranges == [(ids[0], ids[5], 3), (ids[9], ids[9], 1)]
    assert list(changed_id_ranges(engine, 2, 2, 3)) == []
