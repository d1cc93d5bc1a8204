"""Replies as compact, aligned tables (HTML ``<pre>``), every value escaped.

Pure functions from the facade's results to text; the labels are translated by the caller's
locale (``aiogram.utils.i18n.gettext``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from aiogram.utils.i18n import gettext as _

from handler.text import escape

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
            notes.append(f"{escape(snap.symbol)}: {escape(snap.error)}")
    parts = [_table(rows, (False, True, True, True, True))] if len(rows) > 1 else []
    parts.extend(notes)
    return "\n".join(parts)


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
    """``/balance``: non-zero spot balances and the futures wallet, valued in USDT."""
    header = [_("ASSET"), _("AMOUNT"), _("USDT")]
    parts: list[str] = []
    for title, assets, part in (
        (_("Spot"), portfolio.spot, "spot"),
        (_("Futures wallet"), portfolio.futures, "futures"),
    ):
        parts.append(f"<b>{escape(title)}</b>")
        if part in portfolio.errors:
            parts.append(
                _("could not be fetched: {error}").format(error=escape(portfolio.errors[part]))
            )
        elif assets:
            parts.append(_table([header, *_asset_rows(assets)], (False, True, True)))
        else:
            parts.append(_("nothing held"))
    if "prices" in portfolio.errors:
        parts.append(
            _("USDT values are missing: {error}").format(error=escape(portfolio.errors["prices"]))
        )
    parts.append(_("Total ≈ {total} USDT").format(total=f"{portfolio.total_usdt:,.2f}"))
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
