"""Deterministic synthetic identifiers and responder records for demos, tests and benchmarks.

Nothing here is real personal data, but everything is shaped like it: the same seed always
gives the same rows, and every value passes gateway.identifiers.normalise. Check digits are
computed here independently of identifiers.py (GB 11643 MOD 11-2 and Luhn written out), so
tests comparing the two catch a bug in either.
"""

from __future__ import annotations

import csv
import datetime
import functools
import operator
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from gateway.identifiers import IdentifierKind

__all__ = [
    "SyntheticRow",
    "bank_card_number",
    "domestic_account_number",
    "generate_bank_records",
    "generate_carrier_records",
    "iter_bank_records",
    "luhn_check_digit",
    "mobile_number",
    "mod11_2_check_digit",
    "resident_id",
    "write_csv",
]


class SyntheticRow(NamedTuple):
    """One CSV row: identifier kind, value, and the responder's attributes for it."""

    kind: IdentifierKind
    value: str
    attributes: dict[str, str]


# Real GB/T 2260 county-level codes (urban districts of large cities).
DIVISION_CODES: tuple[str, ...] = (
    "110101",  # Beijing, Dongcheng
    "110105",  # Beijing, Chaoyang
    "110108",  # Beijing, Haidian
    "120101",  # Tianjin, Heping
    "310101",  # Shanghai, Huangpu
    "310104",  # Shanghai, Xuhui
    "310115",  # Shanghai, Pudong
    "320102",  # Nanjing, Xuanwu
    "330106",  # Hangzhou, Xihu
    "350203",  # Xiamen, Siming
    "370202",  # Qingdao, Shinan
    "410105",  # Zhengzhou, Jinshui
    "420106",  # Wuhan, Wuchang
    "430104",  # Changsha, Yuelu
    "440106",  # Guangzhou, Tianhe
    "440305",  # Shenzhen, Nanshan
    "500103",  # Chongqing, Yuzhong
    "510107",  # Chengdu, Wuhou
    "530102",  # Kunming, Wuhua
    "610113",  # Xi'an, Yanta
)

# Mobile prefixes of the three big carriers (and their MVNO ranges) that libphonenumber
# treats as valid for any eight trailing digits.
MOBILE_PREFIXES: tuple[str, ...] = (
    *(str(p) for p in range(130, 140)),
    "145",
    "147",
    *("150", "151", "152", "153", "155", "156", "157", "158", "159"),
    "166",
    *("170", "171", "173", "175", "176", "177", "178"),
    *(str(p) for p in range(180, 190)),
    *("191", "193", "195", "196", "197", "198", "199"),
)

