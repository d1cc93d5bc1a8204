"""Typed helpers for public (NONE / MARKET_DATA) operations, over the endpoint table. They
check input locally, then go through ``EndpointCaller.call_endpoint``; no sockets here."""

from __future__ import annotations

from typing import Any

from utils.binance.binance_constants import endpoint
from utils.binance.binance_types import EndpointCaller, Market
from utils.binance.binance_utils import check_symbol

__all__ = ("EXCHANGE_INFO", "SERVER_TIME", "PublicEndpoints")

_PING = {Market.SPOT: endpoint("GET /api/v3/ping"), Market.FUTURES: endpoint("GET /fapi/v1/ping")}
SERVER_TIME = {
    Market.SPOT: endpoint("GET /api/v3/time"),
    Market.FUTURES: endpoint("GET /fapi/v1/time"),
}
EXCHANGE_INFO = {
    Market.SPOT: endpoint("GET /api/v3/exchangeInfo"),
    Market.FUTURES: endpoint("GET /fapi/v1/exchangeInfo"),
}
_PRICE = {
    Market.SPOT: endpoint("GET /api/v3/ticker/price"),
    Market.FUTURES: endpoint("GET /fapi/v2/ticker/price"),
}
_DEPTH = {
    Market.SPOT: endpoint("GET /api/v3/depth"),
    Market.FUTURES: endpoint("GET /fapi/v1/depth"),
}
_KLINES = {
    Market.SPOT: endpoint("GET /api/v3/klines"),
    Market.FUTURES: endpoint("GET /fapi/v1/klines"),
}
_TICKER_24H = {
    Market.SPOT: endpoint("GET /api/v3/ticker/24hr"),
    Market.FUTURES: endpoint("GET /fapi/v1/ticker/24hr"),
}
_PREMIUM = endpoint("GET /fapi/v1/premiumIndex")


class PublicEndpoints(EndpointCaller):
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

    async def get_symbol_price(self, symbol: str, market: Market = Market.SPOT) -> dict[str, str]:
        """Last price: ``{"symbol": "BTCUSDT", "price": "..."}``."""
        reply: dict[str, str] = await self.call_endpoint(
            _PRICE[market], {"symbol": check_symbol(symbol)}
        )
        return reply

    async def get_ticker_24h(self, symbol: str, market: Market = Market.SPOT) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call_endpoint(
            _TICKER_24H[market], {"symbol": check_symbol(symbol)}
        )
        return reply

    async def get_order_book(
        self, symbol: str, limit: int = 100, market: Market = Market.SPOT
    ) -> dict[str, Any]:
        reply: dict[str, Any] = await self.call_endpoint(
            _DEPTH[market], {"symbol": check_symbol(symbol), "limit": limit}
        )
        return reply

    async def get_klines(
        self, symbol: str, interval: str = "1h", limit: int = 500, market: Market = Market.SPOT
    ) -> list[list[Any]]:
        reply: list[list[Any]] = await self.call_endpoint(
            _KLINES[market], {"symbol": check_symbol(symbol), "interval": interval, "limit": limit}
        )
        return reply

    async def get_mark_price(self, symbol: str) -> dict[str, Any]:
        """Futures mark price and funding: ``markPrice``, ``lastFundingRate``, ..."""
        reply: dict[str, Any] = await self.call_endpoint(
            _PREMIUM, {"symbol": check_symbol(symbol)}
        )
        return reply
