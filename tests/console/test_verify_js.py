"""The in-browser verifier (gateway/console/static/verify.js), run in headless Chromium.

Expected values come from published vectors (RFC 9162 proofs from transparency-dev/merkle
in tests/vectors/rfc9162, the reference tree's leaf hashes, the C2SP signed-note spec's
example and Go's sumdb/note tests) and from our Python audit code, which is tested against
the same vectors; broken inputs must each be reported as not verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.cosignature import CosignatureV1Signer, cosign_checkpoint
from gateway.audit.log import AuditLog
from gateway.audit.note import Ed25519Signer
from gateway.audit.tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof
from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.pki.directory import Directory, Member, sign_directory
from gateway.pki.keys import NodeKeys
from tests.audit.test_merkle_vectors import REFERENCE_LEAF_HASHES, REFERENCE_LEAVES
from tests.audit.test_note import ENOCH_VKEY, GO_TEXT, PETER_SIG, PETER_VKEY, SPEC_NOTE, SPEC_VKEY
from tests.console.audit_entries import sample_entries

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9162" / "inclusion"
CONSORTIUM = "js.gateway"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


STATIC = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_server(folder: Path = STATIC) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a secure context for WebCrypto); yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server() as base:
        tab = browser.new_page()
        tab.goto(base + "/")
        tab.evaluate("async (url) => { window.v = await import(url); }", base + "/verify.js")
        yield tab
        tab.close()


def js(page: Any, body: str, arg: Any = None) -> Any:
    """Run `body` (an async function body with `v` the module and `arg` the argument)."""
    return page.evaluate(f"async (arg) => {{ const v = window.v; {body} }}", arg)


# ---------------------------------------------------------------- RFC 9162


def test_leaf_hashes_match_the_reference_tree(page: Any) -> None:
    got = js(
        page,
        "return Promise.all(arg.map(async h => v.toHex(await v.leafHash(v.b64decode(h, 'leaf')))));",
        [b64(leaf) for leaf in REFERENCE_LEAVES],
    )
    assert got == [h.hex() for h in REFERENCE_LEAF_HASHES]


def _inclusion_vectors() -> list[dict[str, Any]]:
    vectors = []
    for path in sorted(VECTORS.rglob("*.json")):
        vector = json.loads(path.read_text(encoding="utf-8"))
        vector["path"] = path.relative_to(VECTORS).as_posix()
        vector["proof"] = vector["proof"] or []
        vectors.append(vector)
    return vectors


def test_every_rfc9162_inclusion_vector(page: Any) -> None:
    vectors = _inclusion_vectors()
    assert len(vectors) > 90  # the whole folder was read
    outcomes = js(
        page,
        """
        const out = {};
        for (const t of arg) {
          const d = (s) => Uint8Array.from(atob(s), c => c.charCodeAt(0));
          try {
            await v.verifyInclusion(d(t.leafHash), t.leafIdx, t.treeSize, t.proof.map(d), d(t.root));
            out[t.path] = "ok";
          } catch (e) {
            out[t.path] = e instanceof v.VerifyError ? "refused" : "crashed: " + e;
          }
        }
        return out;
        """,
        vectors,
    )
    want = {t["path"]: "refused" if t["wantErr"] else "ok" for t in vectors}
    assert outcomes == want
    assert "ok" in outcomes.values() and "refused" in outcomes.values()


# ---------------------------------------------------------------- C2SP signed notes

OPEN_NOTE = """
const out = [];
for (const [note, vkeys] of arg) {
  try {
    const verifiers = await Promise.all(vkeys.map(k => v.verifierFromVkey(k)));
    const opened = await v.openNote(note, verifiers);
    out.push(["ok", opened.text, opened.verified.map(s => s.name)]);
  } catch (e) {
    out.push(["refused", e.message]);
  }
}
return out;
"""


def test_signed_note_spec_and_go_vectors(page: Any) -> None:
    go_note = GO_TEXT + "\n" + PETER_SIG
    tampered = go_note.replace("cryptography", "cryptograph")
    results = js(
        page,
        OPEN_NOTE,
        [
            [SPEC_NOTE, [SPEC_VKEY]],
            [go_note, [PETER_VKEY]],
            [go_note, [PETER_VKEY, ENOCH_VKEY]],
            [go_note, [ENOCH_VKEY]],  # signed by an unknown key only
            [tampered, [PETER_VKEY]],  # text changed after signing
        ],
    )
    assert results[0] == ["ok", "This is an example message.\n", ["example.com/foo"]]
    assert results[1] == ["ok", GO_TEXT, ["PeterNeumann"]]
    assert results[2] == ["ok", GO_TEXT, ["PeterNeumann"]]
    assert results[3][0] == "refused" and "trusted key" in results[3][1]
    assert results[4][0] == "refused" and "invalid signature for key PeterNeumann" in results[4][1]


def test_key_id_of_the_spec_example(page: Any) -> None:
    key_id = js(
        page,
        "const k = v.parseVkey(arg); return (await v.computeKeyId(k.name, k.sigType, k.publicKey)).toString(16);",
        SPEC_VKEY,
    )
    assert key_id == "530d903a"  # the spec's vkey names this key ID


# ---------------------------------------------------------------- our own log, end to end


@dataclass(frozen=True)
class Case:
    """One entry as the page hands it to the verifier (the JS argument, base64 bytes)."""

    index: int
    leaf: bytes
    tlog_proof: str
    directory: bytes
    signature: bytes
    directory_key: bytes
    broker_id: str = "broker"

    def arg(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leaf": b64(self.leaf),
            "tlogProof": self.tlog_proof,
            "directory": b64(self.directory),
            "directorySignature": b64(self.signature),
            "directoryKey": b64(self.directory_key),
            "brokerId": self.broker_id,
        }


VERIFY = """
const d = (s) => v.b64decode(s, 'input');
const out = [];
for (const c of arg) {
  out.push(await v.verifyEntry({...c, leaf: d(c.leaf), directory: d(c.directory),
    directorySignature: d(c.directorySignature), directoryKey: d(c.directoryKey)}));
}
return out;
"""


def verify(page: Any, cases: list[Case]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = js(page, VERIFY, [c.arg() for c in cases])
    return result


def _member(node_id: str, role: str, keys: NodeKeys) -> Member:
    return Member(node_id, role, role, "127.0.0.1:1", keys.sign_public, keys.seal_public)


@dataclass
class Log:
    """A real audit log on SQLite, its broker in a directory signed by a directory key."""

    audit: AuditLog
    leaves: list[bytes]
    directory: Directory
    directory_key: Any
    bank_keys: NodeKeys

    def case(self, index: int, proof: str | None = None) -> Case:
        blob = sign_directory(self.directory, self.directory_key)
        return Case(
            index,
            self.leaves[index],
            proof if proof is not None else self.audit.receipt(index),
            blob.directory,
            blob.signature,
            self.directory_key.public_key().public_bytes_raw(),
        )


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.audit.log import canonical_json

    engine = make_engine(str(tmp_path_factory.mktemp("jslog") / "broker.db"))
    upgrade(engine, "broker")
    broker_keys, bank_keys = NodeKeys.generate(), NodeKeys.generate()
    origin = f"{CONSORTIUM}/gateway-audit"
    audit = AuditLog(engine, Ed25519Signer(origin, broker_keys.signing), origin)
    entries = sample_entries()
    for entry in entries:
        audit.run(lambda _s, append, e=entry: append(e))
    members = (_member("bank-a", "bank", bank_keys), _member("broker", "broker", broker_keys))
    directory = Directory(CONSORTIUM, 3, members)
    yield Log(
        audit,
        [canonical_json(e) for e in entries],
        directory,
        Ed25519PrivateKey.generate(),
        bank_keys,
    )
    audit.close()
    engine.dispose()


def test_every_entry_of_our_log_verifies(page: Any, log: Log) -> None:
    results = verify(page, [log.case(i) for i in range(len(log.leaves))])
    for i, result in enumerate(results):
        assert result["ok"], (i, result["error"])
        assert [c["what"] for c in result["checks"]] == ["directory", "checkpoint", "inclusion"]
        assert result["size"] == str(len(log.leaves))
    # The JS leaf hash is the one the Python tree holds.
    assert results[2]["leafHash"] == log.audit._tree.leaf(2).hex()


def test_a_witness_cosignature_is_verified_and_named(page: Any, log: Log) -> None:
    proof = parse_tlog_proof(log.audit.receipt(1))
    witness = CosignatureV1Signer(f"{CONSORTIUM}/witness/bank-a", log.bank_keys.signing)
    log_key = Ed25519Signer(f"{CONSORTIUM}/gateway-audit", log.audit._signer._key).verifier()  # type: ignore[attr-defined]
    line = cosign_checkpoint(proof.checkpoint, witness, [log_key], timestamp=1_750_000_000)
    cosigned = replace_checkpoint(proof, proof.checkpoint.decode() + line)
    [result] = verify(page, [log.case(1, cosigned)])
    assert result["ok"], result["error"]
    assert result["cosigners"] == [{"nodeId": "bank-a", "agency": "bank", "time": 1_750_000_000}]


def replace_checkpoint(proof: TlogProof, note: str) -> str:
    return format_tlog_proof(TlogProof(proof.index, proof.hashes, note.encode(), proof.extra))


def _flip_hash(case: Case) -> Case:
    proof = parse_tlog_proof(case.tlog_proof)
    first = bytes([proof.hashes[0][0] ^ 1]) + proof.hashes[0][1:]
    hashes = (first, *proof.hashes[1:])
    return replace(
        case, tlog_proof=format_tlog_proof(TlogProof(proof.index, hashes, proof.checkpoint))
    )


def _wrong_index(case: Case) -> Case:
    proof = parse_tlog_proof(case.tlog_proof)
    return replace(
        case,
        tlog_proof=format_tlog_proof(TlogProof(proof.index + 1, proof.hashes, proof.checkpoint)),
    )


def _claim_other_entry(case: Case) -> Case:
    return replace(case, index=case.index + 1)


def _edit_checkpoint_text(case: Case) -> Case:
    proof = parse_tlog_proof(case.tlog_proof)
    note = proof.checkpoint.decode()
    origin, size, rest = note.split("\n", 2)
    edited = f"{origin}\n{int(size) + 1}\n{rest}"
    return replace(case, tlog_proof=replace_checkpoint(proof, edited))


def _changed_leaf(case: Case) -> Case:
    changed = case.leaf.replace(b'"case_ref":"CASE-', b'"case_ref":"CASF-')
    assert changed != case.leaf
    return replace(case, leaf=changed)


def _other_directory_key(case: Case) -> Case:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return replace(case, directory_key=Ed25519PrivateKey.generate().public_key().public_bytes_raw())


def _directory_edited(case: Case) -> Case:
    return replace(case, directory=case.directory.replace(b'"serial":3', b'"serial":4'))


def _signed_by_another_log_key(case: Case) -> Case:
    from gateway.audit.note import sign_note

    proof = parse_tlog_proof(case.tlog_proof)
    text = proof.checkpoint.decode().split("\n\n")[0] + "\n"
    forged = sign_note(text, [Ed25519Signer.generate(f"{CONSORTIUM}/gateway-audit")]).decode()
    return replace(case, tlog_proof=replace_checkpoint(proof, forged))


def _truncated_proof(case: Case) -> Case:
    proof = parse_tlog_proof(case.tlog_proof)
    return replace(
        case,
        tlog_proof=format_tlog_proof(TlogProof(proof.index, proof.hashes[:-1], proof.checkpoint)),
    )


def _other_broker(case: Case) -> Case:
    return replace(case, broker_id="bank-a")


TAMPERED: dict[str, tuple[Callable[[Case], Case], str]] = {
    "flipped proof hash": (_flip_hash, "inclusion"),
    "proof for another index": (_wrong_index, "inclusion"),
    "page claims another entry": (_claim_other_entry, "inclusion"),
    "checkpoint text edited": (_edit_checkpoint_text, "checkpoint"),
    "entry text changed": (_changed_leaf, "inclusion"),
    "untrusted directory key": (_other_directory_key, "directory"),
    "directory edited after signing": (_directory_edited, "directory"),
    "checkpoint signed by another key": (_signed_by_another_log_key, "checkpoint"),
    "proof missing a hash": (_truncated_proof, "inclusion"),
    "a member posing as the broker": (_other_broker, "directory"),
}


def test_tampered_inputs_are_not_verified(page: Any, log: Log) -> None:
    good = log.case(2)
    names = list(TAMPERED)
    results = verify(page, [TAMPERED[n][0](good) for n in names])
    for name, result in zip(names, results, strict=True):
        assert result["ok"] is False, name
        failed = [c["what"] for c in result["checks"] if not c["ok"]]
        assert failed == [TAMPERED[name][1]], (name, result["checks"])
        assert result["error"], name


def test_garbage_is_refused_not_crashed(page: Any, log: Log) -> None:
    good = log.case(0)
    bad = [
        replace(good, tlog_proof=""),
        replace(good, tlog_proof="c2sp.org/tlog-proof@v1\nindex 00\n\nx\n"),
        replace(good, directory=b"not json"),
        replace(good, signature=b""),
    ]
    results = verify(page, bad)
    assert [r["ok"] for r in results] == [False] * len(bad)
    assert all(r["error"] and "TypeError" not in r["error"] for r in results), results


def test_the_browser_shows_the_fingerprint_printed_for_auditors(page: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app
    from gateway.pki.store import PkiFolder

    PkiFolder(tmp_path / "pki").init("fp.gateway")
    printed = CliRunner().invoke(app, ["pki", "fingerprint", "--dir", str(tmp_path / "pki")])
    assert printed.exit_code == 0, printed.output
    raw = bytes.fromhex((tmp_path / "pki" / "directory.pub").read_text().strip())
    digest = hashlib.sha256(raw).hexdigest()
    assert printed.output.strip() == " ".join(digest[i : i + 4] for i in range(0, 64, 4))
    shown = js(page, "return v.keyFingerprint(v.b64decode(arg, 'key'));", b64(raw))
    assert shown == printed.output.strip()


def test_fingerprint_of_a_missing_pki_folder_is_one_error_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app

    result = CliRunner().invoke(app, ["pki", "fingerprint", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot read the directory key")
    assert "Traceback" not in result.output
