"""The node's own policy: loaded from the consortium's signed bundle, refusals audited here.

A node decides every inbound message a second time with its own Cedar policy (defence in
depth against a broker with a bad policy). That policy comes only from the bundle the
consortium administrator signed (`gateway.policy.bundle`), and each refusal is written to
the node's staff trail (`nodes.staff.trail`), chained like every other event there, so the
agency can show what its node refused even when the broker's log says nothing of it.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.config import NodeConfig
from gateway.pki.store import NodeBundle
from gateway.policy import PolicyEngine
from gateway.policy.bundle import load_signed_engine
from gateway.v1 import gateway_pb2 as pb
from nodes.staff import trail

log = logging.getLogger(__name__)

POLICY_USER: Final = "(node policy)"
"""The trail's user id for refusals by the node's policy; no staff user id can match it."""
DENY_EVENT: Final = "policy.deny"


def load_node_policy(config: NodeConfig, *, bundle: NodeBundle) -> PolicyEngine:
    """The node's policy from the signed bundle in its PKI folder.

    Only the signature is checked here (the broker, which serves the directory, may be
    down at start); every delivery then checks that the directory lists this bundle.
    """
    return load_signed_engine(
        bundle.policy_bundle,
        config.node_policy(),
        bundle.directory_verify_key(),
        consortium=bundle.consortium(),
        listed_sha256=None,
    )


def record_denial(
    where: Engine | Session, header: pb.Header, bundle_sha256: str, reason: str
) -> None:
    """Audit a refusal by the node's policy in its staff trail.

    The detail names the message, its kind and sender, and the policy bundle; the reason
    is the decision's, which names policies and header fields, never an identifier. Given
    a session, the event joins its transaction.
    """
    detail = (
        f"{header.kind} {header.message_id} from {header.sender}; "
        f"bundle {bundle_sha256[:12]}: {reason}"
    )
    if isinstance(where, Session):
        trail.record(where, POLICY_USER, DENY_EVENT, "denied", detail)
        return
    try:
        trail.record(where, POLICY_USER, DENY_EVENT, "denied", detail)
    except SQLAlchemyError:
        log.exception("cannot audit a node policy denial of %s", header.message_id)
