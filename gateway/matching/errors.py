"""Why a targeted query or its answer is refused.

Every message is a fixed description plus counts or positions: never an identifier,
blinded element, tag or label, in any form, because these texts end up in the broker's
audit log, in node logs and on operators' screens.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["KeyMismatch", "MatchError", "Problem", "QueryRefused", "ResponseRejected"]


class Problem(StrEnum):
    """What kind of refusal, so a node can map it to a gRPC status."""

    INVALID = "invalid"
    TOO_LARGE = "too_large"
    NOT_READY = "not_ready"
    FORBIDDEN = "forbidden"


class MatchError(Exception):
    """Base of the matching errors; `str()` is safe to log and show."""

    def __init__(self, reason: str, problem: Problem = Problem.INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problem = problem


class QueryRefused(MatchError):
    """A responder will not answer a query (bad input, over its limits, no index)."""


class ResponseRejected(MatchError):
    """A querier will not use a response: it fails verification or breaks the protocol."""


class KeyMismatch(ResponseRejected):
    """The responder answered under an OPRF key other than the one the directory lists."""
