"""Synthetic data: realistic shapes, all valid, deterministic per seed, and fast."""

from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from stdnum import luhn
from stdnum.cn import ric

from gateway.identifiers import IdentifierKind, normalise
from gateway.ingest_csv import read_records
from gateway.synthetic import (
    DIVISION_CODES,
    bank_card_number,
    domestic_account_number,
    generate_bank_records,
    generate_carrier_records,
    luhn_check_digit,
    mobile_number,
    mod11_2_check_digit,
    resident_id,
    write_csv,
)


def test_check_digit_helpers_on_published_examples() -> None:
    assert mod11_2_check_digit("11010519491231002") == "X"  # GB 11643-1999 example
    assert mod11_2_check_digit("13050319670401001") == "6"
    assert luhn_check_digit("411111111111111") == "1"  # 4111 1111 1111 1111
    assert luhn_check_digit("7992739871") == "3"  # the classic Luhn worked example
    with pytest.raises(ValueError):
        mod11_2_check_digit("1101051949123100")


def test_mod11_2_agrees_with_stdnum() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        body = f"{rng.randrange(10**17):017d}"
        assert mod11_2_check_digit(body) == ric.calc_check_digit(body + "0")


def test_luhn_agrees_with_stdnum() -> None:
    rng = random.Random(10)
    for _ in range(2000):
        body = f"{rng.randrange(10 ** rng.randint(1, 18))}"
        assert luhn_check_digit(body) == luhn.calc_check_digit(body)
    for bad in ("", "4111 1111", "411111111111111x", "\uff14\uff11\uff11\uff11"):
        with pytest.raises(ValueError):
            luhn_check_digit(bad)


def test_resident_ids_are_realistic_and_valid() -> None:
    rng = random.Random(2)
    for _ in range(2000):
        number = resident_id(rng)
        assert len(number) == 18
        assert number[:6] in DIVISION_CODES
        born = ric.get_birth_date(number)
        assert datetime.date(1950, 1, 1) <= born <= datetime.date(2005, 12, 31)
        assert number[14:17] != "000"
        assert number[17] == ric.calc_check_digit(number)
        assert normalise(IdentifierKind.ID_CARD, number).value == number


def test_mobile_numbers_are_valid_cn_mobiles() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        number = mobile_number(rng)
        assert len(number) == 14
        assert number[:4] == "+861" and number[4] in "3456789"
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed)
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
        assert normalise(IdentifierKind.PHONE, number).value == number


def test_bank_card_numbers() -> None:
    rng = random.Random(4)
    lengths: Counter[int] = Counter()
    for _ in range(2000):
        number = bank_card_number(rng)
        lengths[len(number)] += 1
        assert number.startswith("62")
        assert luhn.is_valid(number)
        assert normalise(IdentifierKind.BANK_CARD, number).value == number
    assert set(lengths) == {16, 19}
    assert len(bank_card_number(rng, 19)) == 19
    with pytest.raises(ValueError):
        bank_card_number(rng, 17)


def test_domestic_account_numbers() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        number = domestic_account_number(rng)
        assert 12 <= len(number) <= 22 and number.isdigit() and number[0] != "0"
        assert normalise(IdentifierKind.BANK_ACCOUNT, number).value == number


def test_bank_records() -> None:
    rows = generate_bank_records(2000, seed=6)
    assert len(rows) == 2000
    assert {r.kind for r in rows} == {IdentifierKind.BANK_CARD, IdentifierKind.BANK_ACCOUNT}
    assert len({r.value for r in rows}) == len(rows)
    assert len({r.attributes["record_id"] for r in rows}) == len(rows)
    assert {r.attributes["status"] for r in rows} == {"ACTIVE", "DORMANT"}
    for row in rows:
        assert set(row.attributes) == {"record_id", "status", "opened_on", "holder_name"}
        datetime.date.fromisoformat(row.attributes["opened_on"])
        assert normalise(row.kind, row.value).value == row.value


def test_carrier_records_pair_phone_and_id_card() -> None:
    rows = generate_carrier_records(1000, seed=7)
    assert len(rows) == 2000
    for phone, id_card in zip(rows[::2], rows[1::2], strict=True):
        assert phone.kind is IdentifierKind.PHONE
        assert id_card.kind is IdentifierKind.ID_CARD
        assert phone.attributes == id_card.attributes
        assert set(phone.attributes) == {"record_id", "status", "activated_on", "holder_name"}
        assert phone.attributes["status"] in {"ACTIVE", "SUSPENDED", "CANCELLED"}
        activated = datetime.date.fromisoformat(phone.attributes["activated_on"])
        born = ric.get_birth_date(id_card.value)
        assert activated >= born.replace(year=born.year + 18, day=min(born.day, 28))
        assert normalise(phone.kind, phone.value).value == phone.value
        assert normalise(id_card.kind, id_card.value).value == id_card.value
    assert len({r.value for r in rows}) == len(rows)
    assert len({r.attributes["record_id"] for r in rows}) == 1000


def test_deterministic_per_seed() -> None:
    assert generate_bank_records(500, seed=1) == generate_bank_records(500, seed=1)
    assert generate_carrier_records(500, seed=1) == generate_carrier_records(500, seed=1)
    assert generate_bank_records(500, seed=1) != generate_bank_records(500, seed=2)
    assert generate_carrier_records(500, seed=1) != generate_carrier_records(500, seed=2)
    # A prefix of a longer run is the shorter run.
    assert generate_bank_records(1000, seed=1)[:500] == generate_bank_records(500, seed=1)


_OTHER_PROCESS = """
import sys
from gateway.synthetic import generate_bank_records, generate_carrier_records
for row in generate_bank_records(200, seed=11) + generate_carrier_records(200, seed=11):
    print(row.kind.value, row.value, *sorted(row.attributes.items()), file=sys.stdout)
"""


def test_deterministic_across_processes() -> None:
    # Two parties generating "the same" demo data in separate processes must agree, so
    # nothing may depend on str hashing (set iteration order, hash()-based seeds).
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
        timeout=60,
    ).stdout
    here = [
        f"{row.kind.value} {row.value} {' '.join(map(str, sorted(row.attributes.items())))}"
        for row in generate_bank_records(200, seed=11) + generate_carrier_records(200, seed=11)
    ]
    assert out.splitlines() == here


def test_write_csv_round_trips_through_ingest(tmp_path: Path) -> None:
    rows = generate_bank_records(300, seed=8) + generate_carrier_records(300, seed=8)
    path = tmp_path / "records.csv"
    assert write_csv(rows, path) == 900
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header == "kind,value,record_id,status,opened_on,holder_name,activated_on"
    result = read_records(path)
    assert result.rejected == []
    assert [(r.identifier.kind, r.identifier.value) for r in result.records] == [
        (r.kind, r.value) for r in rows
    ]
    first_carrier = result.records[300].attributes
    assert first_carrier["opened_on"] == ""
    assert first_carrier["activated_on"] == rows[300].attributes["activated_on"]
