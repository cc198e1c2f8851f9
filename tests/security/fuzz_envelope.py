"""Coverage-guided fuzzing (atheris / libFuzzer) of what the gateway reads off the wire.

Not collected by pytest; run it by hand, for as long as you like:

    .venv/bin/pip install atheris          # wheels exist for CPython 3.11 on Linux
    .venv/bin/python tests/security/fuzz_envelope.py --write-seeds var/fuzz-corpus
    .venv/bin/python tests/security/fuzz_envelope.py -max_total_time=300 var/fuzz-corpus

The first byte of each input picks a target, the second its options, the rest is input:

0. an Envelope off the wire: protobuf decode, then `EnvelopeVerifier.verify`;
1. a Header the fuzzer writes and a real member signs, so that inputs get past the
   signature and reach the freshness, expiry, recipient and sealing checks;
2. the signed directory's JSON (`Directory.from_bytes`);
3. a sealed payload (`unseal`);
4. an action order's JSON (`read_order`).

A target may refuse its input only with its documented error (DecodeError, a `Rejected`
verdict, DirectoryError, SealError, OrderError); any other exception is a finding, and
libFuzzer saves the input as crash-<sha1> for `python fuzz_envelope.py crash-<sha1>`.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError
from nacl.public import PrivateKey

# Coverage feedback from our own code only: instrumenting every library (phonenumbers
# alone has hundreds of data modules) takes minutes and guides the fuzzer nowhere useful.
with atheris.instrument_imports(include=["gateway", "nodes"]):
    from gateway.envelope.build import Draft
    from gateway.envelope.pae import pae
    from gateway.envelope.sealing import SealError, seal, unseal
    from gateway.envelope.verify import EnvelopeVerifier, Rejected, Verified, VerifierLimits
    from gateway.pki.directory import Directory, DirectoryError, Member
    from gateway.v1 import gateway_pb2 as pb
    from nodes.actions.orders import OrderError, read_order

NOW = 1_760_000_000_000
ROLES = {"police-1": "police", "bank-a": "bank", "carrier-1": "carrier"}
SIGNING = {node: Ed25519PrivateKey.generate() for node in ROLES}
SEALING = {node: PrivateKey.generate() for node in ROLES}
DIRECTORY = Directory(
    "fuzz.example",
    1,
    tuple(
        Member(
            node_id=node,
            role=role,
            agency=node,
            endpoint="",
            sign_key=SIGNING[node].public_key().public_bytes_raw(),
            seal_key=bytes(SEALING[node].public_key),
        )
        for node, role in ROLES.items()
    ),
)
VERIFIER = EnvelopeVerifier(
    lambda: DIRECTORY, limits=VerifierLimits(max_envelope_bytes=1 << 16), clock_ms=lambda: NOW
)
PEERS = (None, "police-1", "bank-a", "broker")


def verify(envelope: pb.Envelope, flags: int) -> None:
    peer = PEERS[flags % len(PEERS)]
    verdict = VERIFIER.verify(
        envelope, peer_node_id=peer, relayed=bool(flags & 0x10), recipient="bank-a"
    )
    if not isinstance(verdict, Verified | Rejected):
        raise AssertionError(f"verifier returned {verdict!r}")


def fuzz_wire_envelope(flags: int, data: bytes) -> None:
    try:
        envelope = pb.Envelope.FromString(data)
    except DecodeError:
        return
    verify(envelope, flags)


def fuzz_signed_header(flags: int, data: bytes) -> None:
    signer = list(ROLES)[flags % len(ROLES)]
    try:
        payload_type = pb.Header.FromString(data).payload_type
    except DecodeError:
        payload_type = ""
    signature = SIGNING[signer].sign(pae(payload_type, data))
    verify(pb.Envelope(header=data, payload=b"{}", signature=signature), flags >> 2)


def fuzz_directory(flags: int, data: bytes) -> None:
    with contextlib.suppress(DirectoryError):
        Directory.from_bytes(data)


def fuzz_unseal(flags: int, data: bytes) -> None:
    with contextlib.suppress(SealError):
        unseal(data, "0123456789abcdef" * 2, SEALING["bank-a"])


def fuzz_order(flags: int, data: bytes) -> None:
    header = pb.Header(message_id="0" * 32, kind="FREEZE")
    header.terms.action = "FREEZE"
    with contextlib.suppress(OrderError):
        read_order(header, data, ("bank", "carrier", "police")[flags % 3], "CN")


TARGETS = (fuzz_wire_envelope, fuzz_signed_header, fuzz_directory, fuzz_unseal, fuzz_order)


def test_one_input(data: bytes) -> None:
    """Byte 0 picks the target, byte 1 its options (peer, signer, role), the rest is input."""
    if len(data) < 2:
        return
    TARGETS[data[0] % len(TARGETS)](data[1], data[2:])


def seeds() -> list[bytes]:
    """One well-formed input per target, so that mutation starts from the real formats."""
    envelope = Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="FREEZE",
        payload=b'{"identifier_kind": "bank_account", "value": "6222020200112233445"}',
        case_ref="C-1",
        legal_basis="art. 11",
        seal_to=bytes(SEALING["bank-a"].public_key),
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=100,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        created_at_ms=NOW - 1_000,
    ).sign(SIGNING["police-1"])
    sealed = seal(b'{"value": "1"}', "0123456789abcdef" * 2, bytes(SEALING["bank-a"].public_key))
    return [
        bytes([0, 1]) + envelope.SerializeToString(),
        bytes([1, 0]) + envelope.header,
        bytes([2, 0]) + DIRECTORY.to_bytes(),
        bytes([3, 0]) + sealed,
        bytes([4, 0]) + b'{"identifier_kind": "bank_account", "value": "6222020200112233445"}',
    ]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        for number, seed in enumerate(seeds()):
            (folder / f"seed-{number}").write_bytes(seed)
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
