from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PsiMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PSI_MODE_UNSPECIFIED: _ClassVar[PsiMode]
    PSI_MODE_INTERSECTION: _ClassVar[PsiMode]
    PSI_MODE_CARDINALITY: _ClassVar[PsiMode]
PSI_MODE_UNSPECIFIED: PsiMode
PSI_MODE_INTERSECTION: PsiMode
PSI_MODE_CARDINALITY: PsiMode

class PsiOpen(_message.Message):
    __slots__ = ("identifier_kind", "responder_set", "querier_selection", "mode", "querier_size", "chunk_size")
    class QuerierSelectionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDENTIFIER_KIND_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_SET_FIELD_NUMBER: _ClassVar[int]
    QUERIER_SELECTION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUERIER_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    identifier_kind: str
    responder_set: str
    querier_selection: _containers.ScalarMap[str, str]
    mode: PsiMode
    querier_size: int
    chunk_size: int
    def __init__(self, identifier_kind: _Optional[str] = ..., responder_set: _Optional[str] = ..., querier_selection: _Optional[_Mapping[str, str]] = ..., mode: _Optional[_Union[PsiMode, str]] = ..., querier_size: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class PsiChunkRequest(_message.Message):
    __slots__ = ("version", "session_id", "exchange", "open", "elements")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    session_id: bytes
    exchange: int
    open: PsiOpen
    elements: bytes
    def __init__(self, version: _Optional[int] = ..., session_id: _Optional[bytes] = ..., exchange: _Optional[int] = ..., open: _Optional[_Union[PsiOpen, _Mapping]] = ..., elements: _Optional[bytes] = ...) -> None: ...

class PsiChunkResponse(_message.Message):
    __slots__ = ("version", "session_id", "exchange", "responder_size", "double_masked", "responder_chunk", "responder_elements")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_SIZE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_MASKED_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_CHUNK_FIELD_NUMBER: _ClassVar[int]
    RESPONDER_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    session_id: bytes
    exchange: int
    responder_size: int
    double_masked: bytes
    responder_chunk: int
    responder_elements: bytes
    def __init__(self, version: _Optional[int] = ..., session_id: _Optional[bytes] = ..., exchange: _Optional[int] = ..., responder_size: _Optional[int] = ..., double_masked: _Optional[bytes] = ..., responder_chunk: _Optional[int] = ..., responder_elements: _Optional[bytes] = ...) -> None: ...
