"""`gateway pki`: the consortium administrator's commands."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gateway.cli.common import console, fail
from gateway.pki.directory import DirectoryError
from gateway.pki.store import PkiError, PkiFolder, Rotation

app = typer.Typer(no_args_is_help=True, help="Consortium CA, node keys and the signed directory.")

PKI_DIR = typer.Option(Path("var/pki"), "--dir", help="The consortium's PKI folder.")


def _folder(pki_dir: Path) -> PkiFolder:
    """The PKI folder, its keys encrypted under the passphrase the environment names."""
    from gateway.pki.key_files import KeyFileError, passphrase_from_env

    try:
        return PkiFolder(pki_dir, key_passphrase=passphrase_from_env())
    except KeyFileError as exc:
        fail(str(exc))


def oprf_key_pair() -> tuple[bytes, bytes]:
    """A fresh RFC 9497 key pair for a responder."""
    from gateway.crypto.oprf import generate_key_pair

    return generate_key_pair()


@app.command("init")
def init(
    consortium: str = typer.Option(..., help="Consortium name, the SPIFFE trust domain."),
    pki_dir: Path = PKI_DIR,
    ca_key_uri: str = typer.Option(
        "", help="pkcs11: URI of a P-256 key in an HSM to be the CA's (`pki hsm-keygen`)."
    ),
    directory_key_uri: str = typer.Option(
        "", help="pkcs11: URI of an Ed25519 key in an HSM to sign the directory."
    ),
) -> None:
    """Create the consortium CA, the directory signing key and an empty directory.

    Keys made here are encrypted under the passphrase in GATEWAY_KEY_PASSPHRASE_FILE if
    it is set; a key given by URI stays in its HSM.
    """
    try:
        _folder(pki_dir).init(
            consortium, ca_key_uri=ca_key_uri, directory_key_uri=directory_key_uri
        )
    except PkiError as exc:
        fail(str(exc))
    console.print(f"consortium [bold]{consortium}[/] created in {pki_dir}")


@app.command("issue")
def issue(
    node: str = typer.Option(..., help="Node id, e.g. bank-a."),
    role: str = typer.Option(..., help="broker, police, bank, carrier or regulator."),
    agency: str = typer.Option("", help="Agency name shown to other members."),
    endpoint: str = typer.Option("", help="host:port where the node listens."),
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Also name localhost, 127.0.0.1 and ::1 in the certificate (one-machine "
        "demos and tests only).",
    ),
    pki_dir: Path = PKI_DIR,
    signing_key_uri: str = typer.Option(
        "", help="pkcs11: URI of an Ed25519 key in an HSM to sign with (`pki hsm-keygen`)."
    ),
    jurisdiction: list[str] = typer.Option(
        [],
        "--jurisdiction",
        help="Police only: a GB/T 2260 region code (e.g. 310000) whose alerts it receives; "
        "repeat for each.",
    ),
) -> None:
    """Issue a node's mTLS certificate and keys, and list it in a newly signed directory.

    A member already listed is refused: re-key it with `gateway pki rotate`.
    """
    try:
        bundle = _folder(pki_dir).issue(
            node,
            role,
            agency=agency,
            endpoint=endpoint,
            oprf_key_factory=oprf_key_pair,
            signing_key_uri=signing_key_uri,
            dev=dev,
            jurisdictions=tuple(jurisdiction),
        )
    except (PkiError, DirectoryError) as exc:
        fail(str(exc))
    console.print(f"issued [bold]{node}[/] ({role}); bundle in {bundle.folder}")


@app.command("export")
def export(
    node: str = typer.Option(..., help="Member id, e.g. bank-a."),
    out: Path = typer.Option(..., help="Folder to write its bundle to (created 0700)."),
    pki_dir: Path = PKI_DIR,
) -> None:
    """Write exactly what one member needs to run, and no root key.

    Copy the folder to the member's machine and serve from it as the member's own user
    (`broker serve --bundle DIR`, or `pki_bundle` in the node's TOML). Export the
    broker again after every directory change to publish the new signed directory.
    """
    from gateway.pki.export import export_bundle

    try:
        done = export_bundle(PkiFolder(pki_dir), node, out)
    except (PkiError, DirectoryError, OSError) as exc:
        fail(str(exc))
    console.print(f"exported [bold]{node}[/] to {done.folder}: {', '.join(done.files)}")


@app.command("endpoints")
def endpoints(
    node: str = typer.Option(..., help="Member id, e.g. broker."),
    endpoint: list[str] = typer.Option(
        ..., "--endpoint", help="host:port where it serves; repeat for each broker process."
    ),
    pki_dir: Path = PKI_DIR,
) -> None:
    """List every endpoint of a member in a newly signed directory.

    Several broker processes over one PostgreSQL database share the broker's identity;
    list each one's address here, and nodes spread their calls over all of them.
    """
    try:
        member = _folder(pki_dir).set_endpoints(node, endpoint)
    except (PkiError, DirectoryError) as exc:
        fail(str(exc))
    console.print(f"[bold]{node}[/] serves at {', '.join(member.endpoints)}")


@app.command("jurisdiction")
def jurisdiction(
    node: str = typer.Option(..., help="Police node id, e.g. police-1."),
    region: list[str] = typer.Option(
        ..., "--region", help="GB/T 2260 region code (e.g. 310000 Shanghai); repeat for each."
    ),
    pki_dir: Path = PKI_DIR,
) -> None:
    """Set the regions a police node answers for, in a newly signed directory.

    Bank and carrier alerts naming a region go to the police node whose jurisdiction
    covers it most specifically (county, then prefecture, then province). A region
    already held by another police node is refused.
    """
    try:
        member = _folder(pki_dir).set_jurisdictions(node, region)
    except (PkiError, DirectoryError) as exc:
        fail(str(exc))
    console.print(f"[bold]{node}[/] answers for {', '.join(member.jurisdictions)}")


@app.command("revoke")
def revoke(node: str = typer.Option(...), pki_dir: Path = PKI_DIR) -> None:
    """Revoke a member: its certificate and keys are refused once the directory updates."""
    try:
        _folder(pki_dir).revoke(node)
    except (PkiError, DirectoryError) as exc:
        fail(str(exc))
    console.print(f"revoked [bold]{node}[/]")


@app.command("rotate")
def rotate(
    node: str = typer.Option(..., help="Node id whose keys to replace."),
    signing: bool = typer.Option(False, "--signing", help="New Ed25519 signing key."),
    sealing: bool = typer.Option(False, "--sealing", help="New X25519 sealing key."),
    oprf: bool = typer.Option(
        False, "--oprf", help="New OPRF key (banks, carriers; police for the watchlist)."
    ),
    tls: bool = typer.Option(False, "--tls", help="New mTLS key and certificate."),
    pki_dir: Path = PKI_DIR,
    signing_key_uri: str = typer.Option(
        "", help="New signing key: this pkcs11: URI of an Ed25519 key in an HSM."
    ),
) -> None:
    """Replace a member's keys (all it holds if none is named) and re-sign the directory.

    Prints what each member must do next: the rotated one gets its new bundle and
    restarts (and a responder whose OPRF key changed rebuilds its index).
    """
    try:
        done = _folder(pki_dir).rotate(
            node,
            signing=signing,
            sealing=sealing,
            oprf=oprf,
            tls=tls,
            oprf_key_factory=oprf_key_pair,
            signing_key_uri=signing_key_uri,
        )
    except (PkiError, DirectoryError, OSError, ValueError) as exc:
        fail(str(exc))
    console.print(f"rotated {', '.join(done.rotated)} of [bold]{node}[/] (v{done.key_version})")
    console.print(f"directory serial {done.serial}")
    console.print("next:")
    for who, what in next_steps(done):
        console.print(f"  {who}: {what}", highlight=False)


def next_steps(done: Rotation) -> list[tuple[str, str]]:
    """What each member must do after a rotation (SECURITY.md: what old keys still do)."""
    node = done.node_id
    restart = "`gateway broker serve`" if done.role == "broker" else "`gateway node serve`"
    steps = [(node, f"copy {done.bundle.folder} to it, then restart it ({restart})")]
    if "oprf" in done.rotated:
        steps.append((node, "then rebuild its match index: `gateway node reindex --config FILE`"))
    if done.role != "broker":
        steps.append(("broker", "nothing: it reads the new directory within a second"))
    steps.append(("other nodes", "nothing: they refetch the signed directory within 30 s"))
    if "sealing" in done.rotated:
        steps.append(
            (
                "senders",
                f"requests already sealed to {node}'s old key fail (`failed:{node}` in "
                "their status): issue them again",
            )
        )
    return steps


@app.command("protect-keys")
def protect_keys(
    folder: Path = typer.Option(
        ..., "--dir", help="A PKI folder or a node's bundle whose key files to encrypt."
    ),
) -> None:
    """Encrypt plain signing and CA key files in place (encrypted PKCS#8).

    The passphrase comes from the file named by GATEWAY_KEY_PASSPHRASE_FILE (or from
    GATEWAY_KEY_PASSPHRASE); the broker and nodes read it the same way when they start.
    """
    from gateway.pki.key_files import (
        PASSPHRASE_FILE_ENV,
        KeyFileError,
        passphrase_from_env,
        protect_key_files,
    )

    if not folder.is_dir():
        fail(f"{folder} is not a folder; give a PKI folder or a node's bundle with --dir")
    try:
        passphrase = passphrase_from_env()
        if passphrase is None:
            fail(f"no passphrase: set {PASSPHRASE_FILE_ENV} to a file holding a random one")
        changed = protect_key_files(folder, passphrase)
    except (KeyFileError, OSError) as exc:
        fail(str(exc))
    for path in changed:
        console.print(f"encrypted {path}", highlight=False)
    if not changed:
        console.print(f"no plain key files in {folder}", highlight=False)


@app.command("hsm-keygen")
def hsm_keygen(
    uri: str = typer.Option(
        ..., help="pkcs11:token=...;object=LABEL?module-path=...&pin-source=file:..."
    ),
    key_type: str = typer.Option(
        "ed25519", "--type", help="ed25519 (signing keys) or p256 (the CA)."
    ),
    out: Path = typer.Option(None, help="Key file to write the URI to (e.g. a bundle's sign.key)."),
) -> None:
    """Generate a key pair inside an HSM (not extractable) and print its public key.

    With --out, the key file then names the HSM key, so the node, broker or CA signs
    with it; an existing file is not overwritten.
    """
    from gateway.pki.keys import write_secret
    from gateway.pki.pkcs11_signer import Pkcs11Error, Pkcs11Uri, generate_hsm_key

    if out is not None and out.exists():
        fail(f"{out} exists; move it away first (it may hold the key in use)")
    try:
        public = generate_hsm_key(Pkcs11Uri.parse(uri, where="--uri"), key_type)
    except Pkcs11Error as exc:
        fail(str(exc))
    if out is not None:
        write_secret(out, uri.strip())
    sys.stdout.write(public.hex() + "\n")


@app.command("fingerprint")
def fingerprint(pki_dir: Path = PKI_DIR) -> None:
    """Print the directory key's fingerprint, to hand to auditors on paper.

    An auditor's browser shows the same fingerprint the first time it checks an audit
    entry, and trusts the key only once the auditor confirms they match (SECURITY.md).
    """
    from gateway.pki.directory import key_fingerprint
    from gateway.pki.keys import read_hex

    try:
        raw = read_hex(pki_dir / "directory.pub", 32)
    except (OSError, ValueError) as exc:
        fail(f"cannot read the directory key {pki_dir / 'directory.pub'}: {exc}")
    sys.stdout.write(key_fingerprint(raw) + "\n")


@app.command("show")
def show(pki_dir: Path = PKI_DIR) -> None:
    """Print the signed directory after checking its signature."""
    from rich.table import Table

    try:
        directory = _folder(pki_dir).directory()
    except (PkiError, DirectoryError, OSError) as exc:
        fail(str(exc))
    table = Table(title=f"{directory.consortium} directory, serial {directory.serial}")
    for column in ("node", "role", "agency", "endpoint", "status", "keys", "regions"):
        table.add_column(column)
    for m in directory.members:
        endpoints = " ".join(m.endpoints)
        regions = " ".join(m.jurisdictions)
        table.add_row(
            m.node_id, m.role, m.agency, endpoints, m.status, f"v{m.key_version}", regions
        )
    console.print(table)
