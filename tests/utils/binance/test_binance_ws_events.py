"""Typed stream events: each stream kind parsed once into its frozen type, Binance's payload
still readable as ``event["c"]``, the all-market arrays typed only where read, and a payload
Binance would never send counted and skipped rather than handed to a callback."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.fakes.fake_ws import FakeBinanceWS
from tests.fakes.fake_ws_wire import (
    agg_trade,
    book_ticker,
    kline,
    mark_price,
    mini_ticker,
    mini_ticker_array,
    ticker,
)
from tests.utils.binance.stream_helpers import Inbox, config, open_client
from utils.binance.binance_types import Market
from utils.binance.binance_ws_events import (
    AggTradeEvent,
    BookTickerEvent,
    EventArray,
    KlineEvent,
    MarkPriceEvent,
    MiniTickerEvent,
    RawEvent,
    TickerEvent,
    TradeEvent,
    parse_message,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def spot() -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT) as fake:
        yield fake


def test_a_ticker_is_typed_and_still_answers_binances_field_names() -> None:
    event = parse_message("btcusdt@ticker", ticker("BTCUSDT", "50000.5"))
    assert isinstance(event, TickerEvent)
    assert (event.symbol, event.last_price, event.source) == (
        "BTCUSDT",
        Decimal("50000.5"),
        "live",
    )
    assert event["c"] == "50000.50000000"
    assert "c" in event
    assert event.get("missing", "default") == "default"
    assert event.price_change == event.last_price - event.open_price
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.symbol = "ETHUSDT"  # type: ignore[misc]  # frozen, on purpose


def test_each_price_and_trade_stream_kind_has_its_type() -> None:
    mark = parse_message("btcusdt@markPrice@1s", mark_price("BTCUSDT", "3", "0.0001"))
    assert isinstance(mark, MarkPriceEvent)
    assert (mark.mark_price, mark.funding_rate) == (Decimal(3), Decimal("0.0001"))
    book = parse_message("btcusdt@bookTicker", book_ticker("BTCUSDT", 1, 2))
    assert isinstance(book, BookTickerEvent)
    assert (book.bid_price, book.ask_price, book.event_time) == (Decimal(1), Decimal(2), None)
    mini = parse_message("ethusdt@miniTicker", mini_ticker("ETHUSDT", 7))
    assert isinstance(mini, MiniTickerEvent)
    assert mini.last_price == Decimal(7)
    trade = parse_message("btcusdt@aggTrade", agg_trade("BTCUSDT", 5, trade_id=9))
    assert isinstance(trade, AggTradeEvent)
    assert (trade.agg_trade_id, trade.price, trade.buyer_is_maker) == (9, Decimal(5), False)
    raw_trade = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 3, "p": "1.5", "q": "2"}
    plain = parse_message("btcusdt@trade", raw_trade | {"T": 1, "m": True, "M": True})
    assert isinstance(plain, TradeEvent)
    assert (plain.trade_id, plain.quantity, plain.buyer_is_maker) == (3, Decimal(2), True)


def test_a_kline_carries_its_candle_and_closed_flag() -> None:
    event = parse_message("btcusdt@kline_1m", kline("BTCUSDT", "1m", True, close=101, start_ms=0))
    assert isinstance(event, KlineEvent)
    assert (event.interval, event.open_time, event.close_time) == ("1m", 0, 59_999)
    assert (event.close, event.closed, event.trades) == (Decimal(101), True, 100)
    assert event["k"]["x"] is True


def test_kinds_without_a_type_arrive_raw() -> None:
    depth = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "b": [], "a": []}
    event = parse_message("btcusdt@depth@100ms", depth)
    assert isinstance(event, RawEvent)
    assert (event.stream, event["e"]) == ("btcusdt@depth@100ms", "depthUpdate")


def test_an_all_market_array_types_a_row_only_when_it_is_read() -> None:
    rows = mini_ticker_array({"BTCUSDT": 1, "ETHUSDT": 2, "BNBUSDT": 3})
    rows[2]["c"] = "not a number"  # never read below, so never parsed
    array = parse_message("!miniTicker@arr", rows, "rest")
    assert isinstance(array, EventArray)
    assert array.rows is rows
    assert len(array) == 3
    assert array.source == "rest"
    assert array[0].symbol == "BTCUSDT"
    assert [t.last_price for t in array[:2]] == [Decimal(1), Decimal(2)]
    assert array[1]["s"] == "ETHUSDT"
    assert array[1].source == "rest"
    with pytest.raises(AttributeError):
        array.source = "live"  # type: ignore[misc]  # frozen, on purpose


async def test_a_payload_binance_never_sends_is_counted_and_skipped(
    spot: FakeBinanceWS,
) -> None:
    async with open_client(config(spot)) as client:
        inbox = Inbox()
        await client.ws_subscribe(["btcusdt@aggTrade", "btcusdt@depth5"], inbox)
        await spot.wait_for_subscribed("btcusdt@depth5")
        await spot.push("btcusdt@aggTrade", {"e": "aggTrade", "s": "BTCUSDT"})  # no price
        await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 2))
        await spot.push("btcusdt@depth5", {"lastUpdateId": 1, "bids": [], "asks": []})
        items = await inbox.wait_count(2)
        assert client.get_metrics()["ws"]["bad_messages"] == 1
    by_stream = dict(items)
    assert isinstance(by_stream["btcusdt@aggTrade"], AggTradeEvent)
    assert by_stream["btcusdt@aggTrade"].price == Decimal(2)
    assert isinstance(by_stream["btcusdt@depth5"], RawEvent)
    assert by_stream["btcusdt@depth5"]["lastUpdateId"] == 1
