"""The library parts of `gateway/` build on nothing in `nodes/` (no import cycle).

`nodes/` is the node application built on the library; the CLI, the demo and the
in-process consortium (`gateway/cli/`, `gateway/demo*.py`, `gateway/localnet.py`) run
it, so they may import it. Every import is counted, also one inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPLICATION = (
    "gateway/cli/",
    "gateway/console/",
    "gateway/demo.py",
    "gateway/demo_data.py",
    "gateway/demo_fund.py",
    "gateway/demo_alert.py",
    "gateway/demo_watchlist.py",
    "gateway/localnet.py",
)
NOT_YET: set[str] = set()
"""Library modules that still import `nodes/` (none: keep it so)."""


def imports_of_nodes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [n for n in names if n == "nodes" or n.startswith("nodes.")]
    return found


def test_library_modules_import_nothing_from_nodes() -> None:
    offenders = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith(APPLICATION) or name in NOT_YET:
            continue
        if found := imports_of_nodes(path):
            offenders[name] = found
    assert offenders == {}


def test_migrations_compare_node_tables_once_the_node_application_registers_them() -> None:
    probe = (
        "import sys\n"
        "from gateway import migrate\n"
        "try:\n"
        "    migrate.target_metadata('node')\n"
        "except migrate.MigrationError as exc:\n"
        "    print('refused:', exc)\n"
        "print(any(m.split('.')[0] == 'nodes' for m in sys.modules))\n"
        "import nodes.schema\n"
        "print(sorted(migrate.target_metadata('node').tables))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    refused, loaded, tables = done.stdout.splitlines()
    assert refused.startswith("refused: the node tables are not registered")
    assert loaded == "False"
    assert "'records'" in tables and "'match_index'" in tables
