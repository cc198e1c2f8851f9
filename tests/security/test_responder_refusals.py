"""A responder's refusal of a match query reaches the police with its reason, and no
reason can carry an identifier.

A real bank (its match limit lowered to four identifiers) refuses a query holding a
bad blinded element and one above its limit; the refusal comes back in the Submit
reply, in the police node's result, and in `gateway query`'s output. The texts expected
are the bank's documented refusals, written out here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from gateway.broker.reasons import recipient_reason
from gateway.broker.server import serve_broker
from gateway.cli import app
from gateway.envelope.build import Draft
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.kinds import Kind
from gateway.matching.querier import PendingQuery
from gateway.matching.wire import QUERY_TYPE
from gateway.v1 import matching_pb2 as mpb
from nodes.matching import query_responders
from nodes.runtime import serve_node
from tests.consortium import Consortium
from tests.security.net import RECORDS, Net, build_index

CASE = {"case_ref": "C-2026-REF", "legal_basis": "Anti-Telecom-Fraud Law art. 11"}
BANK_LIMIT = 4
CARDS = [r for r in RECORDS if r.kind == IdentifierKind.BANK_CARD][: BANK_LIMIT + 1]
BAD_ELEMENT = (
    "INVALID_ARGUMENT match: a blinded element is not a canonical, non-identity "
    "ristretto255 encoding"
)
OVERSIZE = (
    f"RESOURCE_EXHAUSTED match: a batch of {BANK_LIMIT + 1} items exceeds this "
    f"responder's limit of {BANK_LIMIT}"
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("refusals"))
    build_index(consortium, "bank-a")
    network = Net(consortium, serve_broker(consortium.broker_config()))
    try:
        bank = replace(consortium.node_config("bank-a"), match_max_batch=BANK_LIMIT)
        network.nodes["bank-a"] = serve_node(bank)
        yield network
    finally:
        network.close()


def cards() -> list[Identifier]:
    assert len(CARDS) == BANK_LIMIT + 1
    return [normalise(r.kind, r.value) for r in CARDS]


def assert_no_identifier(text: str, sent: list[bytes]) -> None:
    for card in CARDS:
        assert card.value not in text and card.value[-8:] not in text
    for element in sent:
        assert element.hex()[:16] not in text


@pytest.mark.parametrize(
    ("case", "refusal"), [("bad-element", BAD_ELEMENT), ("oversize", OVERSIZE)]
)
def test_the_submit_reply_carries_the_banks_refusal(net: Net, case: str, refusal: str) -> None:
    police = net.client("police-1")
    bank = police.client.directory().get("bank-a")
    assert bank is not None
    asked = cards() if case == "oversize" else cards()[:2]
    bits = police.config.match_bucket_bits
    query = PendingQuery(asked, bank.oprf_key, bucket_bits=bits, max_batch=len(asked))
    wire = mpb.MatchQuery.FromString(query.payload())
    if case == "bad-element":
        wire.items[0].blinded = b"\xff" * 32  # not a canonical ristretto255 encoding
    draft = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind=Kind.MATCH_QUERY,
        payload=wire.SerializeToString(),
        payload_type=QUERY_TYPE,
        batch_size=len(asked),
        seal_to=bank.seal_key,
        case_ref=CASE["case_ref"],
        legal_basis=CASE["legal_basis"],
    )
    submitted = police.client.submit(draft)
    assert submitted.answers == [] and submitted.undelivered == ["bank-a"]
    assert submitted.refusals == {"bank-a": refusal}
    assert_no_identifier(refusal, [item.blinded for item in wire.items])


def test_an_oversize_batch_comes_back_in_the_police_result(net: Net) -> None:
    police = net.client("police-1")
    [outcome] = query_responders(police, cards(), ["bank-a"], **CASE)
    assert not outcome.ok and outcome.matches == []
    assert outcome.error == f"no answer: bank-a: {OVERSIZE}"
    assert_no_identifier(outcome.error, [])


def test_gateway_query_prints_the_banks_reason(net: Net) -> None:
    args = ["query", "--config", str(net.consortium.config_path("police-1"))]
    args += ["--kind", "bank_card", *(card.value for card in CARDS), "--to", "bank-a"]
    args += ["--mode", "bucket"]  # the bank's bucket-mode batch limit is what refuses
    result = CliRunner().invoke(
        app, [*args, "--case", CASE["case_ref"], "--basis", CASE["legal_basis"]]
    )
    flat = " ".join(result.output.split())
    assert f"bank-a: no answer: bank-a: {OVERSIZE}" in flat, result.output
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("text", "passed_on"),
    [
        ("bank-a: INVALID_ARGUMENT match: item 3: bucket is out of range for 8 bits", None),
        ("FAILED_PRECONDITION bulk psi: unknown bulk PSI session", None),
        ("bank-a: lists no endpoint", "lists no endpoint"),
        (
            "bank-a: UNKNOWN Exception calling application: no account 6222020200112233445",
            "UNKNOWN",
        ),
        ("bank-a: INTERNAL card 6228488525470803 failed", "INTERNAL"),
        (
            "bank-a: INVALID_ARGUMENT match: account 6222020200112233445 is odd",
            "INVALID_ARGUMENT match: account … is odd",
        ),
        (
            "bank-a: NOT_FOUND element 8f2a9c0e1b3d4f5a6b7c8d9e0f1a2b3c not found",
            "NOT_FOUND element … not found",
        ),
    ],
)
def test_a_reason_passed_on_carries_no_identifier(text: str, passed_on: str | None) -> None:
    """Deliberate refusals pass unchanged (less the node id); failures give their status
    only; a long run of digits or hex digits is blanked whatever the status."""
    expected = passed_on if passed_on is not None else text.removeprefix("bank-a: ")
    assert recipient_reason("bank-a", text) == expected
