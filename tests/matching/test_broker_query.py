"""Targeted queries through the real broker (in-process network) to three responders.

bank-a, bank-b and carrier-1 each load synthetic records and build their index; police
asks all three at once. Expected matches and labels come from the synthetic rows and the
responders' own record ids, read back from their databases, never from the code under
test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.crypto.blinded import OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.localnet import Consortium
from gateway.matching.errors import MatchError
from gateway.pki.keys import read_hex, write_secret
from gateway.synthetic import (
    SyntheticRow,
    generate_bank_records,
    generate_carrier_records,
    luhn_check_digit,
)
from nodes.index_build import update_index
from nodes.matching import query_responders, responders_of
from nodes.records import RecordRow, delete_records, upsert_records
from nodes.runtime import NodeContext
from tests.consortium import client, running

LABEL_FIELDS = ("record_id", "status", "opened_on")
"""What the rendered node configuration lets police see (see node_config_template)."""
SHARED_CARD = "621226000000000000" + luhn_check_digit("621226000000000000")
"""A card held by both banks, with different attributes: each answers with its own label."""
BANK_B_LIMIT = 8


def load(consortium: Consortium, node_id: str, rows: list[SyntheticRow]) -> None:
    config = consortium.node_config(node_id)
    engine = make_engine(config.database)
    NodeBase.metadata.create_all(engine)
    upsert_records(engine, [(normalise(r.kind, r.value), r.attributes) for r in rows])
    key = read_hex(consortium.pki.bundle(node_id).oprf_key, 32)
    update_index(engine, key, bucket_bits=config.match_bucket_bits, label_fields=LABEL_FIELDS)


def shared(record_id: str, status: str) -> SyntheticRow:
    attributes = {"record_id": record_id, "status": status, "opened_on": "2020-01-01"}
    return SyntheticRow(IdentifierKind.BANK_CARD, SHARED_CARD, attributes)


BANK_A = [*generate_bank_records(150, seed=11), shared("A-SHARED", "ACTIVE")]
BANK_B = [*generate_bank_records(150, seed=12), shared("B-SHARED", "DORMANT")]
CARRIER = generate_carrier_records(75, seed=13)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    consortium = Consortium.create(tmp_path_factory.mktemp("match"))
    path = consortium.config_path("bank-b")
    path.write_text(path.read_text() + f"\nmatch_max_batch = {BANK_B_LIMIT}\n")
    load(consortium, "bank-a", BANK_A)
    load(consortium, "bank-b", BANK_B)
    load(consortium, "carrier-1", CARRIER)
    with running(consortium, ("bank-a", "bank-b", "carrier-1")):
        yield consortium


@pytest.fixture
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    yield ctx
    ctx.client.close()


def handle_of(net: Consortium, node_id: str, row: SyntheticRow) -> str:
    """The responder's record id for a row, read from its database."""
    engine = make_engine(net.node_config(node_id).database)
    value = normalise(row.kind, row.value).value
    with engine.connect() as conn:
        found = conn.scalar(
            select(RecordRow.id).where(RecordRow.kind == row.kind.value, RecordRow.value == value)
        )
    assert found is not None
    return str(found)


def expected_label(net: Consortium, node_id: str, row: SyntheticRow) -> dict[str, str]:
    label = {k: v for k, v in row.attributes.items() if k in LABEL_FIELDS}
    label["handle"] = handle_of(net, node_id, row)
    return label


def ident(row: SyntheticRow) -> Identifier:
    return normalise(row.kind, row.value)


