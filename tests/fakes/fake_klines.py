"""The fake exchange's candles: one source per (market, symbol, interval) on the fake's clock,
read by the REST klines (``FakeMarket.klines``) and by the kline streams (``FakeBinanceWS``
given ``candles=``), so a candle the stream closed is the candle REST lists, field for field.

Before the fake started, each series follows a fixed wave ending at the symbol's first price.
From then on a candle follows the prices set (``set_price``), at the times they were set: its
open is the previous close, its close the price at its close time (the current price while it
is open), its high and low span the prices in between. A closed candle never changes.

A test may instead give a (market, symbol, interval) a series of its own (``serve_series``,
REST only): the candles that closed last are the series' rows, a missing row is a candle
Binance did not list (a gap), there is no candle before the series (a listing), the
closed candles after it stay at its last close with no volume, and the forming candle runs
from that close to the symbol's current price.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.fakes.fake_market import FakeMarket

__all__ = ("KLINE_INTERVALS_S", "FakeCandles", "Ohlcv", "kline_interval_ms")

_DAY = 86400
#: Kline interval -> seconds; ``1M`` is taken as 30 days.
KLINE_INTERVALS_S: dict[str, int] = {
    "1s": 1,
    **{f"{n}m": n * 60 for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": n * 3600 for n in (1, 2, 4, 6, 8, 12)},
    **{"1d": _DAY, "3d": 3 * _DAY, "1w": 7 * _DAY, "1M": 30 * _DAY},
}
_WEEK_OFFSET_MS = 4 * 86_400_000  # the epoch was a Thursday; Binance weeks open on Monday
_CLOSED_CACHE = 100_000
SPOT, FUTURES = "spot", "futures"  # Binance's markets, as the fake names them
_Key = tuple[str, str | None]  # (symbol, None) spot prices; (symbol, FUTURES) pinned marks
Ohlcv = tuple[float, float, float, float, float]  # open, high, low, close, volume


def kline_interval_ms(interval: str) -> tuple[int, int]:
    """``(length, shift)`` in ms: candles open at ``shift + k * length``."""
    return KLINE_INTERVALS_S[interval] * 1000, _WEEK_OFFSET_MS if interval == "1w" else 0


class FakeCandles:
    """Every candle of the fake; ``clock()`` is the fake's time in epoch seconds."""

    def __init__(self, market: FakeMarket, clock: Callable[[], float]) -> None:
        self._market, self.clock = market, clock
        self.start_ms = self.now_ms()
        self._tape: dict[_Key, tuple[list[int], list[float]]] = {
            (symbol, None): ([self.start_ms], [float(price)])
            for symbol, price in market.prices.items()
        }
        self._closed: dict[tuple[Any, ...], list[Any]] = {}
        self._series: dict[tuple[str, str, str], tuple[int, list[Ohlcv | None]]] = {}

    def serve_series(
        self, market: str, symbol: str, interval: str, series: list[Ohlcv | None]
    ) -> None:
        """From now on REST lists ``series`` (oldest first; None: no candle) as ``symbol``'s
        ``interval`` candles, its last row being the candle that closed last."""
        iv = kline_interval_ms(interval)[0]
        first = self.open_time(interval, self.now_ms()) - len(series) * iv
        self._series[(str(market), symbol, interval)] = (first, list(series))

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def serves(self, market: str, symbol: str, interval: str) -> bool:
        """Whether Binance has ``symbol``'s ``interval`` candles on ``market``."""
        known = self._market.universe(market)
        return (
            symbol in known
            and interval in KLINE_INTERVALS_S
            and (interval != "1s" or market == SPOT)
        )

    async def feed(
        self,
        market: str,
        symbol: str,
        interval: str,
        push: Callable[[dict[str, Any]], Awaitable[Any]],
        every_s: float,
    ) -> None:
        """A kline stream as Binance sends it, until cancelled: the open candle every
        ``every_s`` and, as soon as a candle closes, its final update (``x`` true)."""
        step_ms = kline_interval_ms(interval)[0]
        last_open: int | None = None
        while True:
            now = self.now_ms()
            open_ms = self.open_time(interval, now)
            for closed in range(open_ms if last_open is None else last_open, open_ms, step_ms):
                await push(self.event(market, symbol, interval, closed, now))
            await push(self.event(market, symbol, interval, open_ms, now))
            last_open = open_ms
            wake_ms = min(now + every_s * 1000, open_ms + step_ms)
            await asyncio.sleep(max(0.0, wake_ms - self.now_ms()) / 1000)

    def record(self, symbol: str, market: str | None, price: Decimal) -> None:
        """A price set now (``market=FUTURES``: a pinned mark)."""
        times, prices = self._tape.setdefault((symbol, market), ([], []))
        times.append(self.now_ms())
        prices.append(float(price))

    def rows(
        self,
        market: str,
        symbol: str,
        interval: str,
        limit: int,
        span: tuple[int | None, int | None],
        now_ms: int,
    ) -> list[list[Any]]:
        """REST rows: from ``span``'s start, or ending at its end or at the open candle."""
        if (str(market), symbol, interval) in self._series:
            return self._series_rows(market, (str(market), symbol, interval), limit, span, now_ms)
        iv, shift = kline_interval_ms(interval)
        start_ms, end_ms = span
        end = now_ms if end_ms is None else min(end_ms, now_ms)
        if start_ms is not None:
            first = -((shift - start_ms) // iv) * iv + shift  # first open >= start
        else:
            first = (end - shift) // iv * iv + shift - (limit - 1) * iv
        rows: list[list[Any]] = []
        open_ms = first
        while open_ms <= end and len(rows) < limit:
            rows.append(self.row(market, symbol, interval, open_ms, now_ms))
            open_ms += iv
        return rows

    def open_time(self, interval: str, at_ms: int) -> int:
        iv, shift = kline_interval_ms(interval)
        return (at_ms - shift) // iv * iv + shift

    def event(
        self, market: str, symbol: str, interval: str, open_ms: int, now_ms: int
    ) -> dict[str, Any]:
        """The stream's ``kline`` event for the candle opened at ``open_ms``, as of now."""
        r = self.row(market, symbol, interval, open_ms, now_ms)
        k: dict[str, Any] = {"t": r[0], "T": r[6], "s": symbol, "i": interval}
        k.update(f=r[8] * 10, L=r[8] * 10 + r[8] - 1, o=r[1], c=r[4], h=r[2], l=r[3], v=r[5])
        k.update(n=r[8], x=r[6] < now_ms, q=r[7], V=r[9], Q=r[10], B="0")
        return {"e": "kline", "E": now_ms, "s": symbol, "k": k}

    def row(self, market: str, symbol: str, interval: str, open_ms: int, now_ms: int) -> list[Any]:
        """One candle as a REST row (12 fields, prices as strings)."""
        iv, shift = kline_interval_ms(interval)
        close_ms = open_ms + iv - 1
        key = (market, symbol, interval, open_ms)
        if close_ms < now_ms and key in self._closed:
            return self._closed[key]
        k = (open_ms - shift) // iv
        info = self._market.symbols[symbol]
        wave = self._wave(market, symbol, interval)
        until = min(close_ms, now_ms)
        o = wave(k - 1) if open_ms <= self.start_ms else self._price(market, symbol, open_ms - 1)
        c = wave(k) if close_ms < self.start_ms else self._price(market, symbol, until, now_ms)
        inside = self._changes(market, symbol, max(open_ms, self.start_ms), until)
        high, low = max(o, c, *inside) * 1.001, min(o, c, *inside) * 0.999
        places = 8 if market == SPOT else info.price_places
        qplaces = 8 if market == SPOT else 3
        vol = 10 + (k * 7 + info.seed) % 100
        row = [
            open_ms,
            f"{o:.{places}f}",
            f"{high:.{places}f}",
            f"{low:.{places}f}",
            f"{c:.{places}f}",
            f"{vol:.{qplaces}f}",
            close_ms,
            f"{vol * c:.8f}",
            100 + k % 50,
            f"{vol / 2:.{qplaces}f}",
            f"{vol * c / 2:.8f}",
            "0",
        ]
        if close_ms < now_ms:
            if len(self._closed) >= _CLOSED_CACHE:
                self._closed.clear()
            self._closed[key] = row
        return row

    def _series_rows(
        self,
        market: str,
        key: tuple[str, str, str],
        limit: int,
        span: tuple[int | None, int | None],
        now_ms: int,
    ) -> list[list[Any]]:
        first, series = self._series[key]
        iv = kline_interval_ms(key[2])[0]
        last_open = self.open_time(key[2], now_ms)
        level = next(row[3] for row in reversed(series) if row is not None)
        rows: list[list[Any]] = []
        open_ms = first
        now = self._price(market, key[1], now_ms, now_ms)
        forming = (level, max(level, now), min(level, now), now, 1.0)
        for k in range((last_open - first) // iv + 1):
            row = series[k] if k < len(series) else (level, level, level, level, 0.0)
            if k >= len(series) and open_ms == last_open:
                row = forming
            if row is not None:
                rows.append(_series_row(open_ms, iv, row))
            open_ms += iv
        start_ms, end_ms = span
        if start_ms is not None:
            return [r for r in rows if r[0] >= start_ms][:limit]
        end = now_ms if end_ms is None else min(end_ms, now_ms)
        return [r for r in rows if r[0] <= end][-limit:]

    # --- prices over time --------------------------------------------------------------
    def _price(self, market: str, symbol: str, at_ms: int, now_ms: int | None = None) -> float:
        """The price at ``at_ms``: the current one from ``now_ms`` on."""
        if now_ms is not None and at_ms >= now_ms:
            return float(self._market.price(symbol, market))
        spot = self._at((symbol, None), at_ms)
        assert spot is not None  # the spot tape starts at the start
        if market == SPOT:
            return spot
        pinned = self._at((symbol, FUTURES), at_ms)
        if pinned is not None:
            return pinned
        return float(self._market.mark_of(symbol, Decimal(str(spot))))

    def _changes(self, market: str, symbol: str, after_ms: int, until_ms: int) -> list[float]:
        """Prices set in ``(after_ms, until_ms]``, each of them: two set in one millisecond
        were both traded."""
        keys: list[_Key] = [(symbol, None)]
        if market == FUTURES:
            keys.append((symbol, FUTURES))
        out: list[float] = []
        for key in keys:
            times, prices = self._tape.get(key, ([], []))
            lo, hi = bisect.bisect_right(times, after_ms), bisect.bisect_right(times, until_ms)
            for t, price in zip(times[lo:hi], prices[lo:hi], strict=True):
                if market == SPOT or key[1] == FUTURES:
                    out.append(price)
                else:  # a spot price moves the futures mark unless one is pinned then
                    pinned = self._at((symbol, FUTURES), t)
                    mark = self._market.mark_of(symbol, Decimal(str(price)))
                    out.append(float(mark) if pinned is None else pinned)
        return out

    def _at(self, key: _Key, at_ms: int) -> float | None:
        """The price of ``key`` at ``at_ms``; before the start a spot price is its first."""
        times, prices = self._tape.get(key, ([], []))
        i = bisect.bisect_right(times, at_ms)
        if i:
            return prices[i - 1]
        return prices[0] if key[1] is None and prices else None

    def _wave(self, market: str, symbol: str, interval: str) -> Callable[[int], float]:
        """Closes before the start: a wave through the price at the start."""
        iv, shift = kline_interval_ms(interval)
        seed = self._market.symbols[symbol].seed
        k0 = (self.start_ms - shift) // iv
        base = self._price(market, symbol, self.start_ms)

        def close_at(k: int) -> float:
            return base * (1 + 0.01 * (math.sin(k * 0.37 + seed) - math.sin(k0 * 0.37 + seed)))

        return close_at


def _series_row(open_ms: int, iv: int, row: Ohlcv) -> list[Any]:
    o, h, low, c, v = row
    return [
        open_ms,
        *(f"{p:.8f}" for p in (o, h, low, c)),
        f"{v:.8f}",
        open_ms + iv - 1,
        f"{v * c:.8f}",
        int(v),
        f"{v / 2:.8f}",
        f"{v * c / 2:.8f}",
        "0",
    ]
