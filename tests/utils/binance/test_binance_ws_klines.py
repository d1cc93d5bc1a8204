"""Kline streams that miss no close: ``ws_klines`` against the fake exchange, whose kline
streams and REST klines come from one source of candles on its clock (1 s candles, so a gap
of two closes takes about two seconds), and the delivery rules of ``KlineGaps`` alone."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.fakes.fake_ws import FakeBinanceWS
from tests.utils.binance.stream_helpers import Events, Inbox, config, open_client
from utils.binance import BinanceClient, BinanceInputError
from utils.binance.binance_types import KlineInterval, Market
from utils.binance.binance_ws_events import KlineEvent, kline_from_row
from utils.binance.binance_ws_klines import KlineGaps, KlineRows, Verdict

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.fake_binance import FakeBinance

GAP_WAIT_S = 15.0  # a gap of two 1 s candles, the reconnect and the fill, with room to spare
SECOND = 1000


@pytest.fixture
async def spot(fake_binance: FakeBinance) -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT, candles=fake_binance.market.candles) as fake:
        yield fake


@pytest.fixture
async def futures(fake_binance: FakeBinance) -> AsyncIterator[FakeBinanceWS]:
    candles = fake_binance.market.candles
    async with FakeBinanceWS(Market.FUTURES, strict_routes=True, candles=candles) as fake:
        yield fake


def closes(items: list[KlineEvent]) -> list[KlineEvent]:
    return [k for k in items if k.closed]


def resumed_after_a_fill(items: list[KlineEvent]) -> bool:
    """At least two closes came over REST, and live closes flow again after them."""
    done = closes(items)
    return sum(k.source == "rest" for k in done) >= 2 and done[-1].source == "live"


async def assert_every_close_once_in_order_as_on_rest(
    client: BinanceClient, items: list[KlineEvent]
) -> None:
    done = closes(items)
    opened = [k.open_time for k in done]
    assert opened == list(range(opened[0], opened[-1] + SECOND, SECOND))  # none lost, no twin
    updates = [k.open_time for k in items]
    assert updates == sorted(updates)  # never an update of an older candle
    assert all(k.open_time > c.open_time for c in done for k in items[items.index(c) + 1 :])
    rows = await client.get_klines(
        "BTCUSDT", KlineInterval.S1, limit=len(done), start_time=opened[0]
    )
    assert [(k.open_time, k.close_time, k.open, k.high, k.low, k.close) for k in done] == [
        (r[0], r[6], *map(Decimal, r[1:5])) for r in rows
    ]


async def test_a_connection_dropped_across_two_closes_delivers_both_after_the_reconnect(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    async with open_client(config(spot, rest=fake_binance)) as client:
        events, candles = Events(client), Inbox()
        await client.ws_klines("BTCUSDT", "1s", candles)
        await candles.wait_for(lambda items: any(k.closed for k in items))
        spot.refuse_connections(2.5)  # the reconnect waits out two candle closes
        assert spot.drop() == 1
        items = await candles.wait_for(resumed_after_a_fill, timeout_s=GAP_WAIT_S)
        await assert_every_close_once_in_order_as_on_rest(client, items)
        assert "ws.reconnect" in events.kinds()
        assert client.get_metrics()["ws"]["kline_fills"] >= 1
        assert client.get_metrics()["ws"]["klines_filled"] >= 2
        assert fake_binance.count("GET /api/v3/klines") <= 3  # one per fill, and the check


async def test_a_stalled_connection_delivers_the_closes_it_swallowed(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    async with open_client(config(spot, rest=fake_binance, ws_stall_s=2.2)) as client:
        events, candles = Events(client), Inbox()
        await client.ws_klines("btcusdt", KlineInterval.S1, candles)
        await candles.wait_for(lambda items: any(k.closed for k in items))
        spot.stall(30.0)  # the open connection gets nothing more; a new one is not stalled
        items = await candles.wait_for(resumed_after_a_fill, timeout_s=GAP_WAIT_S)
        await assert_every_close_once_in_order_as_on_rest(client, items)
        assert "ws.stall" in events.kinds()


async def test_when_rest_cannot_fill_the_gap_live_candles_resume_and_the_gap_is_reported(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    cfg = config(spot, rest=fake_binance, retry_attempts=0, request_timeout=1.0)
    async with open_client(cfg) as client:
        events, candles = Events(client), Inbox()
        await client.ws_klines("BTCUSDT", "1s", candles)
        await candles.wait_for(lambda items: any(k.closed for k in items))
        fake_binance.outage_status = 503
        spot.refuse_connections(1.5)
        spot.drop()
        await events.wait_for(lambda _: "ws.kline_gap" in events.kinds(), timeout_s=GAP_WAIT_S)
        fake_binance.outage_status = None
        before = len(candles.items)
        items = await candles.wait_for(
            lambda items: any(k.closed for k in items[before:]), timeout_s=GAP_WAIT_S
        )
    assert all(k.source == "live" for k in items)
    updates = [k.open_time for k in items]
    assert updates == sorted(updates)
    [gap] = [e for e in events.items if e.kind == "ws.kline_gap"]
    assert gap.data["stream"] == "btcusdt@kline_1s"


async def test_futures_klines_come_from_the_market_route_and_refuse_1s(
    fake_binance: FakeBinance, futures: FakeBinanceWS
) -> None:
    async with open_client(config(None, futures, rest=fake_binance)) as client:
        with pytest.raises(BinanceInputError, match="spot only"):
            await client.ws_klines("BTCUSDT", "1s", Inbox(), market="futures")
        candles = Inbox()
        await client.ws_klines("BTCUSDT", KlineInterval.M1, candles, market=Market.FUTURES)
        [kline] = await candles.wait_count(1)
    assert isinstance(kline, KlineEvent)
    assert (kline.symbol, kline.interval, kline.closed) == ("BTCUSDT", "1m", False)
    assert kline.close_time - kline.open_time == 60 * SECOND - 1
    assert [c.route for c in futures.connections] == ["market"]
    assert futures.misrouted == []


async def test_a_kline_stream_through_ws_subscribe_is_typed_and_filled_alike(
    fake_binance: FakeBinance, spot: FakeBinanceWS
) -> None:
    async with open_client(config(spot, rest=fake_binance)) as client:
        inbox = Inbox()
        await client.ws_subscribe(["btcusdt@kline_1s"], inbox)
        await inbox.wait_for(lambda items: any(k.closed for _, k in items))
        spot.refuse_connections(2.5)
        spot.drop()
        pairs = await inbox.wait_for(
            lambda items: resumed_after_a_fill([k for _, k in items]), timeout_s=GAP_WAIT_S
        )
        assert {stream for stream, _ in pairs} == {"btcusdt@kline_1s"}
        await assert_every_close_once_in_order_as_on_rest(client, [k for _, k in pairs])


# --- the rules, without sockets --------------------------------------------------------------
def row(open_ms: int, close: str = "1") -> list[Any]:
    return [open_ms, "1", "2", "0.5", close, "10", open_ms + SECOND - 1, "10", 5, "5", "5", "0"]


def live(open_ms: int, *, closed: bool) -> KlineEvent:
    return kline_from_row("BTCUSDT", "1s", row(open_ms), closed=closed, source="live")


def fetcher(
    answer: Callable[[int], KlineRows], asked: list[int]
) -> Callable[[Market, str, str, int], Any]:
    async def fetch(_market: Market, symbol: str, interval: str, start_ms: int) -> KlineRows:
        assert (symbol, interval) == ("BTCUSDT", "1s")
        asked.append(start_ms)
        return answer(start_ms)

    return fetch


STREAM = "btcusdt@kline_1s"
S = Market.SPOT


def offer_all(gaps: KlineGaps, events: list[KlineEvent]) -> list[Verdict]:
    return [gaps.offer(S, STREAM, e) for e in events]


def test_updates_of_a_delivered_close_are_dropped_and_a_skipped_candle_is_a_gap() -> None:
    gaps = KlineGaps(fetcher(lambda start: KlineRows([row(start)], 0), []))
    first, closed = live(0, closed=False), live(0, closed=True)
    verdicts = offer_all(gaps, [first, closed, closed, live(SECOND, closed=False)])
    assert verdicts == [Verdict.DELIVER, Verdict.DELIVER, Verdict.DROP, Verdict.DELIVER]
    assert gaps.offer(S, STREAM, live(3 * SECOND, closed=False)) is Verdict.GAP
    assert gaps.owed(S, STREAM) == SECOND


async def test_a_fill_delivers_the_closes_rest_has_and_stops_at_the_open_candle() -> None:
    asked: list[int] = []

    def three_rows(start: int) -> KlineRows:
        return KlineRows([row(t) for t in range(start, 4 * SECOND, SECOND)], server_ms=0)

    gaps = KlineGaps(fetcher(three_rows, asked))
    gaps.offer(S, STREAM, live(0, closed=True))
    fill = gaps.fill(S, STREAM)
    assert fill is not None
    fetched = await fill
    assert asked == [SECOND]
    assert [(k.open_time, k.closed, k.source) for k in fetched] == [
        (SECOND, True, "rest"),
        (2 * SECOND, True, "rest"),
        (3 * SECOND, False, "rest"),  # the last row: closed only once Binance's clock says so
    ]
    verdicts = offer_all(gaps, [*fetched, live(2 * SECOND, closed=True)])
    assert verdicts == [Verdict.DELIVER, Verdict.DELIVER, Verdict.DROP, Verdict.DROP]
    assert gaps.offer(S, STREAM, live(3 * SECOND, closed=False)) is Verdict.DELIVER


async def test_a_candle_rest_does_not_list_is_not_fetched_for_again() -> None:
    asked: list[int] = []
    gaps = KlineGaps(fetcher(lambda _start: KlineRows([], 0), asked))
    gaps.offer(S, STREAM, live(0, closed=True))
    assert gaps.offer(S, STREAM, live(5 * SECOND, closed=False)) is Verdict.GAP
    fill = gaps.fill(S, STREAM)
    assert fill is not None
    assert await fill == []
    assert gaps.offer(S, STREAM, live(5 * SECOND, closed=False)) is Verdict.DELIVER
    assert gaps.owed(S, STREAM) == 5 * SECOND
    assert asked == [SECOND]


async def test_after_a_failed_fill_the_next_gap_is_accepted_rather_than_fetched_again() -> None:
    gaps = KlineGaps(fetcher(lambda _start: KlineRows([], 0), []))
    gaps.offer(S, STREAM, live(0, closed=True))
    assert gaps.failed(S, STREAM) == SECOND
    assert gaps.offer(S, STREAM, live(4 * SECOND, closed=True)) is Verdict.DELIVER
    assert gaps.owed(S, STREAM) == 5 * SECOND


async def test_a_gap_within_the_open_candle_costs_no_request_and_settles_nothing() -> None:
    asked: list[int] = []

    async def still_open(_m: Market, _s: str, _i: str, start_ms: int) -> KlineRows | None:
        asked.append(start_ms)
        return None

    gaps = KlineGaps(still_open)
    gaps.offer(S, STREAM, live(0, closed=True))
    fill = gaps.fill(S, STREAM)
    assert fill is not None
    assert await fill == []
    assert gaps.offer(S, STREAM, live(2 * SECOND, closed=False)) is Verdict.GAP  # fetched later
    assert asked == [SECOND]


def test_without_a_fetch_or_an_update_seen_there_is_nothing_to_fill() -> None:
    assert KlineGaps(None).fill(S, STREAM) is None
    assert KlineGaps(fetcher(lambda _s: KlineRows([], 0), [])).fill(S, STREAM) is None
    no_fetch = KlineGaps(None)
    no_fetch.offer(S, STREAM, live(0, closed=True))
    assert no_fetch.offer(S, STREAM, live(9 * SECOND, closed=False)) is Verdict.DELIVER
