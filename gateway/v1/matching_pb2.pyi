from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchItem(_message.Message):
    __slots__ = ("bucket", "blinded")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    bucket: int
    blinded: bytes
    def __init__(self, bucket: _Optional[int] = ..., blinded: _Optional[bytes] = ...) -> None: ...

class MatchQuery(_message.Message):
    __slots__ = ("version", "bucket_bits", "items", "parts")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BITS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    bucket_bits: int
    items: _containers.RepeatedCompositeFieldContainer[MatchItem]
    parts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, version: _Optional[int] = ..., bucket_bits: _Optional[int] = ..., items: _Optional[_Iterable[_Union[MatchItem, _Mapping]]] = ..., parts: _Optional[_Iterable[int]] = ...) -> None: ...

class MatchBucket(_message.Message):
    __slots__ = ("bucket", "tags", "labels")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    bucket: int
    tags: bytes
    labels: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, bucket: _Optional[int] = ..., tags: _Optional[bytes] = ..., labels: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("version", "evaluated", "proofs", "buckets", "public_key")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    PROOFS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    version: int
    evaluated: _containers.RepeatedScalarFieldContainer[bytes]
    proofs: _containers.RepeatedScalarFieldContainer[bytes]
    buckets: _containers.RepeatedCompositeFieldContainer[MatchBucket]
    public_key: bytes
    def __init__(self, version: _Optional[int] = ..., evaluated: _Optional[_Iterable[bytes]] = ..., proofs: _Optional[_Iterable[bytes]] = ..., buckets: _Optional[_Iterable[_Union[MatchBucket, _Mapping]]] = ..., public_key: _Optional[bytes] = ...) -> None: ...
