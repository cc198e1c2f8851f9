"""Shared fixtures: a fresh consortium per test module, PostgreSQL when configured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consortium import Consortium, running


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("consortium"))


@pytest.fixture(scope="module")
def network(consortium: Consortium) -> Iterator[Consortium]:
    """The consortium with broker and every node serving in this process."""
    with running(consortium):
        yield consortium


def postgres_url() -> str | None:
    return os.environ.get("GATEWAY_TEST_POSTGRES_URL")


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    return tmp_path
