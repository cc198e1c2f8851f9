"""The console's one door to the staff accounts, trail and drafts (`nodes.staff`)."""

from __future__ import annotations

from nodes.staff.accounts import ROLES, LoginRefused, StaffUser, authenticate
from nodes.staff.trail import record

__all__ = ["ROLES", "LoginRefused", "StaffUser", "authenticate", "record"]
