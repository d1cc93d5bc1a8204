"""What the client reports about itself: per-endpoint numbers, pools (including the futures
endpoints metered outside the weight pool) and the Prometheus rendering of the same."""

from __future__ import annotations

import pytest

from utils.binance import BinanceClient, BinanceInvalidSymbolError, Market


async def test_metrics_count_requests_errors_and_latency_per_endpoint(
    client: BinanceClient,
) -> None:
    for _ in range(3):
        await client.get_symbol_price("BTCUSDT")
    with pytest.raises(BinanceInvalidSymbolError):
        await client.get_symbol_price("NOSUCHPAIR")
    metrics = client.get_metrics()
    row = metrics["http"]["endpoints"]["GET /api/v3/ticker/price"]
    assert row["requests"] == 4
    assert row["errors"] == {-1121: 1}
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    pools = {p["pool"]: p for p in metrics["pools"]}
    weight = next(p for name, p in pools.items() if name.startswith("spot REQUEST_WEIGHT"))
    assert weight["used"] >= 4 * 2  # four weight-2 calls (and exchangeInfo)
    assert metrics["breakers"] == {"spot": "closed", "futures": "closed"}


async def test_funding_rate_calls_are_metered_in_their_own_pool(client: BinanceClient) -> None:
    for _ in range(3):
        await client.get_funding_rate_history("BTCUSDT")
    pools = {p["pool"]: p for p in client.get_metrics()["pools"]}
    assert pools["futures fundingRate 5M"] == {
        "pool": "futures fundingRate 5M",
        "used": 3,
        "limit": 500,
    }


async def test_prometheus_text_carries_the_same_numbers(client: BinanceClient) -> None:
    await client.get_symbol_price("BTCUSDT")
    await client.get_symbol_price("BTCUSDT", market=Market.FUTURES)
    text = client.metrics_text()
    assert "# TYPE binance_requests_total counter" in text
    assert 'binance_requests_total{endpoint="GET /api/v3/ticker/price"} 1' in text
    assert 'binance_requests_total{endpoint="GET /fapi/v2/ticker/price"} 1' in text
    assert 'binance_breaker_open{market="spot",state="closed"} 0' in text
    assert 'binance_request_latency_ms{endpoint="GET /api/v3/ticker/price",quantile="0.5"}' in text
    for line in text.splitlines():  # every sample line is "name{labels} value"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
