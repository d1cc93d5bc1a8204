"""Self-tests of the fake Binance WebSocket server, through a plain aiohttp WebSocket client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType

from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_market import Market
from tests.fakes.fake_ws import FakeBinanceWS, rest_listen_keys
from tests.fakes.fake_ws_wire import mark_price, mini_ticker_array, ticker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

RECV_S = 2.0
CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def spot() -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT) as server:
        yield server


async def recv(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await ws.receive(timeout=RECV_S)
    assert msg.type is WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def call(ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> Any:
    await ws.send_str(orjson.dumps(request).decode())
    return await recv(ws)


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[aiohttp.WSMessage]:
    """Every message up to and including the one that ends the connection."""
    seen = []
    while True:
        msg = await ws.receive(timeout=RECV_S)
        seen.append(msg)
        if msg.type in CLOSED:
            return seen


def signed_subscribe(secret: str = TEST_API_SECRET, rid: str = "sub-1") -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": TEST_API_KEY, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"id": rid, "method": "userDataStream.subscribe.signature", "params": params}


# --- control protocol -----------------------------------------------------------------------
async def test_subscribe_is_acked_and_listed_then_unsubscribe_removes_it(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws") as ws:
        sub = {"method": "SUBSCRIBE", "params": ["btcusdt@ticker", "ethusdt@ticker"], "id": 1}
        assert await call(ws, sub) == {"result": None, "id": 1}
        listed = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2})
        assert listed == {"result": ["btcusdt@ticker", "ethusdt@ticker"], "id": 2}
        unsub = {"method": "UNSUBSCRIBE", "params": ["btcusdt@ticker"], "id": 3}
        assert await call(ws, unsub) == {"result": None, "id": 3}
        listed = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert listed == {"result": ["ethusdt@ticker"], "id": 4}
    conn = spot.connections[0]
    assert [f.kind for f in conn.frames] == ["text"] * 4


async def test_bad_json_and_unknown_method_get_binance_error_codes(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws") as ws:
        await ws.send_str("{not json")
        bad_json = await recv(ws)
        unknown = await call(ws, {"method": "SUBSCRIBEX", "params": [], "id": 7})
        no_method = await call(ws, {"params": [], "id": 8})
        bad_id = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": True})
    assert bad_json["code"] == 3
    assert bad_json["msg"].startswith("Invalid JSON: ")
    assert unknown["code"] == 2
    assert unknown["id"] == 7
    assert unknown["msg"].startswith("Invalid request: unknown variant `SUBSCRIBEX`")
    assert no_method == {"code": 2, "msg": "Invalid request: missing field `method`", "id": 8}
    assert bad_id["code"] == 2
    assert "request ID" in bad_id["msg"]


async def test_subscribing_past_the_stream_cap_is_an_error(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinanceWS(max_streams=2) as fake, http.ws_connect(f"{fake.url}/ws") as ws:
        three = {"method": "SUBSCRIBE", "params": ["a@ticker", "b@ticker", "c@ticker"], "id": 1}
        answer = await call(ws, three)
        assert answer["code"] == 2
        assert "too many streams" in answer["msg"]
        assert (await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}))["result"] == []


# --- framing and pushed data ----------------------------------------------------------------
async def test_raw_stream_gets_bare_payloads_with_event_time_and_increasing_seq(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws/btcusdt@ticker") as ws:
        await spot.wait_for_subscribed("btcusdt@ticker")
        assert await spot.push("btcusdt@ticker", ticker("BTCUSDT", "100")) == 1
        assert await spot.push("btcusdt@ticker", ticker("BTCUSDT", "101.5")) == 1
        first, second = await recv(ws), await recv(ws)
    assert (first["e"], first["s"], first["c"], first["_seq"]) == (
        "24hrTicker",
        "BTCUSDT",
        "100.00000000",
        1,
    )
    assert (second["c"], second["_seq"]) == ("101.50000000", 2)
    assert isinstance(first["E"], int)
    assert [e.seq for e in spot.events_sent("btcusdt@ticker")] == [1, 2]


async def test_combined_stream_wraps_each_event_with_its_stream_name(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    url = f"{spot.url}/stream?streams=btcusdt@ticker/!miniTicker@arr"
    async with http.ws_connect(url) as ws:
        await spot.wait_for_subscribed("!miniTicker@arr")
        await spot.push("!miniTicker@arr", mini_ticker_array({"BTCUSDT": 100, "ETHUSDT": 5}))
        await spot.push("btcusdt@ticker", ticker("BTCUSDT", 100))
        array, single = await recv(ws), await recv(ws)
    assert array["stream"] == "!miniTicker@arr"
    assert [t["s"] for t in array["data"]] == ["BTCUSDT", "ETHUSDT"]
    assert all(t["e"] == "24hrMiniTicker" for t in array["data"])
    assert single["stream"] == "btcusdt@ticker"
    assert single["data"]["e"] == "24hrTicker"


async def test_autopush_ticks_until_stopped(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws/btcusdt@ticker") as ws:
        await spot.wait_for_subscribed("btcusdt@ticker")
        spot.autopush("btcusdt@ticker", 0.01, lambda n: ticker("BTCUSDT", 100 + n))
        prices = [(await recv(ws))["c"] for _ in range(3)]
        spot.stop_autopush("btcusdt@ticker")
    assert prices == ["100.00000000", "101.00000000", "102.00000000"]


# --- limits ---------------------------------------------------------------------------------
async def test_more_than_five_messages_a_second_closes_the_spot_connection_with_1008(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws") as ws:
        for i in range(6):
            await ws.send_str(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).decode())
        seen = await until_closed(ws)
    assert [m.type for m in seen] == [WSMsgType.TEXT] * 5 + [WSMsgType.CLOSE]
    assert seen[-1].data == 1008
    assert spot.rate_violations[0].count == 6
    assert spot.rate_violations[0].limit == 5
    assert spot.connections[0].close_reason == "rate_limit"


async def test_a_client_within_the_rate_shows_so_in_the_record(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws") as ws:
        for i in range(3):
            await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": i})
    conn = spot.connections[0]
    assert conn.max_rate() == 3
    assert spot.rate_violations == []


async def test_connect_attempts_over_the_per_ip_limit_get_429(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinanceWS(max_connects_per_window=1) as fake:
        async with http.ws_connect(f"{fake.url}/ws"):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{fake.url}/ws")
    assert refused.value.status == 429
    assert [r.reason for r in fake.refused] == ["connect_limit"]


# --- pings ----------------------------------------------------------------------------------
async def test_answered_server_pings_keep_the_connection_open(
    http: aiohttp.ClientSession,
) -> None:
    # Pongs count towards the 5 msg/s, so this test allows more to outlive a pong deadline.
    fake = FakeBinanceWS(ping_interval_s=0.02, pong_timeout_s=0.05, max_messages_per_s=10)
    async with fake, http.ws_connect(f"{fake.url}/ws") as ws:
        reader = asyncio.create_task(ws.receive(timeout=RECV_S))  # aiohttp pongs while reading
        conn = await fake.wait_for_connections(1)
        await fake.wait_until(lambda: len(conn.pongs) >= 4)
        await ws.send_str(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}).decode())
        reply = await reader
    assert orjson.loads(reply.data) == {"result": [], "id": 1}
    assert conn.close_reason == "client"


async def test_unanswered_server_pings_drop_the_connection(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        FakeBinanceWS(ping_interval_s=0.03, pong_timeout_s=0.08) as fake,
        http.ws_connect(f"{fake.url}/ws", autoping=False) as ws,
    ):
        seen = await until_closed(ws)
    assert WSMsgType.PING in [m.type for m in seen]
    assert seen[-1].type in (WSMsgType.CLOSED, WSMsgType.ERROR)
    conn = fake.connections[0]
    assert conn.close_reason == "pong_timeout"
    assert conn.pongs == []


# --- faults ---------------------------------------------------------------------------------
async def test_stall_loses_events_but_keeps_the_connection(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws/btcusdt@ticker") as ws:
        conn = await spot.wait_for_subscribed("btcusdt@ticker")
        spot.stall(60)
        assert await spot.push("btcusdt@ticker", ticker("BTCUSDT", 1)) == 0
        spot.stall(0)
        assert await spot.push("btcusdt@ticker", ticker("BTCUSDT", 2)) == 1
        first_seen = await recv(ws)
    assert first_seen["_seq"] == 2  # seq 1 was lost in the stall
    assert conn.close_reason == "client"
    assert [e.delivered for e in spot.sent] == [(), (conn.id,)]


async def test_drop_aborts_the_connection_without_a_close_frame(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws") as ws:
        conn = await spot.wait_for_connections(1)
        assert spot.drop() == 1
        seen = await until_closed(ws)
    assert seen[-1].type in (WSMsgType.CLOSED, WSMsgType.ERROR)
    await spot.wait_for_closed(conn)
    assert (conn.close_reason, conn.close_code) == ("drop", 1006)


async def test_refused_handshakes_get_a_non_101_status(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    spot.refuse_connections(60)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{spot.url}/ws")
    assert refused.value.status == 503
    spot.refuse_connections(0)
    async with http.ws_connect(f"{spot.url}/ws"):
        pass
    assert [r.reason for r in spot.refused] == ["refused"]
    assert len(spot.connections) == 1


async def test_server_shutdown_is_announced_then_the_connection_closes(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with (
        http.ws_connect(f"{spot.url}/ws") as raw,
        http.ws_connect(f"{spot.url}/stream?streams=btcusdt@ticker") as combined,
    ):
        await spot.wait_for_connections(2)
        assert await spot.server_shutdown(grace_s=0.01) == 2
        raw_seen, combined_seen = await until_closed(raw), await until_closed(combined)
    assert orjson.loads(raw_seen[0].data)["e"] == "serverShutdown"
    wrapped = orjson.loads(combined_seen[0].data)
    assert (wrapped["stream"], wrapped["data"]["e"]) == ("!serverShutdown", "serverShutdown")
    assert raw_seen[-1].type is WSMsgType.CLOSE
    assert raw_seen[-1].data == 1001
    assert {c.close_reason for c in spot.connections} == {"server_shutdown"}


async def test_connections_are_cut_at_the_lifetime_mark(http: aiohttp.ClientSession) -> None:
    async with FakeBinanceWS(lifetime_s=0.05) as fake, http.ws_connect(f"{fake.url}/ws") as ws:
        seen = await until_closed(ws)
    assert (seen[-1].type, seen[-1].data) == (WSMsgType.CLOSE, 1001)
    assert fake.connections[0].close_reason == "lifetime"


async def test_closing_the_fake_closes_open_connections_with_1001(
    http: aiohttp.ClientSession,
) -> None:
    fake = FakeBinanceWS()
    async with fake, http.ws_connect(f"{fake.url}/ws") as ws:
        await fake.wait_for_connections(1)
        await fake.close()
        seen = await until_closed(ws)
    assert (seen[-1].type, seen[-1].data) == (WSMsgType.CLOSE, 1001)
    assert fake.connections[0].close_reason == "server_closed"


# --- futures routes -------------------------------------------------------------------------
async def test_strict_unrouted_futures_url_acks_market_streams_then_sends_nothing(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        FakeBinanceWS(Market.FUTURES, strict_routes=True) as fake,
        http.ws_connect(f"{fake.url}/ws") as ws,
    ):
        streams = ["btcusdt@markPrice", "btcusdt@bookTicker"]
        assert await call(ws, {"method": "SUBSCRIBE", "params": streams, "id": 1}) == {
            "result": None,
            "id": 1,
        }
        assert await fake.push("btcusdt@markPrice", mark_price("BTCUSDT", 100)) == 0
        assert await fake.push("btcusdt@bookTicker", {"u": 1, "s": "BTCUSDT"}) == 1
        first_seen = await recv(ws)
    assert first_seen["s"] == "BTCUSDT"
    assert "e" not in first_seen
    assert [(m.route, m.stream, m.stream_route) for m in fake.misrouted] == [
        ("unrouted", "btcusdt@markPrice", "market")
    ]


async def test_routed_futures_urls_serve_their_own_streams_and_record_misroutes(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        FakeBinanceWS(Market.FUTURES) as fake,
        http.ws_connect(f"{fake.url}/market/stream?streams=btcusdt@markPrice@1s") as market,
        http.ws_connect(f"{fake.url}/public/ws/btcusdt@aggTrade") as public,
        http.ws_connect(f"{fake.url}/ws/btcusdt@aggTrade") as legacy,
    ):
        await fake.wait_for_connections(3)
        assert await fake.push("btcusdt@markPrice@1s", mark_price("BTCUSDT", 100)) == 1
        assert await fake.push("btcusdt@aggTrade", {"e": "aggTrade", "s": "BTCUSDT"}) == 1
        assert (await recv(market))["data"]["e"] == "markPriceUpdate"
        assert (await recv(legacy))["e"] == "aggTrade"  # lenient by default: unrouted serves all
        await public.close()
    assert [(m.route, m.stream) for m in fake.misrouted] == [("public", "btcusdt@aggTrade")]
    assert [c.route for c in fake.connections] == ["market", "public", "unrouted"]


async def test_futures_control_ids_must_be_unsigned_integers(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        FakeBinanceWS(Market.FUTURES) as fake,
        http.ws_connect(f"{fake.url}/public/ws") as ws,
    ):
        answer = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "abc"})
    assert answer["code"] == 2


# --- user data ------------------------------------------------------------------------------
async def test_private_listen_key_stream_gets_its_events_until_the_key_expires(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance() as rest:
        post = http.post(f"{rest.url}/fapi/v1/listenKey", headers={"X-MBX-APIKEY": TEST_API_KEY})
        async with post as resp:
            key = (await resp.json())["listenKey"]
        async with FakeBinanceWS(Market.FUTURES, listen_keys=rest_listen_keys(rest)) as fake:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{fake.url}/private/ws?listenKey=not-a-key")
            url = f"{fake.url}/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE"
            async with http.ws_connect(url) as ws:
                await fake.wait_for_subscribed(key)
                assert await fake.push_user_event(key, {"e": "ACCOUNT_UPDATE"}) == 0
                assert await fake.push_user_event(key, {"e": "ORDER_TRADE_UPDATE"}) == 1
                order = await recv(ws)
                assert await fake.expire_listen_key(key) == 1
                expired = await recv(ws)
                assert await fake.push_user_event(key, {"e": "ORDER_TRADE_UPDATE"}) == 0
    assert refused.value.status == 400
    assert (order["e"], order["_seq"]) == ("ORDER_TRADE_UPDATE", 2)
    assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)


async def test_spot_ws_api_signed_subscription_delivers_events_and_terminates(
    spot: FakeBinanceWS, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{spot.url}/ws-api/v3") as ws:
        rejected = await call(ws, signed_subscribe(secret="wrong", rid="bad"))
        accepted = await call(ws, signed_subscribe())
        listed = await call(ws, {"id": "list", "method": "session.subscriptions"})
        event = {"e": "executionReport", "s": "BTCUSDT", "X": "FILLED"}
        assert await spot.push_spot_user_event(TEST_API_KEY, event) == 1
        pushed = await recv(ws)
        ended = await call(ws, {"id": "unsub", "method": "userDataStream.unsubscribe"})
        terminated = await recv(ws)
    assert rejected["status"] == 400
    assert rejected["error"]["code"] == -1022
    assert accepted["id"] == "sub-1"
    assert accepted["status"] == 200
    assert accepted["result"] == {"subscriptionId": 0}
    assert accepted["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert listed["result"] == [{"subscriptionId": 0}]
    assert pushed["subscriptionId"] == 0
    assert (pushed["event"]["e"], pushed["event"]["X"]) == ("executionReport", "FILLED")
    assert ended["status"] == 200
    assert terminated == {"subscriptionId": 0, "event": terminated["event"]}
    assert terminated["event"]["e"] == "eventStreamTerminated"


# --- kline streams --------------------------------------------------------------------------
async def test_kline_stream_and_rest_klines_show_the_same_candles(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeBinance() as rest, FakeBinanceWS(candles=rest.market.candles) as fake:
        closes: list[dict[str, Any]] = []
        async with http.ws_connect(f"{fake.url}/ws/btcusdt@kline_1s") as ws:
            while len(closes) < 2:
                k = (await recv(ws))["k"]
                rest.set_price("BTCUSDT", str(65000 + len(closes) * 10 + k["t"] % 7))
                if k["x"]:
                    closes.append(k)
        query = f"symbol=BTCUSDT&interval=1s&startTime={closes[0]['t']}&limit=2"
        async with http.get(f"{rest.url}/api/v3/klines?{query}") as resp:
            rows = await resp.json()
    assert closes[1]["t"] - closes[0]["t"] == 1000
    stream_rows = [[k[f] for f in "tohlcvTqnVQ"] for k in closes]
    assert [row[:11] for row in rows] == stream_rows


async def test_kline_stream_sends_every_candle_close_once_when_it_closes(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        FakeBinance() as rest,
        FakeBinanceWS(candles=rest.market.candles) as fake,
        http.ws_connect(f"{fake.url}/stream?streams=ethusdt@kline_1s") as ws,
    ):
        events = [(await recv(ws))["data"]]
        while sum(e["k"]["x"] for e in events) < 3:
            events.append((await recv(ws))["data"])
    closes = [e for e in events if e["k"]["x"]]
    opened = [e["k"]["t"] for e in events]
    assert [e["k"]["t"] - closes[0]["k"]["t"] for e in closes] == [0, 1000, 2000]
    assert all(e["E"] > e["k"]["T"] for e in closes)
    assert opened == sorted(opened)  # never an update of a candle older than the last
    assert all(e["k"]["i"] == "1s" and e["s"] == "ETHUSDT" for e in events)
