"""Fuzzing what arrives from the network before anything trusts it.

Decoders (Envelope, Header, the signed directory, sealed payloads) raise only their
documented error; the verifier never raises and refuses with one of its named checks
and that check's status, never quoting the payload's identifier; a signed envelope
changed in any byte never verifies, and one mutated on the wire verifies exactly when
its signed parts came through unchanged; and the broker policy decides every request,
extreme header values included, as an independent table of the rules says it must.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable, Iterator

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from gateway.broker.core import party, policy_context
from gateway.envelope.build import Draft
from gateway.envelope.pae import pae
from gateway.envelope.sealing import SealError, seal, unseal
from gateway.envelope.verify import EnvelopeVerifier, Rejected, Verified, VerifierLimits
from gateway.kinds import SEALED, Kind
from gateway.pki.directory import REVOKED, Directory, DirectoryError, Member
from gateway.policy import PolicyEngine, PolicyRequest
from gateway.policy.request import Party
from gateway.resources import POLICIES as REPO_POLICIES
from gateway.v1 import gateway_pb2 as pb

NOW = 1_760_000_000_000
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REFUSALS: dict[str, set[grpc.StatusCode]] = {
    "size": {grpc.StatusCode.RESOURCE_EXHAUSTED},
    "header": {grpc.StatusCode.INVALID_ARGUMENT},
    "sender": {grpc.StatusCode.PERMISSION_DENIED},
    "identity": {grpc.StatusCode.PERMISSION_DENIED},
    "signature": {grpc.StatusCode.UNAUTHENTICATED},
    "digest": {grpc.StatusCode.INVALID_ARGUMENT},
    "timestamp": {grpc.StatusCode.FAILED_PRECONDITION},
    "expiry": {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT},
    "recipient": {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT},
}
"""Every refusal the verifier documents: check name -> the statuses it answers with."""

ROLES = {"police-1": "police", "bank-a": "bank", "bank-b": "bank", "gone-1": "carrier"}
SIGNING = {node: Ed25519PrivateKey.generate() for node in ROLES}
SEALING = {node: PrivateKey.generate() for node in ROLES}
DIRECTORY = Directory(
    "fuzz.example",
    7,
    tuple(
        Member(
            node_id=node,
            role=role,
            agency=node,
            endpoint="",
            sign_key=SIGNING[node].public_key().public_bytes_raw(),
            seal_key=bytes(SEALING[node].public_key),
            status=REVOKED if node == "gone-1" else "active",
        )
        for node, role in ROLES.items()
    ),
)
VERIFIER = EnvelopeVerifier(
    lambda: DIRECTORY, limits=VerifierLimits(max_envelope_bytes=4096), clock_ms=lambda: NOW
)


IDENTIFIER = "6222020200112233445"
"""The account number in the envelopes' payloads (in clear in `plain_envelope`'s): no
refusal may quote any of it."""


def check_refusal(result: Verified | Rejected) -> Rejected:
    assert isinstance(result, Rejected), "verified an envelope it had to refuse"
    assert result.status in REFUSALS.get(result.check, set()), str(result)
    assert result.reason
    assert IDENTIFIER[-8:] not in str(result), "a refusal quotes the identifier"
    return result


def valid_envelope() -> pb.Envelope:
    return Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="FREEZE",
        payload=json.dumps({"identifier_kind": "bank_account", "value": IDENTIFIER}).encode(),
        case_ref="C-1",
        legal_basis="art. 11",
        seal_to=bytes(SEALING["bank-a"].public_key),
        terms=pb.ActionTerms(
            action="FREEZE",
            amount_minor=100,
            duration_hours=24,
            issuing_officer="officer-7",
            approving_officer="chief-2",
        ),
        created_at_ms=NOW - 1_000,
    ).sign(SIGNING["police-1"])


def plain_envelope() -> pb.Envelope:
    """An unsealed envelope whose payload holds the identifier in clear."""
    return Draft(
        sender="police-1",
        recipients=["bank-a"],
        kind="PING",
        payload=json.dumps({"note": IDENTIFIER}).encode(),
        created_at_ms=NOW - 1_000,
    ).sign(SIGNING["police-1"])


ENVELOPES = st.sampled_from([valid_envelope, plain_envelope])


# -- decoders ----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=600))
def test_envelope_and_header_decoders_raise_only_decode_error(data: bytes) -> None:
    for message in (pb.Envelope, pb.Header, pb.ActionTerms):
        try:
            parsed = message.FromString(data)
        except DecodeError:
            continue
        assert message.FromString(parsed.SerializeToString()) == parsed


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["consortium", "serial", "members", "node_id", "key_version"])
                    | st.text(max_size=8),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=20,
        ).map(lambda doc: json.dumps(doc).encode()),
    )
)
def test_directory_decoder_raises_only_directory_error(data: bytes) -> None:
    try:
        directory = Directory.from_bytes(data)
    except DirectoryError:
        return
    assert Directory.from_bytes(directory.to_bytes()) == directory


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b'{"consortium": "x", "serial": 1, "members": [{"node_id": "a", "key_version": 1e999}]}',
        b'{"consortium": "x", "serial": 1, "members": ["a"]}',
        b'{"consortium": "x", "serial": -1, "members": []}',
    ],
    ids=["deep", "infinite-version", "member-not-object", "negative-serial"],
)
def test_directory_decoder_edge_cases(data: bytes) -> None:
    with pytest.raises(DirectoryError):
        Directory.from_bytes(data)


@FUZZ
@given(st.binary(max_size=300), st.text(string.hexdigits, min_size=0, max_size=40))
def test_unseal_raises_only_seal_error(sealed: bytes, message_id: str) -> None:
    with pytest.raises(SealError):
        unseal(sealed, message_id, SEALING["bank-a"])


@FUZZ
@given(st.binary(max_size=200), st.text(string.hexdigits, min_size=1, max_size=40))
def test_sealed_payload_opens_only_for_its_recipient_and_message(
    payload: bytes, other_id: str
) -> None:
    sealed = seal(payload, "a" * 32, bytes(SEALING["bank-a"].public_key))
    assert unseal(sealed, "a" * 32, SEALING["bank-a"]) == payload
    with pytest.raises(SealError, match="does not open"):
        unseal(sealed, "a" * 32, SEALING["bank-b"])
    if other_id != "a" * 32:
        with pytest.raises(SealError, match="another message id"):
            unseal(sealed, other_id, SEALING["bank-a"])


# -- the verifier --------------------------------------------------------------------------


PEERS = st.sampled_from([None, "police-1", "bank-a", "ghost"])


@FUZZ
@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=80), PEERS)
def test_verifier_refuses_arbitrary_bytes_with_a_named_check(
    header: bytes, payload: bytes, signature: bytes, peer: str | None
) -> None:
    envelope = pb.Envelope(header=header, payload=payload, signature=signature)
    check_refusal(VERIFIER.verify(envelope, peer_node_id=peer))


NAMES = st.sampled_from([*ROLES, "ghost", ""]) | st.text(max_size=12)
FIELDS: dict[str, st.SearchStrategy[object]] = {
    "message_id": st.text("0123456789abcdefABCDEF", max_size=34),
    "sender": NAMES,
    "recipients": st.lists(NAMES, max_size=3),
    "kind": st.sampled_from(list(Kind)) | st.text(max_size=12),
    "created_at_ms": st.sampled_from([NOW - 10**7, NOW + 10**9]) | INT64,
    "lifetime": st.sampled_from([1, 0, -5, 8 * 24 * 3600 * 1000]) | INT64,
    "payload_type": st.sampled_from(["", "text/plain"]) | st.text(max_size=10),
    "payload_sha256": st.binary(max_size=40),
    "sealed": st.booleans(),
    "batch_size": INT64,
    "amount_minor": INT64,
    "duration_hours": INT64,
    "outcome": st.text(max_size=10),
}
"""Header fields and what a fuzzed value of each may be; the others stay valid."""


@st.composite
def headers(draw: st.DrawFn) -> tuple[pb.Header, bytes]:
    """A valid header with up to three fields replaced by arbitrary values."""
    payload = draw(st.binary(max_size=64))
    kind, sealed = draw(st.sampled_from([("PING", False), ("FREEZE", True)]))
    values: dict[str, object] = {
        "message_id": "0123456789abcdef" * 2,
        "sender": "police-1",
        "recipients": ["bank-a"],
        "kind": kind,
        "created_at_ms": NOW - 1_000,
        "lifetime": 600_000,
        "payload_type": "application/json",
        "payload_sha256": hashlib.sha256(payload).digest(),
        "sealed": sealed,
        "batch_size": 1,
        "amount_minor": 100,
        "duration_hours": 24,
        "outcome": "",
    }
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=3)):
        values[name] = draw(FIELDS[name])
    created = int(values.pop("created_at_ms"))  # type: ignore[call-overload]
    lifetime = int(values.pop("lifetime"))  # type: ignore[call-overload]
    amount, hours = values.pop("amount_minor"), values.pop("duration_hours")
    header = pb.Header(
        created_at_ms=created,
        expires_at_ms=max(-(2**63), min(2**63 - 1, created + lifetime)),
        **values,  # type: ignore[arg-type]
    )
    header.terms.action = header.kind
    header.terms.amount_minor = amount  # type: ignore[assignment]
    header.terms.duration_hours = hours  # type: ignore[assignment]
    return header, payload


@FUZZ
@given(headers(), PEERS, st.booleans(), st.booleans())
def test_verifier_never_raises_and_verifies_only_what_holds(
    made: tuple[pb.Header, bytes], peer: str | None, own_key: bool, relayed: bool
) -> None:
    header, payload = made
    header_bytes = header.SerializeToString()
    key = SIGNING.get(header.sender) if own_key else None
    signature = (key or Ed25519PrivateKey.generate()).sign(pae(header.payload_type, header_bytes))
    envelope = pb.Envelope(header=header_bytes, payload=payload, signature=signature)
    result = VERIFIER.verify(envelope, peer_node_id=peer, relayed=relayed)
    if isinstance(result, Rejected):
        check_refusal(result)
        return
    # Verified: every property the verifier promises holds, checked independently.
    sender = DIRECTORY.get(header.sender)
    assert sender is not None and sender.active and key is not None
    assert relayed or peer == header.sender
    assert hashlib.sha256(payload).digest() == header.payload_sha256
    assert header.created_at_ms <= header.expires_at_ms and header.expires_at_ms > NOW
    assert all((m := DIRECTORY.get(r)) is not None and m.active for r in header.recipients)
    assert Kind(header.kind) not in SEALED or header.sealed


@FUZZ
@given(
    ENVELOPES,
    st.sampled_from(["header", "payload", "signature"]),
    st.integers(min_value=0, max_value=4095),
    st.integers(min_value=1, max_value=255),
)
def test_any_changed_byte_of_a_signed_envelope_is_refused(
    make: Callable[[], pb.Envelope], part: str, position: int, mask: int
) -> None:
    envelope = make()
    assert VERIFIER.verify(envelope, peer_node_id="police-1")
    data = bytearray(getattr(envelope, part))
    data[position % len(data)] ^= mask
    setattr(envelope, part, bytes(data))
    check_refusal(VERIFIER.verify(envelope, peer_node_id="police-1"))
    check_refusal(VERIFIER.verify(envelope, peer_node_id=None, relayed=True, recipient="bank-a"))


@FUZZ
@given(st.sampled_from(["header", "payload", "signature"]), st.binary(min_size=1, max_size=8))
def test_truncated_or_extended_envelope_is_refused(part: str, extra: bytes) -> None:
    for change in (lambda b: b[: -len(extra)], lambda b: b + extra, lambda b: extra + b):
        envelope = valid_envelope()
        setattr(envelope, part, change(getattr(envelope, part)))
        check_refusal(VERIFIER.verify(envelope, peer_node_id="police-1"))


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete"]),
        st.integers(min_value=0, max_value=4095),  # bounded: drawn across the whole envelope
        st.integers(min_value=1, max_value=255),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(ENVELOPES, EDITS)
def test_an_envelope_mutated_on_the_wire_verifies_only_if_its_signed_parts_are_intact(
    make: Callable[[], pb.Envelope], edits: list[tuple[str, int, int]]
) -> None:
    original = make()
    wire = bytearray(original.SerializeToString())
    for edit, position, value in edits:
        at = position % (len(wire) + 1)
        if edit == "insert":
            wire[at:at] = bytes([value])
        elif at < len(wire):
            if edit == "flip":
                wire[at] ^= value
            else:
                del wire[at]
    try:
        envelope = pb.Envelope.FromString(bytes(wire))
    except DecodeError:
        return  # refused before the verifier (see test_attacks' malformed Submit)
    result = VERIFIER.verify(envelope, peer_node_id="police-1")
    changed = {
        part
        for part in ("header", "payload", "signature")
        if getattr(envelope, part) != getattr(original, part)
    }
    if not changed:  # only unknown fields or nothing: the signed bytes are the same
        assert isinstance(result, Verified), str(result)
        return
    refusal = check_refusal(result)
    if changed == {"payload"}:
        assert refusal.check == "digest", str(refusal)
    elif changed == {"signature"}:
        assert refusal.check == "signature", str(refusal)


# -- the policy engine on extreme header values ------------------------------------------------


@pytest.fixture(scope="module")
def broker_policy() -> PolicyEngine:
    return PolicyEngine.load(REPO_POLICIES / "broker.cedar", REPO_POLICIES / "schema.cedarschema")


MEMBER_ROLES = ("police", "bank", "carrier", "regulator")
ALL_PAIRS = frozenset((a, b) for a in MEMBER_ROLES for b in MEMBER_ROLES)
MEMBERS_TO_POLICE = frozenset({("bank", "police"), ("carrier", "police")})
BANK_CARRIER = frozenset({("bank", "carrier"), ("carrier", "bank")})
POLICE_TO_MEMBERS = frozenset({("police", "bank"), ("police", "carrier")})
PAIRS: dict[str, frozenset[tuple[str, str]]] = {
    "PING": ALL_PAIRS - {(r, "regulator") for r in MEMBER_ROLES},
    "PONG": ALL_PAIRS - {("regulator", r) for r in MEMBER_ROLES},
    "MATCH_QUERY": POLICE_TO_MEMBERS,
    "PSI_REQUEST": POLICE_TO_MEMBERS | BANK_CARRIER,
    "MATCH_RESPONSE": MEMBERS_TO_POLICE,
    "PSI_RESPONSE": MEMBERS_TO_POLICE | BANK_CARRIER,
    "ACTION_RECEIPT": MEMBERS_TO_POLICE,
    "FLAGGED_NUMBERS": frozenset({("carrier", "police")}),
    "SUSPICIOUS_ACCOUNT": frozenset({("bank", "police")}),
    "SUSPICIOUS_NUMBER": frozenset({("carrier", "police")}),
    "STOP_PAYMENT": frozenset({("police", "bank")}),
    "FREEZE": frozenset({("police", "bank")}),
    "EXTEND": frozenset({("police", "bank")}),
    "RELEASE": frozenset({("police", "bank")}),
    "RETURN_FUNDS": frozenset({("police", "bank")}),
    "INQUIRY": POLICE_TO_MEMBERS,
    "SUSPEND_NUMBER": frozenset({("police", "carrier")}),
    "RESTORE_NUMBER": frozenset({("police", "carrier")}),
    "AUDIT_READ": frozenset({("regulator", "broker")}),
    "AUDIT_READ_OWN": frozenset({("police", "broker"), ("bank", "broker"), ("carrier", "broker")}),
    "WITNESS_COSIGN": frozenset((r, "broker") for r in MEMBER_ROLES),
    "WATCHLIST_CHECK": MEMBERS_TO_POLICE,
    "WATCHLIST_ANSWER": POLICE_TO_MEMBERS,
    "FILTER_QUERY": POLICE_TO_MEMBERS,
    "LABEL_REQUEST": POLICE_TO_MEMBERS,
    "FILTER_SYNC": POLICE_TO_MEMBERS,
    "FILTER_ANSWER": MEMBERS_TO_POLICE,
    "LABEL_ANSWER": MEMBERS_TO_POLICE,
    "FILTER_CHUNK": MEMBERS_TO_POLICE,
}
"""Which (sender role, recipient role) pairs may carry each kind, read off the rules."""
HOURS = {
    "STOP_PAYMENT": 48,
    "FREEZE": 4320,
    "EXTEND": 4320,
    "SUSPEND_NUMBER": 720,
    "INQUIRY": 8784,
}
"""Longest duration of the kinds that carry one (the shortest is always 1 hour)."""
QUERIES = {"MATCH_QUERY", "PSI_REQUEST"}
ACTION_REQUESTS = {*HOURS, "RELEASE", "RETURN_FUNDS", "RESTORE_NUMBER"}
FILTER_ANSWERS = {"FILTER_ANSWER", "LABEL_ANSWER", "FILTER_CHUNK"}
ANSWERS = {"MATCH_RESPONSE", "PSI_RESPONSE", "ACTION_RECEIPT", "WATCHLIST_ANSWER", *FILTER_ANSWERS}
ALERTS = {"SUSPICIOUS_ACCOUNT", "SUSPICIOUS_NUMBER"}
SIZE_CLASSES = {64, 128, 256, 512, 1024, 2048, 4096, 8192}
"""The padded batch sizes a filter query may have (README, filter mode)."""
BYTES_QUOTA = 256 * 2**20


def payload_fits(kind: str, payload: int, batch: int) -> bool:
    """The payload size bounds of docs/quotas.md and the broker.cedar comments."""
    if kind in {"PING", "PONG"}:
        return payload <= 256
    if kind == "MATCH_QUERY":
        return payload <= 41 * batch + 1024
    if kind == "PSI_REQUEST":
        return payload <= 32 * batch + 4096
    if kind == "PSI_RESPONSE":
        return payload <= 644_096
    if kind == "MATCH_RESPONSE":
        return 0 <= batch <= 10_000 and payload <= 8192 * batch + 4096
    if kind == "FLAGGED_NUMBERS":
        return 0 <= batch <= 10_000 and payload <= 64 * batch + 4096
    if kind in ACTION_REQUESTS:
        return payload <= 1024
    if kind in ALERTS:
        return payload <= 8192
    if kind == "ACTION_RECEIPT":
        return payload <= 16_384
    if kind == "WATCHLIST_CHECK":
        return 0 <= batch <= 256 and payload <= 41 * batch + 1024
    if kind == "WATCHLIST_ANSWER":
        return 0 <= batch <= 256 and payload <= 8192 * batch + 4096
    if kind == "FILTER_QUERY":
        return payload <= 35 * batch + 1024
    if kind == "FILTER_ANSWER":
        return 0 <= batch <= 8192 and payload <= 35 * batch + 4096
    if kind == "LABEL_REQUEST":
        return payload <= 10 * batch + 1024
    if kind == "LABEL_ANSWER":
        return 0 <= batch <= 8192 and payload <= 8192 * batch + 4096
    if kind == "FILTER_SYNC":
        return payload <= 1024
    if kind == "FILTER_CHUNK":
        return payload <= 3 * 2**20 + 65_536
    return True  # AUDIT_READ carries nothing the broker stores


def oracle(sender: str, recipient: str, kind: str, c: dict[str, str | int | bool]) -> bool:
    """Whether the consortium's rules (docs, broker.cedar comments) let this through."""
    if (sender, recipient) not in PAIRS[kind]:
        return False
    if not payload_fits(kind, int(c["payload_bytes"]), int(c["batch_size"])):
        return False
    if kind not in ANSWERS and int(c["sender_bytes_last_hour"]) > BYTES_QUOTA:
        return False
    if kind in ACTION_REQUESTS and int(c["sender_actions_last_hour"]) > 200:
        return False
    case = c["case_ref"] != "" and c["legal_basis"] != ""
    answer_to_police = kind in {"MATCH_RESPONSE", "PSI_RESPONSE", "ACTION_RECEIPT"}
    rate = int(c["sender_kind_last_hour"])
    if kind in QUERIES:
        return case and 1 <= int(c["batch_size"]) <= 10_000 and rate <= 200
    if kind == "FILTER_QUERY":
        return case and int(c["batch_size"]) in SIZE_CLASSES and rate <= 200
    if kind == "LABEL_REQUEST":
        return case and 0 <= int(c["batch_size"]) <= 8192 and rate <= 200
    if kind == "FILTER_SYNC":
        return rate <= 600
    if kind in FILTER_ANSWERS:
        return c["reply_to"] != ""
    if answer_to_police:
        to_peer = kind == "PSI_RESPONSE" and recipient != "police"
        return c["reply_to"] != "" and (case or not to_peer)
    if kind == "FLAGGED_NUMBERS":
        return c["case_ref"] != ""
    if kind in ALERTS:  # a bank's or carrier's own report: no case, a purpose, 60 an hour
        return c["purpose"] != "" and rate <= 60
    if kind in ACTION_REQUESTS:
        if not case or rate > 100:
            return False
        issuing, approving = c["issuing_officer"], c["approving_officer"]
        if issuing == "" or approving == "" or issuing == approving:
            return False  # four-eyes: drafted by one officer, approved by another
        if kind in HOURS and not 1 <= int(c["duration_hours"]) <= HOURS[kind]:
            return False
        if kind in {"STOP_PAYMENT", "FREEZE"}:
            amount = int(c["amount_minor"])
            return amount > 0 or (amount == 0 and bool(c["whole_balance"]))
        if kind == "RETURN_FUNDS":  # a named amount, never "the whole balance"
            return int(c["amount_minor"]) > 0 and not c["whole_balance"]
        return True
    if kind == "PING":
        return rate <= 36_000
    if kind == "WATCHLIST_CHECK":  # screening: no case; 1..256 identifiers, 360,000 an hour
        return 1 <= int(c["batch_size"]) <= 256 and rate <= 360_000
    if kind == "WATCHLIST_ANSWER":
        return c["reply_to"] != ""
    return True  # PONG and AUDIT_READ have no condition beyond who sends them to whom


