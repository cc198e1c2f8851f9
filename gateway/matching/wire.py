"""The payload formats of MATCH_QUERY and MATCH_RESPONSE (gateway.v1.matching protobufs).

Parsing is the first check on bytes from another agency; a payload that does not parse
or has another protocol version is refused here with a message that names the payload,
never echoing any of it.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import DecodeError

from gateway.matching.errors import QueryRefused, ResponseRejected
from gateway.v1 import matching_pb2 as mpb

__all__ = [
    "ELEMENT_LENGTH",
    "MAX_PARTS",
    "PROOF_LENGTH",
    "QUERY_TYPE",
    "RESPONSE_TYPE",
    "VERSION",
    "mpb",
    "parse_query",
    "parse_response",
]

VERSION: Final = 2
"""2: tags, label keys and labels of `derive.FORMAT` 2 (one SHA-512, binary labels)."""
QUERY_TYPE: Final = "application/vnd.gateway.v1.MatchQuery+protobuf"
RESPONSE_TYPE: Final = "application/vnd.gateway.v1.MatchResponse+protobuf"
ELEMENT_LENGTH: Final = 32
PROOF_LENGTH: Final = 64
MAX_PARTS: Final = 16
"""Most separately proven runs of items one query may have: one per core is all that helps."""


def parse_query(payload: bytes) -> mpb.MatchQuery:
    query = mpb.MatchQuery()
    try:
        query.ParseFromString(payload)
    except DecodeError:
        raise QueryRefused("the payload is not a MatchQuery") from None
    if query.version != VERSION:
        raise QueryRefused(
            f"query protocol version {query.version} is not supported (want {VERSION})"
        )
    return query


def parse_response(payload: bytes) -> mpb.MatchResponse:
    response = mpb.MatchResponse()
    try:
        response.ParseFromString(payload)
    except DecodeError:
        raise ResponseRejected("the answer is not a MatchResponse") from None
    if response.version != VERSION:
        raise ResponseRejected(f"answer protocol version {response.version} is not supported")
    return response
