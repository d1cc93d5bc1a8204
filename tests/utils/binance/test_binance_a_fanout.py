"""The facade's fan-out: spot and futures fetched together, one failure per item."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

from tests.utils.binance.conftest import make_config, no_redis
from utils.binance import BinanceClient, Market

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

REQUESTS = 22  # 20 symbols: spot prices and 24 h changes in one request each, 20 marks


async def both_markets(client: BinanceClient, n: int) -> list[str]:
    spot = await client.symbol_rules(Market.SPOT)
    futures = await client.symbol_rules(Market.FUTURES)
    names = [s for s in spot.names if s in futures]
    return names[:n]


async def test_get_prices_fetches_20_symbols_spot_and_futures_at_once(
    fake_binance: FakeBinance,
) -> None:
    config = make_config(fake_binance, request_timeout=30)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        symbols = await both_markets(client, 20)
        assert len(symbols) == 20
        before = len(fake_binance.requests)
        # No answer to any request: a client that waited for one answer before sending the
        # next request would stop at the first. Spot's two, and a mark price per symbol.
        fake_binance.hang_next(REQUESTS)
        fetching = asyncio.create_task(client.get_prices(symbols))
        await fake_binance.wait_for_requests(before + REQUESTS)
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
        in_flight = fake_binance.requests[before:]
        assert {r.market for r in in_flight} == {Market.SPOT, Market.FUTURES}
        assert {r.status for r in in_flight} == {0}  # all of them sent, none answered
        prices = await client.get_prices(symbols)  # answered this time
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
