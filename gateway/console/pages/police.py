"""The police desk: cases, match queries, drafts and approvals, actions and receipts.

A query runs the same code path as `gateway query` in its default filter mode
(`nodes.filter_police.sync_and_query`: each responder's filter synced, then a padded
blinded query and a label round for the matched tags only);
an action is drafted by one officer and sent only when a different approver approves it
(`nodes.staff.drafts`). Identifiers the officer typed are shown back on the officer's
own page only; the staff trail names cases and counts, never an identifier.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.formatting import KIND_NAMES, parse_yuan
from gateway.console.framework import NavItem, Page, page
from gateway.console.fundform import FUND_FIELDS, fund_spec
from gateway.console.fundview import answer_of, due_state, warning_text
from gateway.console.i18n import gettext_ as _
from gateway.envelope.build import now_ms
from gateway.identifiers import Identifier, IdentifierKind, InvalidIdentifier, normalise
from gateway.ingest_csv import IngestError, read_identifiers
from gateway.matching.errors import MatchError
from nodes.actions.police import ActionRequestRow, ActionSpec
from nodes.filter_police import sync_and_query
from nodes.matching import RESPONDER_ROLES, ResponderOutcome, absent_positions, responders_of
from nodes.staff.drafts import (
    APPROVERS,
    DraftRefused,
    approve_draft,
    create_draft,
    list_drafts,
    reject_draft,
)

POLICE = ("police",)
INQUIRY_WINDOW = timedelta(days=30)
"""An inquiry's window as the form first offers it: the last 30 days."""
OFFICERS = ("officer", "approver")
READERS = ("officer", "approver", "auditor")
MAX_PASTED_CHARS = 200_000


@dataclass
class QueryForm:
    """The query form's fields as posted, and what was wrong with them."""

    case_ref: str = ""
    legal_basis: str = ""
    kind: str = "phone"
    target: str = "all"
    pasted: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_post(cls, form: dict[str, str]) -> QueryForm:
        return cls(
            case_ref=form.get("case_ref", "").strip()[:128],
            legal_basis=form.get("legal_basis", "").strip()[:256],
            kind=form.get("kind", "phone"),
            target=form.get("target", "all"),
            pasted=form.get("identifiers", "")[:MAX_PASTED_CHARS],
        )


def parse_identifiers(
    query: QueryForm, upload: bytes | None, region: str
) -> tuple[list[Identifier], list[str]]:
    """The pasted and uploaded identifiers, normalised; the values as the officer wrote
    them (for display on their own page); `query.errors` names each bad line."""
    try:
        kind = IdentifierKind.parse(query.kind)
    except ValueError as exc:
        query.errors.append(str(exc))
        return [], []
    identifiers: list[Identifier] = []
    shown: list[str] = []
    for line, raw in enumerate(query.pasted.splitlines(), start=1):
        value = raw.strip()
        if not value:
            continue
        try:
            identifiers.append(normalise(kind, value, default_region=region))
            shown.append(value)
        except InvalidIdentifier as exc:
            query.errors.append(
                _("Pasted line %(line)d: %(reason)s") % {"line": line, "reason": exc}
            )
    if upload:
        try:
            text = upload.decode("utf-8-sig")
        except UnicodeDecodeError:
            query.errors.append(_("The uploaded file is not UTF-8 text; export it as CSV UTF-8."))
            return identifiers, shown
        try:
            loaded = read_identifiers(io.StringIO(text, newline=""), kind, default_region=region)
        except IngestError as exc:
            query.errors.append(_("Uploaded file: %(reason)s") % {"reason": exc})
            return identifiers, shown
        for row in loaded.rejected:
            query.errors.append(
                _("Uploaded file line %(line)d: %(reason)s")
                % {"line": row.line, "reason": row.reason}
            )
        identifiers.extend(loaded.identifiers)
        shown.extend(i.value for i in loaded.identifiers)
    if not query.case_ref:
        query.errors.append(_("Give the case reference."))
    if not query.legal_basis:
        query.errors.append(_("Give the legal basis of the query."))
    if not identifiers and not query.errors:
        query.errors.append(_("Paste at least one identifier or upload a file."))
    return identifiers, shown


@dataclass
class ResultRow:
    position: int
    identifier: str
    handle: str = ""
    label: str = ""


@dataclass
class ResponderResult:
    node_id: str
    role: str
    error: str
    rows: list[ResultRow]


