"""Witness cosignatures the broker keeps and serves with the checkpoints they sign.

A cosignature is worth keeping only if a reader can check it: it must be for a checkpoint
this log signed (the exact text stored when it was signed) and verify under the witness
key the signed directory lists. Served notes carry the stored lines after the log's own
signature, as c2sp.org/signed-note allows: a reader ignores keys it does not trust.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit.checkpoint import Checkpoint, parse_checkpoint
from gateway.audit.cosignature import CosignatureV1Verifier, cosignature_timestamp
from gateway.audit.note import NoteError, UnverifiedNoteError, open_note, parse_note
from gateway.audit.store import CheckpointRow, CosignatureRow
from gateway.pki.directory import Directory

__all__ = [
    "CosignatureRefused",
    "Cosigner",
    "Witnessed",
    "check_cosignature",
    "cosignature_lines",
    "cosigners",
    "newest_cosigned",
    "stored_note",
    "with_cosignatures",
    "witness_key_name",
    "witness_verifiers",
]


class CosignatureRefused(ValueError):
    """A submitted cosignature is not one the broker may keep; the text says why."""


@dataclass(frozen=True)
class Witnessed:
    """A checked cosignature, ready to store."""

    checkpoint: Checkpoint
    line: str
    cosigned_at: int


def witness_key_name(consortium: str, node_id: str) -> str:
    """A member's cosignature key name; its key is the member's directory signing key."""
    return f"{consortium}/witness/{node_id}"


@dataclass(frozen=True)
class Cosigner:
    """A member whose cosignature of a checkpoint verified, and when it says it cosigned."""

    node_id: str
    cosigned_at: int


def witness_verifiers(directory: Directory) -> dict[str, CosignatureV1Verifier]:
    """Every active member's witness key, by node id (the broker does not witness itself)."""
    return {
        m.node_id: CosignatureV1Verifier(
            witness_key_name(directory.consortium, m.node_id), m.sign_key
        )
        for m in directory.active_members()
        if m.role != "broker"
    }


def cosigners(note: str, witnesses: dict[str, CosignatureV1Verifier]) -> list[Cosigner]:
    """The witnesses whose cosignature on `note` verifies; lines of unknown keys are ignored.

    A line under a listed witness key that does not verify raises
    `InvalidSignatureError`: someone altered or forged it. The log's own signature is
    not checked here (`open_checkpoint` does that).
    """
    try:
        _, verified = open_note(note, witnesses.values())
    except UnverifiedNoteError:
        return []
    by_key = {(v.name, v.key_id): node_id for node_id, v in witnesses.items()}
    return [Cosigner(by_key[(s.name, s.key_id)], cosignature_timestamp(s)) for s in verified]


def check_cosignature(
    stored: Callable[[int], str | None],
    submitted_note: str,
    line: str,
    witness: CosignatureV1Verifier,
) -> Witnessed:
    """Check one cosignature line of `submitted_note` against the note the log stored.

    `stored(size)` is the log's own note for a size (None if it signed none of that
    size); the texts must be identical, so a witness cannot get a checkpoint the log
    never signed served as if it had.
    """
    try:
        text = parse_note(submitted_note).text
        checkpoint = parse_checkpoint(text)
    except (NoteError, ValueError) as exc:
        raise CosignatureRefused(f"cosign: the checkpoint is malformed: {exc}") from None
    stored_note = stored(checkpoint.size)
    if stored_note is None or parse_note(stored_note).text != text:
        raise CosignatureRefused(
            f"cosign: the broker signed no such checkpoint of size {checkpoint.size}"
        )
    if not line.endswith("\n") or line.count("\n") != 1:
        raise CosignatureRefused("cosign: the cosignature must be one signature line")
    try:
        _, verified = open_note(text + "\n" + line, [witness])
    except NoteError:
        raise CosignatureRefused(
            f"cosign: the cosignature does not verify under witness key {witness.name}"
        ) from None
    return Witnessed(checkpoint, verified[0].line(), cosignature_timestamp(verified[0]))


def stored_note(session: Session, size: int) -> str | None:
    """The log's own note of the checkpoint of `size`, None if it signed none."""
    row = session.get(CheckpointRow, size)
    return None if row is None else row.note


def cosignature_lines(session: Session, size: int) -> list[str]:
    """The stored cosignature lines of the checkpoint of `size`, in witness order."""
    rows = session.execute(
        select(CosignatureRow.line)
        .where(CosignatureRow.size == size)
        .order_by(CosignatureRow.witness)
    ).all()
    return [str(line) for (line,) in rows]


def with_cosignatures(session: Session, note: str) -> str:
    """The log's note for a checkpoint with every cosignature stored for it appended."""
    size = parse_checkpoint(parse_note(note).text).size
    return note + "".join(cosignature_lines(session, size))


def newest_cosigned(session: Session) -> str | None:
    """The log's note of the largest checkpoint some witness cosigned, with them all."""
    size = session.execute(select(func.max(CosignatureRow.size))).scalar()
    if size is None:
        return None
    row = session.get(CheckpointRow, int(size))
    return None if row is None else row.note + "".join(cosignature_lines(session, int(size)))
