"""Bank- and carrier-initiated alerts through the real broker and nodes.

A bank's alert reaches the police node of its region exactly once, even when the broker
is restarted with it in the outbox and the bank resends the same envelope; an alert
naming a region nobody covers is refused before anything is stored or sent; a sender of
the wrong kind is refused by the broker's policy even when it forges the message; the
reporter stays sealed (in the police database too) until a `tipoff_reader` opens it,
and every attempt is on the staff trail; neither the identifier nor the reporter is in
the broker's database or any log line. From the alert an officer drafts a stop-payment
in one step, which still needs a second officer's approval.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.broker.models import DeliveryRow, MessageRow
from gateway.db import make_engine
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from nodes.alerts.inbox import (
    AlertRefused,
    ReceivedAlertRow,
    draft_stop_payment,
    get_alert,
    list_alerts,
    open_reporter,
)
from nodes.alerts.report import AlertError, AlertReport, Reporter
from nodes.alerts.sender import SentAlertRow, raise_alert, resend_pending, sent_alerts
from nodes.journal import InboundRow
from nodes.staff import trail
from nodes.staff.accounts import add_user, get_user
from nodes.staff.drafts import DraftRefused, approve_draft, get_draft
from tests.actions.seed import ACCOUNT, HOLDER, PAID_AT_MS, PAID_MINOR, seed_accounts
from tests.consortium import client, request_state, running
from tests.waiting import wait_for

PHONE = "+8613812345678"
TELLER = Reporter("teller", "李娜 (counter 3)", "ext. 5521", "T-0042")
PASSWORD = "a password long enough"


def account_alert(**changes: object) -> AlertReport:
    values: dict[str, object] = {
        "kind": "SUSPICIOUS_ACCOUNT",
        "region": "310101",  # Huangpu, Shanghai: police-1 answers for 310000
        "identifier_kind": "bank_account",
        "identifier": ACCOUNT,
        "category": "unusual_withdrawal",
        "seen": "elderly customer withdrawing 5000 yuan in cash on a caller's instructions",
        "seen_at_ms": PAID_AT_MS + 60_000,
        "branch": "Huangpu sub-branch",
        "holder_name": HOLDER,
        "txn_at_ms": PAID_AT_MS,
        "txn_amount_minor": PAID_MINOR,
    }
    values.update(changes)
    return AlertReport(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("alerts"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    police = client(c, "police-1")
    try:
        for user, role in (
            ("officer-7", "officer"),
            ("chief-2", "approver"),
            ("reader-1", "tipoff_reader"),
        ):
            add_user(police.engine, user, role, password=PASSWORD, totp=False)
    finally:
        police.client.close()
    yield c


def broker_messages(c: Consortium, kind: str) -> int:
    engine = make_engine(c.broker_database)
    with Session(engine) as s:
        count = s.scalar(
            select(func.count()).select_from(MessageRow).where(MessageRow.kind == kind)
        )
    engine.dispose()
    return int(count or 0)


def received(c: Consortium, alert_id: str) -> int:
    engine = make_engine(c.node_config("police-1").database)
    with Session(engine) as s:
        alerts = s.scalar(
            select(func.count())
            .select_from(ReceivedAlertRow)
            .where(ReceivedAlertRow.alert_id == alert_id)
        )
        journal = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.message_id == alert_id)
        )
    engine.dispose()
    return int(alerts or 0) * 10 + int(journal or 0)


def test_an_alert_outlives_a_broker_restart_and_a_resend_and_arrives_once(
    net: Consortium, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running(net, nodes=("bank-a",)):  # the police node is down: the alert waits
        bank = client(net, "bank-a")
        try:
            sent = raise_alert(bank, account_alert(), raised_by="teller-app", reporter=TELLER)
        finally:
            bank.client.close()
    assert (sent.state, sent.recipient) == ("sent", "police-1")
    assert received(net, sent.alert_id) == 0

    with running(net, nodes=("police-1", "bank-a")):  # a new broker, the same database
        wait_for(lambda: received(net, sent.alert_id) == 11)
        bank = client(net, "bank-a")
        try:
            # the bank crashed before it recorded the broker's answer: it resends
            with Session(bank.engine) as s, s.begin():
                s.execute(
                    update(SentAlertRow)
                    .where(SentAlertRow.alert_id == sent.alert_id)
                    .values(state="signed", leaf_index=-1)
                )
            (again,) = [a for a in resend_pending(bank) if a.alert_id == sent.alert_id]
            assert again.state == "sent"
            assert again.leaf_index == sent.leaf_index  # the broker's first answer
        finally:
            bank.client.close()
        assert broker_messages(net, "SUSPICIOUS_ACCOUNT") == 1
    assert received(net, sent.alert_id) == 11  # one alert, one journal row

    police = client(net, "police-1")
    try:
        alert = get_alert(police, sent.alert_id)
    finally:
        police.client.close()
    assert alert is not None
    assert (alert.sender, alert.region, alert.identifier, alert.category) == (
        "bank-a",
        "310101",
        ACCOUNT,
        "unusual_withdrawal",
    )
    assert alert.has_reporter and "sealed" in repr(TELLER)

    broker_db = Path(net.broker_database).read_bytes()
    police_db = Path(net.node_config("police-1").database).read_bytes()
    for secret in (ACCOUNT, TELLER.name, TELLER.staff_id):
        assert secret.encode() not in broker_db
        assert secret not in caplog.text
    for secret in (TELLER.name, TELLER.staff_id, TELLER.contact):
        assert secret.encode() not in police_db  # the reporter is stored sealed


def test_an_alert_for_a_region_nobody_covers_is_refused_and_nothing_is_sent(
    net: Consortium,
) -> None:
    before = broker_messages(net, "SUSPICIOUS_ACCOUNT")
    bank = client(net, "bank-a")
    try:
        with running(net, nodes=("police-1",)):
            with pytest.raises(AlertError, match="region 110105: no police node"):
                raise_alert(bank, account_alert(region="110105"), raised_by="teller-app")
            with pytest.raises(AlertError, match="six-digit GB/T 2260"):
                raise_alert(bank, account_alert(region="31010"), raised_by="teller-app")
        stored = len(sent_alerts(bank))
    finally:
        bank.client.close()
    assert broker_messages(net, "SUSPICIOUS_ACCOUNT") == before
    assert stored == 1  # only the alert of the first test


def test_a_sender_of_the_wrong_kind_is_refused_even_when_it_forges_the_message(
    net: Consortium,
) -> None:
    carrier = client(net, "carrier-1")
    try:
        with pytest.raises(AlertError, match="a carrier node raises SUSPICIOUS_NUMBER"):
            raise_alert(carrier, account_alert(), raised_by="noc")
        with running(net, nodes=("police-1",)):
            police = carrier.client.directory().get("police-1")
            assert police is not None
            forged = Draft(
                sender="carrier-1",
                recipients=["police-1"],
                kind="SUSPICIOUS_ACCOUNT",
                payload=account_alert().to_json(),
                purpose="suspicious activity report",
                seal_to=police.seal_key,
            )
            with pytest.raises(grpc.RpcError) as refused:
                carrier.client.submit(forged)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            number = account_alert(
                kind="SUSPICIOUS_NUMBER",
                identifier_kind="phone",
                identifier=PHONE,
                category="fraud_calls",
                holder_name="",
                txn_at_ms=0,
                txn_amount_minor=0,
            )
            sent = raise_alert(carrier, number, raised_by="noc")
            assert sent.state == "sent"
            wait_for(lambda: received(net, sent.alert_id) == 11)
    finally:
        carrier.client.close()


def test_only_a_tipoff_reader_opens_the_reporter_and_every_attempt_is_on_the_trail(
    net: Consortium,
) -> None:
    police = client(net, "police-1")
    try:
        (alert,) = [a for a in list_alerts(police) if a.has_reporter]
        officer, reader = get_user(police.engine, "officer-7"), get_user(police.engine, "reader-1")
        assert officer is not None and reader is not None
        with pytest.raises(AlertRefused, match="only the tipoff_reader role"):
            open_reporter(police, officer, alert.alert_id)
        assert open_reporter(police, reader, alert.alert_id) == TELLER
        events = [
            (e.user_id, e.event, e.outcome, e.detail)
            for e in trail.recent(police.engine)
            if e.event == "open_reporter"
        ]
        assert ("officer-7", "open_reporter", "refused", f"alert {alert.alert_id}") in events
        assert ("reader-1", "open_reporter", "ok", f"alert {alert.alert_id}") in events
        assert trail.verify_trail(police.engine) == []
        # the reporter's box is bound to its alert: moved to another, it does not open
        other = next(a for a in list_alerts(police) if not a.has_reporter)
        with Session(police.engine) as s, s.begin():
            box = s.get(ReceivedAlertRow, alert.alert_id)
            assert box is not None
            s.execute(
                update(ReceivedAlertRow)
                .where(ReceivedAlertRow.alert_id == other.alert_id)
                .values(reporter_sealed=box.reporter_sealed)
            )
        with pytest.raises(AlertRefused, match="does not open"):
            open_reporter(police, reader, other.alert_id)
    finally:
        police.client.close()


def test_an_officer_drafts_a_stop_payment_from_an_alert_and_a_second_one_approves_it(
    net: Consortium,
) -> None:
    police = client(net, "police-1")
    try:
        alert = next(a for a in list_alerts(police) if a.kind == "SUSPICIOUS_ACCOUNT")
        officer, chief = get_user(police.engine, "officer-7"), get_user(police.engine, "chief-2")
        assert officer is not None and chief is not None
        draft_id = draft_stop_payment(
            police,
            officer,
            alert.alert_id,
            case_ref="C-2026-ALERT",
            legal_basis="Anti-Telecom-Fraud Law art. 11",
        )
        draft = get_draft(police.engine, draft_id)
        assert draft is not None
        assert draft.spec["action"] == "STOP_PAYMENT"
        assert (draft.spec["recipient"], draft.spec["identifier"]) == ("bank-a", ACCOUNT)
        assert draft.spec["account_name"] == HOLDER
        assert draft.spec["amount_minor"] == PAID_MINOR
        refreshed = get_alert(police, alert.alert_id)
        assert refreshed is not None and refreshed.draft_id == draft_id
        with pytest.raises(DraftRefused, match="may not decide drafts"):
            approve_draft(police, officer, draft_id, expected_sha256=draft.spec_sha256)
        with running(net, nodes=("police-1", "bank-a")):
            sent = approve_draft(police, chief, draft_id, expected_sha256=draft.spec_sha256)
            wait_for(lambda: request_state(police, sent.message_id) == "executed")
    finally:
        police.client.close()


def test_a_number_alert_cannot_be_drafted_into_a_stop_payment(net: Consortium) -> None:
    police = client(net, "police-1")
    try:
        alert = next(a for a in list_alerts(police) if a.kind == "SUSPICIOUS_NUMBER")
        officer = get_user(police.engine, "officer-7")
        assert officer is not None
        with pytest.raises(AlertRefused, match="only an account alert"):
            draft_stop_payment(police, officer, alert.alert_id, case_ref="C-1", legal_basis="x")
    finally:
        police.client.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"identifier": "62220202001122334-x"}, "identifier: invalid bank_account"),
        ({"identifier_kind": "phone"}, "identifier kind: a SUSPICIOUS_ACCOUNT alert names"),
        ({"category": "fraud_calls"}, "category: one of"),
        ({"seen": " "}, "seen: say what was seen"),
        ({"seen": "x" * 1001}, "seen: at most 1000"),
        ({"branch": ""}, "branch: the reporting branch"),
        ({"txn_amount_minor": 0}, "transaction: give both"),
    ],
)
def test_a_malformed_alert_is_refused_naming_the_field_and_never_the_identifier(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(AlertError, match=message) as refused:
        replace(account_alert(), **changes).checked()
    assert ACCOUNT not in str(refused.value)
    assert "62220202001122334" not in str(refused.value)


def test_the_police_refuse_an_alert_for_a_region_outside_their_jurisdiction(
    net: Consortium,
) -> None:
    """A bank that addresses police-1 itself (a stale directory, or on purpose) with a
    region police-1 does not answer for: delivered by the broker, refused by police-1,
    nothing stored there."""
    bank = client(net, "bank-a")
    try:
        with running(net, nodes=("police-1",)):
            police = bank.client.directory().get("police-1")
            assert police is not None
            elsewhere = Draft(
                sender="bank-a",
                recipients=["police-1"],
                kind="SUSPICIOUS_ACCOUNT",
                payload=account_alert(region="110105").to_json(),
                purpose="suspicious activity report",
                seal_to=police.seal_key,
            )
            bank.client.submit(elsewhere)

            def closed() -> str:
                engine = make_engine(net.broker_database)
                with Session(engine) as s:
                    state = s.scalar(
                        select(DeliveryRow.state).where(
                            DeliveryRow.message_id == elsewhere.message_id
                        )
                    )
                engine.dispose()
                return str(state or "")

            wait_for(lambda: closed() in ("failed", "refused"))
    finally:
        bank.client.close()
    assert received(net, elsewhere.message_id) == 0
