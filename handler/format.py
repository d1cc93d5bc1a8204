"""Replies as compact, aligned tables (HTML ``<pre>``), every value escaped.

Pure functions from the facade's results to text; the labels are translated by the caller's
locale (``aiogram.utils.i18n.gettext``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from aiogram.utils.i18n import gettext as _

from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from utils.binance.binance_a import AssetValue, Portfolio, PriceSnapshot

__all__ = ("fmt_amount", "fmt_price", "format_portfolio", "format_prices", "format_stats")

_DASH = "—"
_TWO_DECIMALS_FROM: Final = 100


def fmt_price(value: Decimal | None) -> str:
    """A price to a useful precision: 2 decimals from 100, 4 from 1, else 8 significant."""
    if value is None:
        return _DASH
    if abs(value) >= _TWO_DECIMALS_FROM:
        return f"{value:.2f}"
    if abs(value) >= 1:
        return f"{value:.4f}"
    return f"{value:.8f}".rstrip("0").rstrip(".") or "0"


def fmt_amount(value: Decimal) -> str:
    """An asset amount without trailing zeros."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(value: Decimal | None, digits: int) -> str:
    return _DASH if value is None else f"{value:+.{digits}f}%"


def _table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """Rows padded to aligned columns (left or right), inside ``<pre>``."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        " ".join(
            (cell.rjust(w) if r else cell.ljust(w))
            for cell, w, r in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in rows
    ]
    return "<pre>" + escape("\n".join(lines)) + "</pre>"


def format_prices(snapshots: Mapping[str, PriceSnapshot]) -> str:
    """``/price``: symbol, spot price, futures mark, funding rate and 24 h change."""
    rows: list[list[str]] = [[_("SYMBOL"), _("SPOT"), _("MARK"), _("FUNDING"), _("24H")]]
    notes: list[str] = []
    for snap in snapshots.values():
        if snap.unknown:
            if snap.suggestions:
                notes.append(
                    _("unknown symbol {symbol} — did you mean {suggestions}?").format(
                        symbol=escape(snap.symbol), suggestions=escape(", ".join(snap.suggestions))
                    )
                )
            else:
                notes.append(
                    _("unknown symbol {symbol} — pairs are written like BTCUSDT").format(
                        symbol=escape(snap.symbol)
                    )
                )
            continue
        rows.append(
            [
                snap.symbol,
                fmt_price(snap.price),
                fmt_price(snap.mark_price),
                _pct(None if snap.funding_rate is None else snap.funding_rate * 100, 4),
                _pct(snap.change_24h_pct, 2),
            ]
        )
        if snap.error:
            notes.append(_missing_part(snap))
    parts = [_table(rows, (False, True, True, True, True))] if len(rows) > 1 else []
    parts.extend(notes)
    return "\n".join(parts)


def _missing_part(snap: PriceSnapshot) -> str:
    """What part of a symbol's row could not be read, in words (Binance's error text is for
    the log): a field left empty despite ``error`` is the part that failed."""
    symbol = escape(snap.symbol)
    if snap.price is None and snap.mark_price is not None:
        return _("{symbol}: the spot price could not be read right now").format(symbol=symbol)
    if snap.mark_price is None and snap.price is not None:
        return _("{symbol}: the futures mark price could not be read right now").format(
            symbol=symbol
        )
    return _("{symbol}: some figures could not be read right now").format(symbol=symbol)


def _asset_rows(assets: Sequence[AssetValue]) -> list[list[str]]:
    return [
        [
            a.asset,
            fmt_amount(a.amount),
            _DASH if a.value_usdt is None else f"{a.value_usdt:,.2f}",
        ]
        for a in sorted(assets, key=lambda a: a.value_usdt or Decimal(0), reverse=True)
    ]


def format_portfolio(portfolio: Portfolio) -> str:
    """``/balance``: non-zero spot balances and the futures wallet, valued in USDT.

    A part that could not be read is named in words first (never Binance's error text), and
    the total then says it covers only what could be read; nothing read, no total.
    """
    spot_missing, futures_missing = "spot" in portfolio.errors, "futures" in portfolio.errors
    parts: list[str] = []
    if spot_missing and futures_missing:
        return _(
            "Neither your spot nor your futures balances could be read right now. "
            "Please try /balance again in a minute."
        )
    if spot_missing:
        parts.append(_("Spot balances could not be read right now; futures only:"))
    elif futures_missing:
        parts.append(_("Futures balances could not be read right now; spot only:"))
    header = [_("ASSET"), _("AMOUNT"), _("USDT")]
    for title, assets, missing in (
        (_("Spot"), portfolio.spot, spot_missing),
        (_("Futures wallet"), portfolio.futures, futures_missing),
    ):
        if missing:
            continue
        parts.append(f"<b>{escape(title)}</b>")
        if assets:
            parts.append(_table([header, *_asset_rows(assets)], (False, True, True)))
        else:
            parts.append(_("nothing held"))
    unpriced = sorted(
        {a.asset for a in (*portfolio.spot, *portfolio.futures) if a.value_usdt is None}
    )
    if "prices" in portfolio.errors and unpriced:
        parts.append(_("USDT prices could not be read right now, so only stablecoins are valued."))
    elif unpriced:
        parts.append(
            _("No USDT price for {assets}; not counted in the total.").format(
                assets=escape(", ".join(unpriced))
            )
        )
    total = f"{portfolio.total_usdt:,.2f}"
    if spot_missing or futures_missing or unpriced:
        parts.append(_("Total of what could be read ≈ {total} USDT").format(total=total))
    else:
        parts.append(_("Total ≈ {total} USDT").format(total=total))
    return "\n".join(parts)


def format_stats(metrics: Mapping[str, Any], delivery: Mapping[str, Any], uptime_s: float) -> str:
    """``/stats``: requests, weight per pool, cache hit rate, breakers, streams, queue, uptime."""
    http = metrics.get("http", {})
    cache = metrics.get("cache", {})
    hits, misses = int(cache.get("hits", 0)), int(cache.get("misses", 0))
    hit_rate = f"{hits / (hits + misses):.0%}" if hits + misses else _DASH
    pools = [
        [str(p["pool"]), f"{p['used']}/{p['limit']}", f"{p['used'] / p['limit']:.0%}"]
        for p in metrics.get("pools", ())
        if p.get("limit")
    ]
    ws = metrics.get("ws", {})
    breakers = ", ".join(f"{m} {s}" for m, s in metrics.get("breakers", {}).items()) or _DASH
    hours, rest = divmod(int(uptime_s), 3600)
    lines = [
        f"<b>{escape(_('Bot statistics'))}</b>",
        _("Uptime: {uptime}").format(uptime=f"{hours}h {rest // 60:02d}m {rest % 60:02d}s"),
        _("Binance requests: {total}").format(total=http.get("total_requests", 0)),
        _("Cache hit rate: {rate} ({hits} hits, {misses} misses)").format(
            rate=hit_rate, hits=hits, misses=misses
        ),
        _("Breakers: {states}").format(states=escape(breakers)),
        _("Streams: {connections} connections, {streams} streams, {reconnects} reconnects").format(
            connections=ws.get("connections", 0),
            streams=ws.get("streams", 0),
            reconnects=ws.get("reconnects", 0),
        ),
        _("Delivery queue: {depth} waiting, {parked} parked, {dead} undeliverable").format(
            depth=delivery.get("depth", 0),
            parked=delivery.get("parked", 0),
            dead=delivery.get("dead", 0),
        ),
    ]
    if pools:
        lines.append(_("Weight used per pool:"))
        lines.append(_table([[_("POOL"), _("USED"), "%"], *pools], (False, True, True)))
    return "\n".join(lines)
