"""Targeted membership query (Password-Checkup style): police ask one or all responders
whether they hold given identifiers, without either side pooling raw identifiers.

Read in this order: `derive` (bucket, tag, label: the values both sides compute),
`index_store` (the responder's index; `nodes.index_build` keeps it current from the
node's records),
`wire` (the payloads), `responder` and `querier` (the two halves of one exchange).
The node wiring through the broker is in `nodes.matching`.
"""

from gateway.matching.derive import DEFAULT_BUCKET_BITS
from gateway.matching.errors import MatchError, Problem, QueryRefused, ResponseRejected
from gateway.matching.querier import KeyMismatch, Match, PendingQuery
from gateway.matching.responder import Answered, ResponderLimits, answer_query

__all__ = [
    "DEFAULT_BUCKET_BITS",
    "Answered",
    "KeyMismatch",
    "Match",
    "MatchError",
    "PendingQuery",
    "Problem",
    "QueryRefused",
    "ResponderLimits",
    "ResponseRejected",
    "answer_query",
]
