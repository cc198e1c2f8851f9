"""The admin page: list the node's staff accounts; add, disable, reset (filled in below)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.console.framework import NavItem

ROUTES: list[BaseRoute] = []
NAV: list[NavItem] = []
