"""Serving the console over HTTP in a thread of the node's process (uvicorn)."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from gateway.console.app import create_app
from nodes.runtime import NodeContext

log = logging.getLogger(__name__)


class ConsoleServer:
    """The console on `address` (host:port; port 0 picks a free one); `stop` ends it."""

    def __init__(self, ctx: NodeContext, address: str, **settings: object) -> None:
        host, _, port = address.rpartition(":")
        self.host = host or "127.0.0.1"
        self._socket = socket.create_server((self.host, int(port)))
        self.port: int = self._socket.getsockname()[1]
        self.app = create_app(ctx, **settings)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,  # paths only, but an access log is not a staff trail
            lifespan="off",
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="console", daemon=True
        )
        self._thread.start()
        log.info("console of %s on http://%s:%d", ctx.node_id, self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
