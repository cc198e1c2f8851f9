"""mTLS for every gRPC connection, and the peer identity it proves.

Servers require a client certificate issued by the consortium CA; the peer's node id is
the SPIFFE URI in that certificate, and the certificate must be the one the directory
lists for that node (so a rotated or revoked certificate stops working even though the
CA once signed it). An interceptor resolves the identity once per call and refuses
calls without one, instead of every handler repeating the check. Health and reflection
answer current members only: a revoked or unlisted certificate learns nothing, not even
that the server is up or which services it offers. The same interceptor refuses a
request larger than its method allows (`gateway.grpc_limits`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.grpc_limits import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from gateway.grpc_limits import (
    client_options,
    maximum_concurrent_rpcs,
    request_limit,
)
from gateway.grpc_limits import server_options as server_options
from gateway.pki.ca import node_id_from_spiffe
from gateway.pki.directory import Directory, DirectoryError
from gateway.telemetry import instrument_channel

PEER_NODE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "peer_node_id", default=None
)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.cert.read_bytes(), self.key.read_bytes(), self.ca.read_bytes()


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    cert, key, ca = tls.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


RECONNECT_BACKOFF_MS = (250, 2_000)
"""First and longest wait between reconnect attempts to a peer that is down. gRPC's
default grows to two minutes, so a node started late stayed unreachable for up to a
minute after it listened; two seconds at most costs a refused connection a second."""


def channel_options(target_node_id: str) -> list[tuple[str, Any]]:
    """Pin the server by DNS SAN = node id, allow our message size, reconnect quickly."""
    first, longest = RECONNECT_BACKOFF_MS
    return [
        ("grpc.ssl_target_name_override", target_node_id),
        *client_options(),
        ("grpc.initial_reconnect_backoff_ms", first),
        ("grpc.min_reconnect_backoff_ms", first),
        ("grpc.max_reconnect_backoff_ms", longest),
    ]


def new_server(workers: int, interceptors: list[Any]) -> grpc.Server:
    """A gRPC server with the limits of `gateway.grpc_limits`."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=interceptors,
        options=server_options(),
        maximum_concurrent_rpcs=maximum_concurrent_rpcs(workers),
    )


def secure_channel(endpoint: str, target_node_id: str, tls: TlsFiles) -> grpc.Channel:
    cert, key, ca = tls.read()
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    channel = grpc.secure_channel(endpoint, creds, options=channel_options(target_node_id))
    return instrument_channel(channel)


@lru_cache(maxsize=1024)
def _cert_identity(pem: bytes, consortium: str) -> tuple[str | None, str]:
    cert = x509.load_pem_x509_certificate(pem)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None, fingerprint
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        node_id = node_id_from_spiffe(uri, consortium)
        if node_id is not None:
            return node_id, fingerprint
    return None, fingerprint


def peer_identity(context: grpc.ServicerContext, directory: Directory) -> tuple[str | None, str]:
    """(node id, reason): the member the peer's certificate names, or None and why not."""
    auth = context.auth_context()
    raw: bytes | list[bytes] = auth.get("x509_pem_cert") or []
    pems = [raw] if isinstance(raw, bytes) else list(raw)
    if not pems:
        return None, "no client certificate"
    node_id, fingerprint = _cert_identity(bytes(pems[0]), directory.consortium)
    if node_id is None:
        return None, "certificate names no node of this consortium"
    member = directory.get(node_id)
    if member is None:
        return None, f"certificate names {node_id!r}, which is not a member"
    if not member.active:
        return None, f"member {node_id!r} is revoked"
    if not member.cert_sha256:  # fail closed: a CA signature alone never suffices
        return None, f"the directory pins no certificate for {node_id!r}"
    if member.cert_sha256 != fingerprint:
        return None, f"certificate is not the one the directory lists for {node_id!r}"
    return node_id, ""


@dataclass(frozen=True)
class _Oversized:
    """Stands for a request too large for its method, in place of parsing it."""

    size: int


def _bounded(parse: Callable[[bytes], Any] | None, limit: int) -> Callable[[bytes], Any]:
    """`parse`, but a request over `limit` bytes is measured, never parsed."""

    def deserialize(data: bytes) -> Any:
        if len(data) > limit:
            return _Oversized(len(data))
        return data if parse is None else parse(data)

    return deserialize


HEALTH_METHODS = "/grpc.health.v1.Health/"
"""Methods of the standard health service."""


class IdentityInterceptor(grpc.ServerInterceptor):  # type: ignore[misc,type-arg]
    """Resolves the mTLS peer to a current member for every call, health and reflection
    included, and refuses calls without one or with a request too large for the method."""

    def __init__(
        self,
        directory: Callable[[], Directory],
        held: Callable[[], Directory | None] | None = None,
    ) -> None:
        """`directory` gives the current directory (fetching it if need be); `held` the one
        already held, without fetching, for health checks that must answer at once."""
        self._directory = directory
        self._held = held

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        directory = self._directory
        if method.startswith(HEALTH_METHODS) and self._held is not None:
            held = self._held

            def directory() -> Directory:
                current = held()
                if current is None:
                    raise DirectoryError("no directory held yet")
                return current

        limit = request_limit(method)

        def admit(context: grpc.ServicerContext) -> str:
            try:
                current = directory()
            except (grpc.RpcError, DirectoryError):
                # A node started while the broker is down holds no directory yet: its
                # health answers any peer the consortium CA vouched for (mTLS), so that
                # it shows as serving; every other call waits for the directory.
                if method.startswith(HEALTH_METHODS):
                    return ""
                context.abort(
                    grpc.StatusCode.UNAVAILABLE,
                    "identity: no signed directory yet to check the caller against",
                )
            node_id, reason = peer_identity(context, current)
            if node_id is None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"identity: {reason}")
            return str(node_id)

        def check_size(request: Any, context: grpc.ServicerContext) -> None:
            if isinstance(request, _Oversized):
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"request of {request.size} bytes; {method} takes at most {limit}",
                )

        deserialize = _bounded(handler.request_deserializer, limit)

        if handler.unary_unary is not None or handler.unary_stream is not None:
            streaming = handler.unary_unary is None
            inner = handler.unary_stream if streaming else handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                token = PEER_NODE_ID.set(admit(context))
                try:
                    check_size(request, context)
                    return inner(request, context)
                finally:
                    PEER_NODE_ID.reset(token)

            make = (
                grpc.unary_stream_rpc_method_handler
                if streaming
                else grpc.unary_unary_rpc_method_handler
            )
            return make(
                unary,
                request_deserializer=deserialize,
                response_serializer=handler.response_serializer,
            )
        streaming_reply = handler.stream_stream is not None
        inner_stream = handler.stream_stream if streaming_reply else handler.stream_unary

        def sized(requests: Any, context: grpc.ServicerContext) -> Any:
            for request in requests:
                check_size(request, context)
                yield request

        def stream(requests: Any, context: grpc.ServicerContext) -> Any:
            token = PEER_NODE_ID.set(admit(context))
            try:
                return inner_stream(sized(requests, context), context)
            finally:
                PEER_NODE_ID.reset(token)

        make_stream = (
            grpc.stream_stream_rpc_method_handler
            if streaming_reply
            else grpc.stream_unary_rpc_method_handler
        )
        return make_stream(
            stream,
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )


def current_peer() -> str | None:
    return PEER_NODE_ID.get()
