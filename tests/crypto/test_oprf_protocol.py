"""RFC 9497 properties beyond the vectors: batch proofs, wrong keys, tampering, bad inputs.

Correctness here is the protocol's own equation: Finalize(Blind, BlindEvaluate) must equal the
server's direct Evaluate, and a proof must fail under any other key or for any other batch.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import group, oprf

MODES = [oprf.Mode.OPRF, oprf.Mode.VOPRF]
INPUTS = [b"phone\x00+8613800138000", b"card\x004111111111111111", b"", b"\x00" * 100]


def _key_pair() -> tuple[group.Scalar, group.Element]:
    sk = group.random_scalar()
    return sk, group.scalar_mult_base(sk)


def test_batch_proof_over_several_elements_verifies() -> None:
    sk, pk = _key_pair()
    inputs = [f"acct\x00{i:08d}".encode() for i in range(16)]
    blinds, blinded_elements = oprf.blind(inputs, oprf.Mode.VOPRF)
    evaluated, proof = oprf.voprf_blind_evaluate(sk, pk, blinded_elements)
    assert oprf.verify_proof(
        group.generator(), pk, blinded_elements, evaluated, proof, oprf.Mode.VOPRF
    )
    outputs = oprf.voprf_finalize(inputs, blinds, evaluated, blinded_elements, pk, proof)
    assert outputs == oprf.evaluate(sk, inputs, oprf.Mode.VOPRF)
    assert len(set(outputs)) == len(inputs)
    assert all(len(output) == oprf.HASH_LENGTH for output in outputs)


def test_proof_under_a_different_key_fails() -> None:
    sk, _ = _key_pair()
    _, other_pk = _key_pair()
    blinds, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    # The responder evaluates and proves with its own key; the querier expects another.
    evaluated, proof = oprf.voprf_blind_evaluate(sk, group.scalar_mult_base(sk), blinded_elements)
    with pytest.raises(oprf.VerifyError):
        oprf.voprf_finalize(INPUTS, blinds, evaluated, blinded_elements, other_pk, proof)


def test_evaluation_with_another_key_under_the_published_proof_key_fails() -> None:
    """A responder that evaluates with key k2 but claims pk1 cannot produce a valid proof."""
    sk1, pk1 = _key_pair()
    sk2, _ = _key_pair()
    blinds, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    evaluated = oprf.oprf_blind_evaluate(sk2, blinded_elements)
    proof = oprf.generate_proof(
        sk1, group.generator(), pk1, blinded_elements, evaluated, oprf.Mode.VOPRF
    )
    with pytest.raises(oprf.VerifyError):
        oprf.voprf_finalize(INPUTS, blinds, evaluated, blinded_elements, pk1, proof)


def test_one_tampered_evaluation_in_a_batch_fails() -> None:
    sk, pk = _key_pair()
    blinds, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    evaluated, proof = oprf.voprf_blind_evaluate(sk, pk, blinded_elements)
    for i in range(len(evaluated)):
        tampered = list(evaluated)
        tampered[i] = group.element_add(tampered[i], group.generator())
        with pytest.raises(oprf.VerifyError):
            oprf.voprf_finalize(INPUTS, blinds, tampered, blinded_elements, pk, proof)
    swapped = [evaluated[1], evaluated[0], *evaluated[2:]]
    with pytest.raises(oprf.VerifyError):
        oprf.voprf_finalize(INPUTS, blinds, swapped, blinded_elements, pk, proof)


def test_tampered_proof_scalars_fail() -> None:
    sk, pk = _key_pair()
    _, blinded_elements = oprf.blind(INPUTS[:1], oprf.Mode.VOPRF)
    evaluated, proof = oprf.voprf_blind_evaluate(sk, pk, blinded_elements)
    one = group.deserialize_scalar((1).to_bytes(32, "little"))
    for bad in (
        oprf.Proof(group.scalar_add(proof.c, one), proof.s),
        oprf.Proof(proof.c, group.scalar_add(proof.s, one)),
        oprf.Proof(proof.s, proof.c),
    ):
        assert not oprf.verify_proof(
            group.generator(), pk, blinded_elements, evaluated, bad, oprf.Mode.VOPRF
        )


def test_proof_from_another_mode_does_not_verify() -> None:
    """The context string separates modes: a proof made under POPRF's DSTs fails in VOPRF."""
    sk, pk = _key_pair()
    _, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    evaluated = oprf.oprf_blind_evaluate(sk, blinded_elements)
    proof = oprf.generate_proof(
        sk, group.generator(), pk, blinded_elements, evaluated, oprf.Mode.POPRF
    )
    assert not oprf.verify_proof(
        group.generator(), pk, blinded_elements, evaluated, proof, oprf.Mode.VOPRF
    )


