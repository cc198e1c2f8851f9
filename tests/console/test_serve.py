"""`gateway node serve` serves the console from the node's TOML, and stops it cleanly."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, NodeConfig, load_config
from gateway.localnet import Consortium, processes

pytestmark = pytest.mark.slow


def opened(url: str, timeout_s: float = 20.0) -> Any:
    """The console starts right after the gRPC server reports serving: poll for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return urllib.request.urlopen(url, timeout=5)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_node_serve_starts_the_console_of_its_toml_and_stops_it_on_sigterm(
    tmp_path: Path,
) -> None:
    net = Consortium.create(tmp_path, (("police-1", "police", "City Police"),), consoles=True)
    url = f"http://127.0.0.1:{net.console_ports['police-1']}/login"
    with processes(net) as procs:
        procs.start_broker()
        procs.start_node("police-1")
        with opened(url) as response:
            assert response.status == 200
            page = response.read().decode()
            assert "<h1>登录</h1>" in page  # Chinese unless the user chose otherwise
            cookie = response.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert "script-src 'self'" in response.headers["content-security-policy"]
        procs.procs["police-1"].send_signal(signal.SIGTERM)
        assert procs.wait_exit("police-1", timeout_s=20) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_secure_cookies_and_the_time_zone_come_from_the_toml_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = Consortium.create(tmp_path, (("bank-a", "bank", "Bank A"),))
    cfg = net.node_config("bank-a")
    assert (cfg.console_listen, cfg.console_secure_cookies, cfg.time_zone) == (
        "",
        False,
        "Asia/Shanghai",
    )
    monkeypatch.setenv("GATEWAY_CONSOLE_SECURE_COOKIES", "true")
    assert load_config(NodeConfig, net.config_path("bank-a")).console_secure_cookies is True
    monkeypatch.setenv("GATEWAY_CONSOLE_SECURE_COOKIES", "yes please")
    with pytest.raises(ConfigError, match="console_secure_cookies has a bad value"):
        load_config(NodeConfig, net.config_path("bank-a"))
