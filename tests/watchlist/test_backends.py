"""The watchlist on each storage backend (SQLite, then PostgreSQL): list, check, remove.

The police node's entries, its index and the per-role bucket filter (a join of the
index with the entries) run on the module's backend; broker and nodes serve in process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.db import NodeBase, make_engine
from gateway.identifiers import normalise
from gateway.localnet import Consortium
from gateway.pki.keys import read_hex
from gateway.watchlist import Advice, Listed, NotListed
from nodes.runtime import NodeContext
from nodes.watchlist.client import WatchlistClient
from nodes.watchlist.store import WatchlistEntry, add_entries, reindex, remove_entries
from tests.consortium import client, running

LISTED = normalise("bank_account", "6222020200112233445")
CLEAR = normalise("bank_account", "6222020200112233446")


@pytest.fixture(scope="module")
def net(backend_consortium: Consortium) -> Iterator[tuple[Consortium, NodeContext]]:
    with running(backend_consortium, ("police-1", "bank-a")):
        bank = client(backend_consortium, "bank-a")
        yield backend_consortium, bank
        bank.client.close()


def test_listed_not_listed_and_removed_on_this_backend(
    net: tuple[Consortium, NodeContext],
) -> None:
    consortium, bank = net
    police = consortium.node_config("police-1")
    engine = make_engine(police.database)
    NodeBase.metadata.create_all(engine)
    key = read_hex(consortium.pki.bundle("police-1").oprf_key, 32)
    add_entries(engine, [WatchlistEntry(LISTED, "MULE_ACCOUNT", Advice.WARN_CUSTOMER)])
    reindex(engine, key, police.match_bucket_bits, workers=1)
    checker = WatchlistClient(bank)
    assert checker.check_many([LISTED, CLEAR]) == [
        Listed("MULE_ACCOUNT", Advice.WARN_CUSTOMER),
        NotListed(),
    ]
    assert remove_entries(engine, [LISTED]) == 1
    reindex(engine, key, police.match_bucket_bits, workers=1)
    assert checker.check_identifier(LISTED) == NotListed()
