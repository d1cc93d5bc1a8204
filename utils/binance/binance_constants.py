"""Binance's URLs, the documented rate-limit pools (fallbacks until exchangeInfo answers) and
the endpoint table: every path and its weight rule is written here once.

Weights follow ``shared/BINANCE.md`` §6 (spot docs of 2026-07-21, futures of 2026-05-28).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from utils.binance.binance_types import (
    Endpoint,
    HttpMethod,
    Market,
    PoolKind,
    RateWindow,
    Security,
    WeightRule,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "DEFAULT_RATE_WINDOWS",
    "ENDPOINTS",
    "FUTURES_BASE_URL",
    "FUTURES_WS_URL",
    "SPOT_BASE_URL",
    "SPOT_WS_URL",
    "endpoint",
)

SPOT_BASE_URL: Final = "https://api.binance.com"
FUTURES_BASE_URL: Final = "https://fapi.binance.com"
SPOT_WS_URL: Final = "wss://stream.binance.com:9443"
FUTURES_WS_URL: Final = "wss://fstream.binance.com"

S, F = Market.SPOT, Market.FUTURES
GET, POST, PUT, DELETE = HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.DELETE
NONE, MARKET_DATA, USER_STREAM = Security.NONE, Security.MARKET_DATA, Security.USER_STREAM
USER_DATA, TRADE = Security.USER_DATA, Security.TRADE

#: Documented limits (BINANCE.md §2); ``exchangeInfo.rateLimits`` replaces them at start.
DEFAULT_RATE_WINDOWS: Final[Mapping[Market, tuple[RateWindow, ...]]] = {
    S: (
        RateWindow(S, PoolKind.REQUEST_WEIGHT, 60, 6000),
        RateWindow(S, PoolKind.RAW_REQUESTS, 300, 300_000),
        RateWindow(S, PoolKind.ORDERS, 10, 50, per_account=True),
        RateWindow(S, PoolKind.ORDERS, 86400, 160_000, per_account=True),
    ),
    F: (
        RateWindow(F, PoolKind.REQUEST_WEIGHT, 60, 2400),
        RateWindow(F, PoolKind.ORDERS, 10, 300, per_account=True),
        RateWindow(F, PoolKind.ORDERS, 60, 1200, per_account=True),
    ),
}


_SYMBOL_ORDER = ("symbol", "side", "type")

_TABLE: tuple[Endpoint, ...] = (
    # --- spot market data -------------------------------------------------------------
    Endpoint(S, GET, "/api/v3/ping", NONE, WeightRule(1)),
    Endpoint(S, GET, "/api/v3/time", NONE, WeightRule(1)),
    Endpoint(S, GET, "/api/v3/exchangeInfo", NONE, WeightRule(20), cache_ttl_s=3600),
    Endpoint(
        S,
        GET,
        "/api/v3/depth",
        NONE,
        WeightRule(5, by_limit=((100, 5), (500, 25), (1000, 50), (5000, 250)), limit_default=100),
        required=("symbol",),
    ),
    Endpoint(S, GET, "/api/v3/trades", NONE, WeightRule(25), required=("symbol",)),
    Endpoint(S, GET, "/api/v3/aggTrades", NONE, WeightRule(4), required=("symbol",)),
    Endpoint(S, GET, "/api/v3/klines", NONE, WeightRule(2), required=("symbol", "interval")),
    Endpoint(S, GET, "/api/v3/avgPrice", NONE, WeightRule(2), required=("symbol",), cache_ttl_s=1),
    Endpoint(
        S,
        GET,
        "/api/v3/ticker/24hr",
        NONE,
        WeightRule(2, no_symbol=80, by_symbols=((20, 2), (100, 40), (10**9, 80))),
        cache_ttl_s=1,
    ),
    Endpoint(
        S,
        GET,
        "/api/v3/ticker/price",
        NONE,
        WeightRule(2, no_symbol=4, by_symbols=((10**9, 4),)),
        cache_ttl_s=1,
    ),
    Endpoint(
        S,
        GET,
        "/api/v3/ticker/bookTicker",
        NONE,
        WeightRule(2, no_symbol=4, by_symbols=((10**9, 4),)),
        cache_ttl_s=1,
    ),
    # --- spot account and trading -------------------------------------------------------
    Endpoint(S, GET, "/api/v3/account", USER_DATA, WeightRule(20)),
    Endpoint(
        S,
        POST,
        "/api/v3/order",
        TRADE,
        WeightRule(1),
        orders=1,
        weight_on_success=0,
        required=_SYMBOL_ORDER,
    ),
    Endpoint(
        S,
        POST,
        "/api/v3/order/test",
        TRADE,
        WeightRule(1, by_param=(("computeCommissionRates", 20),)),
        required=_SYMBOL_ORDER,
    ),
    Endpoint(S, GET, "/api/v3/order", USER_DATA, WeightRule(4), required=("symbol",)),
    Endpoint(
        S, DELETE, "/api/v3/order", TRADE, WeightRule(1), weight_on_success=0, required=("symbol",)
    ),
    Endpoint(S, GET, "/api/v3/openOrders", USER_DATA, WeightRule(6, no_symbol=80)),
    Endpoint(S, GET, "/api/v3/allOrders", USER_DATA, WeightRule(20), required=("symbol",)),
    Endpoint(
        S,
        GET,
        "/api/v3/myTrades",
        USER_DATA,
        WeightRule(20, by_param=(("orderId", 5),)),
        required=("symbol",),
    ),
    # --- futures market data ------------------------------------------------------------
    Endpoint(F, GET, "/fapi/v1/ping", NONE, WeightRule(1)),
    Endpoint(F, GET, "/fapi/v1/time", NONE, WeightRule(1)),
    Endpoint(F, GET, "/fapi/v1/exchangeInfo", NONE, WeightRule(1), cache_ttl_s=3600),
    Endpoint(
        F,
        GET,
        "/fapi/v1/depth",
        NONE,
        WeightRule(10, by_limit=((50, 2), (100, 5), (500, 10), (1000, 20)), limit_default=500),
        required=("symbol",),
    ),
    Endpoint(
        F,
        GET,
        "/fapi/v1/klines",
        NONE,
        WeightRule(5, by_limit=((99, 1), (499, 2), (1000, 5), (1500, 10)), limit_default=500),
        required=("symbol", "interval"),
    ),
    Endpoint(F, GET, "/fapi/v1/ticker/24hr", NONE, WeightRule(1, no_symbol=40), cache_ttl_s=1),
    Endpoint(
        F,
        GET,
        "/fapi/v2/ticker/price",
        NONE,
        WeightRule(1, no_symbol=2),
        cache_ttl_s=1,
        ignore_weight_header=True,
    ),
    Endpoint(
        F,
        GET,
        "/fapi/v1/ticker/bookTicker",
        NONE,
        WeightRule(2, no_symbol=5),
        cache_ttl_s=1,
        ignore_weight_header=True,
    ),
    Endpoint(F, GET, "/fapi/v1/premiumIndex", NONE, WeightRule(1, no_symbol=10), cache_ttl_s=1),
    # --- futures account and trading ----------------------------------------------------
    Endpoint(F, GET, "/fapi/v2/balance", USER_DATA, WeightRule(5)),
    Endpoint(F, GET, "/fapi/v3/account", USER_DATA, WeightRule(5)),
    Endpoint(F, GET, "/fapi/v3/positionRisk", USER_DATA, WeightRule(5)),
    Endpoint(F, POST, "/fapi/v1/order", TRADE, WeightRule(0), orders=1, required=_SYMBOL_ORDER),
    Endpoint(F, GET, "/fapi/v1/order", USER_DATA, WeightRule(1), required=("symbol",)),
    Endpoint(F, DELETE, "/fapi/v1/order", TRADE, WeightRule(1), required=("symbol",)),
    Endpoint(F, POST, "/fapi/v1/leverage", TRADE, WeightRule(1), required=("symbol", "leverage")),
    Endpoint(F, POST, "/fapi/v1/listenKey", USER_STREAM, WeightRule(1)),
    Endpoint(F, PUT, "/fapi/v1/listenKey", USER_STREAM, WeightRule(1)),
    Endpoint(F, DELETE, "/fapi/v1/listenKey", USER_STREAM, WeightRule(1)),
)

#: ``"METHOD /path"`` -> Endpoint, the one table the limiter, client and fake read.
ENDPOINTS: Final[Mapping[str, Endpoint]] = {e.key: e for e in _TABLE}


def endpoint(key: str) -> Endpoint:
    """The table entry for ``"GET /api/v3/ticker/price"``; KeyError names the unknown key."""
    return ENDPOINTS[key]
