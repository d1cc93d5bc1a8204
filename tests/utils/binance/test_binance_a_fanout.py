"""The facade's fan-out: spot and futures fetched together, one failure per item."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from utils.binance import BinanceClient, Market

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

LATENCY_S = 0.1


async def both_markets(client: BinanceClient, n: int) -> list[str]:
    spot = await client.symbol_rules(Market.SPOT)
    futures = await client.symbol_rules(Market.FUTURES)
    names = [s for s in spot.names if s in futures]
    return names[:n]


async def test_get_prices_fetches_20_symbols_spot_and_futures_at_once(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    symbols = await both_markets(client, 20)
    assert len(symbols) == 20
    fake_binance.latency_s = LATENCY_S  # sequential calls would arrive LATENCY_S apart
    before = len(fake_binance.requests)
    prices = await client.get_prices(symbols)
    sent = fake_binance.requests[before:]
    assert {r.market for r in sent} == {Market.SPOT, Market.FUTURES}
    arrivals = [r.t for r in sent]
    assert max(arrivals) - min(arrivals) < LATENCY_S  # all were in flight together
    for symbol in symbols:
        snapshot = prices[symbol]
        assert snapshot.error is None, snapshot
        assert snapshot.price is not None
        assert snapshot.price > 0
        assert snapshot.mark_price is not None
        assert snapshot.mark_price > 0
        assert snapshot.funding_rate is not None
        assert snapshot.change_24h_pct is not None


async def test_a_bad_symbol_is_reported_without_failing_the_others(
    client: BinanceClient,
) -> None:
    prices = await client.get_prices(["BTCUSDT", "BTCUSTD", "ETHUSDT", "!!"])
    assert prices["BTCUSDT"].price is not None
    assert prices["ETHUSDT"].mark_price is not None
    assert prices["BTCUSTD"].price is None
    assert prices["BTCUSTD"].error is not None
    assert "BTCUSDT" in prices["BTCUSTD"].error  # the closest valid symbol is suggested
    assert prices["!!"].error is not None


async def test_a_bare_base_asset_means_its_usdt_pair(client: BinanceClient) -> None:
    prices = await client.get_prices(["btc", "eth"])
    assert set(prices) == {"BTCUSDT", "ETHUSDT"}
    assert all(p.error is None for p in prices.values())


async def test_portfolio_values_spot_and_futures_in_usdt(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.set_price("BTCUSDT", "50000")
    portfolio = await client.get_portfolio()
    assert portfolio.errors == {}
    spot = {a.asset: a for a in portfolio.spot}
    assert spot["USDT"].value_usdt == spot["USDT"].amount
    assert spot["BTC"].value_usdt == spot["BTC"].amount * Decimal(50000)
    assert portfolio.futures  # the futures wallet is listed too
    assert portfolio.total_usdt >= spot["USDT"].value_usdt + spot["BTC"].value_usdt
