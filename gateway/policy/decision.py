"""The outcome of one policy evaluation, with the evidence an audit entry needs.

A decision names the policies that determined it and the exact policy set (by hash), and
says in plain words why, so that a denied sender, an operator and the regulator all read
the same explanation. It cannot claim "allowed" while carrying errors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyDecision:
    """Allow or deny, the determining policy ids, any errors and the policy set's SHA-256.

    ``policy_ids`` are the ``@id`` annotations of the permits that allowed the request, or
    of the forbids that denied it; they are empty for a default deny. Errors always deny.
    """

    allowed: bool
    policy_ids: tuple[str, ...]
    errors: tuple[str, ...]
    policy_set_hash: str
    subject: str = ""
    """The request in plain words, e.g. ``MATCH_QUERY from police-1 to bank-a``."""

    def __post_init__(self) -> None:
        if self.allowed and (self.errors or not self.policy_ids):
            raise ValueError("an allow needs a determining policy and no errors")

    @property
    def reason(self) -> str:
        """Why, in plain words."""
        subject = self.subject or "the request"
        if self.allowed:
            return f"allowed: {subject} by {_policies(self.policy_ids)}"
        if self.policy_ids:
            text = f"denied by forbid {_policies(self.policy_ids)}"
            if self.errors:
                text += "; also: " + "; ".join(self.errors)
            return text
        if self.errors:
            return f"denied: {subject}: " + "; ".join(self.errors)
        return f"denied: no policy allows {subject}"


def _policies(ids: tuple[str, ...]) -> str:
    noun = "policy" if len(ids) == 1 else "policies"
    return f"{noun} " + ", ".join(ids)
