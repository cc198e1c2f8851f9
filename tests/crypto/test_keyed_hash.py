"""The hashed matching mode, checked against an independent HMAC-SHA256 from the stdlib."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import keyed_hash

KEY = bytes(range(32))


def _reference(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, hashlib.sha256)


def test_tag_is_hmac_sha256_under_the_consortium_key() -> None:
    hasher = keyed_hash.KeyedHasher(KEY)
    message = b"phone\x00+8613800138000"
    assert hasher.tag(message) == _reference(KEY, message)
    assert len(hasher.tag(message)) == keyed_hash.TAG_LENGTH


@settings(max_examples=50, deadline=None)
@given(
    key=st.binary(min_size=keyed_hash.KEY_LENGTH, max_size=200),
    messages=st.lists(st.binary(max_size=100), max_size=5),
)
def test_tags_match_the_stdlib_for_any_key_and_input(key: bytes, messages: list[bytes]) -> None:
    hasher = keyed_hash.KeyedHasher(key)
    assert hasher.tag_many(messages) == [_reference(key, message) for message in messages]
    for message in messages:
        assert hasher.matches(message, _reference(key, message))


def test_hasher_is_reusable_and_stateless_between_tags() -> None:
    hasher = keyed_hash.KeyedHasher(KEY)
    first = hasher.tag(b"a")
    hasher.tag(b"b")
    assert hasher.tag(b"a") == first


def test_another_key_or_input_does_not_match() -> None:
    hasher = keyed_hash.KeyedHasher(KEY)
    tag = hasher.tag(b"card\x004111111111111111")
    assert not hasher.matches(b"card\x004111111111111112", tag)
    assert not keyed_hash.KeyedHasher(keyed_hash.generate_key()).matches(
        b"card\x004111111111111111", tag
    )


def test_short_keys_are_refused_and_generated_keys_are_fresh() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        keyed_hash.KeyedHasher(b"\x01" * (keyed_hash.KEY_LENGTH - 1))
    first, second = keyed_hash.generate_key(), keyed_hash.generate_key()
    assert len(first) == keyed_hash.KEY_LENGTH
    assert first != second


def test_repr_hides_the_key() -> None:
    text = repr(keyed_hash.KeyedHasher(KEY))
    assert KEY.hex() not in text
    assert repr(KEY) not in text
