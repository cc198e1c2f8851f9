"""Policy decisions for the gateway: Cedar policies, evaluated the same way everywhere.

The broker decides every message against ``gateway/policies/broker.cedar``; every node decides
its inbound messages against its own ``gateway/policies/node-<role>.cedar``. Both use
:class:`PolicyEngine`, which denies by default and explains each decision.
"""

from gateway.policy.decision import PolicyDecision
from gateway.policy.engine import PolicyEngine, PolicyLoadError
from gateway.policy.rates import WINDOW_MS, Windows, last_window, window_no
from gateway.policy.request import (
    BROKER,
    CONTEXT_FIELDS,
    KNOWN_ROLES,
    MEMBER_ROLES,
    MESSAGE_KINDS,
    ContextValue,
    Party,
    PolicyRequest,
    make_context,
)

__all__ = [
    "BROKER",
    "CONTEXT_FIELDS",
    "KNOWN_ROLES",
    "MEMBER_ROLES",
    "MESSAGE_KINDS",
    "WINDOW_MS",
    "ContextValue",
    "Party",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyLoadError",
    "PolicyRequest",
    "Windows",
    "last_window",
    "make_context",
    "window_no",
]
