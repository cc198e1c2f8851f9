"""How the console shows amounts, times and identifier kinds, and its catalogues."""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

import gateway.console as package
from gateway.console import formatting
from gateway.console.i18n import set_language, translations

PO = Path(package.__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"


def test_amounts_are_yuan_with_fen_precision() -> None:
    assert formatting.yuan(123456) == "¥1,234.56"
    assert formatting.yuan(5) == "¥0.05"
    assert formatting.yuan(-100) == "-¥1.00"
    assert formatting.parse_yuan("1,234.5") == 123450
    assert formatting.parse_yuan("5000") == 500000
    for bad in ("1.234", "-1", "abc", "", "1e3"):
        try:
            formatting.parse_yuan(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_times_show_in_the_node_s_zone_with_utc_on_hover() -> None:
    # 2026-01-01T00:00:00Z is 08:00 in Shanghai (UTC+8, no daylight saving).
    shown = str(formatting.local_time(1767225600000, "Asia/Shanghai"))
    assert ">2026-01-01 08:00:00</time>" in shown
    assert 'title="2026-01-01 00:00:00 UTC"' in shown
    assert formatting.local_time(0, "Asia/Shanghai") == ""


def test_identifier_kinds_are_named_as_users_name_them() -> None:
    set_language("zh_CN")
    names = [formatting.kind_name(k) for k in ("id_card", "phone", "bank_card", "bank_account")]
    assert names == ["身份证号", "手机号", "银行卡号", "账号"]
    set_language("en")
    assert formatting.kind_name("phone") == "Phone number"


def test_every_message_has_its_chinese_and_the_catalogue_compiles_without_a_build_step() -> None:
    with PO.open("rb") as source:
        catalog = read_po(source, locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    assert translations("zh_CN").gettext("Log in") == "登录"


def test_actions_are_named_as_users_name_them() -> None:
    set_language("zh_CN")
    names = [
        formatting.action_name(a)
        for a in ("STOP_PAYMENT", "FREEZE", "EXTEND", "RELEASE", "SUSPEND_NUMBER", "RESTORE_NUMBER")
    ]
    assert names == ["紧急止付", "冻结", "延期", "解除", "号码停机", "号码复机"]
    set_language("en")
    assert formatting.action_name("STOP_PAYMENT") == "Stop-payment"


def test_a_translated_value_from_outside_is_escaped_not_rendered_as_markup() -> None:
    """Templates translate values that peers choose (a state, a reason): `_(value)` must
    print them as text, while a translation's own interpolated values are escaped too."""
    from gateway.console.templating import environment

    env = environment("Asia/Shanghai")
    page = env.from_string("<p>{{ _(reason) }}</p><p>{{ _('%(n)s entries', n=reason) }}</p>")
    html = page.render(reason='<img src=x onerror="alert(1)">')
    assert "<img" not in html
    assert html.count("&lt;img src=x onerror=&#34;alert(1)&#34;&gt;") == 2
