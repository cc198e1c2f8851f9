"""The compliance view: search the audit log, export a search, read one entry with its
proof (checked by the auditor's own browser), the log's verification status, a dashboard.

What the server shows is what it read and checked; the entry page's "verified" is not the
server's word: `static/verify-page.js` checks the proof, the checkpoint's signature and the
signed directory itself, against a directory key the auditor confirmed (SECURITY.md).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.audit.checkpoint import parse_checkpoint
from gateway.audit.note import parse_note
from gateway.cli.errors import describe_rpc
from gateway.console.compliance import charts, dashboard, search
from gateway.console.compliance.charts import MET, MISSED, OPEN
from gateway.console.compliance.reading import (
    Logged,
    cosigners_of,
    read_entry,
    read_log,
    reads_whole_log,
)
from gateway.console.compliance.status import log_status
from gateway.console.formatting import action_name
from gateway.console.framework import NavItem, Page, page
from gateway.console.i18n import gettext_ as _
from gateway.kinds import Kind
from gateway.pki.directory import DirectoryError
from nodes.broker_client import LogIntegrityError

AUDITORS = ("auditor", "admin")
T = TypeVar("T")


class Unreadable(Exception):
    """The log could not be read, or did not check out; the message says which."""


def _read(work: Callable[[], T]) -> T:
    try:
        return work()
    except grpc.RpcError as exc:
        raise Unreadable(describe_rpc(exc)) from exc
    except LogIntegrityError as exc:
        raise Unreadable(_("The broker's log failed a check: %(why)s") % {"why": exc}) from exc
    except DirectoryError as exc:
        raise Unreadable(_("The signed directory failed a check: %(why)s") % {"why": exc}) from exc


def _unreadable(page: Page, template: str, error: Unreadable, **context: Any) -> Response:
    page.audit("compliance.read", "failed", str(error)[:200])
    return page.render(template, 502, read_error=str(error), **context)


def _wants_json(page: Page) -> bool:
    """The page's JSON twin (`.json` added to its path, routed by the console's app): these
    pages give their data in a shape made for scripts rather than their template context."""
    return page.request.url.path.endswith(".json")


def _log(page: Page) -> list[Logged]:
    return _read(lambda: read_log(page.ctx.client, page.console.config.role))


@page(AUDITORS)
def search_page(page: Page) -> Response:
    query = search.Query.from_params(page.request.query_params)
    criteria, errors = query.criteria(page.console.config.time_zone)
    context: dict[str, Any] = {
        "query": query,
        "errors": errors,
        "kinds": [k.value for k in Kind],
        "whole_log": reads_whole_log(page.console.config.role),
        "export_params": query.as_params(),
    }
    as_json = _wants_json(page)
    if errors:
        if as_json:
            return JSONResponse({"errors": errors}, 400)
        return page.render(
            "compliance/search.html", 400, rows=[], verification=None, total=0, **context
        )
    try:
        logged = _log(page)
        verification = _read(lambda: log_status(page.ctx.client, logged, context["whole_log"]))
    except Unreadable as exc:
        if as_json:
            return JSONResponse({"errors": [str(exc)]}, 502)
        return _unreadable(
            page, "compliance/search.html", exc, rows=[], verification=None, total=0, **context
        )
    found = search.matching(logged, criteria)
    page.audit("compliance.search", "ok", f"{len(found)} of {len(logged)} entries")
    if as_json:
        return JSONResponse(
            {
                "total": len(found),
                "entries": search.rows(found),
                "verification": dataclasses.asdict(verification),
            }
        )
    return page.render(
        "compliance/search.html",
        rows=search.rows(found),
        total=len(found),
        verification=verification,
        **context,
    )


@page(AUDITORS)
def export(page: Page) -> Response:
    query = search.Query.from_params(page.request.query_params)
    criteria, errors = query.criteria(page.console.config.time_zone)
    if errors:
        return PlainTextResponse("error: " + " ".join(errors), 400)
    try:
        found = search.matching(_log(page), criteria)
    except Unreadable as exc:
        return PlainTextResponse(f"error: {exc}", 502)
    page.audit("compliance.export", "ok", f"{len(found)} entries")
    return Response(
        search.csv_text(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-entries.csv"'},
    )


def _entry_index(page: Page) -> int | None:
    text = page.request.path_params["index"].removesuffix(".json")
    return int(text) if text.isdigit() and len(text) < 19 else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _browser_strings() -> dict[str, str]:
    """What verify-page.js says, in the user's language (the catalogue is server-side)."""
    return {
        "checking": _("Checking in your browser…"),
        "verified": _("Verified by your browser"),
        "not_verified": _("Not verified"),
        "unconfirmed": _("Checks pass, but the directory key is not confirmed yet"),
        "key_changed": _(
            "The directory key this page offers is not the one you confirmed before. "
            "Do not trust this page; compare the fingerprints with the printed copy."
        ),
        "compare": _(
            "Compare this fingerprint with the consortium's printed directory key fingerprint:"
        ),
        "confirm": _("It matches the printed fingerprint: trust this key"),
        "confirmed_on": _("Directory key confirmed in this browser:"),
        "directory": _("Signed directory"),
        "checkpoint": _("Signed checkpoint"),
        "inclusion": _("Inclusion proof"),
        "cosigned_by": _("Cosigned by"),
        "no_cosigners": _("No witness cosignature on this checkpoint."),
        "entry_text": _("The exact entry your browser checked"),
        "no_webcrypto": _(
            "This browser cannot check Ed25519 signatures; use current Chromium or Firefox."
        ),
    }


