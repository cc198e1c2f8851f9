"""The one exception a bulk PSI session raises, on either side.

A PSI session handles nothing but identifiers and their blinded forms, so its errors are
built from fixed text, counts and exchange numbers only: an element, a canonical input or
a blinded value never reaches an exception message, a log line or the audit log (the
responder's refusal reason is audited by the broker).
"""

from __future__ import annotations

import grpc


class BulkPsiError(Exception):
    """A session cannot go on; `status` is what a responder refuses the exchange with."""

    def __init__(self, status: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def invalid(reason: str) -> BulkPsiError:
    """A malformed message: the peer sent something the protocol does not allow."""
    return BulkPsiError(grpc.StatusCode.INVALID_ARGUMENT, reason)
