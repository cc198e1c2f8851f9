from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class WatchlistCheckRequest(_message.Message):
    __slots__ = ("kind", "value")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    value: str
    def __init__(self, kind: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class WatchlistCheckReply(_message.Message):
    __slots__ = ("listed", "reason", "advice", "expires_at_ms")
    LISTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    listed: bool
    reason: str
    advice: str
    expires_at_ms: int
    def __init__(self, listed: _Optional[bool] = ..., reason: _Optional[str] = ..., advice: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...
