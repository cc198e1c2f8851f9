"""The OPRF evaluation quota: refused over the hour or day limit, nothing counted on a
refusal, windows roll over, and the counts survive a restart (a new engine on the same
database), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from gateway.db import NodeBase
from gateway.matching import QueryRefused
from gateway.matching.eval_quota import DAY_MS, HOUR_MS, EvalQuota, charge, used
from tests.postgres import Databases, opened

QUOTA = EvalQuota(per_hour=256, per_day=512)
NOON = 20_000 * DAY_MS + 12 * HOUR_MS


@pytest.fixture
def url(databases: Databases) -> str:
    return databases.url("quota")


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    with opened(url) as engine:
        NodeBase.metadata.create_all(engine)
        yield engine


def test_the_hour_limit_refuses_and_counts_nothing(engine: Engine) -> None:
    charge(engine, "police-a", 128, QUOTA, NOON)
    charge(engine, "police-a", 128, QUOTA, NOON + 1)
    with pytest.raises(QueryRefused, match=r"quota of 256 per hour .* resets in 60 min"):
        charge(engine, "police-a", 64, QUOTA, NOON + 2)
    assert used(engine, "police-a", NOON) == (256, 256)
    charge(engine, "police-b", 256, QUOTA, NOON)  # another querier has its own allowance


def test_the_day_limit_holds_across_hours_and_resets_the_next_day(engine: Engine) -> None:
    charge(engine, "police-a", 256, QUOTA, NOON)
    charge(engine, "police-a", 256, QUOTA, NOON + HOUR_MS)
    with pytest.raises(QueryRefused, match="quota of 512 per day"):
        charge(engine, "police-a", 64, QUOTA, NOON + 2 * HOUR_MS)
    assert used(engine, "police-a", NOON + 2 * HOUR_MS) == (0, 512)
    charge(engine, "police-a", 64, QUOTA, NOON + DAY_MS)
    assert used(engine, "police-a", NOON + DAY_MS) == (64, 64)


def test_counts_survive_a_restart(url: str) -> None:
    with opened(url) as first:
        NodeBase.metadata.create_all(first)
        charge(first, "police-a", 256, QUOTA, NOON)
    with opened(url) as again, pytest.raises(QueryRefused, match="per hour"):
        charge(again, "police-a", 64, QUOTA, NOON + 60_000)


def test_an_impossible_quota_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="per_hour <= per_day"):
        EvalQuota(per_hour=100, per_day=10)