def test_proof_serialization_round_trips_and_refuses_bad_encodings() -> None:
    sk, pk = _key_pair()
    _, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    _, proof = oprf.voprf_blind_evaluate(sk, pk, blinded_elements)
    data = proof.serialize()
    assert len(data) == oprf.PROOF_LENGTH
    assert oprf.Proof.deserialize(data) == proof
    with pytest.raises(group.InvalidScalar):
        oprf.Proof.deserialize(data[:-1])
    with pytest.raises(group.InvalidScalar):
        oprf.Proof.deserialize(data[:32] + b"\xff" * 32)


def test_compute_composites_fast_agrees_with_compute_composites() -> None:
    sk, pk = _key_pair()
    _, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    evaluated = oprf.oprf_blind_evaluate(sk, blinded_elements)
    assert oprf.compute_composites_fast(
        sk, pk, blinded_elements, evaluated, oprf.Mode.VOPRF
    ) == oprf.compute_composites(pk, blinded_elements, evaluated, oprf.Mode.VOPRF)


def test_bad_batches_are_refused() -> None:
    sk, pk = _key_pair()
    with pytest.raises(oprf.InvalidInputError):
        oprf.voprf_blind_evaluate(sk, pk, [])
    _, blinded_elements = oprf.blind(INPUTS, oprf.Mode.VOPRF)
    with pytest.raises(oprf.InvalidInputError):
        oprf.compute_composites(pk, blinded_elements, blinded_elements[:1], oprf.Mode.VOPRF)
    with pytest.raises(oprf.InvalidInputError):
        oprf.blind(INPUTS, oprf.Mode.OPRF, blinds=[group.random_scalar()])
    with pytest.raises(oprf.InvalidInputError):
        oprf.oprf_finalize(INPUTS, [group.random_scalar()], blinded_elements)


def test_bad_inputs_are_refused_without_echoing_them() -> None:
    secret = b"resident\x00110101199003074514" * 2500  # over 65535 bytes
    with pytest.raises(oprf.InvalidInputError) as info:
        oprf.blind([secret], oprf.Mode.VOPRF)
    assert b"110101199003074514".decode() not in str(info.value)
    zero = group.deserialize_scalar(bytes(32))
    with pytest.raises(oprf.InvalidInputError):
        oprf.blind([b"x"], oprf.Mode.OPRF, blinds=[zero])
    with pytest.raises(oprf.InvalidInputError):
        oprf.derive_key_pair(b"short seed", b"", oprf.Mode.VOPRF)
    with pytest.raises(ValueError):
        oprf.blind([b"x"], oprf.Mode.POPRF)


def test_generate_key_pair_gives_a_matching_pair() -> None:
    sk_bytes, pk_bytes = oprf.generate_key_pair()
    sk = group.deserialize_scalar(sk_bytes)
    assert not group.scalar_is_zero(sk)
    assert group.deserialize_element(pk_bytes) == group.scalar_mult_base(sk)


def test_derive_key_pair_depends_on_seed_info_and_mode() -> None:
    seed = bytes(range(32))
    base = oprf.derive_key_pair(seed, b"bank-a", oprf.Mode.VOPRF)
    assert base == oprf.derive_key_pair(seed, b"bank-a", oprf.Mode.VOPRF)
    assert base != oprf.derive_key_pair(seed, b"bank-b", oprf.Mode.VOPRF)
    assert base != oprf.derive_key_pair(seed, b"bank-a", oprf.Mode.OPRF)
    assert base != oprf.derive_key_pair(bytes(32), b"bank-a", oprf.Mode.VOPRF)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@settings(max_examples=15, deadline=None)
@given(inputs=st.lists(st.binary(max_size=64), min_size=1, max_size=6))
def test_finalize_of_blind_evaluate_equals_evaluate(mode: oprf.Mode, inputs: list[bytes]) -> None:
    sk, pk = _key_pair()
    blinds, blinded_elements = oprf.blind(inputs, mode)
    if mode is oprf.Mode.OPRF:
        evaluated = oprf.oprf_blind_evaluate(sk, blinded_elements)
        outputs = oprf.oprf_finalize(inputs, blinds, evaluated)
    else:
        evaluated, proof = oprf.voprf_blind_evaluate(sk, pk, blinded_elements, workers=2)
        outputs = oprf.voprf_finalize(inputs, blinds, evaluated, blinded_elements, pk, proof)
    assert outputs == oprf.evaluate(sk, inputs, mode)
    # Equal inputs give equal outputs, whatever the blinds; distinct inputs distinct ones.
    assert len(set(outputs)) == len(set(inputs))


@settings(max_examples=15, deadline=None)
@given(data=st.binary(max_size=64))
def test_outputs_differ_across_keys_and_modes(data: bytes) -> None:
    sk1, _ = _key_pair()
    sk2, _ = _key_pair()
    outputs = {
        oprf.evaluate(sk1, [data], oprf.Mode.OPRF)[0],
        oprf.evaluate(sk1, [data], oprf.Mode.VOPRF)[0],
        oprf.evaluate(sk2, [data], oprf.Mode.VOPRF)[0],
    }
    assert len(outputs) == 3
