"""The wire-level VOPRF roles: a querier and a responder exchanging only bytes.

Correctness is checked against the responder's direct Evaluate (the RFC's own equation) and,
for the fixed key, in test_oprf_vectors against the published outputs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import blinded

IDENTIFIERS = [b"phone\x00+8613800138000", b"card\x004111111111111111", b"id\x00110101199003074514"]


@pytest.fixture(scope="module")
def server() -> blinded.OprfServer:
    return blinded.OprfServer.generate()


def _exchange(
    server: blinded.OprfServer, inputs: list[bytes]
) -> tuple[blinded.OprfClient, blinded.BlindedBatch, list[bytes], bytes]:
    client = blinded.OprfClient(server.public_key)
    batch = client.blind(inputs)
    evaluated, proof = server.blind_evaluate_batch(batch.blinded_elements)
    return client, batch, evaluated, proof


def test_querier_responder_round_trip(server: blinded.OprfServer) -> None:
    client, batch, evaluated, proof = _exchange(server, IDENTIFIERS)
    assert len(batch) == len(IDENTIFIERS)
    assert all(len(element) == 32 for element in batch.blinded_elements)
    outputs = client.finalize(batch, evaluated, proof)
    assert outputs == server.evaluate(IDENTIFIERS)
    assert all(len(output) == blinded.OUTPUT_LENGTH for output in outputs)


def test_blinded_elements_hide_the_input_and_differ_per_query(server: blinded.OprfServer) -> None:
    client = blinded.OprfClient(server.public_key)
    first = client.blind(IDENTIFIERS[:1]).blinded_elements
    second = client.blind(IDENTIFIERS[:1]).blinded_elements
    assert first != second


def test_a_responder_with_another_key_is_caught(server: blinded.OprfServer) -> None:
    impostor = blinded.OprfServer.generate()
    client = blinded.OprfClient(server.public_key)
    batch = client.blind(IDENTIFIERS)
    evaluated, proof = impostor.blind_evaluate_batch(batch.blinded_elements)
    with pytest.raises(blinded.VerifyError):
        client.finalize(batch, evaluated, proof)


def test_a_response_for_another_batch_is_caught(server: blinded.OprfServer) -> None:
    client, batch, _, _ = _exchange(server, IDENTIFIERS)
    other = client.blind(list(reversed(IDENTIFIERS)))
    evaluated, proof = server.blind_evaluate_batch(other.blinded_elements)
    with pytest.raises(blinded.VerifyError):
        client.finalize(batch, evaluated, proof)


def test_wrong_count_and_malformed_proof_are_verify_errors(server: blinded.OprfServer) -> None:
    client, batch, evaluated, proof = _exchange(server, IDENTIFIERS)
    with pytest.raises(blinded.VerifyError):
        client.finalize(batch, evaluated[:-1], proof)
    with pytest.raises(blinded.VerifyError):
        client.finalize(batch, evaluated, proof[:-1])
    with pytest.raises(blinded.VerifyError):
        client.finalize(batch, evaluated, proof[:32] + b"\xff" * 32)


def test_identity_or_non_canonical_evaluations_are_refused(server: blinded.OprfServer) -> None:
    client, batch, evaluated, proof = _exchange(server, IDENTIFIERS)
    top_bit = evaluated[0][:31] + bytes([evaluated[0][31] | 0x80])
    for bad in (bytes(32), b"\xff" * 32, top_bit, evaluated[0][:31]):
        with pytest.raises(blinded.InvalidElement):
            client.finalize(batch, [bad, *evaluated[1:]], proof)


def test_responder_refuses_bad_blinded_elements(server: blinded.OprfServer) -> None:
    good = blinded.OprfClient(server.public_key).blind(IDENTIFIERS[:1]).blinded_elements[0]
    for bad in (bytes(32), b"\xff" * 32, (1).to_bytes(32, "little"), good + b"\x00"):
        with pytest.raises(blinded.InvalidElement) as info:
            server.blind_evaluate_batch([good, bad])
        assert bad.hex() not in str(info.value)
    with pytest.raises(blinded.InvalidInputError):
        server.blind_evaluate_batch([])


def test_bad_keys_are_refused() -> None:
    with pytest.raises(blinded.InvalidScalar):
        blinded.OprfServer(bytes(32))
    with pytest.raises(blinded.InvalidScalar):
        blinded.OprfServer(b"\xff" * 32)
    with pytest.raises(blinded.InvalidElement):
        blinded.OprfClient(bytes(32))
    with pytest.raises(blinded.GroupError):
        blinded.OprfClient(b"\x01" * 31)


def test_client_refuses_an_empty_batch(server: blinded.OprfServer) -> None:
    with pytest.raises(blinded.InvalidInputError):
        blinded.OprfClient(server.public_key).blind([])


def test_key_round_trips_through_the_key_store(server: blinded.OprfServer) -> None:
    restored = blinded.OprfServer(server.private_key_bytes())
    assert restored.public_key == server.public_key
    assert restored.evaluate(IDENTIFIERS) == server.evaluate(IDENTIFIERS)


def test_reprs_show_no_keys_or_inputs(server: blinded.OprfServer) -> None:
    client, batch, _, _ = _exchange(server, IDENTIFIERS)
    texts = [repr(server), repr(client), repr(batch)]
    for text in texts:
        assert server.private_key_bytes().hex() not in text
        assert "8613800138000" not in text
        assert "110101199003074514" not in text


@settings(max_examples=10, deadline=None)
@given(inputs=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8, unique=True))
def test_round_trip_matches_direct_evaluation(inputs: list[bytes]) -> None:
    responder = blinded.OprfServer.derive(b"\x07" * 32, b"test responder")
    client = blinded.OprfClient(responder.public_key)
    batch = client.blind(inputs)
    evaluated, proof = responder.blind_evaluate_batch(batch.blinded_elements, workers=2)
    assert client.finalize(batch, evaluated, proof) == responder.evaluate(inputs)
