"""The console's languages: gettext catalogues (Babel), chosen per user, Chinese by default.

The catalogues are committed as .po files and compiled in memory when first used, so a
fresh `pip install -e .` needs no build step; English is the source language.
"""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import cache
from importlib.resources import files
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES: Final = ("zh_CN", "en")
DEFAULT_LANGUAGE: Final = "zh_CN"
LANGUAGE_NAMES: Final = {"zh_CN": "简体中文", "en": "English"}

_current: ContextVar[str] = ContextVar("console_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of `language` (English: the source strings themselves)."""
    if language not in LANGUAGES or language == "en":
        return gettext.NullTranslations()
    po = files("gateway.console") / "locale" / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def set_language(language: str) -> None:
    """Use `language` for the rest of this request (its thread or task context)."""
    _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _current.get()


def gettext_(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)
