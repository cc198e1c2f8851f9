"""One log line per event, as text for a person or as JSON for a log pipeline.

Operators follow messages through the broker by their ids: `event(log, "routed",
message_id=..., kind=...)` writes one line whose fields a pipeline can index without
parsing prose. Fields are metadata only (ids, kinds, node ids, decisions, reasons that
name checks), never an identifier, blinded or not: the callers pass nothing else.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

LogFormat = Literal["text", "json"]
FIELDS = "gateway_fields"
"""The `extra` key under which `event` passes its fields to the formatter."""


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event `name` with its fields, if the level is enabled.

    The record is made here rather than by `logger.log`, which would walk the stack for
    the caller's file and line, which no format here prints (1.5 of 11 us a line).
    """
    if logger.isEnabledFor(level):
        logger.handle(
            logger.makeRecord(logger.name, level, "", 0, name, (), None, None, {FIELDS: fields})
        )


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: event key=value ...`, UTC, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.converter = _utc

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields: dict[str, Any] = getattr(record, FIELDS, {})
        if fields:
            line += " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, event, fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, FIELDS, {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes, not when it was set up
    (a command run inside a test leaves a closed capture stream behind otherwise)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(verbose: bool = False, log_format: LogFormat = "text") -> None:
    """Send the gateway's logs to stderr in `log_format`, at INFO (DEBUG if verbose)."""
    # No format here prints the thread or process: skip looking them up for every record
    # (3 of 20 us a line; the broker writes two or three lines a round trip).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _utc(seconds: float | None) -> time.struct_time:
    return time.gmtime(seconds)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text
