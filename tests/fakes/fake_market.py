"""The fake exchange's market: a small symbol universe with settable prices, and the builders
of Binance-shaped market-data payloads (depth, trades, klines, tickers, premium index). Its
candles (``fake_klines``, on the fake's clock) are the ones the fake kline streams send.

No HTTP and no rate limiting here (see ``fake_binance``); exchangeInfo lives in
``fake_exchange_info``, orders in ``fake_trading``, accounts in ``fake_accounts``. Every
number that Binance sends as a string is rendered as a string.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson

from tests.fakes.fake_klines import KLINE_INTERVALS_S, FakeCandles

__all__ = (
    "KLINE_INTERVALS_S",
    "ApiError",
    "Call",
    "FakeMarket",
    "Market",
    "SymbolInfo",
    "interval_text",
)


class Market(StrEnum):
    """Binance's two markets, in the fake's own words (a client's own enum of the same
    strings compares equal: markets are compared with ``==``, never ``is``)."""

    SPOT = "spot"
    FUTURES = "futures"


Handler = Callable[["Call"], Any]

_FUNDING_MS = 8 * 3_600_000
_BASIS = Decimal("1.0005")  # futures mark = spot * basis
_NAMED: tuple[tuple[str, str, str, str], ...] = (
    ("BTCUSDT", "BTC", "USDT", "65000"),
    ("ETHUSDT", "ETH", "USDT", "3500"),
    ("BNBUSDT", "BNB", "USDT", "600"),
    ("SOLUSDT", "SOL", "USDT", "150"),
    ("XRPUSDT", "XRP", "USDT", "0.6"),
    ("ADAUSDT", "ADA", "USDT", "0.45"),
    ("DOGEUSDT", "DOGE", "USDT", "0.15"),
    ("LTCBTC", "LTC", "BTC", "0.0013"),
    ("ETHBTC", "ETH", "BTC", "0.054"),
)
_EXTRA_BASES = [
    "DOT",
    "TRX",
    "LINK",
    "AVAX",
    "ATOM",
    "UNI",
    "XLM",
    "ETC",
    "FIL",
    "APT",
    "ARB",
    "OP",
    "NEAR",
    "ICP",
    "HBAR",
    "VET",
    "ALGO",
    "SAND",
    "MANA",
    "AAVE",
    "EOS",
]
_UNITS = ((86400, "DAY"), (3600, "HOUR"), (60, "MINUTE"), (1, "SECOND"))


class ApiError(Exception):
    """An error answer: HTTP ``status`` with Binance's ``{"code", "msg"}`` body."""

    def __init__(
        self, status: int, code: int, msg: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg = status, code, msg
        self.headers = headers or {}


@dataclass(slots=True)
class Call:
    """One admitted request as the handlers see it."""

    market: Market
    key: str
    params: dict[str, str]
    api_key: str | None
    now_ms: int
    symbols: list[str] | None = None  # validated ``symbol``/``symbols``; None when neither


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    price_places: int
    seed: int


def interval_text(interval_s: int) -> str:
    """``60`` -> ``"1 MINUTE"``, as in Binance's -1003/-1015 messages."""
    unit_s, unit = next((s, u) for s, u in _UNITS if interval_s % s == 0)
    return f"{interval_s // unit_s} {unit}"


def _tick_for(price: Decimal) -> Decimal:
    if price >= 1:
        return Decimal("0.01")
    return Decimal("0.00001") if price >= Decimal("0.01") else Decimal("0.0000001")


class FakeMarket:
    """Symbols, spot prices (futures marks follow by a small basis) and payload builders;
    ``clock()`` is the fake's time in epoch seconds (candles follow it, ``fake_klines``)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.symbols: dict[str, SymbolInfo] = {}
        self.prices: dict[str, Decimal] = {}
        self.mark_overrides: dict[str, Decimal] = {}
        rows = list(_NAMED) + [
            (f"{b}USDT", b, "USDT", str(1 + zlib.crc32(b.encode()) % 20000 / 100))
            for b in _EXTRA_BASES
        ]
        for symbol, base, quote, price in rows:
            p = Decimal(price)
            tick = _tick_for(p)
            self.symbols[symbol] = SymbolInfo(
                symbol,
                base,
                quote,
                tick,
                -int(tick.as_tuple().exponent),
                zlib.crc32(symbol.encode()) % 1000,
            )
            self.prices[symbol] = p
        self.futures_symbols = tuple(s for s, i in self.symbols.items() if i.quote == "USDT")
        self._update_id = 1_000_000
        self._depth_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.candles = FakeCandles(self, clock)

    # --- prices -------------------------------------------------------------------------
    def set_price(self, symbol: str, price: Decimal | str, market: Market | None = None) -> None:
        """Set the spot price; with ``market=FUTURES`` pin the futures mark instead."""
        if symbol not in self.symbols:
            raise KeyError(symbol)
        if market == Market.FUTURES:
            self.mark_overrides[symbol] = Decimal(price)
        else:
            self.prices[symbol] = Decimal(price)
        self.candles.record(symbol, market if market == Market.FUTURES else None, Decimal(price))

    def price(self, symbol: str, market: Market = Market.SPOT) -> Decimal:
        if market == Market.SPOT:
            return self.prices[symbol]
        mark = self.mark_overrides.get(symbol)
        if mark is not None:
            return mark
        return self.mark_of(symbol, self.prices[symbol])

    def mark_of(self, symbol: str, spot: Decimal) -> Decimal:
        """The futures mark that follows a spot price (unless pinned)."""
        return (spot * _BASIS).quantize(self.symbols[symbol].tick)

    def fmt_price(self, symbol: str, value: Decimal | float, market: Market) -> str:
        places = 8 if market == Market.SPOT else self.symbols[symbol].price_places
        return f"{value:.{places}f}"

    def universe(self, market: Market) -> Sequence[str]:
        return tuple(self.symbols) if market == Market.SPOT else self.futures_symbols

    def check_symbols(self, call: Call) -> list[str] | None:
        """Validate ``symbol``/``symbols``; the listed symbols, or None when neither is sent."""
        known = self.symbols if call.market == Market.SPOT else self.futures_symbols
        symbol = call.params.get("symbol")
        if symbol is not None:
            if symbol not in known:
                raise ApiError(400, -1121, "Invalid symbol.")
            return [symbol]
        raw = call.params.get("symbols")
        if raw is None:
            return None
        try:
            listed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            listed = None
        if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
            raise ApiError(
                400,
                -1100,
                "Illegal characters found in parameter 'symbols'; legal range is "
                '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
            )
        if any(s not in known for s in listed):
            raise ApiError(400, -1121, "Invalid symbol.")
        return listed

    # --- order book and trades -------------------------------------------------------
    def depth(self, market: Market, symbol: str, limit: int, now_ms: int) -> dict[str, Any]:
        price = self.price(symbol, market)
        info = self.symbols[symbol]
        self._update_id += 1
        cache_key = (market, symbol, limit, price)
        book = self._depth_cache.get(cache_key)
        if book is None:
            if len(self._depth_cache) > 256:
                self._depth_cache.clear()
            qfmt = "{:.8f}" if market == Market.SPOT else "{:.3f}"
            bids, asks = [], []
            for i in range(limit):
                qty = qfmt.format(((i * 7919 + info.seed) % 1000 + 1) / 1000)
                off = info.tick * (i + 1)
                bids.append([self.fmt_price(symbol, price - off, market), qty])
                asks.append([self.fmt_price(symbol, price + off, market), qty])
            book = {"bids": bids, "asks": asks}
            self._depth_cache[cache_key] = book
        out: dict[str, Any] = {"lastUpdateId": self._update_id}
        if market == Market.FUTURES:
            out["E"], out["T"] = now_ms, now_ms
        out.update(book)
        return out

    def trades(self, market: Market, symbol: str, limit: int, now_ms: int) -> list[Any]:
        price, tick = self.price(symbol, market), self.symbols[symbol].tick
        last_id = now_ms // 100
        rows = []
        for k in range(limit):
            tid = last_id - limit + 1 + k
            p = price + tick * (tid % 5 - 2)
            q = Decimal((tid * 31 + 7) % 1000 + 1) / 1000
            rows.append(
                {
                    "id": tid,
                    "price": self.fmt_price(symbol, p, market),
                    "qty": f"{q:.8f}",
                    "quoteQty": f"{p * q:.8f}",
                    "time": now_ms - (limit - 1 - k) * 100,
                    "isBuyerMaker": tid % 2 == 0,
                    "isBestMatch": True,
                }
            )
        return rows

    def agg_trades(self, market: Market, symbol: str, limit: int, now_ms: int) -> list[Any]:
        return [
            {
                "a": t["id"],
                "p": t["price"],
                "q": t["qty"],
                "f": t["id"] * 2,
                "l": t["id"] * 2 + 1,
                "T": t["time"],
                "m": t["isBuyerMaker"],
                "M": True,
            }
            for t in self.trades(market, symbol, limit, now_ms)
        ]

    # --- klines ------------------------------------------------------------------------
    def klines(
        self, c: Call, interval: str, limit: int, span: tuple[int | None, int | None]
    ) -> list[list[Any]]:
        """Rows from ``span``'s start, or ending at its end or at the open candle (whose
        close is the current price); the same candles the kline streams send."""
        return self.candles.rows(c.market, c.params["symbol"], interval, limit, span, c.now_ms)

    # --- tickers -----------------------------------------------------------------------
    def ticker_24hr(self, market: Market, symbol: str, now_ms: int) -> dict[str, Any]:
        price = self.price(symbol, market)
        info = self.symbols[symbol]
        open_p = price * (1 - Decimal(info.seed % 7 - 3) / 100)
        change = price - open_p
        f = self.fmt_price
        out: dict[str, Any] = {
            "symbol": symbol,
            "priceChange": f(symbol, change, market),
            "priceChangePercent": f"{change / open_p * 100:.3f}",
            "weightedAvgPrice": f(symbol, (price + open_p) / 2, market),
        }
        if market == Market.SPOT:
            out["prevClosePrice"] = f(symbol, open_p, market)
        out.update({"lastPrice": f(symbol, price, market), "lastQty": "0.10000000"})
        if market == Market.SPOT:
            out.update(self._book(market, symbol))
        first_id = now_ms // 100 - 5000
        out.update(
            {
                "openPrice": f(symbol, open_p, market),
                "highPrice": f(symbol, max(price, open_p) * Decimal("1.01"), market),
                "lowPrice": f(symbol, min(price, open_p) * Decimal("0.99"), market),
                "volume": "12345.00000000",
                "quoteVolume": f"{12345 * price:.8f}",
                "openTime": now_ms - 86_400_000,
                "closeTime": now_ms,
                "firstId": first_id,
                "lastId": first_id + 4999,
                "count": 5000,
            }
        )
        return out

    def ticker_price(self, market: Market, symbol: str, now_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": symbol,
            "price": self.fmt_price(symbol, self.price(symbol, market), market),
        }
        if market == Market.FUTURES:
            out["time"] = now_ms
        return out

    def book_ticker(self, market: Market, symbol: str, now_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": symbol}
        out.update(self._book(market, symbol))
        if market == Market.FUTURES:
            out["time"] = now_ms
            out["lastUpdateId"] = self._update_id
        return out

    def _book(self, market: Market, symbol: str) -> dict[str, str]:
        price, tick = self.price(symbol, market), self.symbols[symbol].tick
        qty = "1.50000000" if market == Market.SPOT else "1.500"
        return {
            "bidPrice": self.fmt_price(symbol, price - tick, market),
            "bidQty": qty,
            "askPrice": self.fmt_price(symbol, price + tick, market),
            "askQty": qty,
        }

    def avg_price(self, symbol: str, now_ms: int) -> dict[str, Any]:
        return {
            "mins": 5,
            "price": self.fmt_price(symbol, self.prices[symbol], Market.SPOT),
            "closeTime": now_ms,
        }

    def premium_index(self, symbol: str, now_ms: int) -> dict[str, Any]:
        f = Market.FUTURES
        return {
            "symbol": symbol,
            "markPrice": self.fmt_price(symbol, self.price(symbol, f), f),
            "indexPrice": self.fmt_price(symbol, self.prices[symbol], f),
            "estimatedSettlePrice": self.fmt_price(symbol, self.prices[symbol], f),
            "lastFundingRate": "0.00010000",
            "interestRate": "0.00010000",
            "nextFundingTime": (now_ms // _FUNDING_MS + 1) * _FUNDING_MS,
            "time": now_ms,
        }
