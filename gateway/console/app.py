"""The console's application factory: one Starlette app per node, on its runtime."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.console import login
from gateway.console.framework import Console, console_of, render_page
from gateway.console.pages import PAGES
from gateway.console.sessions import COOKIE, SessionStore
from gateway.console.templating import environment
from nodes.runtime import NodeContext


def create_app(
    ctx: NodeContext,
    *,
    idle_timeout_s: float | None = None,
    secure_cookies: bool | None = None,
) -> Starlette:
    """The console of the node `ctx` runs; settings default to the node's configuration."""
    cfg = ctx.config
    try:
        ZoneInfo(cfg.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time_zone {cfg.time_zone!r} is not a known IANA time zone (e.g. Asia/Shanghai)"
        ) from None
    console = Console(
        ctx=ctx,
        sessions=SessionStore(
            cfg.console_idle_timeout_s if idle_timeout_s is None else idle_timeout_s
        ),
        templates=environment(cfg.time_zone),
        secure_cookies=cfg.console_secure_cookies if secure_cookies is None else secure_cookies,
    )
    routes: list[BaseRoute] = list(login.ROUTES)
    for module in PAGES:
        routes.extend(json_twins(module.ROUTES))
        routes.extend(module.ROUTES)
        console.nav.extend(module.NAV)
    routes.append(Mount("/static", StaticFiles(packages=[("gateway.console", "static")])))
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},  # type: ignore[dict-item]
    )
    app.state.console = console
    return app


def json_twins(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Each GET page also at its address plus `.json`: one code path for page and API
    (listed first, so that `/x/{id}` does not take `/x/abc.json` for an id)."""
    return [
        Route(f"{r.path}.json", r.endpoint, methods=["GET"], name=f"{r.name}.json")
        for r in routes
        if isinstance(r, Route) and r.methods is not None and "GET" in r.methods
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    console = console_of(request)
    try:
        session = console.sessions.from_cookie(request.cookies.get(COOKIE))
    except Exception:
        session = None
    return render_page(console, session, "error.html", 404, message="Not found.", code=404)
