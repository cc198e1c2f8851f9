"""PSI_REQUEST / PSI_RESPONSE payloads (gateway.v1.psi protobufs), parsed and checked.

Everything a peer sends is checked here before a session looks at it: the version, the
shape of the opening, and that element fields are whole 32-byte encodings. Whether each
encoding is a valid group element is checked where it is raised to a key (`mask_received`),
with the element's position in the error and never its bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import DecodeError

from gateway.bulk_psi.errors import invalid
from gateway.bulk_psi.plan import MAX_CHUNK_SIZE, Mode
from gateway.crypto import psi
from gateway.identifiers import IdentifierKind
from gateway.v1 import psi_pb2 as pb

VERSION: Final = 1
ELEMENT_BYTES: Final = 32
SESSION_ID_BYTES: Final = 16
REQUEST_PAYLOAD_TYPE: Final = "application/vnd.gateway.v1.psi-chunk-request+protobuf"
RESPONSE_PAYLOAD_TYPE: Final = "application/vnd.gateway.v1.psi-chunk-response+protobuf"

MAX_SELECTION_ENTRIES: Final = 8
_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
"""Set names and selection keys: short words, so that no identifier fits in one by accident."""
_VALUE: Final = re.compile(r"[^\x00-\x1f]{0,64}")

_MODES: Final = {
    Mode.INTERSECTION: pb.PSI_MODE_INTERSECTION,
    Mode.CARDINALITY: pb.PSI_MODE_CARDINALITY,
}
_MODES_BACK: Final = {v: k for k, v in _MODES.items()}


@dataclass(frozen=True)
class Opening:
    """What the querier asks for in exchange 0."""

    kind: IdentifierKind
    responder_set: str
    mode: Mode
    querier_size: int
    chunk_size: int
    selection: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkRequest:
    session_id: bytes
    exchange: int
    opening: Opening | None
    elements: bytes


@dataclass(frozen=True)
class ChunkResponse:
    session_id: bytes
    exchange: int
    responder_size: int | None
    """None until the responder has read its set."""
    double_masked: bytes
    responder_chunk: int
    responder_elements: bytes


def check_selection(selection: Mapping[str, str]) -> dict[str, str]:
    """An attribute filter as the protocol accepts it: few, short, printable entries."""
    if len(selection) > MAX_SELECTION_ENTRIES:
        raise invalid(f"a selection has at most {MAX_SELECTION_ENTRIES} attributes")
    for key, value in selection.items():
        if not _NAME.fullmatch(key) or not _VALUE.fullmatch(value):
            raise invalid("a selection attribute or value is not a short printable word")
    return dict(selection)


def check_set_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise invalid("a set name is 1 to 64 letters, digits, '_', '-' or '.'")
    return name


# -- requests ----------------------------------------------------------------------------


def encode_request(request: ChunkRequest) -> bytes:
    message = pb.PsiChunkRequest(
        version=VERSION,
        session_id=request.session_id,
        exchange=request.exchange,
        elements=request.elements,
    )
    if request.opening is not None:
        o = request.opening
        message.open.CopyFrom(
            pb.PsiOpen(
                identifier_kind=o.kind.value,
                responder_set=o.responder_set,
                querier_selection=dict(o.selection),
                mode=_MODES[o.mode],
                querier_size=o.querier_size,
                chunk_size=o.chunk_size,
            )
        )
    return message.SerializeToString()


def decode_request(payload: bytes) -> ChunkRequest:
    """A request's fields, or `BulkPsiError` naming what is wrong with it."""
    message = pb.PsiChunkRequest()
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise invalid("the PSI request does not parse") from None
    if message.version != VERSION:
        raise invalid(f"PSI protocol version {message.version} is not supported (expected 1)")
    opening: Opening | None = None
    if message.HasField("open"):
        opening = _decode_opening(message.open)
    if (message.exchange == 0) != (opening is not None):
        raise invalid("exchange 0, and only exchange 0, opens a session")
    if opening is not None and message.session_id:
        raise invalid("an opening must not name a session")
    if opening is None and len(message.session_id) != SESSION_ID_BYTES:
        raise invalid(f"a session id is {SESSION_ID_BYTES} bytes")
    split_elements(message.elements, "the request's elements")
    return ChunkRequest(message.session_id, message.exchange, opening, message.elements)


