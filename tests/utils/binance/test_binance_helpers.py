"""The typed helpers over HTTP against the fake exchange: models with Decimal money, the
klines DataFrame, and orders checked against the symbol's filters before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from utils.binance import BinanceClient, BinanceInputError, Market, OrderSide
from utils.binance.binance_exceptions import BinanceFilterError, BinanceUnknownSymbolError
from utils.binance.binance_types import (
    AggTrade,
    Balance,
    FundingRate,
    KlineInterval,
    MarkPrice,
    Order,
    PositionRisk,
    Trade,
)

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

ORDER = "POST /api/v3/order"
INFO = "GET /api/v3/exchangeInfo"
F = Market.FUTURES


def full_info_requests(fake: FakeBinance, key: str = INFO) -> int:
    """exchangeInfo calls without ``symbol`` (the client's start-up call names BTCUSDT)."""
    return sum(1 for r in fake.requests if r.key == key and "symbol" not in r.params)


# --- market data -----------------------------------------------------------------------
async def test_spot_tickers_are_typed_with_decimal_prices(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    fake_binance.set_price("BTCUSDT", "50123.45")
    price = await client.get_ticker_price("btcusdt")
    assert (price.symbol, price.price) == ("BTCUSDT", Decimal("50123.45"))
    stats = await client.get_ticker_stats("BTCUSDT")
    assert stats.last_price == Decimal("50123.45")
    assert isinstance(stats.quote_volume, Decimal)
    assert stats.count == 5000
    book = await client.get_book_ticker("BTCUSDT")
    assert book.bid_price < book.ask_price
    assert isinstance(book.bid_qty, Decimal)
    avg = await client.get_avg_price("BTCUSDT")
    assert (avg.mins, avg.price) == (5, Decimal("50123.45"))


async def test_order_book_levels_are_decimal_pairs_best_first(client: BinanceClient) -> None:
    book = await client.get_depth("ETHUSDT", limit=5)
    assert len(book.bids) == len(book.asks) == 5
    price, qty = book.bids[0]
    assert isinstance(price, Decimal)
    assert isinstance(qty, Decimal)
    assert book.bids[0][0] > book.bids[1][0]
    assert book.asks[0][0] < book.asks[1][0]


async def test_recent_and_aggregate_trades_are_typed(client: BinanceClient) -> None:
    trades = await client.get_recent_trades("BTCUSDT", limit=3)
    assert len(trades) == 3
    assert all(isinstance(t, Trade) and isinstance(t.price, Decimal) for t in trades)
    agg = await client.get_agg_trades("BTCUSDT", limit=4, market=F)
    assert len(agg) == 4
    assert all(isinstance(a, AggTrade) and a.last_trade_id > a.first_trade_id for a in agg)


async def test_candles_are_typed_and_only_the_last_is_open(client: BinanceClient) -> None:
    candles = await client.get_candles("BTCUSDT", KlineInterval.M15, limit=10)
    assert len(candles) == 10
    assert isinstance(candles[0].close, Decimal)
    assert [c.closed for c in candles] == [True] * 9 + [False]
    assert candles[1].open_time - candles[0].open_time == 15 * 60_000


async def test_bad_interval_or_limit_is_refused_before_sending(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    with pytest.raises(BinanceInputError, match="interval"):
        await client.get_klines("BTCUSDT", "7m")
    with pytest.raises(BinanceInputError, match="spot only"):
        await client.get_candles("BTCUSDT", "1s", market=F)
    with pytest.raises(BinanceInputError, match="limit"):
        await client.get_candles("BTCUSDT", "1h", limit=1001)
    assert fake_binance.count() == 0


async def test_futures_mark_price_funding_and_open_interest_are_typed(
    client: BinanceClient,
) -> None:
    price = await client.get_ticker_price("BTCUSDT", market=F)
    assert price.time is not None
    mark = await client.get_premium_index("BTCUSDT")
    assert isinstance(mark, MarkPrice)
    assert mark.last_funding_rate == Decimal("0.0001")
    assert mark.next_funding_time > mark.time
    assert isinstance(mark.index_price, Decimal)
    rates = await client.get_funding_rate_history("BTCUSDT", limit=3)
    assert rates
    assert all(isinstance(r, FundingRate) and r.symbol == "BTCUSDT" for r in rates)
    assert all(isinstance(r.funding_rate, Decimal) for r in rates)
    interest = await client.get_open_interest("ETHUSDT")
    assert interest.symbol == "ETHUSDT"
    assert interest.open_interest > 0


async def test_symbol_info_carries_the_filters(client: BinanceClient) -> None:
    spot = await client.get_symbol_info("BTCUSDT")
    assert spot.price_filter is not None
    assert spot.price_filter.tick_size == Decimal("0.01")
    assert spot.lot_size is not None
    assert spot.lot_size.step_size == Decimal("0.00001")
    assert spot.notional is not None
    assert (spot.notional.filter_type, spot.notional.min_notional) == ("NOTIONAL", 5)
    futures = await client.get_symbol_info("ETHUSDT", market=F)
    assert futures.notional is not None
    assert (futures.notional.filter_type, futures.notional.field) == ("MIN_NOTIONAL", "notional")
    assert futures.market_lot_size is not None


# --- the klines DataFrame ----------------------------------------------------------------
async def test_klines_dataframe_has_a_utc_index_float_columns_and_a_closed_flag(
    client: BinanceClient,
) -> None:
    df = await client.get_klines_dataframe("BTCUSDT", interval="1h", limit=50)
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "open_time"
    assert str(df.index.tz) == "UTC"
    assert len(df) == 50
    for column in ("open", "high", "low", "close", "volume", "quote_volume"):
        assert df[column].dtype == "float64", column
    assert df["trades"].dtype == "int64"
    assert df["closed"].dtype == bool
    assert df.attrs["last_closed"] is False
    assert not df["closed"].iloc[-1]
    assert df["closed"].iloc[:-1].all()
    assert (df.index[1] - df.index[0]) == pd.Timedelta(hours=1)


async def test_klines_dataframe_supports_the_seeds_rolling_mean(client: BinanceClient) -> None:
    df = await client.get_klines_dataframe("ETHUSDT", limit=100, market=F)
    sma = df["close"].rolling(window=20).mean()
    assert sma.iloc[:19].isna().all()
    assert sma.iloc[-1] == pytest.approx(df["close"].iloc[-20:].mean())


def test_importing_the_client_does_not_import_pandas() -> None:
    code = "import sys, utils.binance; print('pandas' in sys.modules)"
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- account and orders -------------------------------------------------------------------
async def test_spot_account_and_balances_are_typed(client: BinanceClient) -> None:
    account = await client.get_account_info()
    assert account.can_trade
    assert all(isinstance(b, Balance) for b in account.balances)
    balances = {b.asset: b for b in await client.get_balances()}
    assert set(balances) == {"USDT", "BTC"}
    assert balances["BTC"].free == Decimal("0.5")
    assert balances["USDT"].total == Decimal(1000)
    assert len(await client.get_balances(include_zero=True)) == len(account.balances)


async def test_order_helpers_list_query_and_cancel_typed_orders(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    resting = await client.new_order(
        "BTCUSDT", side=OrderSide.BUY, type_="LIMIT", quantity="0.001", price="60000"
    )
    filled = await client.new_order("BTCUSDT", side="BUY", quantity=Decimal("0.0002"))
    assert resting.price == Decimal(60000)
    assert filled.status == "FILLED"
    open_orders = await client.get_open_orders("BTCUSDT")
    assert [o.order_id for o in open_orders] == [resting.order_id]
    every = await client.get_all_orders("BTCUSDT")
    assert {o.order_id for o in every} == {resting.order_id, filled.order_id}
    assert all(isinstance(o, Order) for o in every)
    trades = await client.get_my_trades("BTCUSDT")
    assert [t.order_id for t in trades] == [filled.order_id]
    assert trades[0].qty == Decimal("0.0002")
    assert isinstance(trades[0].commission, Decimal)
    cancelled = await client.cancel_order("BTCUSDT", order_id=resting.order_id)
    assert cancelled.status == "CANCELED"
    assert (await client.get_order("BTCUSDT", order_id=resting.order_id)).status == "CANCELED"
    assert fake_binance.count(ORDER) == 2


async def test_test_order_is_checked_and_places_nothing(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    await client.test_order("BTCUSDT", side="SELL", type_="LIMIT", quantity="0.01", price="70000")
    assert fake_binance.count("POST /api/v3/order/test") == 1
    assert fake_binance.orders_placed == 0
    with pytest.raises(BinanceFilterError, match="LOT_SIZE"):
        await client.test_order("BTCUSDT", side="SELL", quantity="0.000001")
    assert fake_binance.count("POST /api/v3/order/test") == 1


async def test_futures_account_positions_leverage_and_income_are_typed(
    client: BinanceClient,
) -> None:
    balances = await client.get_futures_balances()
    usdt = next(b for b in balances if b.asset == "USDT")
    assert usdt.balance == Decimal(1000)
    change = await client.change_leverage("BTCUSDT", 10)
    assert (change.symbol, change.leverage) == ("BTCUSDT", 10)
    assert isinstance(change.max_notional_value, Decimal)
    await client.new_order("ETHUSDT", side="BUY", quantity="0.01", market=F)
    risks = await client.get_position_risk()
    assert [(r.symbol, r.position_amt) for r in risks] == [("ETHUSDT", Decimal("0.01"))]
    assert all(isinstance(r, PositionRisk) for r in risks)
    account = await client.get_futures_account()
    assert account.total_wallet_balance == Decimal(1000)
    assert [p.symbol for p in account.positions] == ["ETHUSDT"]
    income = await client.get_income_history(income_type="transfer")
    assert [(i.income_type, i.income, i.asset) for i in income] == [
        ("TRANSFER", Decimal(1000), "USDT")
    ]
    with pytest.raises(BinanceInputError, match="leverage"):
        await client.change_leverage("BTCUSDT", 200)


# --- symbol rules: orders are checked before they are sent --------------------------------
@pytest.mark.parametrize(
    ("order", "filter_type", "message"),
    [
        pytest.param(
            {"quantity": "0.0000001"},
            "LOT_SIZE",
            "quantity 0.0000001 is below minQty 0.00001",
            id="below-min-qty",
        ),
        pytest.param(
            {"quantity": "0.000015"},
            "LOT_SIZE",
            "quantity 0.000015 is not a multiple of stepSize 0.00001",
            id="off-step",
        ),
        pytest.param(
            {"quantity": "0.001", "type_": "LIMIT", "price": "65000.005"},
            "PRICE_FILTER",
            "price 65000.005 is not a multiple of tickSize 0.01",
            id="off-tick",
        ),
        pytest.param(
            {"quantity": "0.00001", "type_": "LIMIT", "price": "10000"},
            "NOTIONAL",
            "price \N{MULTIPLICATION SIGN} quantity = 0.1 is below minNotional 5",
            id="limit-notional",
        ),
        pytest.param(
            {"quantity": "0.00005"},
            "NOTIONAL",
            "last price \N{MULTIPLICATION SIGN} quantity = 3.25 is below minNotional 5",
            id="market-notional-at-last-price",
        ),
    ],
)
async def test_order_breaking_a_filter_is_refused_locally_naming_the_filter(
    client: BinanceClient,
    fake_binance: FakeBinance,
    order: dict[str, str],
    filter_type: str,
    message: str,
) -> None:
    fake_binance.set_price("BTCUSDT", "65000")
    with pytest.raises(BinanceFilterError) as caught:
        await client.new_order("BTCUSDT", side="BUY", **order)  # type: ignore[arg-type]
    assert caught.value.filter_type == filter_type
    assert str(caught.value).startswith(f"{filter_type}: {message}")
    assert isinstance(caught.value, ValueError)
    assert fake_binance.count(ORDER) == 0


async def test_futures_order_below_min_notional_is_refused_locally(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    with pytest.raises(BinanceFilterError, match=r"MIN_NOTIONAL: .* below notional 5"):
        await client.new_order("ETHUSDT", side="BUY", quantity="0.001", market=F)
    assert fake_binance.count("POST /fapi/v1/order") == 0


@pytest.mark.parametrize(("typo", "meant"), [("BTCUSTD", "BTCUSDT"), ("btc", "BTCUSDT")])
async def test_unknown_symbol_is_refused_locally_with_suggestions(
    client: BinanceClient, fake_binance: FakeBinance, typo: str, meant: str
) -> None:
    with pytest.raises(BinanceUnknownSymbolError) as caught:
        await client.new_order(typo, side="BUY", quantity="0.001")
    assert meant in caught.value.suggestions
    assert f"did you mean {meant}" in str(caught.value)
    assert fake_binance.count(ORDER) == 0


async def test_exchange_info_is_loaded_once_for_many_orders(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    for price in ("60000", "60000.01", "60000.02"):
        await client.new_order("BTCUSDT", side="BUY", type_="LIMIT", quantity="0.001", price=price)
    await client.new_order("ETHUSDT", side="SELL", quantity="0.01")
    with pytest.raises(BinanceFilterError):
        await client.new_order("BTCUSDT", side="BUY", quantity="0.000015")
    await client.get_symbol_info("SOLUSDT")
    assert full_info_requests(fake_binance) == 1
    assert fake_binance.count(INFO) == 2  # plus the start-up call that loads rate limits
    assert fake_binance.count(ORDER) == 4
