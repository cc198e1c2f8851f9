"""A match query is answered while the responder's index is being updated, without waiting.

The responder indexes a few pending record changes before answering, under the lock
that keeps index updates one at a time. A query used to wait on that lock for as long as
a whole reindex took (minutes on a large table, past the broker's delivery deadline);
now it answers from the index as it stands.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gateway.identifiers import normalise
from gateway.localnet import Consortium
from gateway.pki.keys import read_hex
from gateway.synthetic import generate_bank_records
from nodes.matching import query_responders, refresh_index
from nodes.records import upsert_records
from nodes.runtime import NodeContext
from tests.consortium import client, running
from tests.matching.test_broker_query import load
from tests.waiting import wait_for
from tests.watchdog import Watchdog

ROWS = generate_bank_records(30, seed=41)
LATE = generate_bank_records(31, seed=42)[-1]
"""A record added after the index was built: pending when the query arrives."""
CASE = {"case_ref": "C-REINDEX", "legal_basis": "AML Law art. 23"}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    consortium = Consortium.create(tmp_path_factory.mktemp("reindex"))
    load(consortium, "bank-a", ROWS)
    with running(consortium, ("bank-a",)):
        yield consortium


@pytest.fixture
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    yield ctx
    ctx.client.close()


def test_a_query_does_not_wait_for_an_index_update_in_progress(
    net: Consortium, police: NodeContext
) -> None:
    bank = client(net, "bank-a")
    release = threading.Event()
    started = threading.Event()

    def held(done: int, total: int) -> None:
        """The update's progress report: the update stays in progress until released."""
        started.set()
        release.wait(timeout=60)

    upsert_records(bank.engine, [(normalise(LATE.kind, LATE.value), LATE.attributes)])
    key = read_hex(net.pki.bundle("bank-a").oprf_key, 32)
    update = threading.Thread(
        target=refresh_index, args=(bank.engine, bank.config, key, held), daemon=True
    )
    update.start()
    try:
        wait_for(started.is_set)
        known, late = (normalise(r.kind, r.value) for r in (ROWS[0], LATE))
        with Watchdog() as watchdog, watchdog.call("match query during a reindex", 15):
            [outcome] = query_responders(police, [known, late], ["bank-a"], **CASE)
        watchdog.check()
        assert outcome.error == ""
        # Answered from the index as it stands: the record still pending is not in it.
        assert [(m.position, m.fields["record_id"]) for m in outcome.matches] == [
            (0, ROWS[0].attributes["record_id"])
        ]
    finally:
        release.set()
        update.join(timeout=30)
        bank.client.close()
