"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint@v1.0.0): the audit log's signed tree head.

A checkpoint is the note text the log signs: origin, tree size and root hash, plus
optional extension lines. Parsing is exact (no leading zeros, canonical base64, no
empty lines) so that one tree head has exactly one byte encoding and a signature
over it cannot be re-read as a different statement.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.audit.note import NoteSignature, NoteVerifier, b64decode_strict, open_note

__all__ = [
    "MAX_TREE_SIZE",
    "Checkpoint",
    "CheckpointError",
    "format_checkpoint",
    "open_checkpoint",
    "parse_checkpoint",
]

MAX_TREE_SIZE = (1 << 64) - 1
"""Tree sizes are uint64 in every tlog format."""

_DECIMAL = re.compile("0|[1-9][0-9]*")
_CONTROL = re.compile("[\x00-\x1f]")
_HASH_SIZE = 32


class CheckpointError(ValueError):
    """A checkpoint body is malformed, or is not the one the caller expected."""


def _check_line(value: str, what: str) -> None:
    if not value:
        raise CheckpointError(f"{what} must not be empty")
    bad = _CONTROL.search(value)
    if bad:
        raise CheckpointError(f"{what} contains control character U+{ord(bad.group()):04X}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log (origin), how many leaves, and the RFC 9162 root."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str):
            raise CheckpointError("origin must be a str")
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError(f"tree size {self.size!r} is not an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"tree size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise CheckpointError(f"root hash must be {_HASH_SIZE} bytes")
        extensions = tuple(self.extensions)  # a list would make the head mutable
        object.__setattr__(self, "extensions", extensions)
        for i, line in enumerate(extensions, 4):
            if not isinstance(line, str):
                raise CheckpointError(f"extension line {i} must be a str")
            _check_line(line, f"extension line {i}")

    def to_text(self) -> str:
        """The note text (every line newline-terminated), ready to sign."""
        return format_checkpoint(self)


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """Encode a checkpoint as note text."""
    lines = [
        checkpoint.origin,
        str(checkpoint.size),
        base64.b64encode(checkpoint.root_hash).decode("ascii"),
        *checkpoint.extensions,
    ]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (no signatures), rejecting anything not exact.

    Errors name the offending line by number: 1 origin, 2 tree size, 3 root hash,
    4 and on extension lines.
    """
    if not isinstance(text, str):
        raise CheckpointError("checkpoint text must be a str (decode the note first)")
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            f"checkpoint has {len(lines)} lines, need origin, tree size and root hash"
        )
    for number, line in enumerate(lines, 1):
        if not line:
            raise CheckpointError(f"checkpoint line {number} is empty")
        bad = _CONTROL.search(line)
        if bad:
            raise CheckpointError(
                f"checkpoint line {number} contains control character U+{ord(bad.group()):04X}"
            )
    origin, size_line, root_line, *extensions = lines
    if not _DECIMAL.fullmatch(size_line):
        raise CheckpointError(
            f"checkpoint line 2: tree size {size_line[:40]!r} is not a decimal number "
            "without leading zeros"
        )
    size = int(size_line)
    if size > MAX_TREE_SIZE:
        raise CheckpointError(f"checkpoint line 2: tree size {size_line} does not fit in 64 bits")
    try:
        root = b64decode_strict(root_line, "checkpoint line 3: root hash")
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if len(root) != _HASH_SIZE:
        raise CheckpointError(
            f"checkpoint line 3: root hash is {len(root)} bytes, want {_HASH_SIZE}"
        )
    return Checkpoint(origin, size, root, tuple(extensions))


def open_checkpoint(
    note: bytes | str, verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> tuple[Checkpoint, list[NoteSignature]]:
    """Verify a signed checkpoint note, then parse it (the text is untrusted until then).

    ``verifiers`` should be the log's own keys; ``origin``, if given, must match.
    Note errors from `gateway.audit.note` propagate unchanged.
    """
    text, signatures = open_note(note, verifiers)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint, signatures
