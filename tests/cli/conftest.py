"""Commands run in this process (CliRunner): what `serve` does to logging is undone."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """`broker serve`/`node serve` point the root logger at stderr at INFO before they
    fail; left so, every later test's command output would carry log lines."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    alembic.setLevel(alembic_level)
