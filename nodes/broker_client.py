"""A node's client of the broker: the directory, submissions, receipts and log consistency.

The node trusts the broker for nothing it can check: the directory must carry the
consortium's signature, every answer must carry its sender's signature, every receipt
must prove inclusion under a checkpoint signed by the broker's key, and each new
checkpoint must be consistent with the last one this node saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from gateway.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from gateway.audit.merkle import leaf_hash
from gateway.audit.note import Ed25519Verifier, NoteError, parse_note
from gateway.audit.proof import ProofError, verify_consistency, verify_inclusion
from gateway.audit.source import ProvenEntry
from gateway.audit.tlog_proof import SEEN_SIZE_METADATA, TlogProofError, parse_tlog_proof
from gateway.audit.verify import StoredCheckpoint, StoredEntry
from gateway.audit.witnessed import Cosigner, cosigners, witness_verifiers
from gateway.envelope.build import Draft, now_ms
from gateway.envelope.sealing import unseal
from gateway.envelope.verify import EnvelopeVerifier, Rejected, Verified
from gateway.pki.directory import Directory, DirectoryError, SignedDirectoryBlob, verify_directory
from gateway.pki.keys import NodeKeys
from gateway.pki.store import NodeBundle
from gateway.transport import TlsFiles
from gateway.v1 import gateway_pb2 as pb
from nodes.broker_endpoints import BrokerEndpoints
from nodes.journal import CheckpointSeenRow, OutboundRow

DEFINITIVE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
"""Broker answers after which sending the same envelope again cannot succeed:
the stored envelope is closed as refused rather than resent (drafts, alerts)."""


class LogIntegrityError(Exception):
    """The broker's log does not match what this node was shown before (fork or rewrite)."""


@dataclass
class Submitted:
    """A submission the broker accepted, with verified answers."""

    message_id: str
    decision: str
    leaf_index: int
    tlog_proof: str
    answers: list[tuple[pb.Header, bytes]]
    undelivered: list[str]
    refusals: dict[str, str] = field(default_factory=dict)
    """Why undelivered recipients gave no answer, as the broker passed it on."""


