"""``fetch_candles`` over the wire: a real ``BinanceClient`` against the fake exchange serving
the shipped fixture. Closed candles only unless live, paging past one call's maximum, gaps
named, a listing's short history counted, bad input refused before any klines request."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from analysis.candles import MAX_CANDLES, fetch_candles, valid_intervals
from analysis.errors import LimitOutOfRangeError, UnknownIntervalError
from tests.analysis.conftest import series
from utils.binance.binance_a import BinanceUnknownSymbolError, Market

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance
    from utils.binance.binance_a import BinanceClient

SPOT_KLINES = "GET /api/v3/klines"


def serve(fake: FakeBinance, frame: pd.DataFrame, symbol: str = "BTCUSDT") -> None:
    fake.market.candles.serve_series("spot", symbol, "1h", series(frame))


def values(frame: pd.DataFrame) -> list[list[float]]:
    return frame[["open", "high", "low", "close", "volume"]].to_numpy().tolist()


async def test_only_closed_candles_come_back_the_last_being_the_last_closed(
    client: BinanceClient, fake_binance: FakeBinance, walk: pd.DataFrame
) -> None:
    serve(fake_binance, walk)
    candles = await fetch_candles(client, "BTCUSDT", "1h", limit=500)
    assert len(candles.frame) == 500
    assert values(candles.frame) == values(walk.tail(500))
    assert not candles.live
    assert candles.available == 500
    last_open = candles.last_open_time
    assert candles.next_close == last_open + timedelta(hours=2)  # the forming one's close
    assert fake_binance.count(SPOT_KLINES) == 1


async def test_live_adds_the_forming_candle_last(
    client: BinanceClient, fake_binance: FakeBinance, walk: pd.DataFrame
) -> None:
    serve(fake_binance, walk)
    candles = await fetch_candles(client, "BTCUSDT", "1h", limit=500, live=True)
    assert candles.live
    assert len(candles.frame) == 501
    assert values(candles.closed) == values(walk.tail(500))
    forming = candles.frame.iloc[-1]
    assert forming["open"] == walk["close"].iloc[-1]
    assert forming["close"] == 65_000.0  # the fake's BTCUSDT price now
    assert candles.next_close == candles.last_open_time + timedelta(hours=1)


async def test_more_than_one_call_allows_pages_backwards(
    client: BinanceClient, fake_binance: FakeBinance, walk: pd.DataFrame
) -> None:
    serve(fake_binance, walk)
    candles = await fetch_candles(client, "BTCUSDT", "1h", limit=1200)
    assert values(candles.frame) == values(walk.tail(1200))
    assert candles.frame.index.is_monotonic_increasing
    assert fake_binance.count(SPOT_KLINES) == 2  # 1,201 rows: spot answers 1,000 at most


async def test_gaps_are_named_and_the_history_is_as_long_as_binance_has_it(
    client: BinanceClient, fake_binance: FakeBinance, walk: pd.DataFrame
) -> None:
    serve(fake_binance, walk)
    candles = await fetch_candles(client, "BTCUSDT", "1h", limit=MAX_CANDLES)
    assert candles.available == len(walk) == 1470  # fewer than asked: the series' start
    assert [g.missing for g in candles.gaps] == [5, 1, 24]
    assert candles.missing == 30
    first, index = candles.gaps[0], candles.frame.index
    assert pd.Timestamp(first.start) == index[399] + pd.Timedelta(hours=1)  # after 400 rows
    assert pd.Timestamp(first.end) == index[399] + pd.Timedelta(hours=5)
    assert index[400] == pd.Timestamp(first.end) + pd.Timedelta(hours=1)
    # the frame keeps the candles on both sides as consecutive rows: nothing filled in
    assert len(candles.frame) == 1470


async def test_a_listing_has_the_few_candles_it_has(
    client: BinanceClient, fake_binance: FakeBinance, listing: pd.DataFrame
) -> None:
    serve(fake_binance, listing, "APTUSDT")
    candles = await fetch_candles(client, "APTUSDT", "1h", limit=999)
    assert candles.available == 30
    assert values(candles.frame) == values(listing)
    assert candles.gaps == ()


async def test_a_bare_asset_means_its_usdt_pair(
    client: BinanceClient, fake_binance: FakeBinance, walk: pd.DataFrame
) -> None:
    serve(fake_binance, walk)
    candles = await fetch_candles(client, "btc", "1h", limit=50)
    assert candles.symbol == "BTCUSDT"


async def test_an_unknown_symbol_names_the_closest_ones_and_fetches_no_klines(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    with pytest.raises(BinanceUnknownSymbolError) as e:
        await fetch_candles(client, "BTCUSDX", "1h")
    assert "BTCUSDT" in e.value.suggestions
    assert fake_binance.count(SPOT_KLINES) == 0


@pytest.mark.parametrize(("interval", "market"), [("2h30", Market.SPOT), ("1s", Market.FUTURES)])
async def test_an_unknown_interval_lists_the_valid_ones_and_sends_nothing(
    client: BinanceClient, fake_binance: FakeBinance, interval: str, market: Market
) -> None:
    with pytest.raises(UnknownIntervalError) as e:
        await fetch_candles(client, "BTCUSDT", interval, market=market)
    assert e.value.valid == valid_intervals(market)
    assert "1h" in e.value.valid
    assert ("1s" in e.value.valid) is (market is Market.SPOT)
    assert fake_binance.count() == 0


@pytest.mark.parametrize("limit", [0, MAX_CANDLES + 1])
async def test_a_limit_out_of_range_names_the_range(
    client: BinanceClient, fake_binance: FakeBinance, limit: int
) -> None:
    with pytest.raises(LimitOutOfRangeError) as e:
        await fetch_candles(client, "BTCUSDT", "1h", limit=limit)
    assert (e.value.lo, e.value.hi, e.value.limit) == (1, MAX_CANDLES, limit)
    assert fake_binance.count() == 0


async def test_the_fakes_own_candles_come_without_the_forming_one(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    # no fixture: the fake's wave; the last row's close time has passed
    candles = await fetch_candles(client, "ETHUSDT", "15m", limit=100)
    assert len(candles.frame) == 100
    close_of_last = candles.last_open_time + timedelta(minutes=15)
    assert close_of_last <= candles.next_close - timedelta(minutes=15)
    assert candles.gaps == ()