def test_a_fan_out_finds_exactly_the_planted_matches(
    net: Consortium, police: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    asked_rows = [BANK_A[7], BANK_B[20], CARRIER[4], CARRIER[9], BANK_A[-1]]
    identifiers = [ident(r) for r in asked_rows]
    identifiers += [
        normalise("phone", "+8613012345678"),  # held by nobody
        normalise(
            "bank_card", "621226111111111111" + luhn_check_digit("621226111111111111")
        ),  # held by nobody
    ]
    caplog.set_level(logging.DEBUG)
    recipients = ["bank-a", "bank-b", "carrier-1"]
    outcomes = query_responders(
        police, identifiers, recipients, case_ref="CASE-7", legal_basis="CPL art. 143"
    )
    assert [o.node_id for o in outcomes] == recipients
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    found = {o.node_id: [(m.position, m.fields) for m in o.matches] for o in outcomes}
    assert found == {
        "bank-a": [
            (0, expected_label(net, "bank-a", BANK_A[7])),
            (4, expected_label(net, "bank-a", BANK_A[-1])),
        ],
        "bank-b": [
            (1, expected_label(net, "bank-b", BANK_B[20])),
            (4, expected_label(net, "bank-b", BANK_B[-1])),
        ],
        "carrier-1": [
            (2, expected_label(net, "carrier-1", CARRIER[4])),
            (3, expected_label(net, "carrier-1", CARRIER[9])),
        ],
    }
    assert found["bank-a"][1][1]["record_id"] == "A-SHARED"
    assert found["bank-b"][1][1]["record_id"] == "B-SHARED"
    assert "holder_name" not in str(found)

    secrets = [i.value for i in identifiers] + [r.value for r in asked_rows]
    logged = caplog.text
    stored = Path(net.broker_database).read_bytes()
    for secret in secrets:
        assert secret not in logged and secret.lstrip("+") not in logged
        assert secret.encode() not in stored, "the broker never holds an identifier in clear"


def test_role_fan_out_asks_every_responder_of_the_role(police: NodeContext) -> None:
    banks = responders_of(police.client.directory(), "bank")
    assert banks == ["bank-a", "bank-b"]
    outcomes = query_responders(
        police, [ident(BANK_B[3])], banks, case_ref="CASE-8", legal_basis="CPL art. 143"
    )
    assert [(o.node_id, len(o.matches)) for o in outcomes] == [("bank-a", 0), ("bank-b", 1)]
    with pytest.raises(MatchError, match="not a responder role"):
        responders_of(police.client.directory(), "police")


def test_a_batch_above_the_responders_limit_comes_back_with_its_reason(
    police: NodeContext,
) -> None:
    identifiers = [ident(r) for r in BANK_B[: BANK_B_LIMIT + 1]]
    [outcome] = query_responders(
        police, identifiers, ["bank-b"], case_ref="CASE-9", legal_basis="CPL art. 143"
    )
    assert not outcome.ok and not outcome.matches
    assert "RESOURCE_EXHAUSTED" in outcome.error
    assert (
        f"a batch of {BANK_B_LIMIT + 1} items exceeds this responder's limit of {BANK_B_LIMIT}"
        in outcome.error
    )


def test_only_police_may_query(net: Consortium) -> None:
    bank = client(net, "bank-a")
    try:
        [outcome] = query_responders(
            bank, [ident(CARRIER[0])], ["carrier-1"], case_ref="C", legal_basis="B"
        )
    finally:
        bank.client.close()
    assert outcome.error.startswith("broker refused the query: PERMISSION_DENIED")


def test_a_query_needs_a_case_and_goes_only_to_responders(police: NodeContext) -> None:
    [outcome] = query_responders(
        police, [ident(CARRIER[0])], ["carrier-1"], case_ref="", legal_basis="B"
    )
    assert outcome.error.startswith("broker refused the query: PERMISSION_DENIED")
    with pytest.raises(MatchError, match="regulator node, which holds no match index"):
        query_responders(
            police, [ident(CARRIER[0])], ["regulator-1"], case_ref="C", legal_basis="B"
        )
    with pytest.raises(MatchError, match="not an active member"):
        query_responders(police, [ident(CARRIER[0])], ["bank-z"], case_ref="C", legal_basis="B")


@pytest.fixture
def impostor(net: Consortium) -> Iterator[None]:
    """bank-b answers under a key other than the one in the signed directory."""
    key_file = net.pki.bundle("bank-b").oprf_key
    published = key_file.read_text().strip()
    config = net.node_config("bank-b")
    engine = make_engine(config.database)

    def use(key_hex: str) -> None:
        write_secret(key_file, key_hex)
        update_index(
            engine,
            bytes.fromhex(key_hex),
            bucket_bits=config.match_bucket_bits,
            label_fields=LABEL_FIELDS,
        )

    use(OprfServer.generate().private_key_bytes().hex())
    try:
        yield
    finally:
        use(published)


@pytest.mark.usefixtures("impostor")
def test_a_responder_answering_with_another_key_is_detected(police: NodeContext) -> None:
    outcomes = query_responders(
        police,
        [ident(BANK_A[1]), ident(BANK_B[1])],
        ["bank-a", "bank-b"],
        case_ref="CASE-10",
        legal_basis="CPL art. 143",
    )
    good, bad = outcomes
    assert good.ok and [m.position for m in good.matches] == [0]
    assert bad.key_mismatch and not bad.matches
    assert "OPRF key other than the one the signed directory lists" in bad.error


def test_record_changes_are_indexed_before_the_next_answer(
    net: Consortium, police: NodeContext
) -> None:
    """A few changes since the last build are picked up by the responder itself."""
    engine = make_engine(net.node_config("carrier-1").database)
    row = CARRIER[30]
    new = normalise("phone", "+8618912345678")
    upsert_records(engine, [(new, {"record_id": "C-NEW", "status": "ACTIVE"})])
    delete_records(engine, [ident(row)])
    [outcome] = query_responders(
        police, [new, ident(row)], ["carrier-1"], case_ref="CASE-11", legal_basis="CPL art. 143"
    )
    assert outcome.ok, outcome.error
    assert [(m.position, m.fields["record_id"]) for m in outcome.matches] == [(0, "C-NEW")]
