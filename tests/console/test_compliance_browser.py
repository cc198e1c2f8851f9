"""The compliance view in Chromium: the auditor's own browser checks an entry's proof, and a
compromised node cannot make it show "verified".

The compromised node is the real console on a node context whose broker client and key
bundle lie after the node's own checks: it serves an altered proof, an altered entry, or a
directory re-signed with a key of its own. Every page visited is saved as a screenshot at
1280 and 800 px under test-output/screenshots/.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.cosignature import CosignatureV1Signer, cosign_checkpoint
from gateway.audit.source import ProvenEntry
from gateway.console.server import ConsoleServer
from gateway.localnet import Consortium
from gateway.pki.directory import SignedDirectoryBlob
from nodes.runtime import NodeContext
from nodes.witness import cosign_note
from tests.console.compliance_net import compliance_net, whole_log
from tests.console.conftest import check_accessible, make_staff, shoot
from tests.console.test_browser import log_in, visit
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


class Lying:
    """What a compromised node changes after its own checks: `mode` picks the lie."""

    def __init__(self, client: Any, bundle: Any) -> None:
        self.client, self.bundle, self.mode = client, bundle, "honest"
        self.forged_key = Ed25519PrivateKey.generate()
        self.consortium: str = bundle.consortium()
        self.signing: Ed25519PrivateKey = client.keys.signing


class LyingClient:
    def __init__(self, lie: Lying) -> None:
        self._lie = lie

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lie.client, name)

    def read_audit_proven(self, *args: Any, **kwargs: Any) -> Iterator[ProvenEntry]:
        for entry in self._lie.client.read_audit_proven(*args, **kwargs):
            if self._lie.mode == "proof":
                first = bytes([entry.hashes[0][0] ^ 1]) + entry.hashes[0][1:]
                entry = dataclasses.replace(entry, hashes=(first, *entry.hashes[1:]))
            elif self._lie.mode == "entry":
                entry = dataclasses.replace(entry, leaf=entry.leaf.replace(b'"C-A"', b'"C-X"'))
            elif self._lie.mode == "cosignature":
                entry = dataclasses.replace(
                    entry, checkpoint=entry.checkpoint + self._forged(entry)
                )
            yield entry

    def _forged(self, entry: ProvenEntry) -> str:
        """bank-a's witness line with one bit of its signature flipped."""
        signer = CosignatureV1Signer(f"{self._lie.consortium}/witness/bank-a", self._lie.signing)
        line = cosign_checkpoint(
            entry.checkpoint, signer, [self._lie.client.broker_note_verifier()]
        )
        name, blob = line.removeprefix("— ").rstrip("\n").split(" ")
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1
        return f"— {name} {base64.b64encode(bytes(raw)).decode()}\n"

    def signed_directory(self) -> SignedDirectoryBlob:
        blob: SignedDirectoryBlob = self._lie.client.signed_directory()
        if self._lie.mode != "directory":
            return blob
        return SignedDirectoryBlob(blob.directory, self._lie.forged_key.sign(blob.directory))


class LyingBundle:
    def __init__(self, lie: Lying) -> None:
        self._lie = lie

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lie.bundle, name)

    def directory_pub_raw(self) -> bytes:
        if self._lie.mode == "directory":
            return self._lie.forged_key.public_key().public_bytes_raw()
        raw: bytes = self._lie.bundle.directory_pub_raw()
        return raw


@dataclass
class Net:
    consortium: Consortium
    bank: ConsoleServer
    regulator: ConsoleServer
    compromised: ConsoleServer
    lie: Lying
    ctx: dict[str, NodeContext]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with compliance_net(tmp_path_factory.mktemp("compliance-browser")) as (c, ctx):
        # Two witnesses cosign one checkpoint: reading it appends nothing, but the broker's
        # own work (a delivery, say) may, so read until both saw the same one.
        notes: dict[str, str] = {}

        def same_checkpoint() -> bool:
            notes.update({w: ctx[w].client.latest_checkpoint() for w in ("bank-b", "regulator-1")})
            return len(set(notes.values())) == 1

        wait_for(same_checkpoint, timeout=30)
        for witness, note in notes.items():
            ctx[witness].client.submit_cosignature(note, cosign_note(ctx[witness].client, note))
        real = ctx["bank-a"]
        lie = Lying(real.client, real.bundle)
        lying_ctx = NodeContext(real.config, real.engine, LyingClient(lie))  # type: ignore[arg-type]
        lying_ctx.bundle = LyingBundle(lie)  # type: ignore[assignment]
        servers = [
            ConsoleServer(real, "127.0.0.1:0"),
            ConsoleServer(ctx["regulator-1"], "127.0.0.1:0"),
            ConsoleServer(lying_ctx, "127.0.0.1:0"),
        ]
        try:
            yield Net(c, *servers, lie, ctx)
        finally:
            for server in servers:
                server.stop()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        yield made
    finally:
        made.close()


_made = iter(range(1, 1000))


def logged_in(context: Any, ctx: NodeContext, base: str, language: str = "en") -> Any:
    page = context.new_page()
    log_in(page, base, make_staff(ctx, f"auditor-c{next(_made)}", "auditor", language))
    return page


def fingerprint(raw: bytes) -> str:
    """An independent computation of the fingerprint the auditor compares with paper."""
    digest = hashlib.sha256(raw).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 64, 4))


