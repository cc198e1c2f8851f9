"""The console's page modules; each has ROUTES (Starlette routes) and NAV (header links).

Add a module here to add its pages (see ../README.md).
"""

from __future__ import annotations

from types import ModuleType

from gateway.console.pages import admin, alerts, compliance, desk, police, watchlist

PAGES: tuple[ModuleType, ...] = (police, desk, admin, compliance, alerts, watchlist)
