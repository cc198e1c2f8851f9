"""Canonical forms for the identifiers agencies match on.

Blinded matching only finds a hit when both sides hash the same bytes, so every party must
turn "138 0013 8000", "+86 138-0013-8000" and "008613800138000" into one canonical value
before blinding. This module is that single definition. Validation errors never echo the
input: a rejected value is still personal data and must not leak into logs or reports.
"""

from __future__ import annotations

import datetime
import re
import string
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.cn import ric as stdnum_ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

__all__ = [
    "Identifier",
    "IdentifierKind",
    "InvalidIdentifier",
    "UnknownIdentifierKind",
    "canonical_input_of",
    "normalise",
    "upgrade_legacy_id_card",
]

MAX_RAW_LENGTH = 256
"""Longer inputs are rejected before any parsing: no real identifier comes close."""

# First two digits of GB/T 2260 administrative division codes, plus 81/82/83 used by the
# residence permits of Hong Kong, Macao and Taiwan residents. We deliberately do not check
# the full six-digit county code: stdnum's county table only starts in the 1980s, so it
# rejects genuine cards of people born before their county code was (re)assigned, and a
# false rejection here is a missed match.
_PROVINCE_CODES = frozenset(
    str(code)
    for code in (
        *range(11, 16),  # Beijing .. Inner Mongolia
        *range(21, 24),  # Liaoning .. Heilongjiang
        *range(31, 38),  # Shanghai .. Shandong
        *range(41, 47),  # Henan .. Hainan
        *range(50, 55),  # Chongqing .. Tibet
        *range(61, 66),  # Shaanxi .. Xinjiang
        71,  # Taiwan
        81,  # Hong Kong residents' residence permit
        82,  # Macao residents' residence permit
        83,  # Taiwan residents' residence permit
    )
)
_EARLIEST_BIRTH_YEAR = 1850

_SEPARATORS = re.compile(r"[\s\-]+")
_ASCII_DIGITS = frozenset(string.digits)
_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")


class UnknownIdentifierKind(ValueError):
    """The text does not name an identifier kind."""


class IdentifierKind(StrEnum):
    PHONE = "phone"
    ID_CARD = "id_card"
    BANK_CARD = "bank_card"
    BANK_ACCOUNT = "bank_account"

    @classmethod
    def parse(cls, text: str) -> IdentifierKind:
        """Parse a kind name, case-insensitively; "id-card" and "ID Card" also work."""
        key = _SEPARATORS.sub("_", text.strip()).lower()
        try:
            return cls(key)
        except ValueError:
            pass
        expected = ", ".join(k.value for k in cls)
        # Echo the text only if it cannot be an identifier: a CSV with swapped columns
        # would otherwise put a phone number into this message.
        shown = f" {text.strip()!r}" if re.fullmatch(r"[A-Za-z_ \-]{1,32}", text.strip()) else ""
        raise UnknownIdentifierKind(f"unknown identifier kind{shown}; expected one of: {expected}")


class InvalidIdentifier(ValueError):
    """A value that is not a valid identifier of its kind.

    The message names the kind and the reason only, never the value or any part of it.
    """

    def __init__(self, kind: IdentifierKind, reason: str) -> None:
        super().__init__(kind, reason)
        self.kind = kind
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.kind.value}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Identifier:
    """A validated identifier in canonical form.

    `value` is left out of repr() so that logging an Identifier does not log the person.
    """

    kind: IdentifierKind
    value: str = field(repr=False)

    def canonical_input(self) -> bytes:
        """The exact bytes every party blinds/hashes: kind, NUL, canonical value."""
        return canonical_input_of(self.kind.value, self.value)


def canonical_input_of(kind: str, value: str) -> bytes:
    """Kind, NUL, canonical value: what `Identifier.canonical_input` gives, from a stored
    record's columns without building an Identifier (an index build does it per record)."""
    return kind.encode() + b"\x00" + value.encode()


def normalise(kind: IdentifierKind | str, raw: str, *, default_region: str = "CN") -> Identifier:
    """Validate `raw` as an identifier of `kind` and return its canonical form.

    `default_region` (ISO 3166 alpha-2, any case) is the country assumed for phone numbers
    written without a country code.

    Raises InvalidIdentifier (whose message never contains `raw`) if it is not valid,
    UnknownIdentifierKind if `kind` is a string that names no kind, and ValueError if
    `default_region` is not a region phonenumbers knows (a configuration error, checked for
    every kind so that it shows up on the first row rather than as every phone rejected).
    """
    if not isinstance(kind, IdentifierKind):
        kind = IdentifierKind.parse(kind)
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unsupported default phone region {default_region!r}")
    if not isinstance(raw, str):
        raise InvalidIdentifier(kind, "value is not text")
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidIdentifier(kind, "value is too long")
    # NFKC folds full-width digits, letters and hyphens (common in Chinese input) to ASCII.
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise InvalidIdentifier(kind, "value is empty")
    match kind:
        case IdentifierKind.PHONE:
            value = _phone(text, region)
        case IdentifierKind.ID_CARD:
            value = _id_card(text)
        case IdentifierKind.BANK_CARD:
            value = _bank_card(text)
        case IdentifierKind.BANK_ACCOUNT:
            value = _bank_account(text)
    return Identifier(kind, value)


