"""The operations endpoint of a broker or node: liveness, readiness and Prometheus metrics.

Orchestrators and load balancers speak HTTP, not mTLS gRPC, so each serving process can
open a small plain-HTTP listener (`ops_listen`, loopback by default, off unless set):

- `/healthz`: 200 while the process runs (liveness: restart it if this fails);
- `/readyz`: 200 when it can do its job (its gRPC server serves and its database
  answers), else 503 with the reason (readiness: send it no traffic meanwhile);
- `/metrics`: the OpenTelemetry metrics in Prometheus' text format (names with units
  and `_total` suffixes), exported by the OpenTelemetry Prometheus reader.

It serves metadata only (counts by kind and decision, latencies, outbox depth), never
an identifier.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

Readiness = Callable[[], str]
"""Returns why the process is not ready, or "" when it is."""


def database_readiness(engine: Engine, timeout_s: float = 2.0) -> Readiness:
    """Ready while the database answers a trivial query (one round trip, no lock)."""

    def check() -> str:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the type says which
            return f"database unreachable ({type(exc).__name__})"
        return ""

    return check


class OpsServer:
    """A plain-HTTP listener in a daemon thread; `close` stops it."""

    def __init__(
        self,
        address: str,
        readiness: Readiness,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        host, _, port = address.rpartition(":")
        handler = _handler(readiness, registry)
        self._server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.host = host or "127.0.0.1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ops-http", daemon=True
        )
        self._thread.start()
        log.info(
            "operations endpoint on http://%s:%d (/healthz /readyz /metrics)", self.host, self.port
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(readiness: Readiness, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._reply(HTTPStatus.OK, b"ok\n")
            elif path == "/readyz":
                problem = readiness()
                if problem:
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {problem}\n".encode())
                else:
                    self._reply(HTTPStatus.OK, b"ready\n")
            elif path == "/metrics":
                self._reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._reply(HTTPStatus.NOT_FOUND, b"not found: try /healthz, /readyz, /metrics\n")

        def _reply(
            self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the message log; keep them at DEBUG."""
            log.debug("ops %s", format % args)

    return Handler
