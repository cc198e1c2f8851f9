"""What a bank or carrier did with each action request, and why, for its own staff.

The receipt that says so is sealed to the requesting police node, so the responder
cannot read it back; this row is the responder's own plain record of the outcome and
its reason, written in the same transaction as the action's effects. A reason names
fields, never an identifier (`nodes.actions.orders`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase


class ActionOutcomeRow(NodeBase):
    __tablename__ = "action_outcomes"

    request_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at_ms: Mapped[int] = mapped_column(BigInteger)
