"""A running bank node resends, on its own, an alert the broker never acknowledged.

The teller raises the alert while the broker is down: it is stored signed and the desk
is told it is not acknowledged yet. Nobody does anything more; once the broker is back,
the bank node's background resender (`alert_resend_s`) submits the same envelope, the
police node receives the alert exactly once, and the bank records it as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.broker.server import serve_broker
from gateway.localnet import Consortium
from nodes.alerts.sender import AlertNotSent, SentAlertRow, raise_alert
from tests.actions.seed import ACCOUNT, seed_accounts
from tests.alerts.test_alerts_broker import account_alert, broker_messages, received
from tests.consortium import client, running
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(tmp_path_factory.mktemp("alert-resend"))
    seed_accounts(c, "bank-a", {ACCOUNT: 1_000_000})
    path = c.config_path("bank-a")
    text = path.read_text()
    path.write_text(re.sub(r'(?m)^role = "bank"$', 'role = "bank"\nalert_resend_s = 0.2', text))
    yield c


def states(c: Consortium) -> list[str]:
    bank = client(c, "bank-a")
    try:
        with Session(bank.engine) as s:
            return list(s.scalars(select(SentAlertRow.state)))
    finally:
        bank.client.close()


def test_an_alert_raised_while_the_broker_is_down_reaches_the_police_once_by_itself(
    net: Consortium,
) -> None:
    with running(net, nodes=("police-1", "bank-a")) as (broker, nodes):
        desk = nodes["bank-a"].ctx  # the desk runs in the node's process, as the console
        desk.client.directory()  # which holds the signed directory from its start
        broker.stop(0)
        with pytest.raises(AlertNotSent, match="not acknowledged yet"):
            raise_alert(desk, account_alert(), raised_by="teller-app")
        with Session(desk.engine) as s:
            (alert_id,) = s.scalars(select(SentAlertRow.alert_id))
        assert states(net) == ["signed"]
        assert received(net, alert_id) == 0

        back = serve_broker(net.broker_config())
        try:
            wait_for(lambda: states(net) == ["sent"], timeout=30)
            wait_for(lambda: received(net, alert_id) == 11, timeout=30)
        finally:
            back.stop(0)
    assert broker_messages(net, "SUSPICIOUS_ACCOUNT") == 1
    assert received(net, alert_id) == 11  # one alert, one journal row at the police
