"""Staff logins: Argon2id passwords, TOTP codes accepted once, lockout with backoff.

TOTP codes come from tests/staff/totp.py (RFC 6238 computed here, checked against the
RFC's own vector), not from the library the code under test uses.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nodes.staff.accounts import (
    AccountError,
    LoginRefused,
    StaffUserRow,
    add_user,
    authenticate,
    disable_user,
    get_user,
    list_users,
    reset_user,
    set_language,
)
from nodes.staff.trail import recent, verify_trail
from tests.staff.totp import STEP_S, hotp, totp

T0 = 1_800_000_000_000
"""A fixed instant (ms) at the start of a TOTP step, so that steps are easy to name."""
STEP = STEP_S * 1000
PASSWORD = "correct horse battery staple"


def test_rfc6238_vector() -> None:
    """RFC 6238 appendix B, SHA-1: T = 59 s gives 94287082, T = 1111111109 s 07081804."""
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert hotp(secret, 59 // STEP_S, digits=8) == "94287082"
    assert hotp(secret, 1111111109 // STEP_S, digits=8) == "07081804"


def officer(engine: Engine, user_id: str = "wang.officer") -> str:
    """Add an officer; the TOTP secret."""
    return add_user(
        engine, user_id, "officer", display_name="王警官", password=PASSWORD
    ).totp_secret


def test_login_with_password_and_code(engine: Engine) -> None:
    secret = officer(engine)
    user = authenticate(engine, "wang.officer", PASSWORD, totp(secret, T0), now_ms=T0)
    assert (user.user_id, user.role, user.language, user.display_name) == (
        "wang.officer",
        "officer",
        "zh_CN",
        "王警官",
    )
    events = [(e.user_id, e.event, e.outcome) for e in recent(engine, 10)]
    assert events[0] == ("wang.officer", "login", "ok")
    assert verify_trail(engine) == []


def test_password_is_stored_as_argon2id(engine: Engine) -> None:
    officer(engine)
    with Session(engine) as s:
        stored = s.scalars(select(StaffUserRow.password_hash)).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_wrong_password_wrong_code_and_unknown_user_read_the_same(engine: Engine) -> None:
    secret = officer(engine)
    code = totp(secret, T0)
    wrong_code = str((int(code) + 1) % 1_000_000).zfill(6)
    reasons = set()
    for user_id, password, given in (
        ("wang.officer", "not the password at all", code),
        ("wang.officer", PASSWORD, wrong_code),
        ("nobody", PASSWORD, code),
    ):
        with pytest.raises(LoginRefused) as info:
            authenticate(engine, user_id, password, given, now_ms=T0)
        reasons.add(info.value.reason)
    assert reasons == {"wrong user, password or code"}
    refused = [e for e in recent(engine, 10) if e.outcome == "refused"]
    assert [e.user_id for e in refused] == ["nobody", "wang.officer", "wang.officer"]
    assert all(PASSWORD not in e.detail and code not in e.detail for e in refused)


def test_a_code_is_accepted_once_and_older_steps_never_again(engine: Engine) -> None:
    secret = officer(engine)
    now = T0 + 5 * STEP
    authenticate(engine, "wang.officer", PASSWORD, totp(secret, now), now_ms=now)
    with pytest.raises(LoginRefused, match="used already"):
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, now), now_ms=now + 1000)
    with pytest.raises(LoginRefused, match="used already"):  # the step before: in the window
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, now - STEP), now_ms=now)
    authenticate(engine, "wang.officer", PASSWORD, totp(secret, now + STEP), now_ms=now + STEP)
    assert [e.detail for e in recent(engine, 5) if e.outcome == "refused"] == ["totp replayed"] * 2


def test_codes_one_step_off_are_accepted_two_steps_off_are_not(engine: Engine) -> None:
    secret = officer(engine)
    now = T0 + 10 * STEP
    authenticate(engine, "wang.officer", PASSWORD, totp(secret, now - STEP), now_ms=now)
    authenticate(engine, "wang.officer", PASSWORD, totp(secret, now + STEP), now_ms=now)
    with pytest.raises(LoginRefused, match="wrong user, password or code"):
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, now + 3 * STEP), now_ms=now)


def test_lockout_after_five_failures_with_doubling_backoff(engine: Engine) -> None:
    secret = officer(engine)
    now = T0
    for _ in range(5):
        with pytest.raises(LoginRefused, match="wrong"):
            authenticate(engine, "wang.officer", "guess guess guess", "000000", now_ms=now)
    with pytest.raises(LoginRefused, match="try again in 30 s"):
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, now), now_ms=now + 1)
    now += 30_000  # the lock has run out; one more failure locks for twice as long
    with pytest.raises(LoginRefused, match="wrong"):
        authenticate(engine, "wang.officer", "guess guess guess", "000000", now_ms=now)
    with pytest.raises(LoginRefused, match="try again in 60 s"):
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, now), now_ms=now)
    now += 60_000
    authenticate(engine, "wang.officer", PASSWORD, totp(secret, now), now_ms=now)
    (account,) = list_users(engine)
    assert (account.failed_logins, account.locked_until_ms) == (0, 0)
    assert [e.detail for e in recent(engine, 20)].count("locked") == 2


def test_disabled_user_cannot_log_in_and_reset_gives_new_credentials(engine: Engine) -> None:
    secret = officer(engine)
    disable_user(engine, "wang.officer")
    assert get_user(engine, "wang.officer") is None
    with pytest.raises(LoginRefused, match="wrong user, password or code"):
        authenticate(engine, "wang.officer", PASSWORD, totp(secret, T0), now_ms=T0)
    new = reset_user(engine, "wang.officer")
    assert len(new.password) >= 16 and new.totp_secret != secret
    assert new.totp_uri.startswith("otpauth://totp/") and new.totp_secret in new.totp_uri
    with pytest.raises(LoginRefused):
        authenticate(engine, "wang.officer", PASSWORD, totp(new.totp_secret, T0), now_ms=T0)
    user = authenticate(
        engine, "wang.officer", new.password, totp(new.totp_secret, T0 + STEP), now_ms=T0 + STEP
    )
    assert user.role == "officer"


def test_account_without_second_factor(engine: Engine) -> None:
    made = add_user(engine, "li.auditor", "auditor", password=PASSWORD, totp=False)
    assert (made.totp_secret, made.totp_uri) == ("", "")
    assert authenticate(engine, "li.auditor", PASSWORD, "").role == "auditor"


@pytest.mark.parametrize(
    ("user_id", "role", "password", "language", "message"),
    [
        ("Bad User", "officer", None, "zh_CN", "user id"),
        ("wang", "chief", None, "zh_CN", "role: one of officer, approver, auditor, admin"),
        ("wang", "officer", "short", "zh_CN", "at least 12 characters"),
        ("wang", "officer", None, "chinese", "language"),
    ],
)
def test_bad_account_input_is_refused_and_nothing_is_written(
    engine: Engine, user_id: str, role: str, password: str | None, language: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message):
        add_user(engine, user_id, role, password=password, language=language)
    assert list_users(engine) == [] and recent(engine, 5) == []


def test_duplicate_and_unknown_users(engine: Engine) -> None:
    officer(engine)
    with pytest.raises(AccountError, match="exists already"):
        add_user(engine, "wang.officer", "approver")
    with pytest.raises(AccountError, match="no user ghost"):
        disable_user(engine, "ghost")
    with pytest.raises(AccountError, match="no user ghost"):
        reset_user(engine, "ghost")
    set_language(engine, "wang.officer", "en")
    user = get_user(engine, "wang.officer")
    assert user is not None and user.language == "en"
