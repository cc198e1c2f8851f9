"""The demo's watchlist step: a bank refuses to open an account for a listed ID number.

The police list an applicant's resident ID number (reason MULE_RECRUITER, advice
refuse) on their own node; Bank A's onboarding system checks two applicants through
`WatchlistClient`, blinded through the broker: the listed one is refused, the other
gets the account. The police node never learns who was checked nor the result.
"""

from __future__ import annotations

import random

from rich.console import Console
from rich.table import Table

from gateway.db import make_engine
from gateway.identifiers import normalise
from gateway.localnet import Consortium
from gateway.pki.keys import read_hex
from gateway.synthetic import resident_id
from gateway.watchlist import Advice, Listed
from nodes.runtime import open_node
from nodes.watchlist.client import WatchlistClient, WatchlistError
from nodes.watchlist.store import WatchlistEntry, add_entries, reindex

__all__ = ["refuse_listed_applicant"]


def refuse_listed_applicant(consortium: Consortium, console: Console) -> bool:
    """List one applicant's ID, let Bank A check two applicants; True if it went as it should."""
    rng = random.Random("demo-watchlist")
    listed, clean = resident_id(rng), resident_id(rng)
    police = consortium.node_config("police-1")
    engine = make_engine(police.database)
    entry = WatchlistEntry(
        normalise("id_card", listed), "MULE_RECRUITER", Advice.REFUSE, listed_by="demo"
    )
    add_entries(engine, [entry])
    reindex(
        engine, read_hex(consortium.pki.bundle("police-1").oprf_key, 32), police.match_bucket_bits
    )
    console.print("police-1 lists an ID number on its watchlist (MULE_RECRUITER, refuse)")

    bank = open_node(consortium.node_config("bank-a"))
    table = Table(title="Bank A account opening: blinded watchlist checks through the broker")
    for column in ("applicant", "ID number", "watchlist", "decision"):
        table.add_column(column)
    decisions: dict[str, bool] = {}
    try:
        client = WatchlistClient(bank, purpose="account opening")
        for name, number in (("applicant 1", listed), ("applicant 2", clean)):
            try:
                result = client.check("id_card", number)
            except WatchlistError as exc:
                console.print(f"[red]bank-a: watchlist check failed: {exc.reason}[/]")
                return False
            refuse = isinstance(result, Listed) and result.advice is Advice.REFUSE
            decisions[number] = refuse
            table.add_row(
                name,
                number[:6] + "********" + number[-4:],
                str(result),
                "[red]refused: account not opened[/]" if refuse else "[green]account opened[/]",
            )
    finally:
        bank.client.close()
    console.print(table)
    return decisions == {listed: True, clean: False}
