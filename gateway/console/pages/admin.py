"""The admin page: the node's staff accounts; add, disable, reset.

New credentials (password, TOTP secret) are shown once, on the page that made them, and
never stored in plain text: only the password's hash and the TOTP secret are kept.
Disabling or resetting an account also ends its open console sessions.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.console.framework import NavItem, Page, page
from gateway.console.i18n import LANGUAGE_NAMES
from gateway.console.i18n import gettext_ as _
from nodes.staff.accounts import (
    ROLES,
    AccountError,
    NewCredentials,
    add_user,
    disable_user,
    list_users,
    reset_user,
)

ADMINS = ("admin",)


def _users_page(
    page: Page,
    status: int = 200,
    *,
    errors: list[str] | None = None,
    credentials: NewCredentials | None = None,
    for_user: str = "",
) -> Response:
    return page.render(
        "admin/users.html",
        status,
        users=list_users(page.ctx.engine),
        roles=ROLES,
        languages=LANGUAGE_NAMES,
        errors=errors or [],
        credentials=credentials,
        for_user=for_user,
        values=page.form,
    )


@page(ADMINS)
def users(page: Page) -> Response:
    return _users_page(page)


@page(ADMINS)
def add(page: Page) -> Response:
    user_id = page.form.get("user_id", "").strip()
    try:
        credentials = add_user(
            page.ctx.engine,
            user_id,
            page.form.get("role", ""),
            display_name=page.form.get("display_name", "").strip(),
            language=page.form.get("language", "zh_CN"),
            by=page.user.user_id,
        )
    except AccountError as exc:
        page.audit("user.add", "refused", str(exc))
        return _users_page(page, 400, errors=[str(exc)])
    return _users_page(page, credentials=credentials, for_user=user_id)


@page(ADMINS)
def disable(page: Page) -> Response:
    user_id = page.request.path_params["user_id"]
    if user_id == page.user.user_id:
        return page.redirect("/admin/users", "error", _("You cannot disable your own account."))
    try:
        disable_user(page.ctx.engine, user_id, by=page.user.user_id)
    except AccountError as exc:
        return page.redirect("/admin/users", "error", str(exc))
    page.console.sessions.end_user(user_id)
    return page.redirect(
        "/admin/users", "ok", _("%(user)s is disabled and logged out.") % {"user": user_id}
    )


@page(ADMINS)
def reset(page: Page) -> Response:
    user_id = page.request.path_params["user_id"]
    try:
        credentials = reset_user(page.ctx.engine, user_id, by=page.user.user_id)
    except AccountError as exc:
        return _users_page(page, 400, errors=[str(exc)])
    page.console.sessions.end_user(user_id)
    return _users_page(page, credentials=credentials, for_user=user_id)


ROUTES: list[BaseRoute] = [
    Route("/admin/users", users, methods=["GET"]),
    Route("/admin/users", add, methods=["POST"]),
    Route("/admin/users/{user_id}/disable", disable, methods=["POST"]),
    Route("/admin/users/{user_id}/reset", reset, methods=["POST"]),
]
NAV = [NavItem("Users", "/admin/users", ADMINS)]
