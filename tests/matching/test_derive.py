"""Bucket, tag and label derivations against an independent computation."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.matching.derive import (
    FieldEncoder,
    LabelError,
    bucket_bits_for,
    bucket_of,
    check_bucket_bits,
    decode_fields,
    encode_fields,
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


def test_tag_and_label_key_are_the_halves_of_one_sha512_of_the_oprf_output() -> None:
    y = os.urandom(64)
    tag, key = tag_and_key(y)
    assert tag == reference.tag(y)
    assert key == reference.label_key(y)


def test_a_label_sealed_independently_opens() -> None:
    y = os.urandom(64)
    fields = {"status": "ACTIVE", "handle": "12", "holder": "王伟", "empty": ""}
    sealed = reference.seal(y, fields, os.urandom(12))
    assert open_label(tag_and_key(y)[1], sealed) == fields


def test_the_label_encoding_is_the_fixed_binary_layout() -> None:
    fields = {"b": "2", "a": "é"}
    assert encode_fields(fields) == b"\x01a\x00\x02\xc3\xa9\x01b\x00\x012"
    assert decode_fields(encode_fields(fields)) == fields


def test_a_field_encoder_writes_the_layout_for_its_names_only() -> None:
    encoder = FieldEncoder(("status", "handle", "record_id"))
    fields = {"status": "冻结", "handle": "7", "holder_name": "王伟", "record_id": ""}
    wanted = {name: fields[name] for name in ("status", "handle", "record_id")}
    assert encoder.encode(fields) == reference.encode(wanted)
    assert encoder.encode({}) == b""
    with pytest.raises(ValueError, match="'status'"):
        encoder.encode({"status": "1" * 65536})
    with pytest.raises(ValueError, match=r"'x+'"):
        FieldEncoder(["x" * 256])


@pytest.mark.parametrize(
    "plain",
    [
        b"\x01a\x00\x05ab",  # value runs past the end
        b"\x01a\x00",  # value length cut short
        b"\x05ab",  # name runs past the end
        b"\x00\x00\x00",  # empty name
        b"\x01b\x00\x00\x01a\x00\x00",  # out of order
        b"\x01a\x00\x00\x01a\x00\x00",  # repeated
        b"\x01a\x00\x01\xff",  # not UTF-8
    ],
)
def test_malformed_label_plaintext_is_refused(plain: bytes) -> None:
    with pytest.raises(LabelError):
        decode_fields(plain)


def test_a_label_sealed_as_json_does_not_open_as_fields() -> None:
    """A format-1 style plaintext under the right key is refused, not misread."""
    y = os.urandom(64)
    nonce = os.urandom(12)
    plain = b'{"handle":"1"}'
    aead = ChaCha20Poly1305(reference.label_key(y))
    sealed = nonce + aead.encrypt(nonce, plain, reference.LABEL_AAD)
    with pytest.raises(LabelError):
        open_label(tag_and_key(y)[1], sealed)


def test_a_field_too_long_to_encode_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"'x+'"):
        seal_label(os.urandom(32), {"x" * 256: "v"})
    with pytest.raises(ValueError, match="'v'"):
        seal_label(os.urandom(32), {"v": "1" * 65536})


@pytest.mark.parametrize(
    ("records", "bits"),
    [(1, 1), (1_000_000, 16), (10_000_000, 19), (100_000_000, 23), (10**12, 24)],
)
def test_bucket_bits_follow_the_record_count(records: int, bits: int) -> None:
    assert bucket_bits_for(records) == bits


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
