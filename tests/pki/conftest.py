"""The SoftHSM2 token the PKCS#11 tests share (one per test session: see tests/pki/softhsm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pki.softhsm import SoftHsm, softhsm_token


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    yield from softhsm_token(tmp_path_factory.mktemp("softhsm"))
