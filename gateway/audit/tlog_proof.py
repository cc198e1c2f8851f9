"""C2SP tlog-proof (c2sp.org/tlog-proof@v1): an offline receipt that an entry is logged.

An agency can keep this text next to a broker decision and later show anyone, with
only the log's public key (and witness keys), that the decision is in the audit log:
it bundles the leaf index, the inclusion proof and the signed, cosigned checkpoint.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.audit.checkpoint import MAX_TREE_SIZE, Checkpoint, CheckpointError, parse_checkpoint
from gateway.audit.note import (
    NoteSignature,
    NoteVerifier,
    UnverifiedNoteError,
    b64decode_strict,
    open_note,
)
from gateway.audit.proof import verify_inclusion

__all__ = [
    "HEADER",
    "SEEN_SIZE_METADATA",
    "TlogProof",
    "TlogProofError",
    "VerifiedTlogProof",
    "format_tlog_proof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]

SEEN_SIZE_METADATA = "gateway-seen-size"
"""Submit's request metadata: the size of the largest checkpoint the submitter holds, so
that the receipt comes with the consistency proof from it (`AuditReceipt.consistency`)."""

HEADER = "c2sp.org/tlog-proof@v1"
"""First line of every proof."""

_MAX_PROOF_HASHES = 64  # a uint64-sized tree is at most 64 levels deep
_DECIMAL = re.compile("0|[1-9][0-9]*")
_HASH_SIZE = 32


class TlogProofError(ValueError):
    """The proof text is malformed, or does not meet the caller's witness policy."""


@dataclass(frozen=True, init=False)
class TlogProof:
    """The parts of a proof; ``checkpoint`` is the signed note, verbatim and unverified.

    ``hashes`` is the RFC 9162 inclusion proof, leaf sibling first. The constructor
    also takes it under its older keyword ``inclusion_proof=`` (one or the other),
    and checks every part so that a proof that can be built can also be formatted.
    """

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def __init__(
        self,
        index: int,
        hashes: Iterable[bytes] | None = None,
        checkpoint: bytes | None = None,
        extra: bytes | None = None,
        *,
        inclusion_proof: Iterable[bytes] | None = None,
    ) -> None:
        if hashes is not None and inclusion_proof is not None:
            raise TypeError("give the inclusion proof as hashes= or inclusion_proof=, not both")
        if checkpoint is None:
            raise TypeError("TlogProof needs the signed checkpoint note (checkpoint=)")
        chosen = hashes if hashes is not None else inclusion_proof
        proof = tuple(chosen) if chosen is not None else ()
        if isinstance(index, bool) or not 0 <= index <= MAX_TREE_SIZE:
            raise TlogProofError(f"index {index!r} is outside 0..2**64-1")
        if len(proof) > _MAX_PROOF_HASHES:
            raise TlogProofError(
                f"inclusion proof has {len(proof)} hashes, at most {_MAX_PROOF_HASHES} fit a tree"
            )
        for i, h in enumerate(proof):
            if not isinstance(h, bytes) or len(h) != _HASH_SIZE:
                raise TlogProofError(f"inclusion proof hash {i} is not {_HASH_SIZE} bytes")
        if not isinstance(checkpoint, bytes) or not checkpoint:
            raise TlogProofError("checkpoint must be the non-empty signed note, as bytes")
        try:
            checkpoint.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TlogProofError(f"checkpoint is not valid UTF-8 (byte {e.start})") from None
        if extra is not None and not isinstance(extra, bytes):
            raise TlogProofError("extra data must be bytes or None")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "hashes", proof)
        object.__setattr__(self, "checkpoint", checkpoint)
        object.__setattr__(self, "extra", extra)

    @property
    def inclusion_proof(self) -> tuple[bytes, ...]:
        """The older name of ``hashes``."""
        return self.hashes


@dataclass(frozen=True)
class VerifiedTlogProof:
    """What `verify_tlog_proof` established."""

    proof: TlogProof
    checkpoint: Checkpoint
    log_signatures: tuple[NoteSignature, ...]
    witness_signatures: tuple[NoteSignature, ...]