def result_tables(
    outcomes: list[ResponderOutcome], shown: list[str], roles: dict[str, str]
) -> tuple[list[ResponderResult], list[str]]:
    """Per responder: its matches (or why it gave no answer); and the absent values, none
    when no responder answered (`absent_positions`)."""
    tables = []
    for outcome in outcomes:
        rows = []
        for match in outcome.matches:
            fields = dict(match.fields)
            handle = fields.pop("handle", "")
            label = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))
            rows.append(ResultRow(match.position, shown[match.position], handle, label))
        tables.append(
            ResponderResult(outcome.node_id, roles.get(outcome.node_id, ""), outcome.error, rows)
        )
    return tables, [shown[position] for position in absent_positions(outcomes, len(shown))]


def _targets(page: Page) -> list[tuple[str, str]]:
    """(value, label) choices: every bank, every carrier, all, or one responder."""
    directory = page.ctx.client.directory()
    choices = [("all", _("All banks and carriers"))]
    for role in RESPONDER_ROLES:
        choices.append((f"role:{role}", _("Every %(role)s") % {"role": _(role)}))
        for node_id in responders_of(directory, role):
            member = directory.get(node_id)
            agency = member.agency if member is not None else ""
            choices.append((f"node:{node_id}", f"{node_id} · {agency}"))
    return choices


def _recipients(page: Page, target: str) -> list[str]:
    directory = page.ctx.client.directory()
    if target == "all":
        return [n for role in RESPONDER_ROLES for n in responders_of(directory, role)]
    if target.startswith("role:"):
        return responders_of(directory, target.removeprefix("role:"))
    if target.startswith("node:"):
        return [target.removeprefix("node:")]
    raise MatchError(_("Choose whom to ask."))


@page(OFFICERS, POLICE)
def query_form(page: Page) -> Response:
    return page.render(
        "police/query.html", form=QueryForm(), kinds=KIND_NAMES, targets=_targets(page)
    )


@page(OFFICERS, POLICE)
def run_query(page: Page) -> Response:
    form = QueryForm.from_post(page.form)
    identifiers, shown = parse_identifiers(
        form, page.files.get("file"), page.ctx.config.default_region
    )
    context: dict[str, Any] = {"form": form, "kinds": KIND_NAMES, "targets": _targets(page)}
    if form.errors:
        page.audit("query", "refused", f"case {form.case_ref}: {len(form.errors)} input errors")
        return page.render("police/query.html", 400, **context)
    try:
        recipients = _recipients(page, form.target)
        outcomes = sync_and_query(
            page.ctx,
            identifiers,
            recipients,
            case_ref=form.case_ref,
            legal_basis=form.legal_basis,
        )
    except MatchError as exc:
        form.errors.append(exc.reason)
        page.audit("query", "refused", f"case {form.case_ref}: {exc.reason}")
        return page.render("police/query.html", 400, **context)
    directory = page.ctx.client.directory()
    roles = {m.node_id: m.role for m in directory.members}
    tables, absent = result_tables(outcomes, shown, roles)
    matched = sum(len(t.rows) for t in tables)
    page.audit(
        "query",
        "ok",
        f"case {form.case_ref}: {len(identifiers)} identifiers, {len(recipients)} responders, "
        f"{matched} matches",
    )
    return page.render(
        "police/query.html",
        **context,
        results=tables,
        absent=absent,
        asked=len(identifiers),
        kind=IdentifierKind.parse(form.kind).value,
    )


def action_rows(page: Page, case_ref: str = "") -> list[ActionRequestRow]:
    with Session(page.ctx.engine) as session:
        query = select(ActionRequestRow).order_by(ActionRequestRow.requested_at_ms.desc())
        if case_ref:
            query = query.where(ActionRequestRow.case_ref == case_ref)
        return list(session.scalars(query).all())


def warnings(page: Page, rows: list[ActionRequestRow], now: int) -> dict[str, str]:
    """Request id -> what the desk must act on (expiry, overdue return), for rows that warn."""
    found = {r.request_id: warning_text(r, page.ctx.config, now) for r in rows}
    return {request_id: text for request_id, text in found.items() if text}


@page(READERS, POLICE)
def actions(page: Page) -> Response:
    rows = action_rows(page, page.request.query_params.get("case", ""))
    now = now_ms()
    return page.render(
        "police/actions.html", rows=rows, now_ms=now, warnings=warnings(page, rows, now)
    )


