"""Server-side console sessions, kept in this process's memory.

The cookie holds only a signed random session id; who is logged in, the CSRF token and
the last activity stay on the server. Sessions live as long as the process: a restart
logs every user out, which is the safe failure (nothing to steal from a database, no
session table to migrate or expire), and a node serves its console from one process.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from itsdangerous import BadSignature, Signer

from gateway.console.staff import StaffUser

COOKIE = "gateway_console"


@dataclass
class ConsoleSession:
    """One browser's session: anonymous (login form) or a logged-in user."""

    session_id: str
    csrf_token: str
    user: StaffUser | None = None
    last_seen: float = field(default_factory=time.monotonic)
    language: str = ""
    """The login page's language before anyone logs in ("" = the default)."""
    flashes: list[tuple[str, str]] = field(default_factory=list)
    """Messages to show once on the next page: (level, text)."""

    def flash(self, level: str, text: str) -> None:
        self.flashes.append((level, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


class Expired(Exception):
    """The session was idle longer than the timeout; it is gone."""

    def __init__(self, user: StaffUser) -> None:
        super().__init__(user.user_id)
        self.user = user


class SessionStore:
    """Sessions by id; ids are rotated at login so a pre-login id is never a logged-in one."""

    def __init__(self, idle_timeout_s: float, secret: bytes | None = None) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._signer = Signer(secret or secrets.token_bytes(32), salt="console-session")
        self._sessions: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def new(self, user: StaffUser | None = None) -> ConsoleSession:
        session = ConsoleSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user)
        with self._lock:
            self._sessions[session.session_id] = session
        return session

    def cookie_value(self, session: ConsoleSession) -> str:
        return self._signer.sign(session.session_id).decode()

    def from_cookie(self, value: str | None, now: float | None = None) -> ConsoleSession | None:
        """The live session the cookie names; None if none. Raises Expired if it timed out."""
        if not value:
            return None
        try:
            session_id = self._signer.unsign(value).decode()
        except BadSignature:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_timeout_s:
                del self._sessions[session_id]
                if session.user is not None:
                    raise Expired(session.user)
                return None
            session.last_seen = now
            return session

    def age_all(self, seconds: float) -> None:
        """Make every session `seconds` older (tests of the idle timeout)."""
        with self._lock:
            for session in self._sessions.values():
                session.last_seen -= seconds

    def end(self, session: ConsoleSession) -> None:
        with self._lock:
            self._sessions.pop(session.session_id, None)

    def end_user(self, user_id: str) -> int:
        """Log a user out everywhere (their account was disabled or reset)."""
        with self._lock:
            gone = [k for k, s in self._sessions.items() if s.user and s.user.user_id == user_id]
            for key in gone:
                del self._sessions[key]
        return len(gone)