@page(AUDITORS)
def entry(page: Page) -> Response:
    index = _entry_index(page)
    if index is None:
        return page.render("error.html", 404, code=404, message=_("No such entry."))
    client = page.ctx.client
    try:
        logged = _read(lambda: read_entry(client, page.console.config.role, index))
        blob = _read(client.signed_directory)
    except Unreadable as exc:
        return _unreadable(page, "compliance/entry.html", exc, index=index, logged=None)
    if logged is None:
        return page.render(
            "error.html",
            404,
            code=404,
            message=_("This node may read no audit entry with that number."),
        )
    checkpoint = parse_checkpoint(parse_note(logged.proven.checkpoint).text)
    proof_data = {
        "index": logged.index,
        "leaf": _b64(logged.proven.leaf),
        "tlogProof": logged.proven.tlog_proof(),
        "directory": _b64(blob.directory),
        "directorySignature": _b64(blob.signature),
        "directoryKey": _b64(page.ctx.bundle.directory_pub_raw()),
        "brokerId": client.broker_id,
        "consortium": page.ctx.bundle.consortium(),
        "text": _browser_strings(),
    }
    page.audit("compliance.entry", "ok", f"entry {index}")
    if _wants_json(page):
        del proof_data["text"]
        return JSONResponse({**proof_data, "entry": logged.entry})
    return page.render(
        "compliance/entry.html",
        index=index,
        logged=logged,
        fields=sorted(logged.entry.items()),
        checkpoint=checkpoint,
        cosigners=cosigners_of(client, logged.proven.checkpoint),
        proof_text=logged.proven.tlog_proof(),
        proof_data=json.dumps(proof_data, ensure_ascii=False),
    )


@page(AUDITORS)
def proof_text(page: Page) -> Response:
    """The entry's C2SP tlog-proof, to check it with another tool than this console."""
    index = _entry_index(page)
    if index is None:
        return PlainTextResponse("error: no such entry", 404)
    try:
        logged = _read(lambda: read_entry(page.ctx.client, page.console.config.role, index))
    except Unreadable as exc:
        return PlainTextResponse(f"error: {exc}", 502)
    if logged is None:
        return PlainTextResponse("error: no such entry", 404)
    return PlainTextResponse(
        logged.proven.tlog_proof(),
        headers={"Content-Disposition": f'attachment; filename="entry-{index}.tlog-proof"'},
    )


@page(AUDITORS)
def dashboard_page(page: Page) -> Response:
    config = page.console.config
    try:
        logged = _log(page)
        directory = _read(page.ctx.client.directory)
    except Unreadable as exc:
        return _unreadable(page, "compliance/dashboard.html", exc, figures=None, charts=[])
    agencies = {m.node_id: m.agency for m in directory.members}
    figures = dashboard.build(logged, agencies, config.time_zone)
    deadline_kinds = [action_name(d.kind) for d in figures.deadlines]
    by_kind = {action_name(kind): counts for kind, counts in figures.by_kind.items()}
    drawn = [
        charts.stacked_columns(
            "by-agency", _("Messages per agency and day"), figures.days, figures.by_agency
        ),
        charts.stacked_columns("by-kind", _("Messages per kind and day"), figures.days, by_kind),
        charts.horizontal_bars("refusals", _("Refusals by policy"), figures.refusals),
        charts.stacked_columns(
            "deadlines",
            _("Action deadlines met and missed"),
            deadline_kinds,
            {
                _("met"): [d.met for d in figures.deadlines],
                _("missed"): [d.missed for d in figures.deadlines],
                _("open"): [d.open for d in figures.deadlines],
            },
            {_("met"): MET, _("missed"): MISSED, _("open"): OPEN},
        ),
    ]
    page.audit("compliance.dashboard", "ok", f"{len(logged)} entries")
    return page.render(
        "compliance/dashboard.html",
        figures=figures,
        charts=drawn,
        whole_log=reads_whole_log(config.role),
    )


ROUTES: list[BaseRoute] = [
    Route("/compliance", search_page, methods=["GET"]),
    Route("/compliance/export.csv", export, methods=["GET"]),
    Route("/compliance/dashboard", dashboard_page, methods=["GET"]),
    Route("/compliance/entry/{index}", entry, methods=["GET"]),
    Route("/compliance/entry/{index}/proof.txt", proof_text, methods=["GET"]),
]
NAV = [
    NavItem("Audit log", "/compliance", AUDITORS),
    NavItem("Compliance dashboard", "/compliance/dashboard", AUDITORS),
]
