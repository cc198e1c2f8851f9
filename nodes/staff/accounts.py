"""Staff accounts of a node: who may log in to draft, approve or audit actions.

Passwords are hashed with Argon2id (`argon2-cffi`, RFC 9106 parameters); a TOTP second
factor (RFC 6238, `pyotp`) is on by default, and a code is accepted once only: the last
accepted time step is stored and a code of that step or an earlier one is refused. After
`MAX_FAILURES` failed logins in a row an account is locked for a time that doubles with
each further failure. A refusal never says whether the user exists.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import BigInteger, Boolean, CursorResult, Engine, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms as clock_ms
from nodes.staff import trail

ROLES = ("officer", "approver", "auditor", "admin", "tipoff_reader")
"""officer drafts actions; approver drafts and approves others' drafts; auditor reads the
trail and the journal; admin manages accounts; tipoff_reader opens the sealed reporter of
a bank's or carrier's alert (`nodes.alerts.inbox`), each opening on the trail."""

MAX_FAILURES = 5
"""Failed logins in a row before the account locks."""

BASE_LOCK_MS = 30_000
MAX_LOCK_MS = 3600_000

MIN_PASSWORD = 12
ISSUER = "agency-gateway"
USER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")

REFUSED = "wrong user, password or code"


class StaffUserRow(NodeBase):
    __tablename__ = "staff_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    totp_secret: Mapped[str] = mapped_column(String(64), default="")
    """Base32; empty when the account has no second factor."""
    last_totp_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_logins: Mapped[int] = mapped_column(BigInteger, default=0)
    locked_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(16), default="zh_CN")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class StaffUser:
    """A logged-in (or looked-up) member of staff."""

    user_id: str
    display_name: str
    role: str
    language: str


@dataclass(frozen=True)
class StaffAccount:
    """An account as an administrator lists it."""

    user_id: str
    display_name: str
    role: str
    language: str
    disabled: bool
    totp: bool
    failed_logins: int
    locked_until_ms: int
    created_at_ms: int


@dataclass(frozen=True)
class NewCredentials:
    """Shown once to the new user; only the password's hash is kept."""

    password: str
    totp_secret: str
    totp_uri: str


class LoginRefused(Exception):
    """A login failed; `reason` is safe to show and does not say whether the user exists."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccountError(ValueError):
    """An account command cannot be done as asked; the message says why."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy_hash() -> str:
    """Verified against when the user is unknown, so that takes as long as a real check."""
    return _hasher().hash(secrets.token_urlsafe(16))


def _user(row: StaffUserRow) -> StaffUser:
    return StaffUser(row.user_id, row.display_name, row.role, row.language)


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    return password


def _credentials(user_id: str, password: str | None, totp: bool) -> tuple[NewCredentials, str]:
    password = _check_password(password) if password is not None else secrets.token_urlsafe(18)
    secret = pyotp.random_base32() if totp else ""
    uri = pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=ISSUER) if totp else ""
    return NewCredentials(password, secret, uri), _hasher().hash(password)


def add_user(
    engine: Engine,
    user_id: str,
    role: str,
    *,
    display_name: str = "",
    language: str = "zh_CN",
    password: str | None = None,
    totp: bool = True,
    by: str = "cli",
) -> NewCredentials:
    """Create an account; a strong password is generated when none is given."""
    if not USER_ID.fullmatch(user_id):
        raise AccountError(
            "user id: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"role: one of {', '.join(ROLES)}")
    if not LANGUAGE.fullmatch(language):
        raise AccountError("language: a code such as zh_CN or en")
    if len(display_name) > 128:
        raise AccountError("display name: at most 128 characters")
    credentials, hashed = _credentials(user_id, password, totp)
    with Session(engine) as session, session.begin():
        if session.get(StaffUserRow, user_id) is not None:
            raise AccountError(f"user {user_id} exists already (reset or disable it instead)")
        session.add(
            StaffUserRow(
                user_id=user_id,
                display_name=display_name,
                role=role,
                password_hash=hashed,
                totp_secret=credentials.totp_secret,
                last_totp_counter=0,
                failed_logins=0,
                locked_until_ms=0,
                disabled=False,
                language=language,
                created_at_ms=clock_ms(),
            )
        )
        session.flush()
        trail.record(session, by, "user.add", "ok", f"user {user_id} role {role}")
    return credentials


def _existing(session: Session, user_id: str) -> StaffUserRow:
    row = session.get(StaffUserRow, user_id, with_for_update=True)
    if row is None:
        raise AccountError(f"no user {user_id} (see gateway users list)")
    return row


def disable_user(engine: Engine, user_id: str, *, by: str = "cli") -> None:
    """Refuse every later login of the user; the account and its history stay."""
    with Session(engine) as session, session.begin():
        _existing(session, user_id).disabled = True
        trail.record(session, by, "user.disable", "ok", f"user {user_id}")


def reset_user(
    engine: Engine, user_id: str, password: str | None = None, *, by: str = "cli"
) -> NewCredentials:
    """A new password and TOTP secret; enables the account and clears its lockout."""
    with Session(engine) as session, session.begin():
        row = _existing(session, user_id)
        credentials, hashed = _credentials(user_id, password, True)
        row.password_hash = hashed
        row.totp_secret = credentials.totp_secret
        row.last_totp_counter = 0
        row.failed_logins = 0
        row.locked_until_ms = 0
        row.disabled = False
        trail.record(session, by, "user.reset", "ok", f"user {user_id}")
    return credentials


def lock_ms(failures: int) -> int:
    """How long an account stays locked after `failures` failed logins in a row."""
    if failures < MAX_FAILURES:
        return 0
    return int(min(MAX_LOCK_MS, BASE_LOCK_MS * 2 ** min(failures - MAX_FAILURES, 20)))


def _totp_counter(secret: str, code: str, now: int) -> int | None:
    """The time step whose code `code` is, within one step either side of now."""
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.fromtimestamp(now / 1000, UTC))
    code = code.replace(" ", "")
    for counter in (step - 1, step, step + 1):
        if counter > 0 and pyotp.utils.strings_equal(totp.generate_otp(counter), code):
            return counter
    return None