class BrokerClient:
    """Everything a node asks of the broker, with verification of what comes back."""

    def __init__(
        self,
        *,
        node_id: str,
        bundle: NodeBundle,
        broker_endpoint: str,
        broker_id: str,
        engine: Engine,
        timeout_s: float = 30.0,
        directory_ttl_s: float = 30.0,
    ) -> None:
        self.node_id = node_id
        self.bundle = bundle
        self.broker_id = broker_id
        self.keys: NodeKeys = bundle.keys()
        self.timeout_s = timeout_s
        tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
        self.broker_endpoint = broker_endpoint
        self.brokers = BrokerEndpoints(broker_id, tls, [broker_endpoint], pin=self._broker_pin)
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lock = threading.Lock()
        """Guards the fields below; held only to read or swap them, never across a call."""
        self._fetched = threading.Condition(self._lock)
        self._fetching = False
        self._fetches = 0
        """Directory fetches that succeeded, so that a waiter knows one finished."""
        self._directory: Directory | None = None
        self._directory_at = 0.0
        self._largest: Checkpoint | None = None
        """The largest checkpoint this process accepted: the token of compare-and-record."""
        self.directory_ttl_s = directory_ttl_s
        self._directory_key = bundle.directory_verify_key()
        self.verifier = EnvelopeVerifier(self.directory)

    # -- directory ---------------------------------------------------------------------

    def directory(self) -> Directory:
        """The signed directory, refetched when older than `directory_ttl_s`.

        A refetch that fails keeps the directory we have (the broker may be restarting);
        a first fetch that fails raises, since nothing can be verified without it. While
        one thread refetches, the others go on with the directory we have.
        """
        with self._lock:
            directory, fetched_at = self._directory, self._directory_at
        if directory is None:
            return self.refresh_directory()
        if time.monotonic() - fetched_at <= self.directory_ttl_s:
            return directory
        try:
            return self._refresh(wait=False)
        except grpc.RpcError:
            with self._lock:
                self._directory_at = time.monotonic()  # retry after another ttl
            return directory

    def held_directory(self) -> Directory | None:
        """The directory fetched last, however old, without fetching (None: none yet)."""
        with self._lock:
            return self._directory

    def refresh_directory(self) -> Directory:
        """Fetch the directory; refuse it unless the consortium key signed it.

        If another thread is fetching it already, wait for that fetch instead.
        """
        return self._refresh(wait=True)

    def _refresh(self, *, wait: bool) -> Directory:
        """One fetch at a time: `wait` False returns the current directory meanwhile."""
        with self._lock:
            if self._fetching:
                if not wait and self._directory is not None:
                    return self._directory
                fetches = self._fetches
                self._fetched.wait_for(lambda: not self._fetching, timeout=2 * self.timeout_s)
                if self._fetches > fetches and self._directory is not None:
                    return self._directory
                if self._fetching:
                    raise DirectoryError("another thread's directory fetch did not finish")
            self._fetching = True
            known = self._directory.serial if self._directory else 0
        try:
            directory = self._fetch(known)
            with self._lock:
                self._directory = directory
                self._directory_at = time.monotonic()
                self._fetches += 1
            self.brokers.use(self.broker_endpoints(directory))
            return directory
        finally:
            with self._lock:
                self._fetching = False
                self._fetched.notify_all()

    def _broker_pin(self) -> str | None:
        """The broker's certificate fingerprint in the directory we hold (None: none yet)."""
        with self._lock:
            directory = self._directory
        if directory is None:
            return None
        broker = directory.get(self.broker_id)
        return broker.cert_sha256 if broker is not None and broker.active else ""

    def broker_endpoints(self, directory: Directory) -> list[str]:
        """Where to call the broker: every endpoint the directory lists for it when it
        runs as several processes; else the configured one (which may be a proxy)."""
        broker = directory.get(self.broker_id)
        if broker is not None and len(broker.endpoints) > 1:
            return list(broker.endpoints)
        return [self.broker_endpoint]

    def _fetch(self, known: int) -> Directory:
        reply: pb.SignedDirectory = self.brokers.call(
            "GetDirectory", pb.DirectoryRequest(), self.timeout_s
        )
        return verify_directory(
            SignedDirectoryBlob(reply.directory, reply.signature),
            self._directory_key,
            min_serial=known,
        )

    def signed_directory(self) -> SignedDirectoryBlob:
        """The directory's exact signed bytes as the broker serves them, checked here too:
        for a verifier (the auditor's browser) that must not take this node's word."""
        reply: pb.SignedDirectory = self.brokers.call(
            "GetDirectory", pb.DirectoryRequest(), self.timeout_s
        )
        blob = SignedDirectoryBlob(bytes(reply.directory), bytes(reply.signature))
        verify_directory(blob, self._directory_key)
        return blob

    @property
    def log_origin(self) -> str:
        return f"{self.bundle.consortium()}/gateway-audit"

    def broker_note_verifier(self) -> Ed25519Verifier:
        broker = self.directory().get(self.broker_id)
        if broker is None:
            raise DirectoryError(f"the directory lists no broker {self.broker_id!r}")
        return Ed25519Verifier(self.log_origin, broker.sign_key)

    # -- submit ------------------------------------------------------------------------

    def submit(self, draft: Draft) -> Submitted:
        """Sign and submit; verify the receipt and every answer; journal it all."""
        return self.submit_signed(draft, draft.sign(self.keys.signing))

    def submit_signed(self, draft: Draft, envelope: pb.Envelope) -> Submitted:
        """Submit `envelope`, signed from `draft` before. Submitting the same envelope
        again (a retry after a lost reply or a crash) gets the broker's first answer."""
        with self._lock:
            seen = self._largest
        metadata = [(SEEN_SIZE_METADATA, str(seen.size))] if seen is not None else []
        reply: pb.SubmitReply = self.brokers.call("Submit", envelope, self.timeout_s, metadata)
        proof = reply.receipt.tlog_proof
        extends = Extension(reply.receipt.consistency_from, list(reply.receipt.consistency))
        note, checkpoint = self._checked_receipt(reply.receipt.leaf_index, proof, extends)
        sent = OutboundRow(
            message_id=draft.message_id,
            recipients=json.dumps(list(draft.recipients)),
            kind=draft.kind,
            case_ref=draft.case_ref,
            sent_at_ms=now_ms(),
            header=envelope.header,
            decision=reply.decision,
            leaf_index=reply.receipt.leaf_index,
            tlog_proof=proof,
        )
        self._record(note, checkpoint, also=sent)
        answers = [self.open_answer(a, draft) for a in reply.responses]
        return Submitted(
            message_id=reply.message_id,
            decision=reply.decision,
            leaf_index=reply.receipt.leaf_index,
            tlog_proof=proof,
            answers=answers,
            undelivered=list(reply.undelivered),
            refusals={r.recipient: r.reason for r in reply.refusals},
        )

    def open_answer(self, answer: pb.Envelope, draft: Draft) -> tuple[pb.Header, bytes]:
        """An answer's header and (unsealed) payload, if its sender's signature holds."""
        verdict = self.verifier.verify(
            answer, peer_node_id=None, relayed=True, recipient=self.node_id
        )
        if isinstance(verdict, Rejected):
            raise AnswerError(f"answer refused: {verdict}")
        assert isinstance(verdict, Verified)
        header = verdict.header
        if header.reply_to != draft.message_id:
            raise AnswerError("answer refused: reply_to does not name our request")
        if header.sender not in draft.recipients:
            raise AnswerError("answer refused: sender was not asked")
        payload = answer.payload
        if header.sealed:
            payload = unseal(payload, header.message_id, self.keys.sealing)
        return header, payload

    def status(self, message_id: str) -> pb.StatusReply:
        reply: pb.StatusReply = self.brokers.call(
            "Status", pb.StatusRequest(message_id=message_id), self.timeout_s
        )
        return reply

    # -- the log -----------------------------------------------------------------------

    def read_audit(self, start: int = 0, page: int = 1000) -> Iterator[StoredEntry]:
        """Every entry from `start` on, paged; policy lets only the regulator read."""
        while True:
            reply: pb.AuditReadReply = self.brokers.call(
                "ReadAudit", pb.AuditReadRequest(start=start, limit=page), self.timeout_s
            )
            for entry in reply.entries:
                yield StoredEntry(int(entry.index), bytes(entry.leaf))
            if len(reply.entries) < page:
                return
            start = int(reply.entries[-1].index) + 1

    def read_audit_proven(
        self, start: int = 0, *, whole_log: bool = False, page: int = 1000, cosigned: bool = False
    ) -> Iterator[ProvenEntry]:
        """Entries from `start` on, each proven included under a checkpoint we checked.

        Without `whole_log` the broker returns only the entries that name this node
        (policy AUDIT_READ_OWN); with it, every entry (AUDIT_READ, the regulator). Each
        page's checkpoint must carry the broker's signature and be consistent with those
        seen before, and each entry's proof must lead to its root, else
        `LogIntegrityError`. The log grows while it is read (each read is audited), so
        the read ends at the size of the first page's checkpoint. With `cosigned`, the
        broker proves under the newest checkpoint witnesses cosigned if it covers `start`.
        """
        end = 0
        while True:
            reply: pb.AuditProvenReply = self.brokers.call(
                "ReadAuditProven",
                pb.AuditProvenRequest(
                    start=start, limit=page, whole_log=whole_log, end=end, cosigned=cosigned
                ),
                self.timeout_s,
            )
            checkpoint = self._open_checkpoint(reply.checkpoint)
            self.observe_checkpoint(reply.checkpoint, checkpoint)
            end = end or checkpoint.size
            for entry in reply.entries:
                leaf, proof = bytes(entry.leaf), [bytes(h) for h in entry.proof]
                try:
                    verify_inclusion(
                        leaf_hash(leaf), entry.index, checkpoint.size, proof, checkpoint.root_hash
                    )
                except ProofError as exc:
                    raise LogIntegrityError(f"entry {entry.index}: {exc}") from exc
                yield ProvenEntry(int(entry.index), leaf, tuple(proof), reply.checkpoint)
            if reply.next_start <= start or reply.next_start >= end:
                return
            start = int(reply.next_start)

    def latest_checkpoint(self) -> str:
        """The broker's current signed checkpoint, checked against the ones seen before."""
        reply: pb.CheckpointReply = self.brokers.call(
            "GetCheckpoint", pb.CheckpointRequest(), self.timeout_s
        )
        checkpoint = self._open_checkpoint(reply.checkpoint)
        self.observe_checkpoint(reply.checkpoint, checkpoint)
        return reply.checkpoint

    def _open_checkpoint(self, note: str) -> Checkpoint:
        """The broker's signature must verify, and so must every listed witness's line."""
        try:
            checkpoint, _sigs = open_checkpoint(
                note, [self.broker_note_verifier()], origin=self.log_origin
            )
            self.cosigners(note)
        except (NoteError, ValueError) as exc:
            raise LogIntegrityError(f"checkpoint refused: {exc}") from exc
        return checkpoint

    def cosigners(self, note: str) -> list[Cosigner]:
        """The members whose cosignature of `note` verifies under their directory key."""
        return cosigners(note, witness_verifiers(self.directory()))

    def submit_cosignature(self, note: str, line: str) -> int:
        """Hand the broker our cosignature line of its checkpoint `note`; returns its size."""
        reply: pb.CosignReply = self.brokers.call(
            "AddCosignature", pb.CosignRequest(checkpoint=note, cosignature=line), self.timeout_s
        )
        return int(reply.size)

    def seen_checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint this node was shown, for whole-log verification."""
        with self._sessions() as session:
            rows = session.scalars(select(CheckpointSeenRow).order_by(CheckpointSeenRow.size))
            return [StoredCheckpoint(r.size, r.note) for r in rows]

    def check_receipt(
        self, leaf_index: int, proof_text: str, extends: Extension | None = None
    ) -> Checkpoint:
        """A receipt must be a tlog-proof under a broker-signed, consistent checkpoint.

        The leaf itself is not known to the sender (the broker adds the decision and
        time), so its inclusion is proven by whole-log verification (`gateway audit
        verify`) against the checkpoints the node kept; here the checkpoint's signature
        and its consistency with earlier ones are checked, with the consistency proof
        the receipt brought (`extends`) where it starts from the checkpoint compared,
        and the checkpoint is kept.
        """
        note, checkpoint = self._checked_receipt(leaf_index, proof_text, extends)
        self._record(note, checkpoint)
        return checkpoint

    def _checked_receipt(
        self, leaf_index: int, proof_text: str, extends: Extension | None
    ) -> tuple[str, Checkpoint]:
        """`check_receipt` but for keeping the checkpoint: its note and the checkpoint."""
        try:
            proof = parse_tlog_proof(proof_text)
            checkpoint, _sigs = open_checkpoint(
                proof.checkpoint, [self.broker_note_verifier()], origin=self.log_origin
            )
        except (NoteError, TlogProofError, ValueError) as exc:
            raise LogIntegrityError(f"receipt refused: {exc}") from exc
        if proof.index != leaf_index:
            raise LogIntegrityError("receipt index differs from the reply's leaf index")
        if proof.index >= checkpoint.size:
            raise LogIntegrityError("receipt index is outside its checkpoint's tree")
        note = proof.checkpoint.decode()
        self.observe_checkpoint(note, checkpoint, extends, record=False)
        return note, checkpoint

    def observe_checkpoint(
        self,
        note: str,
        checkpoint: Checkpoint,
        extends: Extension | None = None,
        *,
        record: bool = True,
    ) -> None:
        """Check a new checkpoint against the largest one seen before; keep it.

        The remote work (directory, consistency proof) and the database are used without
        any lock held. Only the compare-and-record is atomic: the new checkpoint is
        accepted only if the largest one it was checked against is still the largest,
        else it is checked again, so two threads cannot both accept forked checkpoints.
        """
        stored = self._largest_stored()
        while True:
            with self._lock:
                seen = self._largest
            base = larger(seen, stored)
            if base is not None:
                self._compare(base, checkpoint, extends)
            with self._lock:
                if self._largest is seen:
                    self._largest = larger(base, checkpoint)
                    break
                if base is not None and checkpoint.size <= base.size:
                    break  # a prefix of `base`, which the newer largest extends
        if record:
            self._record(note, checkpoint)

    def _largest_stored(self) -> Checkpoint | None:
        """The largest checkpoint in the journal (this node may have more than one client)."""
        with self._sessions() as session:
            last = session.scalars(
                select(CheckpointSeenRow).order_by(CheckpointSeenRow.size.desc()).limit(1)
            ).first()
        if last is None:
            return None
        return parse_checkpoint(parse_note(last.note).text)  # verified before it was stored

    def _compare(self, old: Checkpoint, new: Checkpoint, extends: Extension | None) -> None:
        """Raise `LogIntegrityError` unless one of the two checkpoints extends the other."""
        if new.size < old.size:
            self._check_consistency(new, old, rolled_back_to=new.size)
        elif new.size > old.size:
            given = extends.proof if extends is not None and extends.old_size == old.size else None
            self._check_consistency(old, new, given=given)
        elif new.root_hash != old.root_hash:
            raise LogIntegrityError(
                f"two checkpoints of size {old.size} with different roots: the log forked"
            )

    def _record(self, note: str, checkpoint: Checkpoint, *, also: object = None) -> None:
        """Keep the checkpoint (unless kept already), and the row `also` in the same commit.

        Another thread may keep the same checkpoint first: the commit then fails on its
        size and is made again without it, so `also` is never lost.
        """
        for keep_checkpoint in (True, False):
            with self._sessions() as session:
                try:
                    if also is not None:
                        session.merge(also)
                    if keep_checkpoint and session.get(CheckpointSeenRow, checkpoint.size) is None:
                        session.add(
                            CheckpointSeenRow(size=checkpoint.size, note=note, seen_at_ms=now_ms())
                        )
                    session.commit()
                    return
                except IntegrityError:  # at a flush: the commit's, or a query's autoflush
                    session.rollback()
                    if also is None:
                        return  # another thread recorded it first
                    if not keep_checkpoint:
                        raise

    def _check_consistency(
        self,
        old: Checkpoint,
        new: Checkpoint,
        *,
        rolled_back_to: int | None = None,
        given: list[bytes] | None = None,
    ) -> None:
        """Check that `new` extends `old`: with the proof `given` by the receipt, else one
        asked of the broker. A given proof that fails is a failure like an asked one:
        the broker alone could have sent either.

        The broker refuses (OUT_OF_RANGE) only when its log is now shorter than `new`,
        a checkpoint it signed: its log shrank.
        """
        if old.size == 0:
            return
        proof = given if given is not None else self._ask_consistency(old, new, rolled_back_to)
        try:
            verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
        except ProofError as exc:
            raise LogIntegrityError(
                f"checkpoint {new.size} is not consistent with checkpoint {old.size}: {exc}"
            ) from exc

    def _ask_consistency(
        self, old: Checkpoint, new: Checkpoint, rolled_back_to: int | None
    ) -> list[bytes]:
        try:
            reply: pb.ConsistencyReply = self.brokers.call(
                "GetConsistency",
                pb.ConsistencyRequest(old_size=old.size, new_size=new.size),
                self.timeout_s,
            )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.OUT_OF_RANGE:
                raise
            to = f"size {rolled_back_to}" if rolled_back_to is not None else "a smaller size"
            raise LogIntegrityError(
                f"the broker's log was rolled back from size {new.size} to {to}: "
                "it cannot prove the consistency of checkpoints it signed"
            ) from exc
        return list(reply.proof)

    def close(self) -> None:
        self.brokers.close()


@dataclass(frozen=True)
class Extension:
    """A consistency proof that came with a receipt: from the tree of `old_size` entries
    (the size the submitter said it held) to the receipt's checkpoint."""

    old_size: int
    proof: list[bytes]


class AnswerError(Exception):
    """An answer relayed by the broker did not verify."""


def larger(a: Checkpoint | None, b: Checkpoint | None) -> Checkpoint | None:
    """The larger of two checkpoints (the first on a tie); None only if both are."""
    if a is None or (b is not None and b.size > a.size):
        return b
    return a
