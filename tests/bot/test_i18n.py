"""Every text a user can read has its Turkish translation, and the catalogues compile."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, build_i18n, compile_catalogues

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "__": None, "N_": None}


def source_messages() -> set[str]:
    found: set[str] = set()
    for package in ("bot", "handler", "utils/alarms", "analysis"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / package, keywords=KEYWORDS, comment_tags=()
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_user_facing_text_is_translated_to_turkish() -> None:
    with (LOCALES_DIR / "tr" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = source_messages() - translated
    assert not missing, f"run `make locales-update` and translate: {sorted(missing)}"


def test_catalogues_compile_and_turkish_differs_from_english(tmp_path: Path) -> None:
    copy = tmp_path / "locales"
    for po in LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"):
        target = copy / po.relative_to(LOCALES_DIR)
        target.parent.mkdir(parents=True)
        target.write_bytes(po.read_bytes())
    assert len(compile_catalogues(copy)) == 2
    i18n = build_i18n(copy)
    hello = "I show Binance prices and your balances."
    assert i18n.gettext(hello, locale="tr") == "Binance fiyatlarını ve bakiyelerinizi gösteririm."
    assert i18n.gettext(hello, locale="en") == hello
    assert i18n.gettext(hello, locale="de") == hello  # an unknown language gets English
