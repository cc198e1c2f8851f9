"""Diffie-Hellman PSI between two parties, compared with Python's own set intersection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import oprf, psi


def _run_psi(
    querier_set: list[bytes], responder_set: list[bytes], *, workers: int = 1
) -> set[bytes]:
    """The two-party flow, with every element crossing the 'wire' as bytes."""
    a, b = psi.generate_key(), psi.generate_key()
    # Querier -> responder: H(x)^a.
    to_responder = psi.encode_elements(
        psi.exponentiate_parallel(a, psi.hash_inputs_to_group(querier_set), workers)
    )
    # Responder -> querier: (H(x)^a)^b in the querier's order, and H(y)^b.
    received = psi.decode_elements(to_responder)
    double_masked_back = psi.encode_elements(psi.exponentiate(b, received))
    responder_masked = psi.encode_elements(
        psi.exponentiate(b, psi.hash_inputs_to_group(responder_set))
    )
    # Querier: (H(y)^b)^a, then compare.
    peer = psi.exponentiate(a, psi.decode_elements(responder_masked))
    indices = psi.intersection_indices(psi.decode_elements(double_masked_back), peer)
    return {querier_set[i] for i in indices}


def _run_cardinality(querier_set: list[bytes], responder_set: list[bytes]) -> int:
    a, b = psi.generate_key(), psi.generate_key()
    to_responder = psi.exponentiate(a, psi.hash_inputs_to_group(querier_set))
    shuffled_back = psi.exponentiate_and_shuffle(b, to_responder, workers=2)
    responder_masked = psi.exponentiate(b, psi.hash_inputs_to_group(responder_set))
    peer = psi.exponentiate(a, responder_masked)
    return psi.intersection_cardinality(shuffled_back, peer)


BANK = [f"phone\x00+86138{i:08d}".encode() for i in range(0, 300, 3)]
CARRIER = [f"phone\x00+86138{i:08d}".encode() for i in range(0, 300, 5)]


def test_intersection_equals_the_true_intersection() -> None:
    assert _run_psi(BANK, CARRIER) == set(BANK) & set(CARRIER)


def test_parallel_exponentiation_gives_the_same_intersection() -> None:
    assert _run_psi(BANK, CARRIER, workers=4) == set(BANK) & set(CARRIER)


def test_cardinality_variant_counts_the_intersection() -> None:
    assert _run_cardinality(BANK, CARRIER) == len(set(BANK) & set(CARRIER)) == 20


def test_shuffle_keeps_the_multiset() -> None:
    key = psi.generate_key()
    elements = psi.hash_inputs_to_group(BANK)
    assert sorted(psi.encode_elements(psi.exponentiate_and_shuffle(key, elements))) == sorted(
        psi.encode_elements(psi.exponentiate(key, elements))
    )


def test_disjoint_and_empty_sets() -> None:
    assert _run_psi(BANK[:5], [b"other"]) == set()
    assert _run_psi([], CARRIER) == set()
    assert _run_cardinality(BANK, []) == 0


def test_psi_elements_are_domain_separated_from_oprf() -> None:
    element = psi.hash_inputs_to_group([b"x"])[0]
    assert element != oprf.hash_to_group(b"x", oprf.Mode.VOPRF)


def test_malformed_peer_elements_are_refused() -> None:
    with pytest.raises(psi.InvalidElement):
        psi.decode_elements([bytes(32)])
    with pytest.raises(psi.InvalidElement):
        psi.decode_elements([b"\xff" * 32])


@settings(max_examples=20, deadline=None)
@given(
    universe=st.lists(st.binary(max_size=12), min_size=1, max_size=30, unique=True),
    data=st.data(),
)
def test_intersection_property(universe: list[bytes], data: st.DataObject) -> None:
    querier = data.draw(st.lists(st.sampled_from(universe), unique=True), label="querier")
    responder = data.draw(st.lists(st.sampled_from(universe), unique=True), label="responder")
    expected = set(querier) & set(responder)
    assert _run_psi(querier, responder) == expected
    assert _run_cardinality(querier, responder) == len(expected)
