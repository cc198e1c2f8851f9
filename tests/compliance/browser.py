"""Headless Chromium for the compliance tests, and a tiny static server for the JS module.

The verifier must run in a secure context (WebCrypto), which an http://127.0.0.1 page
is. Without /usr/bin/chromium the browser tests are skipped with the reason, except
under CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing and CI=true: the browser tests must run")
    pytest.skip(f"{CHROMIUM} is missing (install chromium to run the browser tests)")


@contextmanager
def launched() -> Iterator[Any]:
    """A headless Chromium browser (Playwright, driving the system's Chromium)."""
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(path), headless=True)
        try:
            yield browser
        finally:
            browser.close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(folder: Path = STATIC) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (an ephemeral port); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
