"""What every console page shares: the session, the role guard, the CSRF check, rendering.

A page is a plain function `handler(page: Page) -> Response` wrapped by `@page(...)`,
which (before the handler runs, in a worker thread so a slow query or broker call never
blocks the server) finds the session, closes it after the idle timeout, refuses a user
without one of the page's staff roles or a node of another role, and on POST checks the
form's CSRF token. Every refusal is written to the node's staff trail.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Final

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from gateway.config import NodeConfig
from gateway.console.i18n import gettext_, set_language
from gateway.console.sessions import COOKIE, ConsoleSession, Expired, SessionStore
from gateway.console.staff import StaffUser, record
from gateway.console.templating import SECURITY_HEADERS, render
from gateway.db import NodeBase
from nodes.runtime import NodeContext

ALL_STAFF: Final = ("officer", "approver", "auditor", "admin", "tipoff_reader")
MAX_UPLOAD_BYTES: Final = 5 * 1024 * 1024


@dataclass
class Console:
    """The console's state, one per app: the node's runtime, sessions and templates."""

    ctx: NodeContext
    sessions: SessionStore
    templates: Environment
    secure_cookies: bool = False
    nav: list[NavItem] = field(default_factory=list)

    @property
    def config(self) -> NodeConfig:
        return self.ctx.config

    def set_cookie(self, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE,
            self.sessions.cookie_value(session),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/",
        )

    def audit(self, user_id: str, event: str, outcome: str, detail: str = "") -> None:
        """One line of the node's staff trail (never an identifier in `detail`)."""
        record(self.ctx.engine, user_id, event, outcome, detail)


@dataclass(frozen=True)
class NavItem:
    """A link in the page header, shown to the staff and node roles it names."""

    label: str
    """English source text, translated when shown."""
    path: str
    roles: tuple[str, ...] = ALL_STAFF
    node_roles: tuple[str, ...] = ("police", "bank", "carrier", "regulator")

    def shown_to(self, user: StaffUser, node_role: str) -> bool:
        return user.role in self.roles and node_role in self.node_roles


@dataclass
class Page:
    """What a page handler gets: the request, the logged-in user and the posted form."""

    request: Request
    console: Console
    session: ConsoleSession
    user: StaffUser
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ctx(self) -> NodeContext:
        return self.console.ctx

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """The page as HTML, or as JSON when its address ends in `.json`."""
        if self.request.url.path.endswith(".json"):
            return JSONResponse(plain(context), status, headers=SECURITY_HEADERS)
        return render_page(self.console, self.session, template, status, **context)

    def redirect(self, path: str, level: str = "", message: str = "") -> Response:
        """Post/redirect/get, with a message shown once on the next page."""
        if message:
            self.session.flash(level or "info", message)
        return RedirectResponse(path, status_code=303)

    def audit(self, event: str, outcome: str, detail: str = "") -> None:
        self.console.audit(self.user.user_id, event, outcome, detail)


def plain(value: Any) -> Any:
    """A page's context as JSON values: rows and dataclasses as objects; bytes (signed
    envelopes) and helpers left out."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if keep(v)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value if keep(v)]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value if keep(v))
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in fields(value)
            if keep(getattr(value, f.name))
        }
    if isinstance(value, NodeBase):
        columns = value.__table__.columns  # type: ignore[attr-defined]
        return {c.key: plain(getattr(value, c.key)) for c in columns if keep(getattr(value, c.key))}
    return str(value)


def keep(value: Any) -> bool:
    return not isinstance(value, bytes | bytearray) and not callable(value)


def render_page(
    console: Console,
    session: ConsoleSession | None,
    template: str,
    status: int = 200,
    **context: Any,
) -> Response:
    user = session.user if session is not None else None
    nav = [n for n in console.nav if user is not None and n.shown_to(user, console.config.role)]
    base = {
        "user": user,
        "node_id": console.config.node_id,
        "node_role": console.config.role,
        "csrf_token": session.csrf_token if session is not None else "",
        "flashes": session.take_flashes() if session is not None else [],
        "nav": nav,
        "path": "",
    }
    return render(console.templates, template, {**base, **context}, status)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def csrf_ok(session: ConsoleSession, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf_token.encode())


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The posted fields, and the uploaded files' bytes (at most MAX_UPLOAD_BYTES each)."""
    values: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    async with request.form(max_files=4, max_fields=2000) as form:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(MAX_UPLOAD_BYTES + 1)
                if data:
                    uploads[key] = data
            else:
                values.setdefault(key, value)
    return values, uploads


def refuse(
    console: Console, session: ConsoleSession, status: int, message: str, json: bool = False
) -> Response:
    if json:
        return JSONResponse({"code": status, "message": message}, status, headers=SECURITY_HEADERS)
    return render_page(console, session, "error.html", status, message=message, code=status)


Handler = Callable[[Page], Response]


def page(
    roles: Iterable[str] = ALL_STAFF, node_roles: Iterable[str] | None = None
) -> Callable[[Handler], Callable[[Request], Any]]:
    """Make `handler` a guarded endpoint for users with one of `roles`, on `node_roles`."""
    allowed = tuple(roles)
    nodes = tuple(node_roles) if node_roles is not None else None

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            console = console_of(request)
            try:
                session = console.sessions.from_cookie(request.cookies.get(COOKIE))
            except Expired as expired:
                user = expired.user
                console.audit(user.user_id, "session", "expired", request.url.path)
                fresh = console.sessions.new()
                fresh.language = user.language
                set_language(user.language)
                fresh.flash(
                    "error",
                    gettext_("Your session expired after a time without use; log in again."),
                )
                response = RedirectResponse("/login", status_code=303)
                console.set_cookie(response, fresh)
                return response
            if session is None or session.user is None:
                return RedirectResponse("/login", status_code=303)
            user = session.user
            set_language(user.language)
            where = f"{request.method} {request.url.path}"
            as_json = request.url.path.endswith(".json")
            if nodes is not None and console.config.role not in nodes:
                return refuse(
                    console, session, 404, gettext_("This node has no such page."), as_json
                )
            if user.role not in allowed:
                console.audit(user.user_id, "access", "denied", f"{where}: role {user.role}")
                return refuse(
                    console,
                    session,
                    403,
                    gettext_("Your role may not use this page; ask a user with another role."),
                    as_json,
                )
            form: dict[str, str] = {}
            files: dict[str, bytes] = {}
            if request.method == "POST":
                form, files = await read_form(request)
                if not csrf_ok(session, form):
                    console.audit(user.user_id, "csrf", "refused", where)
                    return refuse(
                        console,
                        session,
                        403,
                        gettext_(
                            "The form's security token is missing or wrong, so nothing was "
                            "done. Reload the page and try again."
                        ),
                    )
            current = Page(request, console, session, user, form, files)

            def run() -> Response:
                set_language(user.language)
                return handler(current)

            return await run_in_threadpool(run)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
