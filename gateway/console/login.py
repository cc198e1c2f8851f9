"""Login, logout, the home page and the user's language choice.

Conventions of Django's auth: the session id is replaced at login (a pre-login id is
never a logged-in one), the login form has a CSRF token of its own, and a refusal does
not say which of user, password or code was wrong (the staff trail records why).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.console.framework import Page, console_of, csrf_ok, page, read_form, render_page
from gateway.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, gettext_, set_language
from gateway.console.sessions import COOKIE, Expired
from gateway.console.staff import LoginRefused, authenticate

MAX_FIELD = 256


async def login_form(request: Request) -> Response:
    console = console_of(request)
    try:
        session = console.sessions.from_cookie(request.cookies.get(COOKIE))
    except Expired:
        session = None
    if session is not None and session.user is not None:
        return RedirectResponse("/", status_code=303)
    if session is None:
        session = console.sessions.new()
    if "lang" in request.query_params:
        session.language = request.query_params["lang"]
    set_language(session.language or DEFAULT_LANGUAGE)
    response = render_page(console, session, "login.html", user_id="")
    console.set_cookie(response, session)
    return response


async def login(request: Request) -> Response:
    console = console_of(request)
    try:
        session = console.sessions.from_cookie(request.cookies.get(COOKIE))
    except Expired:
        session = None
    form, _files = await read_form(request)
    language = form.get("lang") or (session.language if session else "") or DEFAULT_LANGUAGE
    set_language(language)
    user_id = form.get("user_id", "").strip()[:MAX_FIELD]
    if session is None or not csrf_ok(session, form):
        console.audit(user_id or "-", "login", "refused", "missing or wrong CSRF token")
        session = console.sessions.new()
        session.flash(
            "error",
            gettext_("The login form had expired or was not ours; nothing was done. Try again."),
        )
        response = RedirectResponse("/login", status_code=303)
        console.set_cookie(response, session)
        return response
    password = form.get("password", "")[:MAX_FIELD]
    code = form.get("totp", "").strip()[:16]
    try:
        user = await run_in_threadpool(authenticate, console.ctx.engine, user_id, password, code)
    except LoginRefused as refused:  # authenticate wrote the refusal to the staff trail
        set_language(language)
        return render_page(
            console,
            session,
            "login.html",
            401,
            user_id=user_id,
            error=gettext_("Login refused: %(reason)s.") % {"reason": gettext_(refused.reason)},
        )
    console.sessions.end(session)
    fresh = console.sessions.new(user)
    response = RedirectResponse("/", status_code=303)
    console.set_cookie(response, fresh)
    return response


@page()
def logout(page: Page) -> Response:
    page.audit("logout", "ok")
    page.console.sessions.end(page.session)
    fresh = page.console.sessions.new()
    fresh.language = page.user.language
    fresh.flash("info", gettext_("You are logged out."))
    response = RedirectResponse("/login", status_code=303)
    page.console.set_cookie(response, fresh)
    return response


@page()
def home(page: Page) -> Response:
    """The first page the user's role may see on this node."""
    role = page.console.config.role
    for item in page.console.nav:
        if item.shown_to(page.user, role):
            return RedirectResponse(item.path, status_code=303)
    return page.render("home.html")


@page()
def choose_language(page: Page) -> Response:
    from dataclasses import replace

    from nodes.staff.accounts import set_language as store_language

    language = page.form.get("language", "")
    if language not in LANGUAGES:
        return page.redirect("/", "error", gettext_("Unknown language."))
    store_language(page.ctx.engine, page.user.user_id, language)
    page.session.user = replace(page.user, language=language)
    page.audit("language", "ok", language)
    back = page.request.headers.get("referer", "")
    path = back.split(str(page.request.base_url).rstrip("/"), 1)[-1] if back else "/"
    return RedirectResponse(path if local(path) else "/", 303)


def local(path: str) -> bool:
    """Only redirect to a path of this site (never to another host)."""
    return path.startswith("/") and not path.startswith("//")


ROUTES: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/language", choose_language, methods=["POST"]),
    Route("/", home, methods=["GET"]),
]
