"""The compose-equivalent layout: each service reads its own keys and nothing else.

As docker-compose.yml lays it out: the administrator's PKI folder (CA key, directory key,
every bundle) is root's; each service gets `gateway pki export` of its own bundle in a
folder of its own, owned by an OS user of its own, and runs as that user. The attacker
who holds one service tries the cheapest move first: `cat` every key file it knows the
path of (the PKI folder's root keys and bundles, the other services' exports). Only
its own keys open.

Creating users needs root (CI runs the tests as root); elsewhere this skips.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.custody import MEMBER_KEYS, ROOT_KEYS
from gateway.pki.export import export_bundle
from gateway.pki.store import PkiFolder

SERVICES = {"broker": "broker", "police-1": "police", "bank-a": "bank", "carrier-1": "carrier"}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("setpriv")),
    reason="needs root, useradd and setpriv to give each service an OS user of its own",
)


@dataclass(frozen=True)
class Layout:
    base: Path
    pki: PkiFolder
    exports: dict[str, Path]
    users: dict[str, pwd.struct_passwd]

    def all_key_paths(self) -> list[Path]:
        """Every private key file in the layout, wherever it lives."""
        keys = [self.pki.root / name for name in ROOT_KEYS]
        folders = [self.pki.bundle(n).folder for n in SERVICES] + list(self.exports.values())
        keys += [f / name for f in folders for name in MEMBER_KEYS if (f / name).exists()]
        return keys

    def as_user(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        user = self.users[service]
        switch = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
        return subprocess.run(
            [*switch, "--clear-groups", "--", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.base,
        )


def _add_user(name: str) -> pwd.struct_passwd:
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/bin/false", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


@pytest.fixture
def layout() -> Iterator[Layout]:
    base = Path(tempfile.mkdtemp(prefix="custody-", dir="/tmp"))
    base.chmod(0o755)  # the services' users must reach their own folders below it
    users: dict[str, pwd.struct_passwd] = {}
    try:
        pki = PkiFolder(base / "admin" / "pki")
        pki.init("custody.test")
        for node, role in SERVICES.items():
            pki.issue(node, role, oprf_key_factory=oprf_key_pair)
        exports: dict[str, Path] = {}
        tag = f"{os.getpid() % 100000}"
        for i, node in enumerate(SERVICES):
            users[node] = _add_user(f"gwc{tag}s{i}")
            out = export_bundle(pki, node, base / "srv" / node).folder
            for path in (out, *out.iterdir()):
                os.chown(path, users[node].pw_uid, users[node].pw_gid)
            exports[node] = out
        (base / "srv").chmod(0o755)
        yield Layout(base, pki, exports, users)
    finally:
        for user in users.values():
            subprocess.run(["userdel", user.pw_name], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


READ_EACH = 'for p in "$@"; do cat -- "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0'


def test_each_service_can_read_only_its_own_keys(layout: Layout) -> None:
    keys = layout.all_key_paths()
    # roots; sign, seal and tls each; OPRF for bank, carrier and police (its watchlist)
    assert len(keys) == 2 + 2 * (3 * len(SERVICES) + 3)
    for service in SERVICES:
        done = layout.as_user(service, "/bin/sh", "-c", READ_EACH, "sh", *map(str, keys))
        assert done.returncode == 0, done.stderr
        readable = {Path(line) for line in done.stdout.split()}
        own = {p for p in keys if p.parent == layout.exports[service]}
        assert readable == own, service
        assert own, f"{service} cannot read even its own keys"
    root_view = subprocess.run(
        ["/bin/sh", "-c", READ_EACH, "sh", *map(str, keys)], capture_output=True, text=True
    )
    assert len(root_view.stdout.split()) == len(keys)  # the probe does read what it may


def test_a_service_cannot_list_or_write_another_services_bundle(layout: Layout) -> None:
    other = layout.exports["bank-a"]
    listing = layout.as_user("police-1", "/bin/ls", str(other))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    planting = layout.as_user("police-1", "/bin/sh", "-c", f"echo x > {other}/ca.crt")
    assert planting.returncode != 0
    admin = layout.as_user("broker", "/bin/ls", str(layout.pki.root))
    assert admin.returncode != 0 and "Permission denied" in admin.stderr


def _python_for(layout: Layout, service: str) -> None:
    """Skip unless the service's user can run this interpreter (a venv under a 0700 home
    cannot be): the read checks above hold either way."""
    probe = layout.as_user(service, sys.executable, "-c", "import gateway.pki.custody")
    if probe.returncode != 0:
        pytest.skip(f"user {service} cannot run {sys.executable}: {probe.stderr.strip()[:120]}")


def test_the_broker_serves_as_its_own_user_from_its_export(layout: Layout) -> None:
    _python_for(layout, "broker")
    user = layout.users["broker"]
    var = layout.base / "var-broker"
    var.mkdir()
    os.chown(var, user.pw_uid, user.pw_gid)
    bundle = str(layout.exports["broker"])
    serve = [sys.executable, "-m", "gateway", "broker", "serve", "--bundle", bundle]
    serve += ["--listen", "127.0.0.1:0", "--database", str(var / "broker.db")]
    switch = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    proc = subprocess.Popen(
        ["setpriv", *switch, *serve], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "serving on" in line or len(seen) > 200:
                break
        assert any("broker broker serving on 127.0.0.1:" in line for line in seen), seen
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert (var / "broker.db").stat().st_mode & 0o077 == 0


def test_a_service_that_can_read_the_ca_key_refuses_to_start(layout: Layout) -> None:
    """The administrator's slip: the PKI folder left world-readable."""
    _python_for(layout, "bank-a")
    for folder in (layout.base / "admin", layout.pki.root, layout.pki.root / "nodes"):
        folder.chmod(0o755)
    for name in ROOT_KEYS:
        (layout.pki.root / name).chmod(0o644)
    bundle = layout.pki.bundle("bank-a").folder
    bundle.chmod(0o755)
    for path in bundle.iterdir():
        path.chmod(0o644)
    check = "from gateway.pki.custody import refuse_foreign_keys as r, CustodyError as E\n"
    check += f"try:\n    r(__import__('pathlib').Path({str(bundle)!r}))\n"
    check += "except E as e:\n    print(e)\n    raise SystemExit(3)\n"
    done = layout.as_user("bank-a", sys.executable, "-c", check)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "root key" in done.stdout and "ca.key" in done.stdout
    exported = layout.as_user("bank-a", sys.executable, "-c", check.replace(
        repr(str(bundle)), repr(str(layout.exports["bank-a"]))))  # fmt: skip
    assert exported.returncode == 0, exported.stdout + exported.stderr
