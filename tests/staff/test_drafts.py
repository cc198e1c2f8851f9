"""Four-eyes approval through the real broker and bank: an officer drafts, another
person with the approver role approves, and only then is the request signed and sent,
naming both. Every refusal sends nothing and is in the staff trail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from gateway.broker.models import MessageRow
from gateway.localnet import Consortium
from gateway.v1 import gateway_pb2 as pb
from nodes.actions.police import ActionRequestRow
from nodes.journal import OutboundRow
from nodes.runtime import NodeContext
from nodes.staff.accounts import StaffUser, add_user, get_user
from nodes.staff.drafts import (
    ActionDraftRow,
    DraftRefused,
    approve_draft,
    create_draft,
    get_draft,
    list_drafts,
    reject_draft,
)
from nodes.staff.trail import recent, verify_trail
from tests.actions.seed import ACCOUNT, account, seed_accounts, spec
from tests.consortium import client, request_state, running
from tests.postgres import Databases, opened
from tests.waiting import wait_for

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Consortium]:
    c = Consortium.create(
        tmp_path_factory.mktemp("drafts"), database_urls=databases.for_consortium()
    )
    seed_accounts(c, "bank-a", {ACCOUNT: 100_000_000})
    with running(c, ("police-1", "bank-a")):
        yield c


@pytest.fixture(scope="module")
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    for user_id, role in (
        ("wang", "officer"),
        ("zhao", "officer"),
        ("chen", "approver"),
        ("li", "approver"),
        ("sun", "auditor"),
    ):
        add_user(ctx.engine, user_id, role, password=PASSWORD, totp=False)
    yield ctx
    ctx.client.close()


def staff(ctx: NodeContext, user_id: str) -> StaffUser:
    user = get_user(ctx.engine, user_id)
    assert user is not None
    return user


def sent_count(ctx: NodeContext) -> int:
    with Session(ctx.engine) as s:
        return int(s.scalar(select(func.count()).select_from(OutboundRow)) or 0)


def broker_header(net: Consortium, message_id: str) -> pb.Header | None:
    with opened(net.broker_database) as broker, Session(broker) as s:
        row = s.get(MessageRow, message_id)
        return pb.Header.FromString(row.header) if row is not None else None


def drafted(ctx: NodeContext, by: str = "wang", **changes: object) -> tuple[str, str]:
    draft_id = create_draft(ctx.engine, staff(ctx, by), spec(**changes))
    found = get_draft(ctx.engine, draft_id)
    assert found is not None and found.state == "drafted"
    return draft_id, found.spec_sha256


def test_drafted_then_approved_by_another_person_is_sent_naming_both(
    net: Consortium, police: NodeContext
) -> None:
    held = int(str(account(net, "bank-a", ACCOUNT)["held_minor"]))
    draft_id, sha = drafted(police, issuing_officer="someone", approving_officer="else")
    found = get_draft(police.engine, draft_id)
    assert found is not None
    assert "issuing_officer" not in found.spec and found.spec["case_ref"] == "C-2026-001"

    result = approve_draft(police, staff(police, "chen"), draft_id, expected_sha256=sha)
    assert result.decision == "ALLOW"
    header = broker_header(net, result.message_id)
    assert header is not None
    assert (header.terms.issuing_officer, header.terms.approving_officer) == ("wang", "chen")
    wait_for(lambda: request_state(police, result.message_id) == "executed")
    assert account(net, "bank-a", ACCOUNT)["held_minor"] == held + 200_000

    after = get_draft(police.engine, draft_id)
    assert after is not None
    assert (after.state, after.decided_by, after.request_id) == (
        "approved",
        "chen",
        result.message_id,
    )
    events = [(e.user_id, e.event, e.outcome) for e in recent(police.engine, 3)]
    assert events == [("chen", "send", "ok"), ("chen", "approve", "ok"), ("wang", "draft", "ok")]
    assert verify_trail(police.engine) == []


@pytest.mark.parametrize(
    ("drafter", "approver", "why"),
    [
        ("chen", "chen", "nobody may decide their own draft"),
        ("wang", "zhao", "role officer may not decide drafts"),
        ("wang", "sun", "role auditor may not decide drafts"),
    ],
)
def test_approval_by_the_wrong_person_sends_nothing(
    police: NodeContext, drafter: str, approver: str, why: str
) -> None:
    draft_id, sha = drafted(police, by=drafter)
    before = sent_count(police)
    with pytest.raises(DraftRefused, match=why):
        approve_draft(police, staff(police, approver), draft_id, expected_sha256=sha)
    assert sent_count(police) == before
    found = get_draft(police.engine, draft_id)
    assert found is not None and (found.state, found.request_id) == ("drafted", "")
    last = recent(police.engine, 1)[0]
    assert (last.user_id, last.event, last.outcome) == (approver, "approve", "refused")
    assert why in last.detail and draft_id in last.detail


def test_an_auditor_cannot_draft(police: NodeContext) -> None:
    before = len(list_drafts(police.engine))
    with pytest.raises(DraftRefused, match="role auditor may not draft actions"):
        create_draft(police.engine, staff(police, "sun"), spec())
    assert len(list_drafts(police.engine)) == before
    last = recent(police.engine, 1)[0]
    assert (last.user_id, last.event, last.outcome) == ("sun", "draft", "refused")


def test_a_bad_draft_is_refused_without_echoing_the_identifier(police: NodeContext) -> None:
    bad = "62220202001122334455667788990011223"  # 35 digits: too long for an account
    with pytest.raises(DraftRefused, match="identifier: invalid bank_account") as info:
        create_draft(police.engine, staff(police, "wang"), spec(identifier=bad))
    assert bad not in str(info.value)
    assert all(bad not in e.detail for e in recent(police.engine, 5))
    with pytest.raises(DraftRefused, match="legal basis: must not be empty"):
        create_draft(police.engine, staff(police, "wang"), spec(legal_basis=" "))


def test_a_draft_changed_after_drafting_is_refused(police: NodeContext) -> None:
    draft_id, sha = drafted(police)
    with police.engine.begin() as conn:  # someone edits the stored draft behind our back
        conn.execute(
            update(ActionDraftRow)
            .where(ActionDraftRow.draft_id == draft_id)
            .values(spec_json=func.replace(ActionDraftRow.spec_json, "200000", "900000"))
        )
    before = sent_count(police)
    with pytest.raises(DraftRefused, match="does not match its hash"):
        approve_draft(police, staff(police, "chen"), draft_id, expected_sha256=sha)
    assert sent_count(police) == before


def test_an_approval_of_a_stale_view_is_refused(police: NodeContext) -> None:
    draft_id, sha = drafted(police)
    with pytest.raises(DraftRefused, match="changed after you viewed it"):
        approve_draft(police, staff(police, "chen"), draft_id, expected_sha256="0" * 64)
    found = get_draft(police.engine, draft_id)
    assert found is not None and found.state == "drafted"
    approve_draft(police, staff(police, "chen"), draft_id, expected_sha256=sha)
    with pytest.raises(DraftRefused, match="sent already"):
        approve_draft(police, staff(police, "li"), draft_id, expected_sha256=sha)


def test_rejected_draft_cannot_be_approved(police: NodeContext) -> None:
    draft_id, sha = drafted(police)
    with pytest.raises(DraftRefused, match="give a reason"):
        reject_draft(police.engine, staff(police, "chen"), draft_id, "  ")
    reject_draft(police.engine, staff(police, "chen"), draft_id, "amount not justified")
    found = get_draft(police.engine, draft_id)
    assert found is not None
    assert (found.state, found.decided_by, found.reason) == (
        "rejected",
        "chen",
        "amount not justified",
    )
    before = sent_count(police)
    with pytest.raises(DraftRefused, match="the draft is rejected already"):
        approve_draft(police, staff(police, "li"), draft_id, expected_sha256=sha)
    assert sent_count(police) == before
    assert draft_id in {d.draft_id for d in list_drafts(police.engine, "rejected")}


def test_a_broker_refusal_fails_the_draft(police: NodeContext) -> None:
    draft_id, sha = drafted(police, duration_hours=49)  # over the 48 h a stop-payment may last
    with pytest.raises(DraftRefused, match="the broker refused the request"):
        approve_draft(police, staff(police, "chen"), draft_id, expected_sha256=sha)
    found = get_draft(police.engine, draft_id)
    assert found is not None and found.state == "failed" and "policy" in found.reason


def test_a_lost_reply_is_resent_as_the_same_request(net: Consortium, police: NodeContext) -> None:
    """As if the node crashed after approving, before it journalled anything of the
    submission: approving again submits the same envelope; the broker answers it with
    its first answer and the bank acts once."""
    held = int(str(account(net, "bank-a", ACCOUNT)["held_minor"]))
    draft_id, sha = drafted(police)
    first = approve_draft(police, staff(police, "chen"), draft_id, expected_sha256=sha)
    wait_for(lambda: request_state(police, first.message_id) == "executed")
    with police.engine.begin() as conn:
        conn.execute(
            delete(ActionRequestRow).where(ActionRequestRow.request_id == first.message_id)
        )
        conn.execute(delete(OutboundRow).where(OutboundRow.message_id == first.message_id))

    again = approve_draft(police, staff(police, "li"), draft_id, expected_sha256=sha)
    assert (again.message_id, again.leaf_index) == (first.message_id, first.leaf_index)
    assert account(net, "bank-a", ACCOUNT)["held_minor"] == held + 200_000
    assert request_state(police, first.message_id) == "requested"  # journalled again


def test_broker_down_at_approval_then_resent(
    tmp_path_factory: pytest.TempPathFactory, databases: Databases
) -> None:
    """The broker is unreachable when the approval is submitted: the draft stays approved
    with its request id; a later approval (a new process) sends that very request."""
    c = Consortium.create(
        tmp_path_factory.mktemp("outage"), database_urls=databases.for_consortium()
    )
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    with running(c, ("police-1", "bank-a")):
        ctx = client(c, "police-1")
        ctx.client.directory()  # the node knows the directory from before the outage
    add_user(ctx.engine, "wang", "officer", password=PASSWORD, totp=False)
    add_user(ctx.engine, "chen", "approver", password=PASSWORD, totp=False)
    draft_id, sha = drafted(ctx)
    try:
        with pytest.raises(DraftRefused, match="approve the draft again"):
            approve_draft(ctx, staff(ctx, "chen"), draft_id, expected_sha256=sha)
    finally:
        ctx.client.close()
    pending = get_draft(ctx.engine, draft_id)
    assert pending is not None and pending.state == "approved" and len(pending.request_id) == 32

    with running(c, ("police-1", "bank-a")):
        again = client(c, "police-1")
        try:
            result = approve_draft(again, staff(again, "chen"), draft_id, expected_sha256=sha)
            assert result.message_id == pending.request_id
            wait_for(lambda: request_state(again, result.message_id) == "executed")
        finally:
            again.client.close()
    assert account(c, "bank-a", ACCOUNT)["held_minor"] == 200_000