def _decode_opening(message: pb.PsiOpen) -> Opening:
    try:
        kind = IdentifierKind(message.identifier_kind)
    except ValueError:
        raise invalid("the opening names no known identifier kind") from None
    mode = _MODES_BACK.get(message.mode)
    if mode is None:
        raise invalid("the opening names no PSI mode")
    if message.querier_size < 1:
        raise invalid("the querier's set is empty")
    if not 1 <= message.chunk_size <= MAX_CHUNK_SIZE:
        raise invalid(f"the chunk size must be 1 to {MAX_CHUNK_SIZE}")
    return Opening(
        kind=kind,
        responder_set=check_set_name(message.responder_set),
        mode=mode,
        querier_size=message.querier_size,
        chunk_size=message.chunk_size,
        selection=check_selection(dict(message.querier_selection)),
    )


# -- responses ---------------------------------------------------------------------------


def encode_response(response: ChunkResponse) -> bytes:
    message = pb.PsiChunkResponse(
        version=VERSION,
        session_id=response.session_id,
        exchange=response.exchange,
        double_masked=response.double_masked,
        responder_chunk=response.responder_chunk,
        responder_elements=response.responder_elements,
    )
    if response.responder_size is not None:
        message.responder_size = response.responder_size
    return message.SerializeToString()


def decode_response(payload: bytes) -> ChunkResponse:
    message = pb.PsiChunkResponse()
    try:
        message.ParseFromString(payload)
    except DecodeError:
        raise invalid("the PSI response does not parse") from None
    if message.version != VERSION:
        raise invalid(f"PSI protocol version {message.version} is not supported (expected 1)")
    if len(message.session_id) != SESSION_ID_BYTES:
        raise invalid(f"a session id is {SESSION_ID_BYTES} bytes")
    split_elements(message.double_masked, "the response's doubly-masked elements")
    split_elements(message.responder_elements, "the responder's elements")
    if message.responder_elements and not message.HasField("responder_size"):
        raise invalid("the responder sent elements before announcing its set size")
    return ChunkResponse(
        session_id=message.session_id,
        exchange=message.exchange,
        responder_size=message.responder_size if message.HasField("responder_size") else None,
        double_masked=message.double_masked,
        responder_chunk=message.responder_chunk,
        responder_elements=message.responder_elements,
    )


# -- elements ----------------------------------------------------------------------------


def pack(encodings: Sequence[bytes]) -> bytes:
    return b"".join(encodings)


def count(blob: bytes) -> int:
    return len(blob) // ELEMENT_BYTES


def split_elements(blob: bytes, what: str) -> list[bytes]:
    """32-byte encodings of a packed field; refuses a field that is not a whole number."""
    if len(blob) % ELEMENT_BYTES:
        raise invalid(f"{what} are not a whole number of 32-byte encodings")
    return [blob[i : i + ELEMENT_BYTES] for i in range(0, len(blob), ELEMENT_BYTES)]


def mask_received(
    blob: bytes, what: str, key: psi.Scalar, *, workers: int = 1
) -> list[psi.Element]:
    """The peer's packed elements, each validated and raised to `key` (in parallel: libsodium
    releases the GIL); the error names the first bad element by position, never its bytes."""
    encodings = split_elements(blob, what)
    try:
        return psi.exponentiate_received(key, encodings, workers)
    except psi.InvalidElement:
        pass
    for position, encoding in enumerate(encodings):
        try:
            psi.decode_elements([encoding])
        except psi.InvalidElement as exc:
            raise invalid(f"{what}: element {position} is refused ({exc})") from None
    raise AssertionError("unreachable: a batch failed but no single element did")
