"""Binance's all-market streams, run by themselves from the REST fake's prices, and a price
move that every part of the fake exchange shows: for ``make demo``, and for any test that
wants a market that ticks on its own rather than frames pushed by hand.

``AllMarketStreams(rest, spot, futures)``: once ``start``ed, every ``every_s`` (Binance: 1 s)
it pushes the spot ``!miniTicker@arr`` and the futures ``!miniTicker@arr`` and
``!markPrice@arr@1s`` with every symbol's current price (a futures mark is the pinned one, or
the spot price times the fake's basis); the 24 h open in the mini tickers is the price each
symbol had when the streams were made. ``await move(symbol, price)`` sets the spot price on
the REST fake (whose candles follow it, so the REST klines and the kline streams the stream
servers run from those candles show it, the latter at their next update) and pushes one frame
of each all-market stream for that symbol at once instead of at the next second.
``symbol("btc")`` reads the shorthand ``/price`` accepts: a bare asset is its USDT pair, a
slash joins base and quote (``eth/btc``), a full symbol is itself.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

from tests.fakes import fake_ws_wire as wire

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_ws import FakeBinanceWS

__all__ = ("MARK_STREAM", "MINI_STREAM", "AllMarketStreams", "parse_price")

MINI_STREAM: Final = "!miniTicker@arr"
MARK_STREAM: Final = "!markPrice@arr@1s"


def parse_price(text: str) -> Decimal:
    """``71500``, ``71,500``, ``71.5k``: a positive price, or ValueError saying why not."""
    raw = text.strip().lower().replace(",", "").replace("_", "")
    scale = Decimal(1)
    if raw.endswith(("k", "m")):
        scale = Decimal(1000) if raw.endswith("k") else Decimal(1_000_000)
        raw = raw[:-1]
    try:
        price = Decimal(raw) * scale
    except InvalidOperation:
        raise ValueError(f"“{text}” is not a price") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"a price must be above 0, not {text}")
    return price


class AllMarketStreams:
    """The all-market streams of one fake exchange; ``start``, ``move``, ``stop``."""

    def __init__(
        self,
        rest: FakeBinance,
        spot: FakeBinanceWS,
        futures: FakeBinanceWS,
        *,
        every_s: float = 1.0,
    ) -> None:
        self._rest, self._spot, self._futures, self.every_s = rest, spot, futures, every_s
        self._opens = dict(rest.market.prices)  # the 24 h open of every symbol

    def start(self) -> None:
        market = self._rest.market
        self._spot.autopush(MINI_STREAM, self.every_s, lambda _n: self._minis(market.symbols))
        futures = market.futures_symbols
        self._futures.autopush(MINI_STREAM, self.every_s, lambda _n: self._futures_minis(futures))
        self._futures.autopush(MARK_STREAM, self.every_s, lambda _n: self._marks(futures))

    def stop(self) -> None:
        self._spot.stop_autopush(MINI_STREAM)
        self._futures.stop_autopush(MINI_STREAM)
        self._futures.stop_autopush(MARK_STREAM)

    def symbol(self, text: str) -> str:
        """The fake's symbol for ``text`` (``btc`` -> BTCUSDT); KeyError naming it if none."""
        raw = text.strip().upper()
        known = self._rest.market.symbols
        if "/" in raw:
            base, _, quote = raw.partition("/")
            name = base + quote
        else:
            name = raw if raw in known or f"{raw}USDT" not in known else f"{raw}USDT"
        if name not in known:
            raise KeyError(f"{text} is not traded on the fake exchange")
        return name

    def price(self, symbol: str) -> Decimal:
        return self._rest.market.prices[symbol]

    async def move(self, symbol: str, price: Decimal | str) -> None:
        """``symbol`` trades at ``price`` from now on, on REST and every stream."""
        self._rest.set_price(symbol, price)
        await self._spot.push(MINI_STREAM, self._minis([symbol]))
        if symbol in self._rest.market.futures_symbols:
            await self._futures.push(MINI_STREAM, self._futures_minis([symbol]))
            await self._futures.push(MARK_STREAM, self._marks([symbol]))

    # --- frames --------------------------------------------------------------------------
    def _minis(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        prices = self._rest.market.prices
        return [wire.mini_ticker(s, prices[s], open_price=self._opens[s]) for s in symbols]

    def _futures_minis(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        return [
            wire.mini_ticker(s, self._mark(s), open_price=self._mark(s, self._opens[s]))
            for s in symbols
        ]

    def _marks(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        return [wire.mark_price(s, self._mark(s)) for s in symbols]

    def _mark(self, symbol: str, spot: Decimal | None = None) -> Decimal:
        market = self._rest.market
        pinned = market.mark_overrides.get(symbol)
        if spot is None and pinned is not None:
            return pinned
        return market.mark_of(symbol, market.prices[symbol] if spot is None else spot)
