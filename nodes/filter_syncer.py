"""The police node's background filter sync: every responder's filter kept current.

Every `filter_sync_s` seconds the thread syncs each active bank and carrier that
publishes an OPRF key (nodes.filter_police.sync_filter), one after the other, logging a
line per chunk of a transfer and one per responder brought up to date, so that a query
seldom has more than a delta to pull first. It holds no lock: each sync is calls through
the broker client (each with the node's deadline) and writes to the node database; a
failure is logged and retried at the next round.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.periodic import Periodic
from nodes.filter_police import FilterModeError, sync_filter
from nodes.matching import RESPONDER_ROLES

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = ["FilterSyncer"]

log = logging.getLogger(__name__)


class FilterSyncer:
    """Syncs every responder's filter every `interval_s` seconds until stopped."""

    def __init__(self, ctx: NodeContext, interval_s: float) -> None:
        self.ctx = ctx
        self._rounds = Periodic("filter-sync", interval_s, self.sync_all, log)

    def start(self) -> None:
        self._rounds.start()

    def stop(self) -> None:
        self._rounds.stop()

    def sync_all(self) -> int:
        """One round over every responder; how many are now current."""
        directory = self.ctx.client.directory()
        responders = sorted(
            m.node_id
            for m in directory.members
            if m.role in RESPONDER_ROLES and m.active and m.oprf_key
        )
        current = 0
        for node_id in responders:
            if self._rounds.stopping:
                break
            try:
                outcome = sync_filter(self.ctx, node_id, self._progress)
            except FilterModeError as exc:
                log.warning("filter sync of %s failed: %s", node_id, exc.reason)
                continue
            current += 1
            if outcome.chunks:
                log.info(
                    "filter of %s synced: version %d, %d tags, %d chunks%s",
                    node_id,
                    outcome.version,
                    outcome.tags,
                    outcome.chunks,
                    " (full re-sync)" if outcome.resynced else "",
                )
        return current

    @staticmethod
    def _progress(node_id: str, done: int, total: int) -> None:
        log.info("filter sync of %s: %d/%d chunks", node_id, done, total)
