"""`gateway db revision` writes the migration for a changed table, in a copy of the tree.

This is the one command a developer runs after adding a table to `nodes/schema.py` (or
changing one); the test checks that what it writes upgrades, matches the code and
downgrades, and that it writes nothing when nothing changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Column, Integer, String, Table, inspect

from gateway import migrate
from gateway.db import NodeBase, make_engine


@pytest.fixture
def widgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the migrations, and a new table in the node's schema; the versions folder."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS", copy)
    table = Table(
        "widgets",
        NodeBase.metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(32), nullable=False, index=True),
    )
    module = ModuleType("widgets")
    module.__dict__["WIDGETS"] = table
    listed = migrate.table_modules
    monkeypatch.setattr(
        migrate,
        "table_modules",
        lambda schema: (*listed(schema), module) if schema == "node" else listed(schema),
    )
    migrate._scripts.cache_clear()
    yield copy / "node" / "versions"
    NodeBase.metadata.remove(table)
    migrate._scripts.cache_clear()


def test_revision_adds_the_new_table_and_nothing_else(widgets: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in widgets.glob("0*.py"))
    previous = before[-1][:4]
    number = f"{len(before) + 1:04d}"
    path = migrate.revision("node", "add widgets")
    assert path is not None
    assert (path.parent, path.name) == (widgets, f"{number}_add_widgets.py")
    source = path.read_text()
    assert '"widgets"' in source and "ix_widgets_name" in source
    assert "drop_table" in source  # the downgrade
    assert source.count("create_table") == 1

    engine = make_engine(str(tmp_path / "node.db"))
    try:
        migrate.upgrade(engine, "node")
        assert migrate.current(engine, "node") == (number,)
        assert migrate.differences(engine, "node") == []
        migrate.downgrade(engine, "node", previous)
        assert "widgets" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()

    assert migrate.revision("node", "nothing changed") is None
    assert sorted(p.name for p in widgets.glob("0*.py")) == [*before, f"{number}_add_widgets.py"]
