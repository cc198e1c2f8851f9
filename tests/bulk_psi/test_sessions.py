"""Bulk PSI sessions through the real broker: results against Python's set intersection.

Every exchange is a signed, sealed, policy-checked and audited PSI_REQUEST with its
PSI_RESPONSE; small chunk sizes make the sessions span many exchanges.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from gateway.bulk_psi import MAX_CHUNK_SIZE, Mode
from nodes.bulk_psi import run_psi
from nodes.runtime import NodeContext
from tests.bulk_psi.conftest import CASE, Network


def values(identifiers: object) -> set[str]:
    return {i.value for i in identifiers}  # type: ignore[attr-defined]


def test_bank_and_carrier_intersection_over_many_chunks(
    network: Network, bank: NodeContext
) -> None:
    planted = network.planted
    outcome = run_psi(
        bank, peer="carrier-1", kind="phone", where={"flag": "mule"}, chunk_size=32, **CASE
    )
    expected = values(planted.bank_mule) & values(planted.carrier_flagged)
    assert outcome.matches is not None
    assert values(outcome.matches) == expected
    assert len(outcome.matches) == outcome.result.cardinality == 90
    assert outcome.result.querier_size == len(planted.bank_mule)
    assert outcome.result.responder_size == len(planted.carrier_flagged)
    assert outcome.result.exchanges >= 8  # 250 / 32 chunks of the bank's set


def test_police_with_bank_and_with_carrier(network: Network, police: NodeContext) -> None:
    planted = network.planted
    suspects = values(planted.police_suspects)
    with_bank = run_psi(police, peer="bank-a", kind="phone", where={"flag": "suspect"}, **CASE)
    with_carrier = run_psi(
        police, peer="carrier-1", kind="phone", where={"flag": "suspect"}, **CASE
    )
    assert values(with_bank.matches) == suspects & values(planted.bank_mule)
    assert values(with_carrier.matches) == suspects & values(planted.carrier_flagged)
    # One chunk each way: one exchange, two if the bank's chunk was not ready in time.
    assert with_bank.result.exchanges in (1, 2)


def test_cardinality_returns_only_the_count(network: Network, bank: NodeContext) -> None:
    planted = network.planted
    outcome = run_psi(
        bank,
        peer="carrier-1",
        kind="phone",
        where={"flag": "mule"},
        mode=Mode.CARDINALITY,
        chunk_size=40,
        **CASE,
    )
    assert outcome.matches is None
    assert outcome.result.matches is None
    assert outcome.result.cardinality == len(
        values(planted.bank_mule) & values(planted.carrier_flagged)
    )
    # 7 uploads, then the shuffled set comes back from the last upload on: 13 exchanges
    # (more only if the carrier's own chunks were late).
    assert outcome.result.exchanges >= 13


def test_cardinality_only_offer(network: Network, bank: NodeContext) -> None:
    count = run_psi(
        bank,
        peer="carrier-1",
        kind="phone",
        where={"flag": "mule"},
        responder_set="flagged-count",
        mode=Mode.CARDINALITY,
        **CASE,
    )
    assert count.result.cardinality == 90


def test_a_bank_as_responder_for_police_only(network: Network, police: NodeContext) -> None:
    """bank-a offers its mule set to police, so a carrier asking is refused (see errors)."""
    outcome = run_psi(police, peer="bank-a", kind="phone", where={}, **CASE)
    assert values(outcome.matches) == values(network.planted.police_suspects) & values(
        network.planted.bank_mule
    )


def test_every_exchange_is_audited_without_identifiers(network: Network, bank: NodeContext) -> None:
    outcome = run_psi(
        bank, peer="carrier-1", kind="phone", where={"flag": "mule"}, chunk_size=100, **CASE
    )
    engine = create_engine(f"sqlite:///{network.consortium.broker_database}")
    with engine.connect() as connection:
        leaves = [
            bytes(row[0]).decode()
            for row in connection.execute(text("SELECT leaf FROM audit_entries"))
        ]
    decisions = [json.loads(leaf) for leaf in leaves if '"PSI_' in leaf]
    requests = [
        d for d in decisions if d.get("kind") == "PSI_REQUEST" and d.get("decision") == "ALLOW"
    ]
    assert len(requests) >= outcome.result.exchanges
    assert all(d["case_ref"] and d["legal_basis"] for d in requests)
    assert all(1 <= d["batch_size"] <= MAX_CHUNK_SIZE for d in requests)
    every_leaf = "\n".join(leaves)
    for value in network.planted.values():
        assert value not in every_leaf and value.lstrip("+") not in every_leaf


@pytest.mark.parametrize("mode", list(Mode))
def test_disjoint_sets_give_nothing(network: Network, bank: NodeContext, mode: Mode) -> None:
    outcome = run_psi(
        bank,
        peer="carrier-1",
        kind="phone",
        where={"flag": "ok"},
        mode=mode,
        responder_set="phone",
        **CASE,
    )
    expected = values(network.planted.bank_other) & values(network.planted.carrier_flagged)
    assert outcome.result.cardinality == len(expected) == 10
