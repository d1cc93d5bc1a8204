"""The endpoint table's weight rules give the documented weights (shared/BINANCE.md §6)."""

from __future__ import annotations

from typing import Any

import pytest

from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_types import Market, Security

CASES: list[tuple[str, dict[str, Any], int]] = [
    # spot, docs of 2026-07-21
    ("GET /api/v3/ping", {}, 1),
    ("GET /api/v3/exchangeInfo", {}, 20),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT"}, 5),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT", "limit": 101}, 25),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT", "limit": 500}, 25),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT", "limit": 1000}, 50),
    ("GET /api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000}, 250),
    ("GET /api/v3/trades", {"symbol": "BTCUSDT"}, 25),
    ("GET /api/v3/aggTrades", {"symbol": "BTCUSDT"}, 4),
    ("GET /api/v3/klines", {"symbol": "BTCUSDT", "interval": "1h", "limit": 1000}, 2),
    ("GET /api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
    ("GET /api/v3/ticker/24hr", {}, 80),
    ("GET /api/v3/ticker/24hr", {"symbols": ["A"] * 20}, 2),
    ("GET /api/v3/ticker/24hr", {"symbols": ["A"] * 21}, 40),
    ("GET /api/v3/ticker/24hr", {"symbols": ["A"] * 100}, 40),
    ("GET /api/v3/ticker/24hr", {"symbols": ["A"] * 101}, 80),
    ("GET /api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
    ("GET /api/v3/ticker/price", {}, 4),
    ("GET /api/v3/ticker/price", {"symbols": '["BTCUSDT","ETHUSDT"]'}, 4),
    ("GET /api/v3/ticker/bookTicker", {}, 4),
    ("GET /api/v3/account", {}, 20),
    ("POST /api/v3/order/test", {}, 1),
    ("POST /api/v3/order/test", {"computeCommissionRates": "true"}, 20),
    ("GET /api/v3/order", {"symbol": "BTCUSDT"}, 4),
    ("GET /api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
    ("GET /api/v3/openOrders", {}, 80),
    ("GET /api/v3/myTrades", {"symbol": "BTCUSDT"}, 20),
    ("GET /api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": 7}, 5),
    # futures, scraped 2026-05-28
    ("GET /fapi/v1/exchangeInfo", {}, 1),
    ("GET /fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 50}, 2),
    ("GET /fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
    ("GET /fapi/v1/depth", {"symbol": "BTCUSDT"}, 10),
    ("GET /fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000}, 20),
    ("GET /fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 99}, 1),
    ("GET /fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 100}, 2),
    ("GET /fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 5),
    ("GET /fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1500}, 10),
    ("GET /fapi/v1/ticker/24hr", {}, 40),
    ("GET /fapi/v2/ticker/price", {"symbol": "BTCUSDT"}, 1),
    ("GET /fapi/v2/ticker/price", {}, 2),
    ("GET /fapi/v1/ticker/bookTicker", {}, 5),
    ("GET /fapi/v1/premiumIndex", {}, 10),
    ("GET /fapi/v2/balance", {}, 5),
    ("POST /fapi/v1/order", {"symbol": "BTCUSDT"}, 0),
]


@pytest.mark.parametrize(("key", "params", "weight"), CASES)
def test_weight_rule_gives_the_documented_weight(
    key: str, params: dict[str, Any], weight: int
) -> None:
    assert ENDPOINTS[key].weight.cost(params) == weight


def test_successful_spot_orders_cost_no_weight_but_count_as_orders() -> None:
    order = ENDPOINTS["POST /api/v3/order"]
    assert order.weight_on_success == 0
    assert order.orders == 1


def test_signing_follows_the_security_type() -> None:
    assert ENDPOINTS["GET /api/v3/account"].signed
    assert ENDPOINTS["POST /api/v3/order"].security is Security.TRADE
    assert not ENDPOINTS["GET /api/v3/ticker/price"].needs_key
    listen_key = ENDPOINTS["POST /fapi/v1/listenKey"]
    assert listen_key.needs_key
    assert not listen_key.signed
    assert {e.market for e in ENDPOINTS.values()} == {Market.SPOT, Market.FUTURES}
