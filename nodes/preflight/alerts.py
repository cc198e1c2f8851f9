"""Alerts: the region a bank or carrier reports from has a police node, and a police
node knows which regions it answers for.

A bank whose `alert_region` is misspelt, or covered by no police node's jurisdiction,
would have its first alert refused; a police node without a jurisdiction receives none.
"""

from __future__ import annotations

from gateway.config import NodeConfig
from gateway.pki.directory import Directory
from gateway.regions import UnknownRegion, check_region, responsible
from nodes.preflight.checks import Check, fail, ok, warn

ALERTS = "alerts"
RAISERS = ("bank", "carrier")


def check_alerts(config: NodeConfig, directory: Directory | None) -> Check | None:
    """Nothing to say unless the node is police or names an `alert_region`."""
    if config.role == "police":
        if directory is None:
            return None
        me = directory.get(config.node_id)
        if me is None or not me.jurisdictions:
            return warn(
                ALERTS,
                "this police node has no jurisdiction in the directory and receives no "
                "alerts; ask the administrator to run `gateway pki jurisdiction`",
            )
        return ok(ALERTS, f"receives alerts for {', '.join(me.jurisdictions)}")
    if not config.alert_region:
        return None
    if config.role not in RAISERS:
        return fail(ALERTS, f"alert_region: a {config.role} node raises no alerts; remove it")
    try:
        check_region(config.alert_region)
    except ValueError as exc:
        return fail(ALERTS, f"alert_region: {exc}")
    if directory is None:
        return None
    try:
        police = responsible(config.alert_region, directory.jurisdictions())
    except UnknownRegion as exc:
        return fail(ALERTS, f"alert_region: {exc}; fix it or ask the consortium")
    return ok(ALERTS, f"alerts for {config.alert_region} go to {police}")
