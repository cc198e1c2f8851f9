"""A SoftHSM2 token for the tests, from Debian's `softhsm2` package (`.ci/run` installs it).

SoftHSM reads its configuration once per process, when the PKCS#11 library is first
initialised, so one token directory serves the whole test session; tests tell their
keys apart by label. CI sets GATEWAY_REQUIRE_SOFTHSM=1, so a missing package fails there
instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "gateway-test"
SPARE_TOKEN = "gateway-spare"
"""A second token no test logs in to (PKCS#11 logins are per process, not per session)."""


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    token: str
    pin_file: Path

    def uri(self, label: str, token: str = "") -> str:
        return (
            f"pkcs11:token={token or self.token};object={label}"
            f"?module-path={self.module}&pin-source=file:{self.pin_file}"
        )


def softhsm_token(root: Path) -> Iterator[SoftHsm]:
    if not MODULE.exists() or not _has_util():
        if os.environ.get("GATEWAY_REQUIRE_SOFTHSM"):
            pytest.fail(
                f"SoftHSM2 is required here but {MODULE} is missing: apt-get install softhsm2"
            )
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    tokens = root / "tokens"
    tokens.mkdir(mode=0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin = secrets.token_hex(8)
    pin_file = root / "pin"
    pin_file.write_text(pin + "\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            pin,
            "--so-pin",
            secrets.token_hex(8),
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield SoftHsm(MODULE, TOKEN, pin_file)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def _has_util() -> bool:
    return any((Path(d) / "softhsm2-util").exists() for d in os.environ.get("PATH", "").split(":"))
