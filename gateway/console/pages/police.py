"""The police desk: cases, match queries, drafts and approvals, actions and receipts.

A query runs the same code path as `gateway query` (`nodes.matching.query_responders`);
an action is drafted by one officer and sent only when a different approver approves it
(`nodes.staff.drafts`). Identifiers the officer typed are shown back on the officer's
own page only; the staff trail names cases and counts, never an identifier.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.formatting import KIND_NAMES
from gateway.console.framework import NavItem, Page, page
from gateway.console.i18n import gettext_ as _
from gateway.envelope.build import now_ms
from gateway.identifiers import Identifier, IdentifierKind, InvalidIdentifier, normalise
from gateway.ingest_csv import IngestError, read_identifiers
from gateway.matching.errors import MatchError
from nodes.actions.police import ActionRequestRow
from nodes.matching import RESPONDER_ROLES, ResponderOutcome, query_responders, responders_of

POLICE = ("police",)
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
            query.errors.append(_("Pasted line %(line)d: %(reason)s") % {"line": line, "reason": exc})
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
                _("Uploaded file line %(line)d: %(reason)s") % {"line": row.line, "reason": row.reason}
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
    """Per responder: its matches (or why it gave no answer); and the absent values."""
    held: set[int] = set()
    tables = []
    for outcome in outcomes:
        rows = []
        for match in outcome.matches:
            held.add(match.position)
            fields = dict(match.fields)
            handle = fields.pop("handle", "")
            label = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))
            rows.append(ResultRow(match.position, shown[match.position], handle, label))
        tables.append(ResponderResult(outcome.node_id, roles.get(outcome.node_id, ""), outcome.error, rows))
    absent = [value for position, value in enumerate(shown) if position not in held]
    return tables, absent


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
    identifiers, shown = parse_identifiers(form, page.files.get("file"), page.ctx.config.default_region)
    context = {"form": form, "kinds": KIND_NAMES, "targets": _targets(page)}
    if form.errors:
        page.audit("query", "refused", f"case {form.case_ref}: {len(form.errors)} input errors")
        return page.render("police/query.html", 400, **context)
    try:
        recipients = _recipients(page, form.target)
        outcomes = query_responders(
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


@page(READERS, POLICE)
def actions(page: Page) -> Response:
    rows = action_rows(page, page.request.query_params.get("case", ""))
    return page.render("police/actions.html", rows=rows, now_ms=now_ms())


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
    return page.render("police/action.html", row=row, follow_ups=follow_ups, now_ms=now_ms())


ROUTES: list[BaseRoute] = [
    Route("/police/query", query_form, methods=["GET"]),
    Route("/police/query", run_query, methods=["POST"]),
    Route("/police/actions", actions, methods=["GET"]),
    Route("/police/actions/{request_id}", action_detail, methods=["GET"]),
]

NAV = [
    NavItem("Actions", "/police/actions", READERS, POLICE),
    NavItem("Match query", "/police/query", OFFICERS, POLICE),
]
