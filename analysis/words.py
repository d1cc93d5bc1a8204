"""Numbers and times as the read-outs print them, and the gettext marker of ``analysis/``.

Texts of ``analysis/`` are ``N_``-marked (or ``_``-called) gettext message ids translated by
the ``gettext`` the caller passes in (the reader's language): ``analysis/`` imports no aiogram.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

__all__ = ("DASH", "N_", "Gettext", "ago_text", "number_text", "price_text", "time_text")

#: Translates a message id into the reader's language.
Gettext: TypeAlias = Callable[[str], str]
DASH: Final = "—"
_TWO_DECIMALS_FROM: Final = 100


def N_(text: str) -> str:  # gettext's marker: extracted here, translated where shown
    return text


def price_text(value: float | None) -> str:
    """A price to a useful precision, grouped: 2 decimals from 100, 4 from 1, else 8
    significant digits (``65,123.45``, ``1.2345``, ``0.00001234``)."""
    if value is None or not math.isfinite(value):
        return DASH
    size = abs(value)
    if size >= _TWO_DECIMALS_FROM:
        return f"{value:,.2f}"
    if size >= 1:
        return f"{value:,.4f}"
    if size == 0:
        return "0"
    places = min(12, 7 - math.floor(math.log10(size)))
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


def number_text(value: float | None, places: int = 1, *, signed: bool = False) -> str:
    """``value`` to ``places`` decimals (``+1.5`` when ``signed``); a dash for None or NaN."""
    if value is None or not math.isfinite(value):
        return DASH
    text = f"{value:+.{places}f}" if signed else f"{value:.{places}f}"
    return text.replace("-0." + "0" * places, "0." + "0" * places).replace(
        "+0." + "0" * places, "0." + "0" * places
    )


def time_text(moment: datetime, zone: ZoneInfo) -> str:
    """``2024-06-01 14:00 Europe/Istanbul``."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"


def ago_text(bars: int, _: Gettext) -> str:
    """``on the last candle``, ``1 bar ago``, ``3 bars ago``."""
    if bars == 0:
        return _("on the last candle")
    if bars == 1:
        return _("1 bar ago")
    return _("{bars} bars ago").format(bars=bars)
