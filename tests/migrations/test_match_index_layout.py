"""Node migration 0009: the bucket-clustered match index and its load table give way to
an index keyed by record id, and an index built in the old layout is rebuilt, not read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, text

from gateway import migrate
from gateway.crypto.blinded import OprfServer
from gateway.db import make_engine
from gateway.identifiers import Identifier, IdentifierKind
from gateway.matching.index_store import read_state
from nodes.index_build import update_index
from nodes.records import upsert_records
from tests.postgres import Databases


@pytest.fixture
def at_0008(databases: Databases) -> Iterator[Engine]:
    engine = make_engine(databases.url("node-0008"))
    migrate.upgrade(engine, "node", "0008")
    yield engine
    engine.dispose()


def test_an_index_in_the_old_layout_is_dropped_and_rebuilt(at_0008: Engine) -> None:
    with at_0008.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO match_index (bucket, record_id, tag, label) "
                "VALUES (7, 1, :tag, :label)"
            ),
            {"tag": b"old-tag!", "label": b"sealed"},
        )
        conn.execute(
            text(
                "INSERT INTO match_index_load (record_id, bucket, tag, label) "
                "VALUES (2, 3, :tag, :label)"
            ),
            {"tag": b"loading!", "label": b"sealed"},
        )
        conn.execute(
            text(
                "INSERT INTO match_index_state "
                "(id, bucket_bits, key_id, label_fields, version, updated_at_ms, format) "
                "VALUES (1, 16, 'key', '[]', 5, 0, 2)"
            )
        )
    migrate.upgrade(at_0008, "node")
    found = inspect(at_0008)
    assert found.get_pk_constraint("match_index")["constrained_columns"] == ["record_id"]
    assert "match_index_load" not in found.get_table_names()
    bucket = (
        "ix_match_index_bucket_entries"
        if at_0008.dialect.name == "sqlite"
        else "ix_match_index_bucket"
    )
    assert {i["name"] for i in found.get_indexes("match_index")} == {bucket, "ix_match_index_tag"}
    with at_0008.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM match_index")).scalar_one() == 0
    assert read_state(at_0008) is None, "the next ingest rebuilds the index"
    upsert_records(at_0008, [(Identifier(IdentifierKind.PHONE, "+8613900000001"), {})])
    server = OprfServer.generate()
    update = update_index(
        at_0008, server.private_key_bytes(), bucket_bits=4, label_fields=(), workers=1
    )
    assert (update.rebuilt, update.indexed) == (True, 1)


def test_downgrade_brings_back_the_old_layout(at_0008: Engine) -> None:
    migrate.upgrade(at_0008, "node")
    migrate.downgrade(at_0008, "node", "0008")
    found = inspect(at_0008)
    assert found.get_pk_constraint("match_index")["constrained_columns"] == [
        "bucket",
        "record_id",
    ]
    assert "match_index_load" in found.get_table_names()


def test_a_database_made_by_create_all_keeps_no_redundant_record_index(
    databases: Databases,
) -> None:
    """Adopted, it runs revision 0002, which indexed record_id on the old table; 0009 drops
    that index from a table already keyed by record id."""
    engine = make_engine(databases.url("node-made"))
    try:
        migrate.target_metadata("node").create_all(engine)
        migrate.upgrade(engine, "node")
        names = {i["name"] for i in inspect(engine).get_indexes("match_index")}
        assert "ix_match_index_record" not in names
        assert migrate.differences(engine, "node") == []
    finally:
        engine.dispose()
