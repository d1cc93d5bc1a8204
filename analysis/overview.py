"""``/ta SYMBOL all``: one row per timeframe (15m, 1h, 4h, 1d), each indicator's vote and the
total (``analysis.scoring``), in one monospaced table.

A timeframe that could not be read (too little history for a new listing, Binance failing
for that one request) keeps its row and says why in words; the others are shown as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from analysis.scoring import Verdict, Vote, score
from analysis.words import N_, number_text, price_text
from utils.binance.binance_a import Market
from utils.text import escape

if TYPE_CHECKING:
    from analysis.readout import Readout
    from analysis.words import Gettext

__all__ = ("TIMEFRAMES", "VERDICT_WORDS", "Row", "overview_text")

#: The timeframes of ``/ta SYMBOL all``, shortest first.
TIMEFRAMES: Final = ("15m", "1h", "4h", "1d")
_GLYPH: Final = {Vote.BUY: "▲", Vote.NEUTRAL: "·", Vote.SELL: "▼"}
#: The verdicts as users read them (``N_`` message ids).
VERDICT_WORDS: Final = {
    Verdict.STRONG_BUY: N_("strong buy"),
    Verdict.BUY: N_("buy"),
    Verdict.NEUTRAL: N_("neutral"),
    Verdict.SELL: N_("sell"),
    Verdict.STRONG_SELL: N_("strong sell"),
}
_HEADERS: Final = ("RSI", "MACD", "E20", "E50", "E200", "%B", "Sto")  # scoring.VOTERS, short


@dataclass(frozen=True, slots=True)
class Row:
    """One timeframe: its read-out, or the reason (already in the reader's words) it has none."""

    interval: str
    readout: Readout | None
    problem: str = ""


def overview_text(symbol: str, market: Market, rows: list[Row], _: Gettext) -> str:
    """The whole ``/ta SYMBOL all`` answer."""
    where = _("futures") if market is Market.FUTURES else _("spot")
    per_timeframe = _("votes per timeframe")
    lines = [f"<b>{escape(symbol)}</b> · {where} · {per_timeframe}", ""]
    widths = [max(len(h), 1) for h in _HEADERS]
    table = ["    " + " ".join(h.rjust(w) for h, w in zip(_HEADERS, widths, strict=True))]
    table[0] += "  " + _("total")
    table.extend(_row_line(row, widths, _) for row in rows)
    lines.append(f"<pre>{escape(chr(10).join(table))}</pre>")
    closes = [f"{r.interval} {price_text(r.readout.close)}" for r in rows if r.readout is not None]
    if closes:
        lines.append(escape(_("Last closed candles: {closes}").format(closes=" · ".join(closes))))
    lines.append(
        escape(
            _(
                "▲ buy, · neutral, ▼ sell. RSI, MACD, EMA 20/50/200, Bollinger %B and "
                "Stochastic vote on the last closed candle; the rules: /help ta"
            )
        )
    )
    return "\n".join(lines)


def _row_line(row: Row, widths: list[int], _: Gettext) -> str:
    name = row.interval.ljust(3)
    if row.readout is None:
        return f"{name} {row.problem}"
    result = score(row.readout)
    glyphs = " ".join(
        _GLYPH[vote].rjust(w) for (_name, vote), w in zip(result.votes, widths, strict=True)
    )
    total = number_text(result.total, 0, signed=True) if result.total else "0"
    return f"{name} {glyphs}  {total} {_(VERDICT_WORDS[result.verdict])}"
