"""Alerts in the console: a bank or carrier raises one; the police desk receives it.

Bank and carrier (`/desk/alerts`): a form to report a suspicious account, card or number
(with an optional tip-off reporter, sealed separately) and the list of alerts raised.
Police (`/police/alerts`): incoming alerts, the reporter shown as "sealed"; a
`tipoff_reader` opens it (on the staff trail, `nodes.alerts.inbox`), and an officer
drafts a stop-payment on a reported account in one step, which an approver still
approves (`/police/drafts`).
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.formatting import KIND_NAMES
from gateway.console.framework import NavItem, Page, page
from gateway.console.fundform import local_ms, positive_fen
from gateway.console.i18n import gettext_ as _
from gateway.envelope.build import now_ms
from nodes.alerts.inbox import (
    TIPOFF_READER,
    AlertRefused,
    draft_stop_payment,
    list_alerts,
    open_reporter,
)
from nodes.alerts.report import (
    CATEGORIES,
    IDENTIFIER_KINDS,
    KIND_OF_ROLE,
    REPORTER_ROLES,
    AlertReport,
    Reporter,
)
from nodes.alerts.sender import AlertNotSent, raise_alert, sent_alerts
from nodes.staff.trail import recent

POLICE = ("police",)
RAISING_NODES = ("bank", "carrier")
RAISERS = ("officer", "approver")
"""Bank and carrier staff who report (a teller's supervisor, the fraud desk)."""
DRAFTERS = ("officer", "approver")
INBOX_READERS = ("officer", "approver", "auditor", TIPOFF_READER)

CATEGORY_LABELS = {
    "unusual_withdrawal": "Unusual withdrawal",
    "victim_transfer": "Transfer from a likely victim",
    "mule_pattern": "Mule account pattern",
    "rented_or_sold": "Rented or sold",
    "other": "Other",
    "fraud_calls": "Fraud calls",
    "mass_messaging": "Mass messaging",
    "sim_box": "SIM box",
}
"""Alert categories as users name them (English source text, translated when shown)."""

FIELDS = (
    "region",
    "identifier_kind",
    "identifier",
    "category",
    "seen",
    "seen_at",
    "branch",
    "holder_name",
    "txn_time",
    "txn_amount",
    "reporter_role",
    "reporter_name",
    "reporter_contact",
    "reporter_staff_id",
)


def _form_values(page: Page) -> dict[str, str]:
    return {name: page.form.get(name, "").strip() for name in FIELDS}


def _report(page: Page, values: dict[str, str]) -> tuple[AlertReport, Reporter | None]:
    """The alert the form describes; ValueError (shown to the user) if it is incomplete."""
    zone = page.ctx.config.time_zone
    kind = KIND_OF_ROLE[page.ctx.config.role]
    seen_at = local_ms(values["seen_at"], zone, "Seen at") if values["seen_at"] else now_ms()
    txn_at, txn_amount = 0, 0
    if values["txn_time"] or values["txn_amount"]:
        if not (values["txn_time"] and values["txn_amount"]):
            raise ValueError(_("Give both the transaction's time and its amount, or neither."))
        txn_at = local_ms(values["txn_time"], zone, "Transaction time")
        txn_amount = positive_fen(values["txn_amount"], "Transaction amount in yuan")
    reporter = None
    if values["reporter_name"]:
        reporter = Reporter(
            values["reporter_role"] or "teller",
            values["reporter_name"],
            values["reporter_contact"],
            values["reporter_staff_id"],
        )
    report = AlertReport(
        kind=str(kind),
        region=values["region"] or page.ctx.config.alert_region,
        identifier_kind=values["identifier_kind"],
        identifier=values["identifier"],
        category=values["category"],
        seen=values["seen"],
        seen_at_ms=seen_at,
        branch=values["branch"],
        holder_name=values["holder_name"],
        txn_at_ms=txn_at,
        txn_amount_minor=txn_amount,
    )
    return report, reporter


def _desk(page: Page, values: dict[str, str], errors: list[str], status: int = 200) -> Response:
    kind = KIND_OF_ROLE[page.ctx.config.role]
    return page.render(
        "alerts/desk_alerts.html",
        status,
        values=values,
        errors=errors,
        alert_kind=str(kind),
        kinds={k: KIND_NAMES.get(k, k) for k in IDENTIFIER_KINDS[kind]},
        categories=CATEGORIES[kind],
        reporter_roles=REPORTER_ROLES,
        labels=CATEGORY_LABELS,
        sent=sent_alerts(page.ctx),
        can_raise=page.user.role in RAISERS,
        default_region=page.ctx.config.alert_region,
    )


@page(("officer", "approver", "auditor"), RAISING_NODES)
def desk_alerts(page: Page) -> Response:
    return _desk(page, {name: "" for name in FIELDS}, [])


@page(RAISERS, RAISING_NODES)
def raise_from_desk(page: Page) -> Response:
    values = _form_values(page)
    try:
        report, reporter = _report(page, values)
        sent = raise_alert(page.ctx, report, raised_by=page.user.user_id, reporter=reporter)
    except (ValueError, AlertNotSent) as exc:  # AlertError is a ValueError
        outcome = "stored" if isinstance(exc, AlertNotSent) else "refused"
        page.audit("alert.raise", outcome, f"{report_kind(page)} region {values['region']}")
        return _desk(page, values, [str(exc)], 202 if outcome == "stored" else 400)
    page.audit("alert.raise", "ok", f"alert {sent.alert_id} to {sent.recipient}")
    return page.redirect(
        "/desk/alerts",
        "ok",
        _("Alert %(id)s sent to %(police)s; the broker recorded it as audit entry %(leaf)d.")
        % {"id": sent.alert_id[:12], "police": sent.recipient, "leaf": sent.leaf_index},
    )


def report_kind(page: Page) -> str:
    return str(KIND_OF_ROLE[page.ctx.config.role])


@page(INBOX_READERS, POLICE)
def police_alerts(page: Page) -> Response:
    return page.render(
        "alerts/police_alerts.html",
        alerts=list_alerts(page.ctx),
        labels=CATEGORY_LABELS,
        openings=[e for e in recent(page.ctx.engine, 1000) if e.event == "open_reporter"],
        can_draft=page.user.role in DRAFTERS,
        can_open=page.user.role == TIPOFF_READER,
    )


@page(DRAFTERS, POLICE)
def draft_from_alert(page: Page) -> Response:
    alert_id = page.request.path_params["alert_id"]
    try:
        draft_id = draft_stop_payment(
            page.ctx,
            page.user,
            alert_id,
            case_ref=page.form.get("case_ref", "").strip(),
            legal_basis=page.form.get("legal_basis", "").strip(),
        )
    except AlertRefused as refused:
        return page.redirect(
            "/police/alerts", "error", _("Not drafted: %(reason)s") % {"reason": _(str(refused))}
        )
    return page.redirect(
        "/police/drafts",
        "ok",
        _("Stop-payment draft %(id)s made from the alert; an approver must approve it.")
        % {"id": draft_id[:12]},
    )


@page((TIPOFF_READER,), POLICE)
def reporter(page: Page) -> Response:
    alert_id = page.request.path_params["alert_id"]
    try:
        found = open_reporter(page.ctx, page.user, alert_id)
    except AlertRefused as refused:
        return page.redirect(
            "/police/alerts", "error", _("Not opened: %(reason)s") % {"reason": _(str(refused))}
        )
    return page.render("alerts/reporter.html", alert_id=alert_id, reporter=found)


ROUTES: list[BaseRoute] = [
    Route("/desk/alerts", desk_alerts, methods=["GET"]),
    Route("/desk/alerts", raise_from_desk, methods=["POST"]),
    Route("/police/alerts", police_alerts, methods=["GET"]),
    Route("/police/alerts/{alert_id}/draft-stop", draft_from_alert, methods=["POST"]),
    Route("/police/alerts/{alert_id}/reporter", reporter, methods=["POST"]),
]

NAV = [
    NavItem("Alerts", "/desk/alerts", ("officer", "approver", "auditor"), RAISING_NODES),
    NavItem("Incoming alerts", "/police/alerts", INBOX_READERS, POLICE),
]
