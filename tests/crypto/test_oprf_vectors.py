"""RFC 9497 Appendix A.1 vectors (ristretto255-SHA512), every procedure, OPRF/VOPRF/POPRF.

The blinds and proof nonces r are injected from the file, so every intermediate value the RFC
publishes (BlindedElement, EvaluationElement, Proof, Output) is checked, not only the output.
"""

from __future__ import annotations

import pytest

from gateway.crypto import blinded, group, oprf
from tests.crypto.rfc9497 import Case, Suite, cases, suites

OPRF_CASES = cases(0)
VOPRF_CASES = cases(1)
POPRF_CASES = cases(2)


def _scalars(encodings: list[bytes]) -> list[group.Scalar]:
    return [group.deserialize_scalar(item) for item in encodings]


def _elements(encodings: list[bytes]) -> list[group.Element]:
    return group.deserialize_elements(encodings)


def _key(suite: Suite) -> group.Scalar:
    return group.deserialize_scalar(suite.sk)


def _public_key(suite: Suite) -> group.Element:
    assert suite.pk is not None
    return group.deserialize_element(suite.pk)


def _r(case: Case) -> group.Scalar:
    assert case.proof_r is not None
    return group.deserialize_scalar(case.proof_r)


def _proof(case: Case) -> oprf.Proof:
    assert case.proof is not None
    return oprf.Proof.deserialize(case.proof)


def test_vectors_file_covers_every_mode_and_batches() -> None:
    assert [suite.mode for suite in suites()] == [0, 1, 2]
    assert (len(OPRF_CASES), len(VOPRF_CASES), len(POPRF_CASES)) == (2, 3, 3)
    assert any(case.batch > 1 for case in VOPRF_CASES)


@pytest.mark.parametrize("suite", suites(), ids=lambda s: f"mode{s.mode}")
def test_context_string_gives_the_published_group_dst(suite: Suite) -> None:
    assert suite.identifier.encode() == oprf.SUITE_ID
    assert b"HashToGroup-" + oprf.context_string(oprf.Mode(suite.mode)) == suite.group_dst


@pytest.mark.parametrize("suite", suites(), ids=lambda s: f"mode{s.mode}")
def test_derive_key_pair(suite: Suite) -> None:
    sk, pk = oprf.derive_key_pair(suite.seed, suite.key_info, oprf.Mode(suite.mode))
    assert group.serialize_scalar(sk) == suite.sk
    if suite.pk is not None:
        assert group.serialize_element(pk) == suite.pk


# --- mode 0: OPRF ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", OPRF_CASES, ids=lambda c: c.id)
def test_oprf_blind(case: Case) -> None:
    blinds, blinded_elements = oprf.blind(case.inputs, oprf.Mode.OPRF, blinds=_scalars(case.blinds))
    assert group.serialize_elements(blinded_elements) == case.blinded_elements
    assert [group.serialize_scalar(b) for b in blinds] == case.blinds


@pytest.mark.parametrize("case", OPRF_CASES, ids=lambda c: c.id)
def test_oprf_blind_evaluate(case: Case) -> None:
    evaluated = oprf.oprf_blind_evaluate(_key(case.suite), _elements(case.blinded_elements))
    assert group.serialize_elements(evaluated) == case.evaluation_elements


@pytest.mark.parametrize("case", OPRF_CASES, ids=lambda c: c.id)
def test_oprf_finalize(case: Case) -> None:
    outputs = oprf.oprf_finalize(
        case.inputs, _scalars(case.blinds), _elements(case.evaluation_elements)
    )
    assert outputs == case.outputs


@pytest.mark.parametrize("case", OPRF_CASES, ids=lambda c: c.id)
def test_oprf_evaluate(case: Case) -> None:
    assert oprf.evaluate(_key(case.suite), case.inputs, oprf.Mode.OPRF) == case.outputs