@page(READERS, POLICE)
def action_detail(page: Page) -> Response:
    request_id = page.request.path_params["request_id"]
    with Session(page.ctx.engine) as session:
        row = session.get(ActionRequestRow, request_id)
        follow_ups = list(
            session.scalars(
                select(ActionRequestRow).where(ActionRequestRow.target_request_id == request_id)
            ).all()
        )
    if row is None:
        return page.render("error.html", 404, code=404, message=_("No such action request."))
    basis = next(
        (
            str(d.spec.get("legal_basis", ""))
            for d in list_drafts(page.ctx.engine)
            if d.request_id == request_id
        ),
        "",
    )
    now = now_ms()
    return page.render(
        "police/action.html",
        row=row,
        follow_ups=follow_ups,
        now_ms=now,
        next_actions=FOLLOW_UPS.get(row.action, ())
        if row.state in ("executed", "extended", "partial")
        else (),
        legal_basis=basis,
        can_draft=page.user.role in OFFICERS,
        warning=warning_text(row, page.ctx.config, now),
        warnings=warnings(page, follow_ups, now),
        due_state=due_state(row, now),
        answer=answer_of(page.ctx, row),
        banks=_banks(page),
    )


def _banks(page: Page) -> list[tuple[str, str]]:
    """(node id, agency) of every active bank: where a victim's account may be."""
    return [
        (m.node_id, m.agency)
        for m in page.ctx.client.directory().members
        if m.role == "bank" and m.active
    ]


# -- drafts and four-eyes approval ---------------------------------------------------

ACTION_NAMES = (
    "INQUIRY",
    "STOP_PAYMENT",
    "FREEZE",
    "EXTEND",
    "RETURN_FUNDS",
    "RELEASE",
    "SUSPEND_NUMBER",
    "RESTORE_NUMBER",
)
FOLLOW_UPS = {
    "STOP_PAYMENT": ("RELEASE",),
    "FREEZE": ("EXTEND", "RETURN_FUNDS", "RELEASE"),
    "SUSPEND_NUMBER": ("RESTORE_NUMBER",),
}
"""What may follow an executed action, by its action: banks renew freezes only (a
stop-payment is followed by a freeze drafted anew), and return only frozen funds."""


def _draft_values(form: dict[str, str]) -> dict[str, str]:
    names = [
        "recipient",
        "action",
        "case_ref",
        "legal_basis",
        "identifier_kind",
        "identifier",
        "amount",
        "whole_balance",
        "duration_hours",
        "target_request_id",
        "purpose",
        *FUND_FIELDS,
    ]
    return {name: form.get(name, "").strip()[:256] for name in names}


def spec_from_form(values: dict[str, str]) -> ActionSpec:
    """The action the officer filled in (its common fields; `fund_spec` adds the rest of
    a fund-control action); ValueError naming the field that is wrong."""
    try:
        amount = parse_yuan(values["amount"]) if values["amount"] else 0
    except ValueError:
        raise ValueError(_("Amount: give yuan with at most two decimals, e.g. 5000.00.")) from None
    hours_text = values["duration_hours"] or "0"
    if not hours_text.isdigit() or int(hours_text) > 24 * 366:
        raise ValueError(_("Duration: give whole hours, at most a year."))
    return ActionSpec(
        recipient=values["recipient"],
        action=values["action"],
        case_ref=values["case_ref"],
        legal_basis=values["legal_basis"],
        issuing_officer="",
        approving_officer="",
        identifier_kind=values["identifier_kind"] if values["identifier"] else "",
        identifier=values["identifier"],
        amount_minor=amount,
        whole_balance=values["whole_balance"] == "on",
        duration_hours=int(hours_text),
        target_request_id=values["target_request_id"],
        purpose=values["purpose"] or "telecom fraud",
    )


def _draft_form(
    page: Page, values: dict[str, str], errors: list[str], status: int = 200
) -> Response:
    directory = page.ctx.client.directory()
    recipients = [
        (m.node_id, m.agency, m.role)
        for m in directory.members
        if m.role in RESPONDER_ROLES and m.active
    ]
    return page.render(
        "police/draft_form.html",
        status,
        values=values,
        errors=errors,
        recipients=recipients,
        actions=ACTION_NAMES,
        kinds=KIND_NAMES,
        banks=_banks(page),
    )


@page(OFFICERS, POLICE)
def new_draft(page: Page) -> Response:
    """The draft form, empty (GET) or filled from a matched row or an action (POST)."""
    values = _draft_values(page.form if page.request.method == "POST" else {})
    if not values["action"]:
        values["action"] = (
            "STOP_PAYMENT"
            if values["identifier_kind"].startswith("bank")
            else ("SUSPEND_NUMBER" if values["identifier_kind"] == "phone" else "STOP_PAYMENT")
        )
    if values["action"] == "STOP_PAYMENT" and not values["duration_hours"]:
        values["duration_hours"] = "48"
        values["whole_balance"] = values["whole_balance"] or "on"
    if not values["window_from"]:
        zone = ZoneInfo(page.ctx.config.time_zone)
        until = datetime.now(zone).replace(second=0, microsecond=0)
        values["window_from"] = (until - INQUIRY_WINDOW).isoformat(timespec="minutes")[:16]
        values["window_until"] = until.isoformat(timespec="minutes")[:16]
    return _draft_form(page, values, [])