def edges(*bounds: int) -> st.SearchStrategy[int]:
    """Values at and around each bound, and anywhere in int64."""
    near = sorted({b + d for b in bounds for d in (-1, 0, 1)})
    return st.sampled_from(near) | INT64


CONTEXTS = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(["", "fraud"]),
        "legal_basis": st.sampled_from(["", "art. 11"]),
        "case_ref": st.sampled_from(["", "C-1"]),
        "batch_size": edges(1, 256, 10_000),
        "amount_minor": edges(0),
        "whole_balance": st.booleans(),
        "duration_hours": edges(1, 48, 720, 4320, 8784),
        "reply_to": st.sampled_from(["", "0123456789abcdef" * 2]),
        "payload_bytes": edges(0, 256, 1024, 16_384, 644_096),
        "sender_kind_last_hour": edges(0, 100, 200, 36_000, 360_000),
        "sender_actions_last_hour": edges(0, 200),
        "sender_bytes_last_hour": edges(0, BYTES_QUOTA),
        "account_stop_payments": st.just(0),
        "issuing_officer": st.sampled_from(["", "wang", "chen"]),
        "approving_officer": st.sampled_from(["", "wang", "chen"]),
    }
)


INT64_EDGES = (-(2**63), -1, 0, 1, 2**63 - 1)
BOUNDARIES: dict[str, tuple[object, ...]] = {
    "purpose": ("",),
    "legal_basis": ("",),
    "case_ref": ("",),
    "reply_to": ("",),
    "batch_size": (
        *INT64_EDGES,
        2,
        255,
        256,
        257,
        9_999,
        10_000,
        10_001,
        63,
        64,
        65,
        8191,
        8192,
        8193,
    ),
    "amount_minor": INT64_EDGES,
    "whole_balance": (True,),
    "duration_hours": (
        *INT64_EDGES,
        *(2, 47, 48, 49, 719, 720, 721, 4319, 4320, 4321, 8783, 8784, 8785),
    ),
    "sender_kind_last_hour": (
        *INT64_EDGES,
        *(59, 60, 61, 99, 100, 101, 199, 200, 201, 599, 600, 601, 35_999, 36_000, 36_001),
        *(359_999, 360_000, 360_001),
    ),
    # the size bounds at batch size 1 (FULL_CONTEXT's): 256, 41 + 1024, 32 + 4096,
    # 8192 + 4096, 64 + 4096, 1024, 16384, 644096, and an alert's 8192; filter mode's
    # 35 + 1024, 35 + 4096, 10 + 1024, 3 MiB + 64 KiB
    "payload_bytes": (
        *INT64_EDGES,
        *(
            b + d
            for b in (256, 1065, 4128, 12_288, 4160, 1024, 16_384, 644_096, 8192)
            for d in (0, 1)
        ),
        *(b + d for b in (1059, 4131, 1034, 3 * 2**20 + 65_536) for d in (0, 1)),
    ),
    "sender_actions_last_hour": (*INT64_EDGES, 199, 200, 201),
    "sender_bytes_last_hour": (*INT64_EDGES, BYTES_QUOTA, BYTES_QUOTA + 1),
    "issuing_officer": ("", "chen"),
    "approving_officer": ("", "wang"),
}
"""Each context field's values at the rules' bounds, to set one at a time."""
FULL_CONTEXT: dict[str, str | int | bool] = {
    "purpose": "fraud",
    "legal_basis": "art. 11",
    "case_ref": "C-1",
    "batch_size": 1,
    "amount_minor": 1,
    "whole_balance": False,
    "duration_hours": 1,
    "reply_to": "0123456789abcdef" * 2,
    "payload_bytes": 0,
    "sender_kind_last_hour": 0,
    "sender_actions_last_hour": 0,
    "sender_bytes_last_hour": 0,
    "account_stop_payments": 0,
    "issuing_officer": "wang",
    "approving_officer": "chen",
}
"""A context every kind's conditions accept."""


