"""The roles a node can take: each a table from inbound message kind to handler.

A feature adds its handler here for the roles that take part in it; a kind missing
from a role's table is refused with UNIMPLEMENTED (and the node's policy refuses most
of them before that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nodes.roles.base import KindHandler, KindRouter, RoleHandler, pong

if TYPE_CHECKING:
    from nodes.runtime import NodeContext


def role_tables() -> Mapping[str, Mapping[str, KindHandler]]:
    """Handlers per role and kind (imported lazily: a role loads only what it runs)."""
    from nodes.actions.police import keep_receipt
    from nodes.actions.responder import execute_action
    from nodes.alerts.inbox import take_alert
    from nodes.bulk_psi import handle_psi_request
    from nodes.filter_responder import (
        handle_filter_query,
        handle_filter_sync,
        handle_label_request,
    )
    from nodes.matching import handle_match_query
    from nodes.watchlist.police import handle_watchlist_check

    return {
        "police": {
            "PING": pong,
            "ACTION_RECEIPT": keep_receipt,
            "SUSPICIOUS_ACCOUNT": take_alert,
            "SUSPICIOUS_NUMBER": take_alert,
            "WATCHLIST_CHECK": handle_watchlist_check,
        },
        "bank": {
            "PING": pong,
            "MATCH_QUERY": handle_match_query,
            "FILTER_QUERY": handle_filter_query,
            "LABEL_REQUEST": handle_label_request,
            "FILTER_SYNC": handle_filter_sync,
            "PSI_REQUEST": handle_psi_request,
            "STOP_PAYMENT": execute_action,
            "FREEZE": execute_action,
            "EXTEND": execute_action,
            "RELEASE": execute_action,
            "RETURN_FUNDS": execute_action,
            "INQUIRY": execute_action,
        },
        "carrier": {
            "PING": pong,
            "MATCH_QUERY": handle_match_query,
            "FILTER_QUERY": handle_filter_query,
            "LABEL_REQUEST": handle_label_request,
            "FILTER_SYNC": handle_filter_sync,
            "PSI_REQUEST": handle_psi_request,
            "SUSPEND_NUMBER": execute_action,
            "RESTORE_NUMBER": execute_action,
            "INQUIRY": execute_action,
        },
        "regulator": {"PING": pong},
    }


def handler_for(role: str, ctx: NodeContext) -> RoleHandler:
    """The inbound handler of a role."""
    tables = role_tables()
    if role not in tables:
        raise ValueError(f"unknown node role {role!r}")
    return KindRouter(role, tables[role])
