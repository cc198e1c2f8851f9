"""The bank's or carrier's background resend of alerts the broker has not acknowledged.

An alert raised while the broker was unreachable is stored, signed, and reported to the
teller as not acknowledged yet (`nodes.alerts.sender`). Every `alert_resend_s` seconds
this thread submits each such alert again as the very same envelope, oldest first, so
it reaches the police without anyone at the desk doing anything; the broker answers a
copy it already has with its first outcome, so a resend never makes a second alert. It
holds no lock: each resend is one call through the broker client (with the node's
deadline) and a write to the node database. Logs carry alert ids and counts only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.periodic import Periodic
from nodes.alerts.sender import resend_pending

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = ["AlertResender"]

log = logging.getLogger(__name__)


class AlertResender:
    """Resends unacknowledged alerts every `interval_s` seconds until stopped."""

    def __init__(self, ctx: NodeContext, interval_s: float) -> None:
        self.ctx = ctx
        self._rounds = Periodic("alert-resend", interval_s, self.resend, log)

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def resend(self) -> int:
        """One round; how many pending alerts the broker has now acknowledged or refused."""
        outcomes = resend_pending(self.ctx)
        closed = [a for a in outcomes if a.state != "signed"]
        for alert in closed:
            log.info("alert %s resent: %s", alert.alert_id, alert.state)
        if len(closed) < len(outcomes):
            log.warning(
                "alert resend: %d alerts still not acknowledged by the broker",
                len(outcomes) - len(closed),
            )
        return len(closed)
