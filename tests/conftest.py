"""Shared fixtures: a fresh consortium per test module, and the storage backends.

Modules that exercise storage use `backend_consortium` or `databases`: their tests then
run once on SQLite and once on PostgreSQL (marked `postgres`; skipped without
GATEWAY_TEST_POSTGRES_URL, failed when GATEWAY_REQUIRE_POSTGRES=1 and it is unreachable).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.consortium import Consortium, running
from tests.postgres import BACKENDS, Databases


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("consortium"))


@pytest.fixture(scope="module")
def network(consortium: Consortium) -> Iterator[Consortium]:
    """The consortium with broker and every node serving in this process."""
    with running(consortium):
        yield consortium


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend the module's tests run on: "sqlite", then "postgres"."""
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Fresh databases on the module's backend, dropped when the module is done."""
    with ExitStack() as stack:
        yield Databases(backend, tmp_path_factory.mktemp(f"db-{backend}"), stack)


@pytest.fixture(scope="module")
def backend_consortium(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Consortium:
    """A fresh consortium whose broker and nodes store on the module's backend."""
    root = tmp_path_factory.mktemp("consortium")
    return Consortium.create(root, database_urls=databases.for_consortium())


def postgres_url() -> str | None:
    return os.environ.get("GATEWAY_TEST_POSTGRES_URL")


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    return tmp_path
