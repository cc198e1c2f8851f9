"""A consortium with planted records and offers, served in this process for the package.

bank-a holds mule accounts' phone numbers (flag=mule) and some others; carrier-1 holds
flagged subscribers (flag=flagged) and some others; police-1 holds suspects. The sets
overlap on purpose, including across the unselected records, so a selection that leaked
would show in the intersection.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gateway.bulk_psi import save_offer
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.localnet import Consortium
from gateway.synthetic import mobile_number
from nodes.records import upsert_records
from nodes.runtime import NodeContext, RunningNode
from tests.consortium import client, running

PHONE = IdentifierKind.PHONE
CASE = {"case_ref": "CASE-2024-0042", "legal_basis": "AML Law art. 23"}


@dataclass
class Planted:
    bank_mule: list[Identifier]
    bank_other: list[Identifier]
    carrier_flagged: list[Identifier]
    carrier_other: list[Identifier]
    police_suspects: list[Identifier]

    def values(self) -> set[str]:
        every = (
            self.bank_mule
            + self.bank_other
            + self.carrier_flagged
            + self.carrier_other
            + self.police_suspects
        )
        return {i.value for i in every}


def phones(count: int, seed: int) -> list[Identifier]:
    rng = random.Random(seed)
    found: dict[str, Identifier] = {}
    while len(found) < count:
        identifier = normalise(PHONE, mobile_number(rng))
        found[identifier.value] = identifier
    return list(found.values())


def plant(consortium: Consortium) -> Planted:
    pool = phones(700, seed=42)
    shared = pool[:90]  # mule and flagged
    planted = Planted(
        bank_mule=shared + pool[90:250],
        bank_other=pool[250:300] + pool[600:620],
        carrier_flagged=shared + pool[300:420] + pool[600:610],  # 10 flagged, bank non-mule
        carrier_other=pool[420:480] + pool[100:130],  # 30 mule, carrier non-flagged
        police_suspects=pool[0:15] + pool[100:110] + pool[480:520],
    )

    def load(node_id: str, groups: dict[str, list[Identifier]]) -> NodeContext:
        ctx = client(consortium, node_id)
        upsert_records(
            ctx.engine,
            [(i, {"flag": flag}) for flag, ids in groups.items() for i in ids],
        )
        return ctx

    bank = load("bank-a", {"mule": planted.bank_mule, "ok": planted.bank_other})
    carrier = load("carrier-1", {"flagged": planted.carrier_flagged, "ok": planted.carrier_other})
    police = load("police-1", {"suspect": planted.police_suspects})
    save_offer(carrier.engine, "phone", PHONE, {"flag": "flagged"})
    save_offer(carrier.engine, "flagged-count", PHONE, {"flag": "flagged"}, cardinality_only=True)
    save_offer(carrier.engine, "small", PHONE, {"flag": "flagged"}, max_set_size=50)
    save_offer(carrier.engine, "all-ok", PHONE, {"flag": "ok"}, max_set_size=70)
    save_offer(bank.engine, "phone", PHONE, {"flag": "mule"}, roles=["police"])
    for ctx in (bank, carrier, police):
        ctx.client.close()
    return planted


@dataclass
class Network:
    consortium: Consortium
    planted: Planted
    nodes: dict[str, RunningNode]


@pytest.fixture(scope="package")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    consortium = Consortium.create(tmp_path_factory.mktemp("bulk-psi"))
    planted = plant(consortium)
    with running(consortium, ("bank-a", "bank-b", "carrier-1", "police-1")) as (_broker, nodes):
        yield Network(consortium, planted, nodes)


@pytest.fixture
def bank(network: Network) -> Iterator[NodeContext]:
    ctx = client(network.consortium, "bank-a")
    yield ctx
    ctx.client.close()


@pytest.fixture
def police(network: Network) -> Iterator[NodeContext]:
    ctx = client(network.consortium, "police-1")
    yield ctx
    ctx.client.close()


@pytest.fixture
def carrier(network: Network) -> Iterator[NodeContext]:
    ctx = client(network.consortium, "carrier-1")
    yield ctx
    ctx.client.close()
