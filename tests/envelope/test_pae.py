"""PAE against the example in the DSSE protocol specification."""

from gateway.envelope.pae import pae


def test_pae_matches_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected


def test_pae_lengths_count_bytes_not_characters() -> None:
    assert pae("t/é", b"\x00\xff") == b"DSSEv1 4 t/\xc3\xa9 2 \x00\xff"