@page(OFFICERS, POLICE)
def create(page: Page) -> Response:
    values = _draft_values(page.form)
    try:
        spec = fund_spec(page.ctx, spec_from_form(values), values)
        draft_id = create_draft(
            page.ctx.engine, page.user, spec, default_region=page.ctx.config.default_region
        )
    except (ValueError, DraftRefused) as exc:
        if isinstance(exc, ValueError):
            page.audit("draft", "refused", f"case {values['case_ref']}: form")
        return _draft_form(page, values, [str(exc)], 400)
    return page.redirect(
        "/police/drafts",
        "ok",
        _("Draft %(id)s saved; an approver must approve it before it is sent.")
        % {"id": draft_id[:12]},
    )


@page(READERS, POLICE)
def drafts(page: Page) -> Response:
    waiting = list_drafts(page.ctx.engine, "drafted")
    decided = [d for d in list_drafts(page.ctx.engine) if d.state != "drafted"][:100]
    return page.render(
        "police/drafts.html",
        waiting=waiting,
        decided=decided,
        can_decide=page.user.role in APPROVERS,
    )


@page(("approver",), POLICE)
def approve(page: Page) -> Response:
    draft_id = page.request.path_params["draft_id"]
    try:
        submitted = approve_draft(
            page.ctx, page.user, draft_id, expected_sha256=page.form.get("spec_sha256", "")
        )
    except DraftRefused as refused:
        return page.redirect(
            "/police/drafts", "error", _("Not approved: %(reason)s") % {"reason": _(str(refused))}
        )
    return page.redirect(
        f"/police/actions/{submitted.message_id}",
        "ok",
        _("Approved and sent; the broker recorded it as audit entry %(leaf)d.")
        % {"leaf": submitted.leaf_index},
    )


@page(("approver",), POLICE)
def reject(page: Page) -> Response:
    draft_id = page.request.path_params["draft_id"]
    try:
        reject_draft(page.ctx.engine, page.user, draft_id, page.form.get("reason", ""))
    except DraftRefused as refused:
        return page.redirect(
            "/police/drafts", "error", _("Not rejected: %(reason)s") % {"reason": _(str(refused))}
        )
    return page.redirect("/police/drafts", "ok", _("Draft rejected; nothing was sent."))


@dataclass
class Case:
    """One case as the desk lists it: what was drafted and sent under its reference."""

    case_ref: str
    legal_bases: set[str] = field(default_factory=set)
    officers: set[str] = field(default_factory=set)
    drafts: int = 0
    requests: int = 0
    open_holds: int = 0
    last_ms: int = 0


@page(READERS, POLICE)
def cases(page: Page) -> Response:
    found: dict[str, Case] = {}
    for draft in list_drafts(page.ctx.engine):
        ref = str(draft.spec.get("case_ref", ""))
        case = found.setdefault(ref, Case(ref))
        case.drafts += 1
        case.legal_bases.add(str(draft.spec.get("legal_basis", "")))
        case.officers.update(o for o in (draft.created_by, draft.decided_by) if o)
        case.last_ms = max(case.last_ms, draft.decided_at_ms, draft.created_at_ms)
    for row in action_rows(page):
        case = found.setdefault(row.case_ref, Case(row.case_ref))
        case.requests += 1
        case.open_holds += row.state in ("executed", "extended", "partial") and bool(
            row.hold_expires_at_ms
        )
        case.last_ms = max(case.last_ms, row.requested_at_ms)
    listed = sorted(found.values(), key=lambda c: c.last_ms, reverse=True)
    return page.render("police/cases.html", cases=listed)


ROUTES: list[BaseRoute] = [
    Route("/police/cases", cases, methods=["GET"]),
    Route("/police/drafts", drafts, methods=["GET"]),
    Route("/police/drafts", create, methods=["POST"]),
    Route("/police/drafts/new", new_draft, methods=["GET", "POST"]),
    Route("/police/drafts/{draft_id}/approve", approve, methods=["POST"]),
    Route("/police/drafts/{draft_id}/reject", reject, methods=["POST"]),
    Route("/police/query", query_form, methods=["GET"]),
    Route("/police/query", run_query, methods=["POST"]),
    Route("/police/actions", actions, methods=["GET"]),
    Route("/police/actions/{request_id}", action_detail, methods=["GET"]),
]

NAV = [
    NavItem("Cases", "/police/cases", READERS, POLICE),
    NavItem("Match query", "/police/query", OFFICERS, POLICE),
    NavItem("Drafts and approvals", "/police/drafts", READERS, POLICE),
    NavItem("Actions", "/police/actions", READERS, POLICE),
]
