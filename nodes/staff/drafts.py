"""Four-eyes approval: an officer drafts an action, a different approver sends it.

A draft stores the action (without officers) as canonical JSON and its SHA-256. The
approver approves the hash they were shown: if the stored JSON no longer has its hash,
or the hash is not the one shown, the approval is refused. Only on approval is the
request signed, with the drafting officer as `issuing_officer` and the approver as
`approving_officer`, so the recipient's policy can check that two people signed off.

Crash safety: the approval first stores, in one transaction with the state change, the
signed envelope it is about to submit; only then is it submitted. A crash or a lost
reply leaves the draft `approved` with its request not yet journalled; approving it
again submits the very same envelope, which the broker answers with its first answer.
So a draft is sent at most once as a distinct request and never lost.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import grpc
from sqlalchemy import BigInteger, CursorResult, Engine, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import new_message_id, now_ms
from gateway.identifiers import IdentifierKind, InvalidIdentifier, normalise
from gateway.kinds import ACTIONS
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.police import ActionRequestRow, ActionSpec, action_draft, send_action
from nodes.broker_client import DEFINITIVE
from nodes.staff import trail
from nodes.staff.accounts import StaffUser

if TYPE_CHECKING:
    from nodes.broker_client import Submitted
    from nodes.runtime import NodeContext

STATES = ("drafted", "approved", "rejected", "failed")
DRAFTERS = ("officer", "approver")
"""Approvers may draft too, but never approve their own draft."""
APPROVERS = ("approver",)

OFFICERS = ("issuing_officer", "approving_officer")
DRAFT_ID = re.compile(r"[0-9a-f]{32}")


class ActionDraftRow(NodeBase):
    __tablename__ = "action_drafts"

    draft_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64), index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    spec_json: Mapped[str] = mapped_column(Text)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True, default="drafted")
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decided_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[str] = mapped_column(String(32), default="")
    envelope: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    """The signed request stored at approval, before it is submitted; resent as is."""


@dataclass(frozen=True)
class ActionDraft:
    """A draft as the console and CLI show it. `spec` holds no officers."""

    draft_id: str
    created_by: str
    created_at_ms: int
    spec: dict[str, object]
    spec_sha256: str
    state: str
    decided_by: str
    decided_at_ms: int
    reason: str
    request_id: str

    @property
    def sent(self) -> bool:
        return self.state == "approved" and bool(self.request_id)


class DraftRefused(Exception):
    """A draft, approval or rejection was refused; the message says why and is safe to show."""


def canonical(spec: ActionSpec) -> str:
    """The spec without its officers as canonical JSON (sorted keys, no spaces)."""
    fields = {k: v for k, v in asdict(spec).items() if k not in OFFICERS}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _view(row: ActionDraftRow) -> ActionDraft:
    return ActionDraft(
        row.draft_id,
        row.created_by,
        row.created_at_ms,
        json.loads(row.spec_json),
        row.spec_sha256,
        row.state,
        row.decided_by,
        row.decided_at_ms,
        row.reason,
        row.request_id,
    )


def _refused(engine: Engine, user: StaffUser, event: str, draft_id: str, why: str) -> DraftRefused:
    trail.record(engine, user.user_id, event, "refused", f"draft {draft_id}: {why}")
    return DraftRefused(why)


def _check_spec(spec: ActionSpec, default_region: str) -> None:
    if spec.action not in ACTIONS:
        raise DraftRefused(f"action: one of {', '.join(sorted(ACTIONS))}")
    for name in ("recipient", "case_ref", "legal_basis"):
        if not getattr(spec, name).strip():
            raise DraftRefused(f"{name.replace('_', ' ')}: must not be empty")
    if spec.identifier:
        try:
            normalise(
                IdentifierKind(spec.identifier_kind), spec.identifier, default_region=default_region
            )
        except ValueError as exc:
            message = str(exc) if isinstance(exc, InvalidIdentifier) else "unknown identifier kind"
            raise DraftRefused(f"identifier: {message}") from None


def create_draft(
    engine: Engine, officer: StaffUser, spec: ActionSpec, *, default_region: str = "CN"
) -> str:
    """Store `spec` (its officers are ignored) as a draft of `officer`; its id."""
    if officer.role not in DRAFTERS:
        raise _refused(engine, officer, "draft", "-", f"role {officer.role} may not draft actions")
    try:
        _check_spec(spec, default_region)
    except DraftRefused as refusal:
        raise _refused(engine, officer, "draft", "-", str(refusal)) from None
    text = canonical(spec)
    draft_id = new_message_id()
    with Session(engine) as session, session.begin():
        session.add(
            ActionDraftRow(
                draft_id=draft_id,
                created_by=officer.user_id,
                created_at_ms=now_ms(),
                spec_json=text,
                spec_sha256=sha256_hex(text),
                state="drafted",
                decided_by="",
                decided_at_ms=0,
                reason="",
                request_id="",
                envelope=b"",
            )
        )
        session.flush()
        trail.record(
            session,
            officer.user_id,
            "draft",
            "ok",
            f"draft {draft_id} {spec.action} case {spec.case_ref}",
        )
    return draft_id


def get_draft(engine: Engine, draft_id: str) -> ActionDraft | None:
    with Session(engine) as session:
        row = session.get(ActionDraftRow, draft_id)
        return _view(row) if row is not None else None


def list_drafts(engine: Engine, state: str | None = None) -> list[ActionDraft]:
    """Drafts, newest first, optionally in one state only."""
    query = select(ActionDraftRow).order_by(ActionDraftRow.created_at_ms.desc())
    if state is not None:
        query = query.where(ActionDraftRow.state == state)
    with Session(engine) as session:
        return [_view(r) for r in session.scalars(query)]


def _decidable(engine: Engine, user: StaffUser, event: str, draft_id: str) -> ActionDraftRow:
    """The draft, if `user` may decide it; refusals are recorded."""
    if user.role not in APPROVERS:
        raise _refused(engine, user, event, draft_id, f"role {user.role} may not decide drafts")
    with Session(engine) as session:
        row = session.get(ActionDraftRow, draft_id) if DRAFT_ID.fullmatch(draft_id) else None
    if row is None:
        raise _refused(engine, user, event, draft_id, f"no draft {draft_id}")
    if row.created_by == user.user_id:
        raise _refused(engine, user, event, draft_id, "nobody may decide their own draft")
    return row


def _claim(
    engine: Engine,
    draft_id: str,
    expected_sha256: str,
    values: dict[str, object],
    user: StaffUser,
    event: str,
    detail: str,
) -> bool:
    """Move a draft out of `drafted`, with the trail event, if nobody did meanwhile."""
    with Session(engine) as session, session.begin():
        moved: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(ActionDraftRow)
            .where(
                ActionDraftRow.draft_id == draft_id,
                ActionDraftRow.state == "drafted",
                ActionDraftRow.spec_sha256 == expected_sha256,
            )
            .values(**values)
        )
        if moved.rowcount != 1:
            return False
        trail.record(session, user.user_id, event, "ok", detail)
    return True


def reject_draft(engine: Engine, approver: StaffUser, draft_id: str, reason: str) -> None:
    """Close a draft unsent, saying why."""
    row = _decidable(engine, approver, "reject", draft_id)
    if not reason.strip():
        raise _refused(engine, approver, "reject", draft_id, "give a reason for the rejection")
    if row.state != "drafted":
        raise _refused(engine, approver, "reject", draft_id, f"the draft is {row.state} already")
    values = {
        "state": "rejected",
        "decided_by": approver.user_id,
        "decided_at_ms": now_ms(),
        "reason": reason.strip()[:500],
    }
    if not _claim(
        engine, draft_id, row.spec_sha256, values, approver, "reject", f"draft {draft_id}"
    ):
        raise _refused(engine, approver, "reject", draft_id, "the draft was decided meanwhile")


def _spec(row: ActionDraftRow) -> ActionSpec:
    fields = json.loads(row.spec_json)
    fields.update(issuing_officer=row.created_by, approving_officer=row.decided_by)
    return ActionSpec.from_fields(fields)


def approve_draft(
    ctx: NodeContext, approver: StaffUser, draft_id: str, *, expected_sha256: str
) -> Submitted:
    """Sign the draft with both officers and submit it; see the module for crash safety.

    An `approved` draft whose request is not journalled yet (the first attempt crashed
    or lost the broker's reply) is submitted again, the same envelope.
    """
    engine = ctx.engine
    row = _decidable(engine, approver, "approve", draft_id)
    if row.state == "approved" and row.envelope:
        with Session(engine) as session:
            journalled = session.get(ActionRequestRow, row.request_id) is not None
        if journalled:
            raise _refused(engine, approver, "approve", draft_id, "the draft was sent already")
        return _send(ctx, approver, row)
    if row.state != "drafted":
        raise _refused(engine, approver, "approve", draft_id, f"the draft is {row.state} already")
    if sha256_hex(row.spec_json) != row.spec_sha256:
        raise _refused(
            engine,
            approver,
            "approve",
            draft_id,
            "the stored draft does not match its hash; it was altered",
        )
    if expected_sha256 != row.spec_sha256:
        raise _refused(
            engine,
            approver,
            "approve",
            draft_id,
            "the draft changed after you viewed it; view it again",
        )
    row.decided_by = approver.user_id
    decided = now_ms()
    try:
        draft = action_draft(ctx, _spec(row), created_at_ms=decided)
    except ValueError as exc:
        _claim(
            engine,
            draft_id,
            expected_sha256,
            {
                "state": "failed",
                "decided_by": approver.user_id,
                "decided_at_ms": decided,
                "reason": str(exc)[:500],
            },
            approver,
            "approve",
            f"draft {draft_id} failed",
        )
        raise DraftRefused(f"cannot send: {exc}") from None
    envelope = draft.sign(ctx.keys.signing)
    values = {
        "state": "approved",
        "decided_by": approver.user_id,
        "decided_at_ms": decided,
        "request_id": draft.message_id,
        "envelope": envelope.SerializeToString(),
    }
    detail = f"draft {draft_id} request {draft.message_id}"
    if not _claim(engine, draft_id, expected_sha256, values, approver, "approve", detail):
        raise _refused(engine, approver, "approve", draft_id, "the draft was decided meanwhile")
    with Session(engine) as session:
        stored = session.get(ActionDraftRow, draft_id)
    assert stored is not None
    return _send(ctx, approver, stored)


def _send(ctx: NodeContext, approver: StaffUser, row: ActionDraftRow) -> Submitted:
    """Submit the envelope stored at approval; a definitive refusal fails the draft."""
    spec = _spec(row)
    envelope = pb.Envelope.FromString(row.envelope)
    try:
        result = send_action(ctx, spec, envelope)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else "") or str(code)
        if code in DEFINITIVE:
            _fail(ctx.engine, approver, row, f"broker refused: {details}")
            raise DraftRefused(f"the broker refused the request: {details}") from None
        trail.record(
            ctx.engine,
            approver.user_id,
            "send",
            "retry",
            f"draft {row.draft_id} request {row.request_id}",
        )
        raise DraftRefused(
            f"not sent yet ({code.name.lower()}); approve the draft again to resend the same request"
        ) from None
    if result.decision != "ALLOW":
        _fail(
            ctx.engine,
            approver,
            row,
            f"the broker's policy denied it (audit entry {result.leaf_index})",
        )
        raise DraftRefused(
            f"the broker's policy denied the request (audit entry {result.leaf_index})"
        )
    trail.record(
        ctx.engine,
        approver.user_id,
        "send",
        "ok",
        f"draft {row.draft_id} request {row.request_id} audit {result.leaf_index}",
    )
    return result


def _fail(engine: Engine, approver: StaffUser, row: ActionDraftRow, reason: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(ActionDraftRow)
            .where(ActionDraftRow.draft_id == row.draft_id)
            .values(state="failed", reason=reason[:500])
        )
        trail.record(
            session,
            approver.user_id,
            "send",
            "failed",
            f"draft {row.draft_id} request {row.request_id}",
        )
