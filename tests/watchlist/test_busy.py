"""Checks when the broker's deliveries to the police node are all in flight.

The broker lets `interactive_per_recipient` interactive deliveries travel to one
recipient at once and answers the rest as undelivered (RESOURCE_EXHAUSTED). Here it
lets one: four batches in flight from one bank (no wait for a stall) collide, and the client asks again after
a short wait instead of failing the payment check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from gateway.db import NodeBase, make_engine
from gateway.identifiers import normalise
from gateway.localnet import Consortium
from gateway.pki.keys import read_hex
from gateway.watchlist import Advice, Listed, NotListed
from nodes.runtime import NodeContext
from nodes.watchlist.client import WatchlistClient
from nodes.watchlist.store import WatchlistEntry, add_entries, reindex
from tests.consortium import client, running

LISTED = "11010519491231002X"
CLEAR = "440524188001010014"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeContext]:
    nodes = (("police-1", "police", "City Police"), ("bank-a", "bank", "Bank A"))
    consortium = Consortium.create(tmp_path_factory.mktemp("busy"), nodes)
    police = consortium.node_config("police-1")
    engine = make_engine(police.database)
    NodeBase.metadata.create_all(engine)
    add_entries(engine, [WatchlistEntry(normalise("id_card", LISTED), "MULE", Advice.REFUSE)])
    reindex(engine, read_hex(consortium.pki.bundle("police-1").oprf_key, 32), 16, workers=1)
    with running(consortium, interactive_per_recipient=1):
        ctx = client(consortium, "bank-a")
        yield ctx
        ctx.client.close()


def test_checks_colliding_at_the_brokers_limit_are_asked_again_not_failed(
    bank: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nodes.watchlist.client")
    checker = WatchlistClient(bank, window_s=0, in_flight=4, stall_s=0)
    values = [LISTED, CLEAR] * 12
    results: list[object] = [None] * len(values)

    def run(i: int) -> None:
        try:
            results[i] = checker.check("id_card", values[i])
        except Exception as exc:  # kept, to be shown by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = [Listed("MULE", Advice.REFUSE) if v == LISTED else NotListed() for v in values]
    assert results == expected
    assert "police node busy, asking again" in caplog.text
