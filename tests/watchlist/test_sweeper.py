"""The police node's watchlist sweep scans only when it can find something.

A scan of a large watchlist costs a table scan and the index update after it; a sweep
with nothing changed since the last and nothing fallen due is skipped. A new entry, an
expiry that falls due, and the sweep's own removals make the next sweep scan again,
and an expired entry leaves the list and the index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from gateway.identifiers import normalise
from gateway.localnet import Consortium
from gateway.matching.index_store import MatchIndexRow, MatchIndexStateRow
from gateway.watchlist import Advice
from nodes.matching import oprf_server
from nodes.runtime import NodeContext
from nodes.watchlist.police import WatchlistSweeper
from nodes.watchlist.store import (
    WatchlistEntry,
    add_entries,
    index_ready,
    list_entries,
    reindex_due,
)
from tests.consortium import client

DUE = 1_900_000_000_000  # 2030-03-17, ahead of any clock this test runs under
LAPSING = normalise("id_card", "11010519491231002X")
STAYING = normalise("id_card", "440524188001010014")
LATER = normalise("bank_account", "6222020200112233445")


@pytest.fixture
def police(tmp_path: Path) -> Iterator[NodeContext]:
    c = Consortium.create(tmp_path, (("police-1", "police", "City Police"),))
    ctx = client(c, "police-1")
    try:
        yield ctx
    finally:
        ctx.client.close()


def indexed(ctx: NodeContext) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(MatchIndexRow)) or 0)


def test_a_sweep_scans_only_after_a_change_or_an_expiry_falling_due(police: NodeContext) -> None:
    clock = [DUE - 60_000]
    sweeper = WatchlistSweeper(police, clock_ms=lambda: clock[0])
    add_entries(
        police.engine,
        [
            WatchlistEntry(LAPSING, "MULE", Advice.REFUSE, expires_ms=DUE),
            WatchlistEntry(STAYING, "MULE", Advice.WARN_CUSTOMER),
        ],
    )
    assert sweeper.sweep() is True
    assert indexed(police) == 2
    assert sweeper.sweep() is False  # nothing changed, nothing due

    add_entries(police.engine, [WatchlistEntry(LATER, "RECRUITER", Advice.ENHANCED_CHECKS)])
    assert sweeper.sweep() is True
    assert indexed(police) == 3
    assert sweeper.sweep() is False

    clock[0] = DUE  # the first expiry falls due
    assert sweeper.sweep() is True
    assert [e.identifier for e in list_entries(police.engine)] == [STAYING, LATER]
    assert indexed(police) == 2
    assert sweeper.sweep() is True  # its own removal changed the records: one more look
    assert sweeper.sweep() is False


def test_checks_are_refused_while_a_rebuild_of_the_watchlist_index_is_unfinished(
    police: NodeContext,
) -> None:
    """Partial rows would answer "not listed" for a listed identifier."""
    add_entries(police.engine, [WatchlistEntry(STAYING, "MULE", Advice.REFUSE)])
    assert WatchlistSweeper(police).sweep() is True
    server, bits = oprf_server(police), police.config.match_bucket_bits
    assert index_ready(police.engine, server, bits) is None
    with police.engine.begin() as conn:  # a reindex killed after writing some rows
        conn.execute(update(MatchIndexStateRow.__table__).values(version=0))
    assert index_ready(police.engine, server, bits) == (
        "the watchlist index is being rebuilt; ask again when it has finished"
    )
    reindex_due(police.engine, server.private_key_bytes(), bits)
    assert index_ready(police.engine, server, bits) is None
