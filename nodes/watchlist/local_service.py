"""The bank's or carrier's local gRPC `Watchlist.Check`, for its own core systems.

It listens on loopback or a Unix socket only (`watchlist_listen`): the callers are the
agency's own systems on the same host, which hold no consortium certificate, and the
answer (listed or not) is theirs alone. Anything else is refused when the node starts.
Every call goes through one `WatchlistClient`, so concurrent calls share batches.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import grpc

from gateway.config import ConfigError
from gateway.identifiers import InvalidIdentifier, UnknownIdentifierKind
from gateway.v1 import watchlist_pb2 as wpb
from gateway.v1 import watchlist_pb2_grpc as wrpc
from gateway.watchlist import Listed
from nodes.watchlist.client import WatchlistClient, WatchlistError, WrongKey

if TYPE_CHECKING:
    from nodes.runtime import NodeContext

__all__ = ["WatchlistServicer", "check_local_address", "serve_watchlist"]

log = logging.getLogger(__name__)


def check_local_address(listen: str) -> str:
    """`listen` if it is a Unix socket or a loopback host:port; ConfigError otherwise."""
    if listen.startswith("unix:"):
        return listen
    host = listen.rsplit(":", 1)[0].strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback or ":" not in listen:
        raise ConfigError(
            f"watchlist_listen must be a loopback address (127.0.0.1:PORT) or unix:PATH, "
            f"not {listen!r}: the local watchlist service has no authentication"
        )
    return listen


class WatchlistServicer(wrpc.WatchlistServicer):
    def __init__(self, client: WatchlistClient) -> None:
        self.client = client

    def Check(
        self, request: wpb.WatchlistCheckRequest, context: grpc.ServicerContext
    ) -> wpb.WatchlistCheckReply:
        try:
            result = self.client.check(request.kind, request.value)
        except (InvalidIdentifier, UnknownIdentifierKind) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except WrongKey as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"wrong key: {exc.reason}")
        except WatchlistError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, exc.reason)
        if isinstance(result, Listed):
            return wpb.WatchlistCheckReply(
                listed=True,
                reason=result.reason,
                advice=result.advice.value,
                expires_at_ms=result.expires_ms or 0,
            )
        return wpb.WatchlistCheckReply(listed=False)


def serve_watchlist(ctx: NodeContext, listen: str) -> grpc.Server:
    """Start the local service on `listen` (checked to be local)."""
    from concurrent.futures import ThreadPoolExecutor

    check_local_address(listen)
    server = grpc.server(ThreadPoolExecutor(max_workers=64, thread_name_prefix="watchlist"))
    wrpc.add_WatchlistServicer_to_server(WatchlistServicer(WatchlistClient(ctx)), server)
    if server.add_insecure_port(listen) == 0:
        raise RuntimeError(f"cannot listen on {listen}")
    server.start()
    log.info("local watchlist service listening on %s", listen)
    return server
