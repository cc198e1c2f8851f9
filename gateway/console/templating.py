"""The console's Jinja2 environment: autoescaped templates, gettext, formatting filters."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from gateway.console import formatting
from gateway.console.i18n import LANGUAGE_NAMES, current_language, gettext_, ngettext_


def environment(time_zone: str) -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        escaped_gettext, escaped_ngettext, newstyle=True
    )
    env.filters["local_time"] = lambda ms: formatting.local_time(int(ms or 0), time_zone)
    env.filters["yuan"] = formatting.yuan
    env.filters["kind_name"] = formatting.kind_name
    env.filters["action_name"] = formatting.action_name
    env.globals["language_names"] = LANGUAGE_NAMES
    env.globals["current_language"] = current_language
    env.globals["time_zone"] = time_zone
    return env


def escaped_gettext(message: str) -> Markup:
    """A translation as escaped text. Jinja marks what gettext returns as safe markup, and
    templates also translate values that come from outside (a state, a peer's reason):
    escaping here keeps `_(value)` from ever injecting HTML."""
    return escape(gettext_(message))


def escaped_ngettext(singular: str, plural: str, n: int) -> Markup:
    return escape(ngettext_(singular, plural, n))


def render(env: Environment, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = env.get_template(name).render(context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Sent with every page: no inline or foreign script, no framing, nothing cached."""