def _is_ascii_digits(text: str) -> bool:
    return bool(text) and all(c in _ASCII_DIGITS for c in text)


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", text)


# --- phone -------------------------------------------------------------------------------

_PHONE_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def _phone(text: str, default_region: str) -> str:
    kind = IdentifierKind.PHONE
    # phonenumbers maps letters to keypad digits ("1-800-FLOWERS") and accepts extensions;
    # for matching people both are more likely typos than intent, so refuse them.
    if _ASCII_LETTERS.search(text):
        raise InvalidIdentifier(kind, "contains letters")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        reason = _PHONE_PARSE_REASONS.get(exc.error_type, "not a phone number")
        raise InvalidIdentifier(kind, reason) from None
    if number.extension:
        raise InvalidIdentifier(kind, "extensions are not supported")
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(kind, "not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- PRC resident identity card -----------------------------------------------------------


def _id_card(text: str) -> str:
    kind = IdentifierKind.ID_CARD
    number = _compact(text).upper()
    if len(number) == 15:
        if not _is_ascii_digits(number):
            raise InvalidIdentifier(kind, "legacy 15-character number must be all digits")
        number = upgrade_legacy_id_card(number)
    elif len(number) == 18:
        if not _is_ascii_digits(number[:17]) or not (
            number[17] == "X" or number[17] in _ASCII_DIGITS
        ):
            raise InvalidIdentifier(kind, "must be 17 digits followed by a digit or X")
        if number[17] != stdnum_ric.calc_check_digit(number):
            raise InvalidIdentifier(kind, "check digit does not match")
    else:
        raise InvalidIdentifier(kind, "must be 18 characters, or 15 digits for a legacy number")
    if number[:2] not in _PROVINCE_CODES:
        raise InvalidIdentifier(kind, "unknown province code")
    try:
        born = stdnum_ric.get_birth_date(number)
    except ValidationError:
        raise InvalidIdentifier(kind, "birth date is not a valid date") from None
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidIdentifier(kind, "birth date is implausibly early")
    if born > datetime.date.today():
        raise InvalidIdentifier(kind, "birth date is in the future")
    return number


def upgrade_legacy_id_card(number: str) -> str:
    """Turn a 15-digit (pre-1999) ID number into its 18-digit form.

    GB 11643-1999: insert the century "19" before the two-digit birth year and append the
    MOD 11-2 check digit. Only the structure is converted; normalise() does the validation.
    """
    if len(number) != 15 or not _is_ascii_digits(number):
        raise InvalidIdentifier(IdentifierKind.ID_CARD, "legacy number must be 15 digits")
    body = number[:6] + "19" + number[6:]
    # stdnum computes the check digit of a full 18-character number; the placeholder
    # last character is ignored.
    return body + stdnum_ric.calc_check_digit(body + "0")


# --- bank card ----------------------------------------------------------------------------


def _bank_card(text: str) -> str:
    kind = IdentifierKind.BANK_CARD
    number = _compact(text)
    if not _is_ascii_digits(number):
        raise InvalidIdentifier(kind, "must contain only digits, spaces and dashes")
    if not 12 <= len(number) <= 19:
        raise InvalidIdentifier(kind, "must be 12 to 19 digits")
    if not stdnum_luhn.is_valid(number):
        raise InvalidIdentifier(kind, "Luhn check digit does not match")
    return number


# --- bank account -------------------------------------------------------------------------

_IBAN_REASONS: dict[type[ValidationError], str] = {
    InvalidChecksum: "IBAN check digits do not match",
    InvalidLength: "IBAN has the wrong length for its country",
    InvalidFormat: "IBAN does not have the format of its country",
    InvalidComponent: "IBAN country code is not known",
}


def _bank_account(text: str) -> str:
    kind = IdentifierKind.BANK_ACCOUNT
    number = _compact(text).upper()
    if number[:2].isalpha():
        if not _IBAN_SHAPE.fullmatch(number):
            raise InvalidIdentifier(kind, "not a valid IBAN")
        try:
            return str(stdnum_iban.validate(number))
        except ValidationError as exc:
            reason = next(
                (r for cls, r in _IBAN_REASONS.items() if isinstance(exc, cls)),
                "not a valid IBAN",
            )
            raise InvalidIdentifier(kind, reason) from None
    if not _is_ascii_digits(number):
        raise InvalidIdentifier(kind, "must be an IBAN or contain only digits, spaces and dashes")
    if not 6 <= len(number) <= 32:
        raise InvalidIdentifier(kind, "domestic account number must be 6 to 32 digits")
    return number
