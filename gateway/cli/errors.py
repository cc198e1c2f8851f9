"""One place that turns what a command raises into one `error:` line, never a traceback.

Every command of the `gateway` app is wrapped by `guard_commands`, so a command added
later is covered too. Expected failures (a peer down, a policy refusal, a file missing,
a configuration that does not parse, a database that cannot be opened) say what happened
and what to try; anything else is an internal error whose traceback is shown only with
`gateway --verbose ...` (or GATEWAY_VERBOSE=1).
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import typer

from gateway.cli.common import fail

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """`--verbose` given to the app; the broker endpoint of the last configuration loaded."""

    verbose = False
    broker = ""


state = State()

UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def remember_broker(endpoint: str) -> None:
    """Called when a node configuration is loaded: errors then name the broker's address."""
    state.broker = endpoint


def describe_rpc(exc: grpc.RpcError) -> str:
    """A gRPC failure as a user reads it: unreachable, refused by policy, or the status."""
    code = exc.code() if hasattr(exc, "code") else None
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    where = f"the broker at {state.broker}" if state.broker else "the broker"
    if code in UNREACHABLE:
        reason = "unavailable" if code is grpc.StatusCode.UNAVAILABLE else "no answer in time"
        last = _first_line(details).rsplit(": ", 1)[-1]
        return f"{where} is unreachable ({reason}: {last}); is it running?"
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return f"refused by policy: {_first_line(details)}"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return f"{where} did not accept this node's certificate: {_first_line(details)}"
    name = code.name if code is not None else "error"
    return f"{where} answered {name}: {_first_line(details)}"


def _first_line(text: str) -> str:
    return " ".join(text.split()) or "no detail"


def _expected() -> tuple[type[BaseException], ...]:
    """Exception types that mean a user's mistake or a peer's state, not a bug."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.audit.note import NoteError
    from gateway.config import ConfigError
    from gateway.db import DatabaseError
    from gateway.identifiers import InvalidIdentifier, UnknownIdentifierKind
    from gateway.ingest_csv import IngestError
    from gateway.matching.errors import MatchError
    from gateway.migrate import MigrationError
    from gateway.pki.directory import DirectoryError
    from gateway.pki.key_files import KeyFileError
    from gateway.pki.pkcs11_signer import Pkcs11Error
    from gateway.pki.store import PkiError
    from gateway.policy import PolicyLoadError

    return (
        ConfigError,
        DatabaseError,
        DirectoryError,
        IngestError,
        InvalidIdentifier,
        KeyFileError,
        Pkcs11Error,
        MigrationError,
        NoteError,
        PkiError,
        PolicyLoadError,
        SQLAlchemyError,
        UnknownIdentifierKind,
        MatchError,
    )


def explain(exc: BaseException) -> str:
    """The `error:` text for an exception a command did not handle itself."""
    if isinstance(exc, grpc.RpcError):
        return describe_rpc(exc)
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{name}: {exc.strerror or exc}"
    if isinstance(exc, _expected()):
        detail = getattr(exc, "reason", "") or str(exc)
        return " ".join(detail.split()) or type(exc).__name__
    return f"internal error: {type(exc).__name__}; run with --verbose for details"


def verbose() -> bool:
    return state.verbose or os.environ.get("GATEWAY_VERBOSE", "") not in ("", "0")


def guarded(func: F) -> F:
    """`func` with every exception other than a deliberate exit turned into `fail`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("click", "typer")):
                raise  # usage errors: typer prints them with the command's usage
            if verbose():
                traceback.print_exc(file=sys.stderr)
            fail(explain(exc))

    return wrapper  # type: ignore[return-value]


def guard_commands(app: typer.Typer) -> None:
    """Wrap every command of `app` and of its sub-apps, however deep."""
    for command in app.registered_commands:
        if command.callback is not None and not hasattr(command.callback, "__wrapped__"):
            command.callback = guarded(command.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_commands(group.typer_instance)
