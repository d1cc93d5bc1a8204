"""Streams through ``BinanceClient`` over real websockets to the fake Binance stream server:
subscribe, multiplex, pace, reconnect, heal stalls, rotate, dispatch and shut down."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.fakes.fake_ws import FakeBinanceWS, rest_listen_keys
from tests.fakes.fake_ws_wire import (
    agg_trade,
    book_ticker,
    kline,
    mark_price_array,
    mini_ticker_array,
    ticker,
)
from tests.utils.binance.conftest import API_KEY, SECRET
from tests.utils.binance.stream_helpers import WAIT_S, Events, Inbox, config, open_client
from utils.binance import BinanceClient, BinanceWebSocketError
from utils.binance.binance_types import Market
from utils.binance.binance_ws_events import (
    BookTickerEvent,
    MarkPriceEvent,
    MiniTickerEvent,
    TickerEvent,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.fakes.fake_binance import FakeBinance

SPOT_RATE, FUTURES_RATE = 5, 10


@pytest.fixture
async def spot() -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT) as fake:
        yield fake


@pytest.fixture
async def futures() -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.FUTURES, strict_routes=True) as fake:
        yield fake


@pytest.fixture
async def client(spot: FakeBinanceWS, futures: FakeBinanceWS) -> AsyncIterator[BinanceClient]:
    async with open_client(config(spot, futures)) as c:
        yield c


def seqs(items: list[Any]) -> list[int]:
    return [data["_seq"] for _stream, data in items]


async def test_ticker_callback_gets_the_last_price(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    inbox = Inbox()
    await client.ws_ticker("BTCUSDT", inbox)
    await spot.wait_for_subscribed("btcusdt@ticker")
    await spot.push("btcusdt@ticker", ticker("BTCUSDT", "50000"))
    [data] = await inbox.wait_count(1)
    assert data["c"] == "50000.00000000"  # the seed's example reads Binance's field
    assert isinstance(data, TickerEvent)
    assert (data.symbol, data.last_price, data.source) == ("BTCUSDT", Decimal(50000), "live")
    assert client.get_metrics()["ws"]["connections"] == 1


async def test_all_mini_tickers_and_all_mark_prices_arrive_as_arrays(
    client: BinanceClient, spot: FakeBinanceWS, futures: FakeBinanceWS
) -> None:
    minis, marks = Inbox(), Inbox()
    await client.ws_all_mini_tickers(minis)
    await client.ws_all_mark_prices(marks)
    await spot.wait_for_subscribed("!miniTicker@arr")
    await futures.wait_for_subscribed("!markPrice@arr")
    await spot.push("!miniTicker@arr", mini_ticker_array({"BTCUSDT": 1, "ETHUSDT": 2}))
    await futures.push("!markPrice@arr", mark_price_array({"BTCUSDT": 3}))
    [rows] = await minis.wait_count(1)
    [mark_rows] = await marks.wait_count(1)
    assert [r["s"] for r in rows] == ["BTCUSDT", "ETHUSDT"]
    assert [(r.symbol, r.last_price) for r in rows] == [
        ("BTCUSDT", Decimal(1)),
        ("ETHUSDT", Decimal(2)),
    ]
    assert isinstance(rows[0], MiniTickerEvent)
    assert isinstance(mark_rows[0], MarkPriceEvent)
    assert mark_rows[0].mark_price == Decimal(3)
    assert mark_rows[0]["p"] == "3.00000000"


async def test_futures_streams_go_to_their_route(
    client: BinanceClient, futures: FakeBinanceWS
) -> None:
    inbox = Inbox()
    streams = ["btcusdt@bookTicker", "btcusdt@aggTrade", "btcusdt@depth5"]
    await client.ws_subscribe(streams, inbox, market="futures")
    for s in streams:
        await futures.wait_for_subscribed(s)
    await futures.push("btcusdt@bookTicker", book_ticker("BTCUSDT", 1, 2, futures=True))
    await futures.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 5, futures=True))
    await inbox.wait_count(2)
    assert futures.misrouted == []
    assert sorted(c.route for c in futures.open_connections) == ["market", "public"]


async def test_futures_connections_that_drop_together_resubscribe_within_the_rate(
    client: BinanceClient, futures: FakeBinanceWS
) -> None:
    streams = [f"s{i}usdt@{kind}" for i in range(600) for kind in ("bookTicker", "aggTrade")]
    await client.ws_subscribe(streams, Inbox(), market=Market.FUTURES)

    def carried() -> int:
        return sum(len(c.streams) for c in futures.open_connections)

    await futures.wait_until(lambda: carried() == 1200)
    assert futures.drop() == 2
    await futures.wait_until(lambda: len(futures.connections) == 4 and carried() == 1200)
    assert futures.rate_violations == []
    assert futures.misrouted == []
    assert all(c.max_rate() <= FUTURES_RATE for c in futures.connections)


async def test_refused_reconnects_back_off_and_retry_until_the_server_is_back(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    inbox = Inbox()
    await client.ws_subscribe(["btcusdt@aggTrade"], inbox)
    await spot.wait_for_subscribed("btcusdt@aggTrade")
    spot.refuse_connections(0.3)
    spot.drop()
    await spot.wait_until(lambda: len(spot.refused) >= 2)
    second = await spot.wait_for_connections(2)
    await spot.wait_until(lambda: "btcusdt@aggTrade" in second.streams)
    await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 1))
    await inbox.wait_count(1)
    assert client.get_metrics()["ws"]["reconnect_attempts"] >= 3


async def test_a_dropped_connection_comes_back_with_every_stream(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    events, inbox = Events(client), Inbox()
    streams = ["btcusdt@kline_1m", "ethusdt@aggTrade", "bnbusdt@ticker"]
    await client.ws_subscribe(streams, inbox)
    first = await spot.wait_for_subscribed("btcusdt@kline_1m")
    await spot.wait_until(lambda: len(first.streams) == 3)
    assert spot.drop() == 1
    second = await spot.wait_for_connections(2)
    await spot.wait_until(lambda: set(second.streams) == set(streams))
    await spot.push("btcusdt@kline_1m", kline("BTCUSDT"))
    await spot.push("ethusdt@aggTrade", agg_trade("ETHUSDT", 3))
    await spot.push("bnbusdt@ticker", ticker("BNBUSDT", 600))
    items = await inbox.wait_count(3)
    assert {stream for stream, _ in items} == set(streams)
    assert "ws.reconnect" in events.kinds()
    assert client.get_metrics()["ws"]["reconnects"] == 1
    assert "binance_ws_reconnects_total 1" in client.metrics_text()


async def test_after_a_reconnect_a_ticker_subscriber_gets_a_rest_snapshot_first(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    fake_binance.set_price("BTCUSDT", "43210.5")
    async with open_client(config(spot, rest=fake_binance)) as client:
        inbox = Inbox()
        await client.ws_ticker("btcusdt", inbox)
        await spot.wait_for_subscribed("btcusdt@ticker")
        spot.drop()
        second = await spot.wait_for_connections(2)
        await spot.wait_until(lambda: "btcusdt@ticker" in second.streams)
        [snapshot] = await inbox.wait_count(1)
        await spot.push("btcusdt@ticker", ticker("BTCUSDT", "43300"))
        live = (await inbox.wait_count(2))[1]
        assert snapshot["source"] == "rest"
        assert snapshot["e"] == "24hrTicker"
        assert Decimal(snapshot["c"]) == Decimal("43210.5")
        assert (snapshot.source, snapshot.last_price) == ("rest", Decimal("43210.5"))
        assert live["c"] == "43300.00000000"
        assert live.source == "live"
        assert client.get_metrics()["ws"]["snapshots"] == 1


async def test_a_silent_connection_is_detected_and_healed(spot: FakeBinanceWS) -> None:
    async with open_client(config(spot, ws_stall_s=0.3)) as client:
        events, inbox = Events(client), Inbox()
        await client.ws_subscribe(["btcusdt@aggTrade"], inbox)
        await spot.wait_for_subscribed("btcusdt@aggTrade")
        spot.autopush("btcusdt@aggTrade", 0.05, lambda n: agg_trade("BTCUSDT", 100 + n))
        await inbox.wait_count(2)
        spot.stall(10.0)
        second = await spot.wait_for_connections(2)
        await spot.wait_until(lambda: "btcusdt@aggTrade" in second.streams)
        before = len(inbox.items)
        await inbox.wait_count(before + 3)
        spot.stop_autopush("btcusdt@aggTrade")
        assert "ws.stall" in events.kinds()
        assert client.get_metrics()["ws"]["stalls"] >= 1


async def test_rotation_replaces_the_connection_without_missing_a_message(
    spot: FakeBinanceWS,
) -> None:
    async with open_client(config(spot, ws_rotate_s=1.0, ws_stall_s=0.5)) as client:
        events, inbox = Events(client), Inbox()
        await client.ws_subscribe(["btcusdt@aggTrade"], inbox)
        first = await spot.wait_for_subscribed("btcusdt@aggTrade")
        spot.autopush("btcusdt@aggTrade", 0.02, lambda n: agg_trade("BTCUSDT", 100 + n))
        await spot.wait_for_closed(first, timeout_s=WAIT_S)
        after = len(inbox.items)
        await inbox.wait_count(after + 10)
        spot.stop_autopush("btcusdt@aggTrade")
        last = spot.events_sent("btcusdt@aggTrade")[-1].seq
        items = await inbox.wait_for(lambda items: bool(items) and items[-1][1]["_seq"] == last)
        assert seqs(items) == list(range(1, last + 1))
        assert first.close_reason == "client"
        assert "ws.rotate" in events.kinds()
        assert "ws.stall" not in events.kinds()


async def test_server_shutdown_moves_streams_to_a_new_connection_at_once(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    events, inbox = Events(client), Inbox()
    await client.ws_subscribe(["btcusdt@aggTrade"], inbox)
    first = await spot.wait_for_subscribed("btcusdt@aggTrade")
    await spot.server_shutdown(grace_s=0.5)
    second = await spot.wait_for_connections(2)
    await spot.wait_until(lambda: "btcusdt@aggTrade" in second.streams)
    await spot.wait_for_closed(first)
    await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 1))
    await inbox.wait_count(1)
    assert "ws.server_shutdown" in events.kinds()


async def test_server_pings_are_answered_and_keep_the_connection(spot: FakeBinanceWS) -> None:
    spot.ping_interval_s, spot.pong_timeout_s = 0.3, 0.25
    async with open_client(config(spot)) as client:
        await client.ws_ticker("btcusdt", Inbox())
        conn = await spot.wait_for_subscribed("btcusdt@ticker")
        await spot.wait_until(lambda: conn.pings_sent >= 3)
        await spot.wait_until(lambda: len(conn.pongs) >= 3)
        assert conn.open


async def test_1500_streams_take_two_connections_and_resubscribe_within_the_rate(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    streams = [f"s{i}usdt@aggTrade" for i in range(1500)]
    await client.ws_subscribe(streams, Inbox())

    def carried() -> int:
        return sum(len(c.streams) for c in spot.open_connections)

    await spot.wait_until(lambda: carried() == 1500)
    assert sorted(len(c.streams) for c in spot.open_connections) == [476, 1024]
    assert spot.drop() == 2
    await spot.wait_until(lambda: len(spot.connections) == 4 and carried() == 1500)
    assert spot.rate_violations == []
    assert all(c.max_rate() <= SPOT_RATE for c in spot.connections)


async def test_streams_beyond_the_connection_cap_are_refused_with_a_clear_error(
    spot: FakeBinanceWS,
) -> None:
    async with open_client(config(spot, max_websocket_connections=1)) as client:
        with pytest.raises(BinanceWebSocketError, match="MAX_WEBSOCKET_CONNECTIONS"):
            await client.ws_subscribe([f"s{i}usdt@aggTrade" for i in range(1025)], Inbox())
        assert spot.connections == []


async def test_a_slow_callback_does_not_delay_another_subscriber(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    gate, fast = asyncio.Event(), Inbox()

    async def slow(_stream: str, _data: Any) -> None:
        await gate.wait()

    await client.ws_subscribe(["btcusdt@aggTrade"], slow)
    await client.ws_subscribe(["btcusdt@aggTrade"], fast)
    await spot.wait_for_subscribed("btcusdt@aggTrade")
    for n in range(3):
        await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", n + 1))
    assert seqs(await fast.wait_count(3)) == [1, 2, 3]
    gate.set()


async def test_a_raising_callback_is_isolated(client: BinanceClient, spot: FakeBinanceWS) -> None:
    good, bad_calls = Inbox(), Inbox()

    def bad(stream: str, data: Any) -> None:
        bad_calls(stream, data)
        raise RuntimeError("boom")

    await client.ws_subscribe(["btcusdt@aggTrade"], bad)
    await client.ws_subscribe(["btcusdt@aggTrade"], good)
    await spot.wait_for_subscribed("btcusdt@aggTrade")
    await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 1))
    await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 2))
    await good.wait_count(2)
    await bad_calls.wait_count(2)
    assert client.get_metrics()["ws"]["callback_errors"] == 2


async def test_a_busy_price_stream_keeps_only_the_newest_unread_message(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    gate, got, reader = asyncio.Event(), Inbox(), Inbox()

    async def slow(stream: str, data: Any) -> None:
        got(stream, data)
        await gate.wait()

    await client.ws_subscribe(["btcusdt@ticker"], slow)
    await client.ws_subscribe(["btcusdt@ticker"], reader)  # keeps up: shows what was read
    await spot.wait_for_subscribed("btcusdt@ticker")
    await spot.push("btcusdt@ticker", ticker("BTCUSDT", 100))
    await got.wait_count(1)  # the callback now holds message 1
    for n in range(1, 5):
        await spot.push("btcusdt@ticker", ticker("BTCUSDT", 100 + n))
    await reader.wait_for(lambda items: bool(items) and items[-1][1]["_seq"] == 5)
    gate.set()
    assert seqs(await got.wait_count(2)) == [1, 5]
    assert client.get_metrics()["ws"]["conflated"] >= 3  # the reader may conflate too


async def test_a_full_queue_on_a_trade_stream_is_reported(spot: FakeBinanceWS) -> None:
    async with open_client(config(spot, ws_queue_size=2)) as client:
        events, gate, started = Events(client), asyncio.Event(), asyncio.Event()

        async def slow(_stream: str, _data: Any) -> None:
            started.set()
            await gate.wait()

        await client.ws_subscribe(["btcusdt@aggTrade"], slow)
        await spot.wait_for_subscribed("btcusdt@aggTrade")
        await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 1))
        async with asyncio.timeout(WAIT_S):
            await started.wait()  # message 1 is in the callback
        for n in range(1, 5):
            await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", n + 1))
        await events.wait_for(lambda _: events.kinds().count("ws.overflow") == 2)
        assert client.get_metrics()["ws"]["overflows"] == 2
        gate.set()


async def test_unsubscribing_the_last_stream_closes_the_connection(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    a = await client.ws_subscribe(["btcusdt@aggTrade", "ethusdt@aggTrade"], Inbox())
    b = await client.ws_subscribe(["ethusdt@aggTrade"], Inbox())
    conn = await spot.wait_for_subscribed("btcusdt@aggTrade")
    await spot.wait_until(lambda: len(conn.streams) == 2)
    await a.unsubscribe()
    await spot.wait_until(lambda: list(conn.streams) == ["ethusdt@aggTrade"])
    assert conn.open
    await b.unsubscribe()
    await spot.wait_for_closed(conn)
    assert client.get_metrics()["ws"]["connections"] == 0


async def test_closing_the_client_leaves_no_task_or_socket(
    spot: FakeBinanceWS, futures: FakeBinanceWS
) -> None:
    async with open_client(config(spot, futures)) as client:
        await client.ws_ticker("btcusdt", Inbox())
        await client.ws_all_mark_prices(Inbox())
        await spot.wait_for_subscribed("btcusdt@ticker")
        await futures.wait_for_subscribed("!markPrice@arr")
    await spot.wait_until(lambda: not spot.open_connections)
    await futures.wait_until(lambda: not futures.open_connections)
    leftovers = [t for t in asyncio.all_tasks() if _ours(t) and t is not asyncio.current_task()]
    assert leftovers == []


def _ours(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return "utils/binance" in filename or "websockets" in filename


async def test_futures_user_data_flows_and_survives_key_expiry_and_a_dead_keepalive(
    fake_binance: FakeBinance,
) -> None:
    async with FakeBinanceWS(
        Market.FUTURES, strict_routes=True, listen_keys=rest_listen_keys(fake_binance)
    ) as fws:
        cfg = config(None, fws, rest=fake_binance, api_key=API_KEY, secret_key=SECRET)
        async with open_client(cfg.model_copy(update={"ws_listen_key_keepalive_s": 0.2})) as c:
            events, inbox = Events(c), Inbox()
            stream = await c.ws_futures_user_data(inbox)
            first = await fws.wait_for_connections(1)
            key = stream.listen_key
            assert key is not None
            assert first.route == "private"
            await fws.push_user_event(key, {"e": "ORDER_TRADE_UPDATE", "o": {"s": "BTCUSDT"}})
            [event] = await inbox.wait_count(1)
            assert event["o"]["s"] == "BTCUSDT"
            # Binance expires the key and says so: a new key, a new connection.
            fake_binance.accounts.expire_listen_keys()
            await fws.expire_listen_key(key)
            second = await fws.wait_for_connections(2)
            new_key = stream.listen_key
            assert new_key not in (None, key)
            await fws.push_user_event(new_key, {"e": "ACCOUNT_UPDATE"})
            await inbox.wait_count(2)
            # The key dies silently: the next keepalive gets -1125 and renews it.
            fake_binance.accounts.expire_listen_keys()
            await fws.wait_for_closed(second)
            await fws.wait_for_connections(3)
            assert stream.listen_key not in (key, new_key)
            assert events.kinds().count("ws.listen_key_expired") == 2
        assert fws.open_connections == []


async def test_spot_user_data_survives_a_terminated_subscription_and_a_drop() -> None:
    async with FakeBinanceWS(Market.SPOT, api_keys={API_KEY: SECRET}) as sws:
        cfg = config(sws, api_key=API_KEY, secret_key=SECRET, ws_api_url=f"{sws.url}/ws-api/v3")
        async with open_client(cfg) as client:
            inbox = Inbox()
            await client.ws_spot_user_data(inbox)

            def subscriptions() -> int:
                return sum(len(c.api.subscriptions) for c in sws.open_connections if c.api)

            async def subscribed(n: int) -> None:
                # The fake applies a WS-API request in the same step it records the frame.
                def requests() -> int:
                    frames = (f for c in sws.connections for f in c.frames)
                    return sum("subscribe.signature" in f.data for f in frames)

                await sws.wait_until(lambda: requests() >= n)
                assert subscriptions() == 1

            await subscribed(1)
            await sws.push_spot_user_event(API_KEY, {"e": "executionReport", "s": "BTCUSDT"})
            [event] = await inbox.wait_count(1)
            assert event["s"] == "BTCUSDT"
            assert await sws.terminate_spot_user_stream(API_KEY) == 1
            await subscribed(2)
            await sws.push_spot_user_event(API_KEY, {"e": "balanceUpdate"})
            await inbox.wait_count(2)
            assert sws.drop() == 1
            await sws.wait_for_connections(2)
            await subscribed(3)
            await sws.push_spot_user_event(API_KEY, {"e": "outboundAccountPosition"})
            assert [e["e"] for e in await inbox.wait_count(3)][1:] == [
                "balanceUpdate",
                "outboundAccountPosition",
            ]
        assert sws.open_connections == []


async def test_reconnects_respect_the_per_ip_connection_attempt_limit() -> None:
    async with FakeBinanceWS(Market.SPOT, max_connects_per_window=3, connect_window_s=1.0) as spot:
        cfg = config(spot, ws_connect_limit=3, ws_connect_window_s=1.0)
        async with open_client(cfg) as client:
            inbox = Inbox()
            await client.ws_subscribe(["btcusdt@aggTrade"], inbox)
            for n in range(2, 6):  # four drops: five connections within about a second
                await spot.wait_until(lambda: len(spot.open_connections) == 1)
                spot.drop()
                conn = await spot.wait_for_connections(n)
                await spot.wait_until(lambda c=conn: "btcusdt@aggTrade" in c.streams)
            await spot.push("btcusdt@aggTrade", agg_trade("BTCUSDT", 1))
            await inbox.wait_count(1)
    assert [r for r in spot.refused if r.reason == "connect_limit"] == []
    opened = sorted(c.opened_at for c in spot.connections)
    assert opened[3] - opened[0] >= 1.0  # the fourth attempt waited for the window


async def test_book_ticker_and_all_market_subscribers_get_snapshots_after_a_reconnect(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    fake_binance.set_price("ETHUSDT", "2500")
    async with open_client(config(spot, rest=fake_binance)) as client:
        books, everything = Inbox(), Inbox()
        await client.ws_subscribe(["ethusdt@bookTicker"], books)
        await client.ws_all_mini_tickers(everything)
        first = await spot.wait_for_subscribed("!miniTicker@arr")
        await spot.wait_until(lambda: "ethusdt@bookTicker" in first.streams)
        spot.drop()
        second = await spot.wait_for_connections(2)
        await spot.wait_until(
            lambda: {"ethusdt@bookTicker", "!miniTicker@arr"} <= set(second.streams)
        )
        [(_, book)] = await books.wait_count(1)
        [array] = await everything.wait_count(1)
    assert book["source"] == "rest"
    assert book["s"] == "ETHUSDT"
    assert Decimal(book["b"]) > 0
    assert Decimal(book["a"]) >= Decimal(book["b"])
    assert isinstance(book, BookTickerEvent)
    assert book.ask_price >= book.bid_price > 0
    assert array.source == "rest"
    by_symbol = {row["s"]: row for row in array}
    assert by_symbol["ETHUSDT"]["e"] == "24hrMiniTicker"
    assert by_symbol["ETHUSDT"]["source"] == "rest"
    assert Decimal(by_symbol["ETHUSDT"]["c"]) == Decimal("2500")


async def test_five_connections_reconnecting_at_once_stay_within_the_message_rate(
    client: BinanceClient, spot: FakeBinanceWS
) -> None:
    streams = [f"s{i}usdt@aggTrade" for i in range(4600)]  # five connections' worth
    await client.ws_subscribe(streams, Inbox())

    def carried() -> int:
        return sum(len(c.streams) for c in spot.open_connections)

    await spot.wait_until(lambda: carried() == 4600, timeout_s=15)
    assert len(spot.open_connections) == 5
    assert spot.drop() == 5
    await spot.wait_until(lambda: len(spot.connections) == 10 and carried() == 4600, timeout_s=15)
    assert spot.rate_violations == []
    assert all(c.max_rate() <= SPOT_RATE for c in spot.connections)
