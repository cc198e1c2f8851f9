"""Data files shipped inside the package (policies, migration environments).

They are found through `importlib.resources`, never relative to a source checkout, so an
installed wheel finds them exactly as an editable install does.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from importlib.resources import as_file, files
from pathlib import Path

_HELD = ExitStack()
atexit.register(_HELD.close)


def shipped(name: str) -> Path:
    """A folder of package data as a path on disk, for the process's lifetime.

    An installed package is on disk and this is the folder itself; were the package ever
    imported from an archive, `as_file` would extract it until the process ends.
    """
    return _HELD.enter_context(as_file(files("gateway").joinpath(name)))


POLICIES = shipped("policies")
"""The Cedar policies and schema the broker and nodes load unless configured otherwise."""

MIGRATIONS = shipped("migrations")
"""The two Alembic environments: `broker` and `node`."""