def boundary_requests() -> Iterator[tuple[str, str, str, bool, dict[str, str | int | bool]]]:
    """Every kind between every pair of roles (and to itself) with a full context, then
    every kind between each pair its rule names with one field (two for the amount and
    whole-balance pair) moved to each of its bounds."""
    senders, recipients = [*MEMBER_ROLES, "broker", "stranger"], [*MEMBER_ROLES, "broker"]
    for kind in Kind:
        for sender in senders:
            for recipient in recipients:
                for itself in (False, True):
                    yield sender, recipient, kind, itself, FULL_CONTEXT
        for sender, recipient in sorted(PAIRS[kind]):
            for field, values in BOUNDARIES.items():
                for value in values:
                    for whole in (False, True) if field == "amount_minor" else (False,):
                        context = {**FULL_CONTEXT, field: value}
                        if whole:
                            context["whole_balance"] = True
                        yield sender, recipient, kind, False, context


def test_policy_decides_every_boundary_as_the_rules_table_says(
    broker_policy: PolicyEngine,
) -> None:
    requests = list(boundary_requests())
    assert len(requests) > 2_000
    wrong = []
    for sender, recipient, kind, itself, context in requests:
        to = Party("n-1", recipient, "a") if itself else Party("n-2", recipient, "b")
        request = PolicyRequest(Party("n-1", sender, "a"), to, kind, context)
        decision = broker_policy.decide(request)
        if decision.allowed != (not itself and oracle(sender, recipient, kind, context)):
            wrong.append((sender, recipient, kind, itself, context, decision.policy_ids))
        assert decision.allowed or decision.reason
    assert not wrong, wrong[:5]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from([*MEMBER_ROLES, "broker", "stranger"]),
    st.sampled_from([*MEMBER_ROLES, "broker"]),
    st.sampled_from(list(Kind)),
    CONTEXTS,
    st.booleans(),
)
def test_policy_decides_as_the_rules_table_says(
    broker_policy: PolicyEngine,
    sender: str,
    recipient: str,
    kind: Kind,
    context: dict[str, str | int | bool],
    itself: bool,
) -> None:
    to = Party("n-1", recipient, "a") if itself else Party("n-2", recipient, "b")
    decision = broker_policy.decide(
        PolicyRequest(sender=Party("n-1", sender, "a"), recipient=to, kind=kind, context=context)
    )
    expected = not itself and oracle(sender, recipient, kind, context)
    assert decision.allowed == expected, (sender, recipient, kind, context, decision)
    assert decision.allowed or decision.reason


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(headers(), st.sampled_from(list(ROLES)), st.sampled_from(list(ROLES)), INT64)
def test_policy_decides_extreme_headers_as_the_rules_table_says(
    broker_policy: PolicyEngine, made: tuple[pb.Header, bytes], sender: str, to: str, rate: int
) -> None:
    header, _ = made
    if Kind.__members__.get(header.kind) is None:
        return  # the verifier refuses unknown kinds before the policy sees them
    sender_member, recipient = DIRECTORY.get(sender), DIRECTORY.get(to)
    assert sender_member is not None and recipient is not None
    context = policy_context(header, rate)
    decision = broker_policy.decide(
        PolicyRequest(
            sender=party(sender_member),
            recipient=party(recipient),
            kind=header.kind,
            context=context,
        )
    )
    expected = sender != to and oracle(ROLES[sender], ROLES[to], header.kind, context)
    assert decision.allowed == expected, (sender, to, header.kind, context, decision)
    assert decision.allowed or decision.reason
