from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FilterQuery(_message.Message):
    __slots__ = ("version", "blinded", "parts")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    blinded: _containers.RepeatedScalarFieldContainer[bytes]
    parts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, version: _Optional[int] = ..., blinded: _Optional[_Iterable[bytes]] = ..., parts: _Optional[_Iterable[int]] = ...) -> None: ...

class FilterAnswer(_message.Message):
    __slots__ = ("version", "evaluated", "proofs", "public_key", "query_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    PROOFS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    version: int
    evaluated: _containers.RepeatedScalarFieldContainer[bytes]
    proofs: _containers.RepeatedScalarFieldContainer[bytes]
    public_key: bytes
    query_id: str
    def __init__(self, version: _Optional[int] = ..., evaluated: _Optional[_Iterable[bytes]] = ..., proofs: _Optional[_Iterable[bytes]] = ..., public_key: _Optional[bytes] = ..., query_id: _Optional[str] = ...) -> None: ...

class LabelRequest(_message.Message):
    __slots__ = ("version", "query_id", "tags")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    version: int
    query_id: str
    tags: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, version: _Optional[int] = ..., query_id: _Optional[str] = ..., tags: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LabelEntry(_message.Message):
    __slots__ = ("tag", "labels")
    TAG_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    tag: bytes
    labels: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag: _Optional[bytes] = ..., labels: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LabelAnswer(_message.Message):
    __slots__ = ("version", "entries")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    version: int
    entries: _containers.RepeatedCompositeFieldContainer[LabelEntry]
    def __init__(self, version: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LabelEntry, _Mapping]]] = ...) -> None: ...

class FilterStatement(_message.Message):
    __slots__ = ("version", "responder", "recipient", "from_version", "from_digest", "to_version", "to_digest", "bits", "body_length", "chunk_digests", "created_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_DIGEST_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_DIGEST_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    BODY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    version: int
    responder: str
    recipient: str
    from_version: int
    from_digest: bytes
    to_version: int
    to_digest: bytes
    bits: int
    body_length: int
    chunk_digests: _containers.RepeatedScalarFieldContainer[bytes]
    created_ms: int
    def __init__(self, version: _Optional[int] = ..., responder: _Optional[str] = ..., recipient: _Optional[str] = ..., from_version: _Optional[int] = ..., from_digest: _Optional[bytes] = ..., to_version: _Optional[int] = ..., to_digest: _Optional[bytes] = ..., bits: _Optional[int] = ..., body_length: _Optional[int] = ..., chunk_digests: _Optional[_Iterable[bytes]] = ..., created_ms: _Optional[int] = ...) -> None: ...

class SignedFilterStatement(_message.Message):
    __slots__ = ("statement", "signature")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    statement: bytes
    signature: bytes
    def __init__(self, statement: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class FilterDeltaBody(_message.Message):
    __slots__ = ("added", "removed")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    added: bytes
    removed: bytes
    def __init__(self, added: _Optional[bytes] = ..., removed: _Optional[bytes] = ...) -> None: ...

class FilterChunk(_message.Message):
    __slots__ = ("statement_digest", "index", "data")
    STATEMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    statement_digest: bytes
    index: int
    data: bytes
    def __init__(self, statement_digest: _Optional[bytes] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class FilterSyncRequest(_message.Message):
    __slots__ = ("version", "held_version", "held_digest", "resume_statement", "resume_chunk")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HELD_VERSION_FIELD_NUMBER: _ClassVar[int]
    HELD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RESUME_STATEMENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_CHUNK_FIELD_NUMBER: _ClassVar[int]
    version: int
    held_version: int
    held_digest: bytes
    resume_statement: bytes
    resume_chunk: int
    def __init__(self, version: _Optional[int] = ..., held_version: _Optional[int] = ..., held_digest: _Optional[bytes] = ..., resume_statement: _Optional[bytes] = ..., resume_chunk: _Optional[int] = ...) -> None: ...

class FilterSyncAnswer(_message.Message):
    __slots__ = ("version", "current", "signed", "chunk")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    version: int
    current: bool
    signed: bytes
    chunk: bytes
    def __init__(self, version: _Optional[int] = ..., current: _Optional[bool] = ..., signed: _Optional[bytes] = ..., chunk: _Optional[bytes] = ...) -> None: ...
