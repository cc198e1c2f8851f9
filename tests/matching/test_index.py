"""The responder's match index: full build, incremental update, rebuild on new parameters.

Expected rows are computed independently: the OPRF output through the querier's side of
the protocol (blind, evaluate, finalize), bucket, tag and label with tests.matching.reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, inspect, select, update

from gateway.crypto.blinded import OprfClient, OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, IdentifierKind
from gateway.matching.derive import FORMAT
from gateway.matching.index_store import (
    MatchIndexRow,
    MatchIndexStateRow,
    fetch_buckets,
    read_state,
)
from nodes.index_build import (
    CHUNK,
    INLINE_BELOW,
    UNIT,
    IndexBacklog,
    IndexUpdate,
    _guided,
    build_unfinished,
    update_index,
)
from nodes.records import RecordRow, current_version, delete_records, upsert_records
from tests.matching import reference
from tests.postgres import Databases, opened

FIELDS = ["status", "record_id"]


def phone(n: int) -> Identifier:
    return Identifier(IdentifierKind.PHONE, f"+86139{n:08d}")


def attributes(n: int, status: str = "ACTIVE") -> dict[str, str]:
    return {"status": status, "record_id": f"R{n}", "holder_name": f"name {n}"}


@pytest.fixture
def engine(databases: Databases) -> Iterator[Engine]:
    """A fresh node database on the module's backend (SQLite, then PostgreSQL)."""
    with opened(databases.url("node")) as engine:
        NodeBase.metadata.create_all(engine)
        yield engine


def oprf_output(server: OprfServer, x: bytes) -> bytes:
    """F_k(x) by the querier's route: blind, have the server evaluate, verify, unblind."""
    client = OprfClient(server.public_key)
    batch = client.blind([x])
    evaluated, proof = server.blind_evaluate_batch(batch.blinded_elements)
    return client.finalize(batch, evaluated, proof)[0]


def index_rows(engine: Engine) -> dict[int, MatchIndexRow]:
    with engine.connect() as conn:
        rows = conn.execute(select(MatchIndexRow.__table__)).all()
    return {row.record_id: row for row in rows}


def record_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {value: rid for rid, value in conn.execute(select(RecordRow.id, RecordRow.value))}


def build(engine: Engine, server: OprfServer, **kwargs: object) -> IndexUpdate:
    options: dict[str, object] = {"bucket_bits": 8, "label_fields": FIELDS, "workers": 1}
    options.update(kwargs)
    return update_index(engine, server.private_key_bytes(), **options)  # type: ignore[arg-type]


def test_full_build_rows_match_an_independent_computation(engine: Engine) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(40)])
    update = build(engine, server)
    assert (update.rebuilt, update.indexed, update.removed, update.version) == (True, 40, 0, 1)
    rows, ids = index_rows(engine), record_ids(engine)
    assert len(rows) == 40
    for n in (0, 17, 39):
        x = phone(n).canonical_input()
        y = oprf_output(server, x)
        row = rows[ids[phone(n).value]]
        assert row.bucket == reference.bucket(x, 8)
        assert row.tag == reference.tag(y)
        label = reference.open_label(y, row.label)
        # Only the allowed fields and the handle: holder_name is never in a label.
        assert label == {"status": "ACTIVE", "record_id": f"R{n}", "handle": str(row.record_id)}
    # A build draws a chunk's nonces at once: each label still has its own.
    assert len({row.label[:12] for row in rows.values()}) == 40


def test_incremental_update_adds_changes_and_removes(engine: Engine) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(20)])
    build(engine, server)
    before, ids = index_rows(engine), record_ids(engine)

    upsert_records(engine, [(phone(n), attributes(n, "FROZEN")) for n in (3, 4)])
    upsert_records(engine, [(phone(n), attributes(n)) for n in (20, 21)])
    delete_records(engine, [phone(5)])
    update = build(engine, server)
    assert (update.rebuilt, update.indexed, update.removed) == (False, 4, 1)

    after, ids = index_rows(engine), record_ids(engine)
    assert set(after) == set(before) - {ids[phone(5).value]} | {
        ids[phone(20).value],
        ids[phone(21).value],
    }
    for n in (3, 4):
        y = oprf_output(server, phone(n).canonical_input())
        assert reference.open_label(y, after[ids[phone(n).value]].label)["status"] == "FROZEN"
    unchanged = ids[phone(7).value]
    assert after[unchanged].label == before[unchanged].label, "an unchanged record is not redone"
    again = build(engine, server)
    assert (again.indexed, again.removed) == (0, 0)


def test_a_deleted_then_restored_record_comes_back(engine: Engine) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(1), attributes(1))])
    build(engine, server)
    delete_records(engine, [phone(1)])
    build(engine, server)
    assert index_rows(engine) == {}
    upsert_records(engine, [(phone(1), attributes(1))])
    build(engine, server)
    assert len(index_rows(engine)) == 1


@pytest.mark.parametrize(
    "change",
    [{"bucket_bits": 9}, {"label_fields": ["status"]}, {"key": True}],
    ids=["bucket-bits", "label-fields", "key"],
)
def test_new_parameters_rebuild_the_whole_index(engine: Engine, change: dict[str, object]) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(10)])
    build(engine, server)
    options = dict(change)
    if options.pop("key", False):
        server = OprfServer.generate()
    update = build(engine, server, **options)
    assert (update.rebuilt, update.indexed) == (True, 10)
    state = read_state(engine)
    assert state is not None and state.version == 1


