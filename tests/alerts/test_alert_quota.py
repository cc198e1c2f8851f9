"""The broker's hourly alert quota through the real broker: a carrier's 61st number alert
in an hour is refused by `forbid-alerts-over-quota`, and the carrier records it as
refused (it is not resent); the 60 before it were stored by the broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.localnet import Consortium
from nodes.alerts.report import AlertError, AlertReport
from nodes.alerts.sender import raise_alert, resend_pending, sent_alerts
from tests.consortium import client, running

QUOTA = 60
"""`forbid-alerts-over-quota` in gateway/policies/broker.cedar and docs/quotas.md."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    c = Consortium.create(
        tmp_path_factory.mktemp("alert-quota"),
        (("police-1", "police", "P"), ("carrier-1", "carrier", "C")),
    )
    with running(c, nodes=()):
        yield c


def number_alert(i: int) -> AlertReport:
    return AlertReport(
        kind="SUSPICIOUS_NUMBER",
        region="310000",
        identifier_kind="phone",
        identifier=f"+86138{i:08d}",
        category="fraud_calls",
        seen="hundreds of short calls to elderly subscribers",
        seen_at_ms=1_780_000_000_000,
        branch="network operations centre",
    )


def test_the_sixty_first_alert_in_an_hour_is_refused_and_not_resent(net: Consortium) -> None:
    carrier = client(net, "carrier-1")
    try:
        for i in range(QUOTA):
            assert raise_alert(carrier, number_alert(i), raised_by="noc").state == "sent"
        with pytest.raises(AlertError, match="forbid-alerts-over-quota"):
            raise_alert(carrier, number_alert(QUOTA), raised_by="noc")
        states = [a.state for a in sent_alerts(carrier)]
        assert sorted(states) == ["refused"] + ["sent"] * QUOTA
        assert resend_pending(carrier) == []  # a refused alert waits for nothing
    finally:
        carrier.client.close()