def _refuse(session: Session, row: StaffUserRow | None, user_id: str, now: int, why: str) -> None:
    if row is not None:
        row.failed_logins += 1
        wait = lock_ms(row.failed_logins)
        if wait:
            row.locked_until_ms = now + wait
    trail.record(session, user_id, "login", "refused", why)


def authenticate(
    engine: Engine, user_id: str, password: str, totp_code: str, *, now_ms: int | None = None
) -> StaffUser:
    """The user, if the password and (when the account has one) the TOTP code are right."""
    now = now_ms if now_ms is not None else clock_ms()
    with Session(engine) as session, session.begin():
        row = session.get(StaffUserRow, user_id, with_for_update=True)
        if row is not None and row.locked_until_ms > now:
            wait_s = -(-(row.locked_until_ms - now) // 1000)
            trail.record(session, user_id, "login", "refused", "locked")
            error: LoginRefused | None = LoginRefused(
                f"too many failed logins; try again in {wait_s} s"
            )
        else:
            error = _login(session, row, user_id, password, totp_code, now)
        user = _user(row) if error is None and row is not None else None
    if error is not None:
        raise error
    assert user is not None
    return user


def _login(
    session: Session,
    row: StaffUserRow | None,
    user_id: str,
    password: str,
    totp_code: str,
    now: int,
) -> LoginRefused | None:
    """Check one login inside the caller's transaction; the refusal to raise, if any."""
    try:
        _hasher().verify(row.password_hash if row is not None else _decoy_hash(), password)
        password_ok = row is not None
    except (VerificationError, InvalidHashError):
        password_ok = False
    if row is None or not password_ok or row.disabled:
        why = "disabled" if row is not None and row.disabled and password_ok else "password"
        _refuse(session, row, user_id, now, why)
        return LoginRefused(REFUSED)
    if row.totp_secret:
        counter = _totp_counter(row.totp_secret, totp_code, now)
        if counter is None:
            _refuse(session, row, user_id, now, "totp")
            return LoginRefused(REFUSED)
        claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(StaffUserRow)
            .where(StaffUserRow.user_id == user_id, StaffUserRow.last_totp_counter < counter)
            .values(last_totp_counter=counter)
            .execution_options(synchronize_session="fetch")
        )
        if claimed.rowcount != 1:
            _refuse(session, row, user_id, now, "totp replayed")
            return LoginRefused("that code was used already; wait for the next one")
    if _hasher().check_needs_rehash(row.password_hash):
        row.password_hash = _hasher().hash(password)
    row.failed_logins = 0
    row.locked_until_ms = 0
    trail.record(session, user_id, "login", "ok", f"role {row.role}")
    return None


def get_user(engine: Engine, user_id: str) -> StaffUser | None:
    """The user's public fields; None if there is no such user or it is disabled."""
    with Session(engine) as session:
        row = session.get(StaffUserRow, user_id)
        return _user(row) if row is not None and not row.disabled else None


def list_users(engine: Engine) -> list[StaffAccount]:
    """Every account, disabled ones included, by user id."""
    with Session(engine) as session:
        return [
            StaffAccount(
                r.user_id,
                r.display_name,
                r.role,
                r.language,
                r.disabled,
                bool(r.totp_secret),
                r.failed_logins,
                r.locked_until_ms,
                r.created_at_ms,
            )
            for r in session.scalars(select(StaffUserRow).order_by(StaffUserRow.user_id))
        ]


def set_language(engine: Engine, user_id: str, language: str) -> None:
    """The language the console shows this user."""
    if not LANGUAGE.fullmatch(language):
        raise AccountError("language: a code such as zh_CN or en")
    with Session(engine) as session, session.begin():
        _existing(session, user_id).language = language