def format_tlog_proof(proof: TlogProof) -> str:
    """Encode a proof; the checkpoint note is appended after a blank line, verbatim."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append("extra " + base64.b64encode(proof.extra).decode("ascii"))
    lines.append(f"index {proof.index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in proof.hashes)
    return "".join(line + "\n" for line in lines) + "\n" + proof.checkpoint.decode("utf-8")


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse the proof framing; the checkpoint note is returned unverified.

    Errors name the offending line by number (the header is line 1).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TlogProofError(f"proof is not valid UTF-8 (byte {e.start})") from None
    pos = 0
    number = 0

    def next_line(what: str) -> str:
        nonlocal pos, number
        end = text.find("\n", pos)
        number += 1
        if end < 0:
            raise TlogProofError(f"proof ends before the {what} (line {number})")
        line, pos = text[pos:end], end + 1
        return line

    if next_line("header line") != HEADER:
        raise TlogProofError(f"line 1: proof does not start with {HEADER!r}")
    line = next_line("index line")
    extra: bytes | None = None
    if line.startswith("extra "):
        try:
            extra = b64decode_strict(line[len("extra ") :], f"line {number}: extra data")
        except ValueError as e:
            raise TlogProofError(str(e)) from None
        line = next_line("index line")
    if not line.startswith("index "):
        raise TlogProofError(f"line {number}: expected 'index <n>', got {line[:40]!r}")
    index_text = line[len("index ") :]
    if not _DECIMAL.fullmatch(index_text) or int(index_text) > MAX_TREE_SIZE:
        raise TlogProofError(
            f"line {number}: index {index_text[:40]!r} is not a 64-bit decimal "
            "without leading zeros"
        )
    hashes: list[bytes] = []
    while line := next_line("blank line before the checkpoint"):
        where = f"line {number}: inclusion proof hash {len(hashes)}"
        if len(hashes) == _MAX_PROOF_HASHES:
            raise TlogProofError(f"{where}: more than {_MAX_PROOF_HASHES} hashes")
        try:
            h = b64decode_strict(line, where)
        except ValueError as e:
            raise TlogProofError(str(e)) from None
        if len(h) != _HASH_SIZE:
            raise TlogProofError(f"{where} is {len(h)} bytes, want {_HASH_SIZE}")
        hashes.append(h)
    checkpoint = text[pos:]
    if not checkpoint:
        raise TlogProofError(f"proof has no checkpoint after the blank line (line {number})")
    return TlogProof(int(index_text), hashes, checkpoint.encode("utf-8"), extra)


def verify_tlog_proof(
    proof_text: str | bytes,
    leaf_hash: bytes,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    witnesses: Sequence[NoteVerifier] = (),
    witness_quorum: int = 0,
) -> VerifiedTlogProof:
    """Verify a tlog-proof for ``leaf_hash`` (steps 2-4 of the spec's procedure).

    ``verifiers`` are the log's keys: at least one must have signed the checkpoint
    (no keys, no success). ``origin``, if given, is the only acceptable checkpoint
    origin. Cosignatures from ``witnesses`` are verified (a bad one rejects the
    proof) and at least ``witness_quorum`` distinct witnesses must have cosigned.
    Raises `TlogProofError`, a `gateway.audit.note.NoteError`, `CheckpointError` or
    `gateway.audit.proof.ProofError`, naming what failed.
    """
    if witness_quorum < 0:
        raise ValueError(f"witness quorum {witness_quorum} is negative")
    proof = parse_tlog_proof(proof_text)
    log_keys = {(v.name, v.key_id) for v in verifiers}
    witness_keys = {(w.name, w.key_id) for w in witnesses}
    both = log_keys & witness_keys
    if both:
        name, key_id = sorted(both)[0]
        raise TlogProofError(f"key {name}+{key_id:08x} is configured both as log and witness")
    text, signatures = open_note(proof.checkpoint, [*verifiers, *witnesses])
    log_sigs = tuple(s for s in signatures if (s.name, s.key_id) in log_keys)
    witness_sigs = tuple(s for s in signatures if (s.name, s.key_id) in witness_keys)
    if not log_sigs:
        names = ", ".join(f"{s.name}+{s.key_id:08x}" for s in signatures)
        raise UnverifiedNoteError(
            f"checkpoint is not signed by any of the log's keys (verified only: {names})"
        )
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    if len(witness_sigs) < witness_quorum:
        raise TlogProofError(
            f"{len(witness_sigs)} witness cosignatures verified, policy requires {witness_quorum}"
        )
    verify_inclusion(leaf_hash, proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash)
    return VerifiedTlogProof(proof, checkpoint, log_sigs, witness_sigs)
