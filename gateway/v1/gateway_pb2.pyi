from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActionTerms(_message.Message):
    __slots__ = ("action", "amount_minor", "whole_balance", "duration_hours", "issuing_officer", "approving_officer", "currency", "target_request_id", "executed_amount_minor", "effective_at_ms", "hold_expires_at_ms")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    WHOLE_BALANCE_FIELD_NUMBER: _ClassVar[int]
    DURATION_HOURS_FIELD_NUMBER: _ClassVar[int]
    ISSUING_OFFICER_FIELD_NUMBER: _ClassVar[int]
    APPROVING_OFFICER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TARGET_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    action: str
    amount_minor: int
    whole_balance: bool
    duration_hours: int
    issuing_officer: str
    approving_officer: str
    currency: str
    target_request_id: str
    executed_amount_minor: int
    effective_at_ms: int
    hold_expires_at_ms: int
    def __init__(self, action: _Optional[str] = ..., amount_minor: _Optional[int] = ..., whole_balance: _Optional[bool] = ..., duration_hours: _Optional[int] = ..., issuing_officer: _Optional[str] = ..., approving_officer: _Optional[str] = ..., currency: _Optional[str] = ..., target_request_id: _Optional[str] = ..., executed_amount_minor: _Optional[int] = ..., effective_at_ms: _Optional[int] = ..., hold_expires_at_ms: _Optional[int] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("message_id", "sender", "recipients", "kind", "case_ref", "purpose", "legal_basis", "created_at_ms", "expires_at_ms", "reply_to", "payload_type", "payload_sha256", "sealed", "batch_size", "terms", "outcome")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CASE_REF_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SHA256_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipients: _containers.RepeatedScalarFieldContainer[str]
    kind: str
    case_ref: str
    purpose: str
    legal_basis: str
    created_at_ms: int
    expires_at_ms: int
    reply_to: str
    payload_type: str
    payload_sha256: bytes
    sealed: bool
    batch_size: int
    terms: ActionTerms
    outcome: str
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipients: _Optional[_Iterable[str]] = ..., kind: _Optional[str] = ..., case_ref: _Optional[str] = ..., purpose: _Optional[str] = ..., legal_basis: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., reply_to: _Optional[str] = ..., payload_type: _Optional[str] = ..., payload_sha256: _Optional[bytes] = ..., sealed: _Optional[bool] = ..., batch_size: _Optional[int] = ..., terms: _Optional[_Union[ActionTerms, _Mapping]] = ..., outcome: _Optional[str] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("header", "payload", "signature")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    payload: bytes
    signature: bytes
    def __init__(self, header: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AuditReceipt(_message.Message):
    __slots__ = ("leaf_index", "tlog_proof", "consistency_from", "consistency")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TLOG_PROOF_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FROM_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tlog_proof: str
    consistency_from: int
    consistency: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., tlog_proof: _Optional[str] = ..., consistency_from: _Optional[int] = ..., consistency: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("message_id", "decision", "policy_ids", "receipt", "responses", "undelivered", "refusals")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    UNDELIVERED_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    decision: str
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    receipt: AuditReceipt
    responses: _containers.RepeatedCompositeFieldContainer[Envelope]
    undelivered: _containers.RepeatedScalarFieldContainer[str]
    refusals: _containers.RepeatedCompositeFieldContainer[Refusal]
    def __init__(self, message_id: _Optional[str] = ..., decision: _Optional[str] = ..., policy_ids: _Optional[_Iterable[str]] = ..., receipt: _Optional[_Union[AuditReceipt, _Mapping]] = ..., responses: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., undelivered: _Optional[_Iterable[str]] = ..., refusals: _Optional[_Iterable[_Union[Refusal, _Mapping]]] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("recipient", "reason")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    reason: str
    def __init__(self, recipient: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("message_id", "state", "responses", "events")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    state: str
    responses: _containers.RepeatedCompositeFieldContainer[Envelope]
    events: _containers.RepeatedCompositeFieldContainer[StatusEvent]
    def __init__(self, message_id: _Optional[str] = ..., state: _Optional[str] = ..., responses: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[StatusEvent, _Mapping]]] = ...) -> None: ...

class StatusEvent(_message.Message):
    __slots__ = ("state", "at_ms", "detail")
    STATE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    state: str
    at_ms: int
    detail: str
    def __init__(self, state: _Optional[str] = ..., at_ms: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class DirectoryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SignedDirectory(_message.Message):
    __slots__ = ("directory", "signature")
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    directory: bytes
    signature: bytes
    def __init__(self, directory: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AuditReadRequest(_message.Message):
    __slots__ = ("start", "limit")
    START_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    start: int
    limit: int
    def __init__(self, start: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("index", "leaf")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    index: int
    leaf: bytes
    def __init__(self, index: _Optional[int] = ..., leaf: _Optional[bytes] = ...) -> None: ...

class AuditReadReply(_message.Message):
    __slots__ = ("entries", "checkpoint")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    checkpoint: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class AuditProvenRequest(_message.Message):
    __slots__ = ("start", "limit", "whole_log", "end", "cosigned")
    START_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WHOLE_LOG_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    COSIGNED_FIELD_NUMBER: _ClassVar[int]
    start: int
    limit: int
    whole_log: bool
    end: int
    cosigned: bool
    def __init__(self, start: _Optional[int] = ..., limit: _Optional[int] = ..., whole_log: _Optional[bool] = ..., end: _Optional[int] = ..., cosigned: _Optional[bool] = ...) -> None: ...

class ProvenEntry(_message.Message):
    __slots__ = ("index", "leaf", "proof")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    index: int
    leaf: bytes
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, index: _Optional[int] = ..., leaf: _Optional[bytes] = ..., proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AuditProvenReply(_message.Message):
    __slots__ = ("entries", "checkpoint", "next_start")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ProvenEntry]
    checkpoint: str
    next_start: int
    def __init__(self, entries: _Optional[_Iterable[_Union[ProvenEntry, _Mapping]]] = ..., checkpoint: _Optional[str] = ..., next_start: _Optional[int] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyReply(_message.Message):
    __slots__ = ("proof", "checkpoint")
    PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: str
    def __init__(self, proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CosignRequest(_message.Message):
    __slots__ = ("checkpoint", "cosignature")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    cosignature: str
    def __init__(self, checkpoint: _Optional[str] = ..., cosignature: _Optional[str] = ...) -> None: ...

class CosignReply(_message.Message):
    __slots__ = ("size",)
    SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    def __init__(self, size: _Optional[int] = ...) -> None: ...

class CheckpointReply(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    def __init__(self, checkpoint: _Optional[str] = ...) -> None: ...

class DeliverReply(_message.Message):
    __slots__ = ("message_id", "accepted", "response", "reason")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    accepted: bool
    response: Envelope
    reason: str
    def __init__(self, message_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., response: _Optional[_Union[Envelope, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
