"""`gateway policy`: the consortium administrator signs the policy set the members run."""

from __future__ import annotations

from pathlib import Path

import typer

from gateway.cli.common import console, fail
from gateway.cli.pki_cmd import PKI_DIR
from gateway.pki.directory import DirectoryError
from gateway.pki.store import PkiError, PkiFolder
from gateway.policy.engine import PolicyLoadError
from gateway.resources import POLICIES

app = typer.Typer(no_args_is_help=True, help="Sign the consortium's Cedar policies and schema.")


@app.command("sign")
def sign(
    policies: Path = typer.Option(
        POLICIES,
        "--policies",
        help="Folder of *.cedar policy files and schema.cedarschema (default: the shipped ones).",
    ),
    pki_dir: Path = PKI_DIR,
) -> None:
    """Sign the policies and schema with the directory key and list the bundle's hash in a
    newly signed directory; the bundle is copied into every node's folder.

    The broker and each node load the new bundle when restarted; until then they refuse
    messages, since the directory names a bundle they do not run.
    """
    if not policies.is_dir():
        fail(f"{policies} is not a folder; give --policies the folder of *.cedar files")
    folder = PkiFolder(pki_dir)
    try:
        digest = folder.sign_policies(policies)
        serial = folder.directory().serial
    except (PkiError, DirectoryError, PolicyLoadError, OSError) as exc:
        fail("; ".join(line.strip() for line in str(exc).splitlines()))
    console.print(f"policy bundle [bold]{digest}[/] signed; directory serial {serial}")
    console.print("next: copy policy-bundle.json to every member and restart it")
