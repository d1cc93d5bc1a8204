"""Languages: English (the source text and the fallback) and Turkish, from gettext catalogues
in ``locales/``. ``make`` compiles them at install (``pybabel compile``); ``build_i18n`` also
compiles a catalogue whose ``.mo`` is missing or older than its ``.po``, so a checkout run any
other way still speaks Turkish."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ("DEFAULT_LOCALE", "LOCALES", "LOCALES_DIR", "build_i18n", "compile_catalogues")

LOCALES_DIR: Final = Path(__file__).resolve().parents[1] / "locales"
LOCALES: Final = ("en", "tr")
DEFAULT_LOCALE: Final = "en"
DOMAIN: Final = "messages"


def compile_catalogues(path: Path = LOCALES_DIR) -> list[Path]:
    """Write ``messages.mo`` next to every ``messages.po`` that is newer; returns those written."""
    written = []
    for po in sorted(path.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as target:
            write_mo(target, catalog)
        tmp.replace(mo)
        written.append(mo)
    return written


def build_i18n(path: Path = LOCALES_DIR) -> I18n:
    compile_catalogues(path)
    return I18n(path=path, default_locale=DEFAULT_LOCALE, domain=DOMAIN)


if __name__ == "__main__":  # python -m bot.i18n: what `make` runs after installing
    for mo in compile_catalogues():
        print(f"compiled {mo}")  # noqa: T201 - a build step's report
