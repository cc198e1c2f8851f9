"""How the console shows times, amounts and identifier kinds to its users."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup

from gateway.console.i18n import gettext_ as _

KIND_NAMES = {
    "id_card": "ID card number",
    "phone": "Phone number",
    "bank_card": "Bank card number",
    "bank_account": "Account number",
}
"""Identifier kinds as users name them (身份证号, 手机号, 银行卡号, 账号 in Chinese)."""


ACTION_NAMES = {
    "STOP_PAYMENT": "Stop-payment",
    "FREEZE": "Freeze",
    "EXTEND": "Extension",
    "RELEASE": "Release",
    "SUSPEND_NUMBER": "Number suspension",
    "RESTORE_NUMBER": "Number restoration",
    "RETURN_FUNDS": "Return of funds",
    "INQUIRY": "Inquiry",
}
"""Action kinds as users name them (紧急止付, 冻结, 延期, 解除, 号码停机, 号码复机, 资金返还,
查询)."""


def action_name(action: str) -> str:
    english = ACTION_NAMES.get(action)
    return _(english) if english else action


def kind_name(kind: str) -> str:
    english = KIND_NAMES.get(kind)
    return _(english) if english else kind


def local_time(ms: int, zone: str) -> Markup:
    """A <time> in the node's zone, with the UTC time as its title (shown on hover)."""
    if not ms:
        return Markup("")
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    local = moment.astimezone(ZoneInfo(zone))
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), utc, local.strftime("%Y-%m-%d %H:%M:%S")
    )


def yuan(minor: int) -> str:
    """An amount in fen shown in yuan with fen precision: 123456 -> ¥1,234.56."""
    sign = "-" if minor < 0 else ""
    whole, fen = divmod(abs(minor), 100)
    return f"{sign}¥{whole:,}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """'1,234.5' yuan -> 123450 fen; ValueError on anything else (more than 2 decimals)."""
    cleaned = text.strip().replace(",", "").replace("¥", "")
    whole, _dot, fraction = cleaned.partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 2:
        raise ValueError(f"{text!r} is not an amount in yuan with at most two decimals")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or 0)