# --- mode 1: VOPRF --------------------------------------------------------------------------


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_blind(case: Case) -> None:
    _, blinded_elements = oprf.blind(case.inputs, oprf.Mode.VOPRF, blinds=_scalars(case.blinds))
    assert group.serialize_elements(blinded_elements) == case.blinded_elements


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_blind_evaluate_and_generate_proof(case: Case) -> None:
    evaluated, proof = oprf.voprf_blind_evaluate(
        _key(case.suite), _public_key(case.suite), _elements(case.blinded_elements), r=_r(case)
    )
    assert group.serialize_elements(evaluated) == case.evaluation_elements
    assert proof.serialize() == case.proof


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_verify_proof_accepts_the_published_proof(case: Case) -> None:
    assert oprf.verify_proof(
        group.generator(),
        _public_key(case.suite),
        _elements(case.blinded_elements),
        _elements(case.evaluation_elements),
        _proof(case),
        oprf.Mode.VOPRF,
    )


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_finalize(case: Case) -> None:
    outputs = oprf.voprf_finalize(
        case.inputs,
        _scalars(case.blinds),
        _elements(case.evaluation_elements),
        _elements(case.blinded_elements),
        _public_key(case.suite),
        _proof(case),
    )
    assert outputs == case.outputs


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_evaluate(case: Case) -> None:
    assert oprf.evaluate(_key(case.suite), case.inputs, oprf.Mode.VOPRF) == case.outputs


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_published_proof_fails_for_the_wrong_batch(case: Case) -> None:
    """A published proof is bound to its batch: drop or reorder an element and it fails."""
    blinded_elements = _elements(case.blinded_elements)
    evaluated = _elements(case.evaluation_elements)
    if case.batch > 1:
        blinded_elements = blinded_elements[::-1]
    else:
        evaluated = [group.element_add(evaluated[0], group.generator())]
    with pytest.raises(oprf.VerifyError):
        oprf.voprf_finalize(
            case.inputs,
            _scalars(case.blinds),
            evaluated,
            blinded_elements,
            _public_key(case.suite),
            _proof(case),
        )


@pytest.mark.parametrize("case", VOPRF_CASES, ids=lambda c: c.id)
def test_voprf_vectors_through_the_blinded_api(case: Case) -> None:
    """The wire-level roles accept the published proof and give the published outputs."""
    server = blinded.OprfServer.derive(case.suite.seed, case.suite.key_info)
    assert server.private_key_bytes() == case.suite.sk
    assert server.public_key == case.suite.pk
    batch = blinded.BlindedBatch(
        case.inputs, _scalars(case.blinds), _elements(case.blinded_elements)
    )
    assert batch.blinded_elements == case.blinded_elements
    assert case.suite.pk is not None and case.proof is not None
    client = blinded.OprfClient(case.suite.pk)
    assert client.finalize(batch, case.evaluation_elements, case.proof) == case.outputs
    assert server.evaluate(case.inputs) == case.outputs


# --- mode 2: POPRF (beyond the brief, but the vectors are there) ---------------------------


@pytest.mark.parametrize("case", POPRF_CASES, ids=lambda c: c.id)
def test_poprf_round_trip(case: Case) -> None:
    assert case.info is not None
    blinds, blinded_elements, tweaked_key = oprf.poprf_blind(
        case.inputs, case.info, _public_key(case.suite), blinds=_scalars(case.blinds)
    )
    assert group.serialize_elements(blinded_elements) == case.blinded_elements
    evaluated, proof = oprf.poprf_blind_evaluate(
        _key(case.suite), blinded_elements, case.info, r=_r(case)
    )
    assert group.serialize_elements(evaluated) == case.evaluation_elements
    assert proof.serialize() == case.proof
    outputs = oprf.poprf_finalize(
        case.inputs, blinds, evaluated, blinded_elements, proof, case.info, tweaked_key
    )
    assert outputs == case.outputs
    assert oprf.poprf_evaluate(_key(case.suite), case.inputs, case.info) == case.outputs