# Six-digit issuer prefixes in UnionPay's 62 range, shaped like the big domestic banks'.
UNIONPAY_BINS: tuple[str, ...] = (
    "621226",
    "621700",
    "622202",
    "622208",
    "622588",
    "622700",
    "622848",
    "623058",
    "625911",
    "628288",
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅文斌浩宇欣怡子轩"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)

_BIRTH_FIRST = datetime.date(1950, 1, 1).toordinal()
_BIRTH_LAST = datetime.date(2005, 12, 31).toordinal()
_SERVICE_FIRST = datetime.date(2003, 1, 1).toordinal()
_SERVICE_LAST = datetime.date(2024, 12, 31).toordinal()
_ADULT_DAYS = 18 * 365 + 5


def mod11_2_check_digit(body: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a resident ID number."""
    if len(body) != 17 or not (body.isascii() and body.isdigit()):
        raise ValueError("resident ID body must be 17 digits")
    return _ID_CHECK[sum(map(operator.mul, map(int, body), _ID_WEIGHTS)) % 11]


def luhn_check_digit(body: str) -> str:
    """The digit that makes `body` + digit pass the Luhn (mod 10) check."""
    if not (body.isascii() and body.isdigit()):
        raise ValueError("Luhn body must be ASCII digits")
    total = 0
    for i, d in enumerate(reversed(body)):
        n = ord(d) - 48
        total += _LUHN_DOUBLED[n] if i % 2 == 0 else n
    return str(-total % 10)


def _ymd(ordinal: int) -> str:
    d = datetime.date.fromordinal(ordinal)
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _iso(ordinal: int) -> str:
    return datetime.date.fromordinal(ordinal).isoformat()


def _resident_id(rng: random.Random, birth_ordinal: int) -> str:
    body = rng.choice(DIVISION_CODES) + _ymd(birth_ordinal) + f"{rng.randrange(1, 1000):03d}"
    return body + mod11_2_check_digit(body)


def resident_id(rng: random.Random) -> str:
    """An 18-character resident ID: real division code, birth 1950-2005, valid check digit."""
    return _resident_id(rng, rng.randint(_BIRTH_FIRST, _BIRTH_LAST))


def mobile_number(rng: random.Random) -> str:
    """A mainland mobile number in E.164, e.g. +8613812345678."""
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(100_000_000):08d}"


def bank_card_number(rng: random.Random, length: int | None = None) -> str:
    """A Luhn-valid 16- or 19-digit card number with a UnionPay-like 62 prefix."""
    if length is None:
        length = 16 if rng.random() < 0.7 else 19
    if length not in (16, 19):
        raise ValueError("UnionPay card numbers are 16 or 19 digits")
    middle = length - 7
    body = rng.choice(UNIONPAY_BINS) + f"{rng.randrange(10**middle):0{middle}d}"
    return body + luhn_check_digit(body)


def domestic_account_number(rng: random.Random) -> str:
    """A domestic settlement account number: 12 to 22 digits, no leading zero."""
    length = rng.choice((12, 15, 17, 18, 19, 20, 22))
    return str(rng.randrange(10 ** (length - 1), 10**length))


def _name(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) if rng.random() < 0.35 else rng.choice(_GIVEN) + rng.choice(_GIVEN)
    return rng.choice(_SURNAMES) + given


def _fresh(seen: set[str], make: Callable[[], str]) -> str:
    """A value from `make` not already in `seen` (and now added to it)."""
    value = make()
    while value in seen:
        value = make()
    seen.add(value)
    return value


def generate_bank_records(n: int, seed: int) -> list[SyntheticRow]:
    """`n` bank records: about 60% card numbers, 40% account numbers, one row each.

    Attributes: record_id, status (ACTIVE or DORMANT), opened_on (ISO date), holder_name.
    """
    return list(iter_bank_records(n, seed))


def iter_bank_records(n: int, seed: int) -> Iterator[SyntheticRow]:
    """The rows of `generate_bank_records(n, seed)`, one at a time (10M do not fit a list)."""
    rng = random.Random(f"bank:{seed}")
    seen: set[str] = set()
    for i in range(n):
        if rng.random() < 0.6:
            kind = IdentifierKind.BANK_CARD
            value = _fresh(seen, lambda: bank_card_number(rng))
        else:
            kind = IdentifierKind.BANK_ACCOUNT
            value = _fresh(seen, lambda: domestic_account_number(rng))
        attributes = {
            "record_id": f"B{i + 1:08d}",
            "status": "ACTIVE" if rng.random() < 0.85 else "DORMANT",
            "opened_on": _iso(rng.randint(_SERVICE_FIRST, _SERVICE_LAST)),
            "holder_name": _name(rng),
        }
        yield SyntheticRow(kind, value, attributes)


def generate_carrier_records(n: int, seed: int) -> list[SyntheticRow]:
    """`n` subscriptions, two rows each sharing a record_id: the phone, then the ID card.

    Attributes: record_id, status (ACTIVE, SUSPENDED or CANCELLED), activated_on (ISO date,
    after the subscriber's 18th birthday), holder_name.
    """
    rng = random.Random(f"carrier:{seed}")
    seen_phones: set[str] = set()
    seen_ids: set[str] = set()
    rows: list[SyntheticRow] = []
    for i in range(n):
        phone = _fresh(seen_phones, lambda: mobile_number(rng))
        born = rng.randint(_BIRTH_FIRST, _BIRTH_LAST)
        id_card = _fresh(seen_ids, functools.partial(_resident_id, rng, born))
        first = max(_SERVICE_FIRST, born + _ADULT_DAYS)
        roll = rng.random()
        attributes = {
            "record_id": f"C{i + 1:08d}",
            "status": "ACTIVE" if roll < 0.8 else "SUSPENDED" if roll < 0.9 else "CANCELLED",
            "activated_on": _iso(rng.randint(first, _SERVICE_LAST)),
            "holder_name": _name(rng),
        }
        rows.append(SyntheticRow(IdentifierKind.PHONE, phone, attributes))
        rows.append(SyntheticRow(IdentifierKind.ID_CARD, id_card, dict(attributes)))
    return rows


def write_csv(rows: Iterable[SyntheticRow], path: str | os.PathLike[str]) -> int:
    """Write rows in the ingest CSV format (kind,value,<attributes...>); return the count.

    Attribute columns are the union of all rows' attribute names, in first-seen order.
    """
    rows = list(rows)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row.attributes))
    header = ["kind", "value", *columns]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(
                [row.kind.value, row.value, *(row.attributes.get(c, "") for c in columns)]
            )
    return len(rows)
