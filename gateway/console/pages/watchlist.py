"""The police desk's watchlist page: list, add and remove entries.

The same store as `gateway watchlist` (`nodes.watchlist.store`): an added or removed
entry is indexed at once, so the next check of a bank or carrier sees it. Identifiers
are shown on the police's own page only; the staff trail names counts, reasons and
advice levels, never an identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.formatting import KIND_NAMES
from gateway.console.framework import NavItem, Page, page
from gateway.console.i18n import gettext_ as _
from gateway.envelope.build import now_ms
from gateway.identifiers import InvalidIdentifier, UnknownIdentifierKind, normalise
from gateway.watchlist import Advice, EntryError, check_reason
from gateway.watchlist.ingest import parse_expiry
from nodes.matching import oprf_server
from nodes.watchlist.store import (
    WatchlistEntry,
    add_entries,
    count_entries,
    recent_entries,
    reindex,
    remove_entries,
)

POLICE = ("police",)
EDITORS = ("officer", "approver")
READERS = ("officer", "approver", "auditor")
SHOWN = 500
"""Entries listed on the page (the newest, read as one page from the database); the
CLI lists them all."""


@dataclass
class EntryForm:
    kind: str = "id_card"
    value: str = ""
    reason: str = ""
    advice: str = Advice.REFUSE.value
    expires: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_post(cls, form: dict[str, str]) -> EntryForm:
        return cls(
            kind=form.get("kind", "id_card"),
            value=form.get("value", "").strip()[:64],
            reason=form.get("reason", "").strip()[:32],
            advice=form.get("advice", Advice.REFUSE.value),
            expires=form.get("expires", "").strip()[:40],
        )


def _reindex(page: Page) -> None:
    cfg = page.ctx.config
    reindex(
        page.ctx.engine, oprf_server(page.ctx).private_key_bytes(), cfg.match_bucket_bits, workers=1
    )


def _render(page: Page, form: EntryForm, status: int = 200) -> Response:
    entries = recent_entries(page.ctx.engine, SHOWN)
    rows = [
        {
            "kind": e.identifier.kind.value,
            "value": e.identifier.value,
            "reason": e.reason,
            "advice": e.advice.value,
            "expires_ms": e.expires_ms or 0,
            "listed_by": e.listed_by,
            "listed_at_ms": e.listed_at_ms,
        }
        for e in entries
    ]
    return page.render(
        "watchlist/watchlist.html",
        status,
        form=form,
        kinds=KIND_NAMES,
        advice_levels=[a.value for a in Advice],
        entries=rows,
        total=count_entries(page.ctx.engine),
        can_edit=page.user.role in EDITORS,
    )


@page(READERS, POLICE)
def watchlist(page: Page) -> Response:
    return _render(page, EntryForm())


@page(EDITORS, POLICE)
def add(page: Page) -> Response:
    form = EntryForm.from_post(page.form)
    try:
        identifier = normalise(form.kind, form.value, default_region=page.ctx.config.default_region)
        entry = WatchlistEntry(
            identifier,
            check_reason(form.reason),
            Advice.parse(form.advice),
            parse_expiry(form.expires, now_ms()),
            listed_by=page.user.user_id,
        )
    except (InvalidIdentifier, UnknownIdentifierKind, EntryError) as exc:
        form.errors.append(str(exc))
        page.audit("watchlist.add", "refused", str(exc))
        return _render(page, form, 400)
    result = add_entries(page.ctx.engine, [entry])
    _reindex(page)
    page.audit(
        "watchlist.add",
        "ok",
        f"{identifier.kind.value}: reason {entry.reason}, advice {entry.advice.value}, "
        f"{'changed' if result.changed else 'added'}",
    )
    return page.redirect("/police/watchlist", "ok", _("The entry is on the watchlist and indexed."))


@page(EDITORS, POLICE)
def remove(page: Page) -> Response:
    kind, value = page.form.get("kind", ""), page.form.get("value", "")
    try:
        identifier = normalise(kind, value, default_region=page.ctx.config.default_region)
    except (InvalidIdentifier, UnknownIdentifierKind) as exc:
        page.audit("watchlist.remove", "refused", str(exc))
        return page.redirect("/police/watchlist", "error", str(exc))
    removed = remove_entries(page.ctx.engine, [identifier])
    if not removed:
        page.audit("watchlist.remove", "refused", "not listed")
        return page.redirect("/police/watchlist", "error", _("That entry is not on the watchlist."))
    _reindex(page)
    page.audit("watchlist.remove", "ok", f"{identifier.kind.value}: 1 removed")
    return page.redirect("/police/watchlist", "ok", _("The entry was removed from the watchlist."))


ROUTES: list[BaseRoute] = [
    Route("/police/watchlist", watchlist, methods=["GET"]),
    Route("/police/watchlist", add, methods=["POST"]),
    Route("/police/watchlist/remove", remove, methods=["POST"]),
]

NAV = [NavItem("Watchlist", "/police/watchlist", READERS, POLICE)]
