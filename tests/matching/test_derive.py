"""Bucket, tag and label derivations against an independent computation."""

from __future__ import annotations

import os

import pytest

from gateway.matching.derive import (
    LabelError,
    bucket_of,
    check_bucket_bits,
    open_label,
    seal_label,
    tag_and_key,
)
from tests.matching import reference


@pytest.mark.parametrize("bits", [1, 8, 16, 17, 24])
def test_bucket_is_the_first_bits_of_the_domain_separated_hash(bits: int) -> None:
    for value in ("+8613800138000", "6212261234567890128", "11010519491231002X"):
        x = reference.canonical("phone", value)
        assert bucket_of(x, bits) == reference.bucket(x, bits)
        assert 0 <= bucket_of(x, bits) < 2**bits


def test_bucket_separates_kinds() -> None:
    a = bucket_of(reference.canonical("bank_card", "6212261234567890"), 24)
    b = bucket_of(reference.canonical("bank_account", "6212261234567890"), 24)
    assert a != b


def test_tag_and_label_key_are_hkdf_sha256_of_the_oprf_output() -> None:
    y = os.urandom(64)
    tag, key = tag_and_key(y)
    assert tag == reference.tag(y)
    assert key == reference.hkdf(y, b"label")


def test_sealed_label_opens_independently_and_back() -> None:
    y = os.urandom(64)
    _, key = tag_and_key(y)
    fields = {"handle": "7", "status": "ACTIVE", "holder": "王伟"}
    sealed = seal_label(key, fields)
    assert reference.open_label(y, sealed) == fields
    assert open_label(key, sealed) == fields
    assert seal_label(key, fields) != sealed, "the nonce must be fresh"


def test_a_label_does_not_open_under_another_key_or_when_tampered() -> None:
    _, key = tag_and_key(os.urandom(64))
    _, other = tag_and_key(os.urandom(64))
    sealed = seal_label(key, {"handle": "1"})
    with pytest.raises(LabelError, match="does not open"):
        open_label(other, sealed)
    with pytest.raises(LabelError, match="does not open"):
        open_label(key, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(LabelError, match="too short"):
        open_label(key, sealed[:20])


@pytest.mark.parametrize("bits", [0, 25, -1])
def test_bucket_bits_out_of_range_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="1 to 24"):
        check_bucket_bits(bits)