def test_max_changes_refuses_a_large_backlog_and_changes_nothing(engine: Engine) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(10)])
    with pytest.raises(IndexBacklog) as caught:
        build(engine, server, max_changes=5)
    assert caught.value.count == 10
    assert read_state(engine) is None


def test_parallel_build_equals_inline_build(tmp_path: Path) -> None:
    server = OprfServer.generate()
    count = INLINE_BELOW + 500
    engines = []
    for name, workers in (("inline", 1), ("parallel", 2)):
        engine = make_engine(str(tmp_path / f"{name}.db"))
        NodeBase.metadata.create_all(engine)
        upsert_records(engine, [(phone(n), attributes(n)) for n in range(count)])
        seen: list[tuple[int, int]] = []
        update = build(
            engine, server, workers=workers, progress=lambda d, t, s=seen: s.append((d, t))
        )
        assert update.indexed == count
        assert seen[0] == (0, count) and seen[-1] == (count, count)
        engines.append(engine)
    inline, parallel = (index_rows(e) for e in engines)
    assert {k: (r.bucket, r.tag) for k, r in inline.items()} == {
        k: (r.bucket, r.tag) for k, r in parallel.items()
    }


def test_tasks_cover_every_range_once_and_shrink_towards_the_end() -> None:
    total = 100_000
    units = [(i, i + UNIT - 1, UNIT) for i in range(1, total, UNIT)]
    tasks = list(_guided(iter(units), total, workers=2))
    assert tasks[0] == (1, CHUNK, CHUNK)
    assert all(b[0] == a[1] + 1 for a, b in pairwise(tasks))
    assert tasks[-1][1] == total and sum(rows for *_, rows in tasks) == total
    assert max(rows for *_, rows in tasks) == CHUNK
    assert [rows for *_, rows in tasks[-4:]] == [UNIT] * 4


def test_fetch_buckets_returns_exactly_the_asked_buckets(engine: Engine) -> None:
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(50)])
    build(engine, server, bucket_bits=4)
    rows = index_rows(engine).values()
    found = fetch_buckets(engine, [1, 3])
    assert set(found) == {1, 3}
    for bucket in (1, 3):
        assert sorted(found[bucket]) == sorted((r.tag, r.label) for r in rows if r.bucket == bucket)


def test_an_index_of_an_older_format_is_rebuilt_not_read(engine: Engine) -> None:
    """A format-1 index (HKDF tags, JSON labels) would mis-match: the next update redoes it."""
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(10)])
    build(engine, server)
    with engine.begin() as conn:
        conn.execute(update(MatchIndexStateRow.__table__).values(format=1))
        conn.execute(update(MatchIndexRow.__table__).values(tag=b"old-tag!"))
    state = read_state(engine)
    assert state is not None and state.params.format == 1
    again = build(engine, server)
    assert (again.rebuilt, again.indexed) == (True, 10)
    state = read_state(engine)
    assert state is not None and state.params.format == FORMAT == 2
    ids = record_ids(engine)
    x = phone(3).canonical_input()
    assert index_rows(engine)[ids[phone(3).value]].tag == reference.tag(oprf_output(server, x))


def test_a_full_build_cut_short_is_redone_from_scratch(engine: Engine) -> None:
    """Rows a crashed full build left behind are never answered from: the node refuses
    while the build is unfinished, and the next update rebuilds every row."""
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(12)])
    build(engine, server)
    ids = record_ids(engine)
    state = read_state(engine)
    assert state is not None and not build_unfinished(state, current_version(engine))
    with engine.begin() as conn:  # a rebuild that wrote one stray row, then died
        conn.execute(update(MatchIndexStateRow.__table__).values(version=0))
        conn.execute(delete(MatchIndexRow.__table__))
        conn.execute(
            insert(MatchIndexRow.__table__).values(
                record_id=ids[phone(1).value], bucket=0, tag=b"stale!!!", label=b"x"
            )
        )
    state = read_state(engine)
    assert state is not None and build_unfinished(state, current_version(engine))
    again = build(engine, server)
    assert (again.rebuilt, again.indexed) == (True, 12)
    rows = index_rows(engine)
    y = oprf_output(server, phone(1).canonical_input())
    assert len(rows) == 12 and rows[ids[phone(1).value]].tag == reference.tag(y)
    state = read_state(engine)
    assert state is not None and not build_unfinished(state, current_version(engine))


def test_a_full_build_makes_the_bucket_and_tag_indexes_at_its_end(engine: Engine) -> None:
    """The secondary indexes are dropped while a full build writes and made again after,
    so queries by bucket and lookups by tag do not scan the table."""
    server = OprfServer.generate()
    upsert_records(engine, [(phone(n), attributes(n)) for n in range(20)])
    build(engine, server)
    wanted = {
        "sqlite": {"ix_match_index_bucket_entries": ["bucket", "tag", "label"]},
        "postgresql": {"ix_match_index_bucket": ["bucket"]},
    }[engine.dialect.name] | {"ix_match_index_tag": ["tag"]}
    made = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("match_index")}
    assert made == wanted
    upsert_records(engine, [(phone(n), attributes(n, "FROZEN")) for n in range(3)])
    assert build(engine, server).rebuilt is False
    made = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("match_index")}
    assert made == wanted
