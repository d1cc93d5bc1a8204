"""Typed helpers for public (NONE / MARKET_DATA) operations, over the endpoint table. They
check input locally, then go through ``Caller.call_endpoint``; no sockets here.

The first helpers answer Binance's JSON as it came (the seed's shapes); the typed ones
answer frozen models from ``binance_models`` with ``Decimal`` prices and quantities. The
seed's spellings of the typed ones (``get_symbol_price``, ``get_order_book``) are the
facade's aliases over the raw fetches at the end of this class.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from utils.binance.binance_caller import Caller
from utils.binance.binance_constants import EXCHANGE_INFO, SERVER_TIME, TICKER_PRICE, endpoint
from utils.binance.binance_types import KlineInterval, Market, models
from utils.binance.binance_utils import check_interval, check_limit, check_symbol

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from pandas import DataFrame

    from utils.binance.binance_models import (
        AggTrade,
        AvgPrice,
        BookTicker,
        FundingRate,
        Kline,
        MarkPrice,
        OpenInterest,
        OrderBook,
        SymbolInfo,
        Ticker24h,
        TickerPrice,
        Trade,
    )

__all__ = ("PublicEndpoints",)

S, F = Market.SPOT, Market.FUTURES
_PING = {S: endpoint("GET /api/v3/ping"), F: endpoint("GET /fapi/v1/ping")}
_DEPTH = {S: endpoint("GET /api/v3/depth"), F: endpoint("GET /fapi/v1/depth")}
_KLINES = {S: endpoint("GET /api/v3/klines"), F: endpoint("GET /fapi/v1/klines")}
_TICKER_24H = {S: endpoint("GET /api/v3/ticker/24hr"), F: endpoint("GET /fapi/v1/ticker/24hr")}
_BOOK = {
    S: endpoint("GET /api/v3/ticker/bookTicker"),
    F: endpoint("GET /fapi/v1/ticker/bookTicker"),
}
_TRADES = {S: endpoint("GET /api/v3/trades"), F: endpoint("GET /fapi/v1/trades")}
_AGG_TRADES = {S: endpoint("GET /api/v3/aggTrades"), F: endpoint("GET /fapi/v1/aggTrades")}
_AVG_PRICE = endpoint("GET /api/v3/avgPrice")
_PREMIUM = endpoint("GET /fapi/v1/premiumIndex")
_FUNDING_RATE = endpoint("GET /fapi/v1/fundingRate")
_OPEN_INTEREST = endpoint("GET /fapi/v1/openInterest")

#: Most rows one call may ask for, per market (Binance's documented maxima).
_MAX_KLINES: Final = {S: 1000, F: 1500}
_MAX_DEPTH: Final = {S: 5000, F: 1000}
_MAX_TRADES: Final = 1000
#: Kline row position -> float column of the DataFrame.
_FRAME_FLOATS: Final = (
    (1, "open"),
    (2, "high"),
    (3, "low"),
    (4, "close"),
    (5, "volume"),
    (7, "quote_volume"),
)
_FLOAT_NAMES: Final = tuple(name for _, name in _FRAME_FLOATS)


class PublicEndpoints(Caller):
    """Market data helpers; ``market`` selects spot (default) or USDⓈ-M futures."""

    async def ping(self, market: Market = Market.SPOT) -> None:
        await self.call_endpoint(_PING[market])

    async def get_server_time(self, market: Market = Market.SPOT) -> int:
        """Binance's clock in epoch milliseconds."""
        reply = await self.call_endpoint(SERVER_TIME[market])
        return int(reply["serverTime"])

    async def get_exchange_info(
        self, symbol: str | None = None, market: Market = Market.SPOT
    ) -> dict[str, Any]:
        params = {"symbol": check_symbol(symbol)} if symbol else {}
        info: dict[str, Any] = await self.call_endpoint(EXCHANGE_INFO[market], params)
        return info

    async def get_ticker_24h(self, symbol: str, market: Market = Market.SPOT) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call_endpoint(
            _TICKER_24H[market], {"symbol": check_symbol(symbol)}
        )
        return reply

    async def get_klines(
        self,
        symbol: str,
        interval: KlineInterval | str = KlineInterval.H1,
        limit: int = 500,
        market: Market = Market.SPOT,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[list[Any]]:
        """Binance's kline rows as they came (strings for prices and volumes)."""
        params = {
            "symbol": check_symbol(symbol),
            "interval": str(check_interval(interval, market)),
            "limit": check_limit(limit, _MAX_KLINES[market]),
            "startTime": start_time,
            "endTime": end_time,
        }
        reply: list[list[Any]] = await self.call_endpoint(
            _KLINES[market], {k: v for k, v in params.items() if v is not None}
        )
        return reply

    async def get_mark_price(self, symbol: str) -> dict[str, Any]:
        """Futures mark price and funding: ``markPrice``, ``lastFundingRate``, ..."""
        reply: dict[str, Any] = await self.call_endpoint(
            _PREMIUM, {"symbol": check_symbol(symbol)}
        )
        return reply

    # --- typed helpers -----------------------------------------------------------------
    async def get_ticker_price(self, symbol: str, market: Market = Market.SPOT) -> TickerPrice:
        """Last price, typed (the seed's ``get_symbol_price`` answers the raw dict)."""
        return models.TickerPrice.model_validate(await self._ticker_price(symbol, market))

    async def get_ticker_stats(self, symbol: str, market: Market = Market.SPOT) -> Ticker24h:
        """The 24 h ticker, typed (``get_ticker_24h`` answers the raw dict)."""
        return models.Ticker24h.model_validate(await self.get_ticker_24h(symbol, market))

    async def get_book_ticker(self, symbol: str, market: Market = Market.SPOT) -> BookTicker:
        reply = await self.call_endpoint(_BOOK[market], {"symbol": check_symbol(symbol)})
        return models.BookTicker.model_validate(reply)

    async def get_avg_price(self, symbol: str) -> AvgPrice:
        """Spot's average price over the last few minutes (what MARKET notional uses)."""
        reply = await self.call_endpoint(_AVG_PRICE, {"symbol": check_symbol(symbol)})
        return models.AvgPrice.model_validate(reply)

    async def get_depth(
        self, symbol: str, limit: int = 100, market: Market = Market.SPOT
    ) -> OrderBook:
        """The order book, typed (``get_order_book`` answers the raw dict)."""
        return models.OrderBook.model_validate(await self._order_book(symbol, limit, market))

    async def get_recent_trades(
        self, symbol: str, limit: int = 500, market: Market = Market.SPOT
    ) -> list[Trade]:
        params = {"symbol": check_symbol(symbol), "limit": check_limit(limit, _MAX_TRADES)}
        return [
            models.Trade.model_validate(row)
            for row in await self.call_endpoint(_TRADES[market], params)
        ]

    async def get_agg_trades(
        self, symbol: str, limit: int = 500, market: Market = Market.SPOT
    ) -> list[AggTrade]:
        params = {"symbol": check_symbol(symbol), "limit": check_limit(limit, _MAX_TRADES)}
        rows = await self.call_endpoint(_AGG_TRADES[market], params)
        return [models.AggTrade.model_validate(row) for row in rows]

    async def get_candles(
        self,
        symbol: str,
        interval: KlineInterval | str = KlineInterval.H1,
        limit: int = 500,
        market: Market = Market.SPOT,
    ) -> list[Kline]:
        """Klines, typed; the last one is usually still open (``closed`` False)."""
        rows = await self.get_klines(symbol, interval, limit, market)
        now_ms = self.now_ms()
        return [models.Kline.from_row(row, now_ms=now_ms) for row in rows]

    async def get_klines_dataframe(
        self,
        symbol: str,
        interval: KlineInterval | str = KlineInterval.H1,
        limit: int = 500,
        market: Market = Market.SPOT,
    ) -> DataFrame:
        """Klines as a pandas DataFrame for analysis.

        Index ``open_time`` (UTC ``DatetimeIndex``); float columns ``open``, ``high``,
        ``low``, ``close``, ``volume``, ``quote_volume``; int ``trades``; bool ``closed``.
        ``df.attrs["last_closed"]`` says whether the last candle has closed.
        """
        rows = await self.get_klines(symbol, interval, limit, market)
        # pandas is imported on first use and the frame built off the event loop: the
        # first import alone takes a few hundred milliseconds.
        return await asyncio.to_thread(_klines_frame, rows, self.now_ms())

    async def get_premium_index(self, symbol: str) -> MarkPrice:
        """Futures mark and index price, last funding rate and next funding time, typed."""
        return models.MarkPrice.model_validate(await self.get_mark_price(symbol))

    async def get_funding_rate_history(
        self,
        symbol: str | None = None,
        limit: int = 100,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[FundingRate]:
        """Settled funding rates, oldest first (a pool of 500 calls per 5 min per IP)."""
        params: dict[str, Any] = {"limit": check_limit(limit, 1000)}
        if symbol is not None:
            params["symbol"] = check_symbol(symbol)
        if start_time is not None:
            params["startTime"] = start_time
        if end_time is not None:
            params["endTime"] = end_time
        rows = await self.call_endpoint(_FUNDING_RATE, params)
        return [models.FundingRate.model_validate(row) for row in rows]

    async def get_open_interest(self, symbol: str) -> OpenInterest:
        reply = await self.call_endpoint(_OPEN_INTEREST, {"symbol": check_symbol(symbol)})
        return models.OpenInterest.model_validate(reply)

    async def get_symbol_info(self, symbol: str, market: Market = Market.SPOT) -> SymbolInfo:
        """A symbol's trading rules; an unknown symbol raises with the closest ones."""
        return (await self.symbol_rules(market)).require(check_symbol(symbol))

    # --- raw fetches: the typed methods above and the facade's seed aliases share them ---
    # Plain functions returning the call's coroutine: the seed's get_symbol_price is the hot
    # path (bench), and this adds no coroutine of its own.
    def _ticker_price(self, symbol: str, market: Market) -> Awaitable[dict[str, str]]:
        """``{"symbol": "BTCUSDT", "price": "..."}`` as Binance sent it."""
        return self.call_endpoint(TICKER_PRICE[market], {"symbol": check_symbol(symbol)})

    def _order_book(self, symbol: str, limit: int, market: Market) -> Awaitable[dict[str, Any]]:
        """``{"lastUpdateId", "bids", "asks"}`` as Binance sent it."""
        params = {"symbol": check_symbol(symbol), "limit": check_limit(limit, _MAX_DEPTH[market])}
        return self.call_endpoint(_DEPTH[market], params)


def _klines_frame(rows: list[list[Any]], now_ms: int) -> DataFrame:
    import pandas as pd  # noqa: PLC0415 - lazy: keeps pandas out of the client's import time

    columns: dict[str, list[Any]] = {name: [r[i] for r in rows] for i, name in _FRAME_FLOATS}
    columns["trades"] = [r[8] for r in rows]
    columns["closed"] = [int(r[6]) < now_ms for r in rows]
    index = pd.to_datetime([int(r[0]) for r in rows], unit="ms", utc=True)
    frame = pd.DataFrame(columns, index=pd.DatetimeIndex(index, name="open_time"))
    frame = frame.astype({**dict.fromkeys(_FLOAT_NAMES, "float64"), "trades": "int64"})
    frame = frame.astype({"closed": "bool"})
    frame.attrs["last_closed"] = bool(frame["closed"].iloc[-1]) if rows else True
    return frame