def verdict(page: Any) -> str:
    page.wait_for_selector("#verdict", timeout=15_000)
    state: str = page.get_attribute("#verdict", "data-state")
    return state


def first_entry(page: Any, base: str, case: str) -> int:
    page.goto(f"{base}/compliance?case={case}")
    return int(page.locator("tbody tr td a").first.inner_text())


def test_the_auditor_s_browser_verifies_an_entry(net: Net, context: Any) -> None:
    page = logged_in(context, net.ctx["bank-a"], net.bank.url)
    page.click("header nav >> text=Audit log")
    assert page.url.endswith("/compliance")
    check_accessible(page)
    shoot(page, "compliance-search")
    index = first_entry(page, net.bank.url, "C-A")

    visit(page, f"{net.bank.url}/compliance/entry/{index}", "compliance-entry-unconfirmed")
    # First visit: every check passes but the key is not confirmed yet, so not "verified".
    assert verdict(page) == "unconfirmed"
    raw = net.ctx["bank-a"].bundle.directory_pub_raw()
    assert page.inner_text("#fingerprint") == fingerprint(raw)
    page.focus("#confirm-key")
    page.keyboard.press("Enter")
    page.wait_for_selector("#verdict[data-state=verified]", timeout=15_000)
    assert page.locator("#checks li[data-ok=true]").count() == 3
    leaf = json.loads(page.inner_text("#verified-entry"))
    assert leaf == dict(whole_log(net.consortium))[index]
    check_accessible(page)
    shoot(page, "compliance-entry-verified")

    page.reload()  # the confirmed key is remembered by this browser
    assert verdict(page) == "verified"


def test_the_entry_page_names_the_cosigners_the_browser_verified(net: Net, context: Any) -> None:
    bank = net.ctx["bank-a"].client
    # A cosignature under a key the directory does not list for bank-a: the broker refuses it.
    note = bank.latest_checkpoint()
    impostor = CosignatureV1Signer.generate(f"{net.consortium.name}/witness/bank-a")
    line = cosign_checkpoint(note, impostor, [bank.broker_note_verifier()])
    with pytest.raises(grpc.RpcError) as info:
        bank.submit_cosignature(note, line)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    page = logged_in(context, net.ctx["bank-a"], net.bank.url)
    index = first_entry(page, net.bank.url, "C-A")
    visit(page, f"{net.bank.url}/compliance/entry/{index}", "compliance-entry-cosigned")
    if verdict(page) == "unconfirmed":
        page.click("#confirm-key")
    page.wait_for_selector("#verdict[data-state=verified]", timeout=15_000)
    shown = page.inner_text("#cosigners")
    assert "bank-b (Bank B, " in shown and "regulator-1 (Regulator, " in shown
    assert "bank-a" not in shown
    served = page.inner_text("#served-cosigners")
    assert "bank-b (Bank B, " in served and "regulator-1 (Regulator, " in served
    check_accessible(page)


def test_the_regulator_s_dashboard_and_search(net: Net, context: Any) -> None:
    page = logged_in(context, net.ctx["regulator-1"], net.regulator.url, language="zh_CN")
    visit(page, f"{net.regulator.url}/compliance", "compliance-search-regulator")
    assert page.locator("tbody tr").count() > 5
    visit(page, f"{net.regulator.url}/compliance/dashboard", "compliance-dashboard")
    assert page.locator("figure.chart svg").count() == 4
    # Keyboard: the export link is reachable and points at the same search.
    page.goto(f"{net.regulator.url}/compliance?case=C-B")
    href = page.get_attribute("#export-link", "href")
    assert href == "/compliance/export.csv?case=C-B"


@pytest.mark.parametrize("mode", ["proof", "entry", "cosignature"])
def test_a_compromised_node_cannot_show_verified(net: Net, context: Any, mode: str) -> None:
    page = logged_in(context, net.ctx["bank-a"], net.compromised.url)
    index = first_entry(page, net.compromised.url, "C-A")
    net.lie.mode = mode
    try:
        page.goto(f"{net.compromised.url}/compliance/entry/{index}")
        assert verdict(page) == "failed"
        assert page.locator("#checks li[data-ok=false]").count() == 1
        assert page.locator("#confirm-key").count() == 0
        assert page.locator("#verified-entry").count() == 0
        shoot(page, f"compliance-entry-tampered-{mode}")
    finally:
        net.lie.mode = "honest"


def test_a_directory_key_swapped_after_confirmation_is_flagged(net: Net, context: Any) -> None:
    page = logged_in(context, net.ctx["bank-a"], net.compromised.url)
    index = first_entry(page, net.compromised.url, "C-A")
    page.goto(f"{net.compromised.url}/compliance/entry/{index}")
    assert verdict(page) == "unconfirmed"
    page.click("#confirm-key")
    page.wait_for_selector("#verdict[data-state=verified]", timeout=15_000)
    net.lie.mode = "directory"
    try:
        page.reload()
        assert verdict(page) == "key-changed"
        forged = net.lie.forged_key.public_key().public_bytes_raw()
        assert page.inner_text("#fingerprint") == fingerprint(forged)
        assert page.locator("#confirm-key").count() == 0
        shoot(page, "compliance-entry-key-changed")
    finally:
        net.lie.mode = "honest"
    # The forged key never reached the confirmed store.
    stored = page.evaluate("Object.values(localStorage)")
    assert all(json.loads(v)["key"] != base64.b64encode(forged).decode() for v in stored)
