"""Every table the code defines belongs to a schema, or the runtime never creates it.

The broker and the nodes create their tables only through the migrations, which cover
the modules `gateway.migrate.table_modules` names (for nodes: `nodes/schema.py`). A
table defined in a module not listed there is missing at run time: list the module and
write its migration with `gateway db revision --schema <broker|node> -m "<what>"`.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import gateway
import nodes
from gateway import migrate
from gateway.db import BrokerBase, NodeBase
from gateway.migrate import SCHEMAS, Schema

PENDING: set[str] = set()
"""Tables of work in progress that `nodes/schema.py` does not list yet (none now)."""


def import_every_module() -> None:
    for package in (gateway, nodes):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if found.name.startswith("gateway.migrations") or found.name.endswith("__main__"):
                continue  # revision scripts run only inside Alembic; __main__ runs the CLI
            importlib.import_module(found.name)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_table_the_code_defines_is_in_its_schema(schema: Schema) -> None:
    import_every_module()
    base = BrokerBase if schema == "broker" else NodeBase
    unlisted = set(base.metadata.tables) - set(migrate.target_metadata(schema).tables) - PENDING
    where = "gateway.migrate.table_modules" if schema == "broker" else "nodes/schema.py"
    assert not unlisted, (
        f"{sorted(unlisted)} are defined but no module listed in {where} defines them: "
        f'list it there, then `gateway db revision --schema {schema} -m "..."`'
    )
