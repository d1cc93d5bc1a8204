"""Indicator alarms end to end: the bot against the fake Bot API and the fake exchange (REST
klines from a prepared series, ``serve_series``; kline events pushed by the test). An RSI
alarm does not fire on the forming candle, fires once at the close that crosses, not again at
the next close still above; a repeat fires again after a close below; a MACD cross-up fires
at the close where the MACD line crosses its signal.

Expected values are worked here from the definitions (Wilder's RSI seeded with the mean of
the first 14 changes, as TA-Lib; EMAs seeded with an SMA), never by ``analysis``.

The fake's clock moves one candle per step (``clock_skew_s``); after each step the series
gains the candle that closed and the test pushes its final kline event (``x`` true).
"Nothing else fired" is proved by a sentinel alarm in another chat on the same candles that
crosses at the same close: one close's firings are handed over together, in alarm order."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import pytest

from tests.bot.conftest import ALLOWED, Harness, running
from tests.fakes import fake_ws_wire as wire
from tests.fakes.fake_ws import FakeBinanceWS
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage
    from utils.config import Settings

WAIT_S: Final = 10.0
SENTINEL: Final = 801
ETH_CHAT: Final = 802
ETH_STREAM: Final = "ethusdt@kline_1m"
STEP_S: Final = 60
STREAM: Final = "btcusdt@kline_1m"
Row = tuple[float, float, float, float, float]


def rsi(closes: list[float], period: int = 14) -> list[float]:
    """Wilder's RSI, from the definition: the first average is the mean of the first
    ``period`` gains (losses), then avg = (avg * (period - 1) + x) / period."""
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum(max(c, 0) for c in changes[:period]) / period
    loss = sum(max(-c, 0) for c in changes[:period]) / period
    out = [float("nan")] * period
    out.append(100 * gain / (gain + loss))
    for c in changes[period:]:
        gain = (gain * (period - 1) + max(c, 0)) / period
        loss = (loss * (period - 1) + max(-c, 0)) / period
        out.append(100 * gain / (gain + loss))
    return out


def ema(values: list[float], period: int) -> list[float]:
    k = 2 / (period + 1)
    out = [float("nan")] * (period - 1)
    out.append(sum(values[:period]) / period)
    for v in values[period:]:
        out.append(out[-1] + k * (v - out[-1]))
    return out


def macd(closes: list[float]) -> tuple[list[float], list[float]]:
    """MACD(12, 26, 9): the line from the 26th close on, its signal an EMA(9) of it."""
    fast, slow = ema(closes, 12), ema(closes, 26)
    line = [f - s for f, s in zip(fast[25:], slow[25:], strict=True)]
    return line, ema(line, 9)


def row(close: float) -> Row:
    return (close, close, close, close, 10.0)


def zigzag(n: int, base: float = 100.0) -> list[float]:
    return [base + (1.0 if i % 2 else -1.0) for i in range(n)]


@pytest.fixture
async def both() -> AsyncIterator[tuple[FakeBinanceWS, FakeBinanceWS]]:
    """Kline events are only those the test pushes (no candles given: no feed of its own)."""
    async with FakeBinanceWS(Market.SPOT) as spot, FakeBinanceWS(Market.FUTURES) as futures:
        yield spot, futures


@pytest.fixture
def streams(both: tuple[FakeBinanceWS, FakeBinanceWS]) -> FakeBinanceWS:
    return both[0]


@pytest.fixture
def settings_(
    make_settings: Callable[..., Settings], both: tuple[FakeBinanceWS, FakeBinanceWS]
) -> Settings:
    spot, futures = both
    return make_settings(
        binance_overrides={
            "ws_url": spot.url,
            "futures_ws_url": futures.url,
            "ws_backoff_base_s": 0.05,
            "ws_backoff_max_s": 0.2,
        },
        throttle_rate=100.0,
        throttle_burst=100,
    )


class Candles:
    """The prepared series and the moves of the fake's clock."""

    def __init__(self, binance: FakeBinance, spot: FakeBinanceWS, closes: list[float]) -> None:
        self.binance, self.spot, self.closes = binance, spot, list(closes)
        # the fake's minute starts now: no wall-clock minute ends within the test's steps
        binance.clock_skew_s = 1 - time.time() % STEP_S
        self._serve()

    def _serve(self) -> None:
        self.binance.market.candles.serve_series(
            "spot", "BTCUSDT", "1m", [row(c) for c in self.closes]
        )

    def forming_open_ms(self) -> int:
        candles = self.binance.market.candles
        return candles.open_time("1m", candles.now_ms())

    async def forming(self, price: float) -> None:
        """The forming candle moves to ``price`` (its RSI would cross): not a close."""
        self.binance.set_price("BTCUSDT", str(price))
        event = wire.kline(
            "BTCUSDT", "1m", closed=False, close=price, start_ms=self.forming_open_ms()
        )
        await self.spot.push(STREAM, event)

    async def close(self, price: float) -> None:
        """The forming candle closes at ``price``: the clock moves one candle on."""
        opened = self.forming_open_ms()
        self.binance.clock_skew_s += STEP_S
        self.closes.append(price)
        self._serve()
        event = wire.kline("BTCUSDT", "1m", closed=True, close=price, start_ms=opened)
        await self.spot.push(STREAM, event)


async def firings(telegram: FakeTelegram, chat_id: int, count: int) -> list[SentMessage]:
    sent = await telegram.wait_for_sent(
        lambda m: m.chat_id == chat_id and m.method == "sendMessage" and "🔔" in m.text,
        count=count,
        timeout=WAIT_S,
    )
    return [m for m in sent if "🔔" in m.text]


def fired_in(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [
        m.text
        for m in telegram.sent_to(chat_id)
        if m.method == "sendMessage" and m.text.startswith("🔔")
    ]


async def ask(h: Harness, chat_id: int, text: str) -> str:
    (reply,) = await h.ask(chat_id, text)
    return reply.text


async def test_an_rsi_alarm_fires_once_at_the_close_that_crosses_never_on_the_forming_candle(
    telegram: FakeTelegram, binance: FakeBinance, streams: FakeBinanceWS, settings_: Settings
) -> None:
    telegram.add_chat(SENTINEL)
    telegram.add_chat(ETH_CHAT)
    closes = zigzag(600)
    candles = Candles(binance, streams, closes)
    binance.set_price("BTCUSDT", str(closes[-1]))
    async with running(settings_) as app:
        await asyncio.wait_for(app.alarms.led.wait(), WAIT_S)
        h = Harness(telegram, binance, app)
        before = rsi(closes)[-1]
        reply = await ask(h, ALLOWED, "/alarm btc rsi > 70 1m")
        assert "Alarm #" in reply, reply
        assert f"{before:.2f}" in reply, (before, reply)
        # the sentinel crosses at the third close only (it keeps the stream followed too)
        one, two = rsi([*closes, 100.0, 130.0])[-1], rsi([*closes, 100.0, 130.0, 131.0])[-1]
        level = round((one + two) / 2, 2)
        assert one < level < two
        assert "Alarm #" in await ask(h, SENTINEL, f"/alarm btc rsi > {level} 1m")
        await streams.wait_for_subscribed(STREAM)

        # the forming candle's RSI goes far over 70, but it closes back at 100: no firing.
        # Handled before ETHUSDT's close pushed after it (one queue of closes, in order),
        # whose alarm fires in its own chat: once it has, the forming update was seen.
        eth = [*zigzag(600), 130.0]
        binance.market.candles.serve_series("spot", "ETHUSDT", "1m", [row(c) for c in eth])
        assert rsi(eth)[-2] <= 70 < rsi(eth)[-1]
        assert "Alarm #" in await ask(h, ETH_CHAT, "/alarm eth rsi > 70 1m")
        await streams.wait_for_subscribed(ETH_STREAM)
        await candles.forming(130.0)
        assert rsi([*closes, 130.0])[-1] > 70
        eth_open = candles.forming_open_ms() - STEP_S * 1000
        eth_close = wire.kline("ETHUSDT", "1m", closed=True, close=130.0, start_ms=eth_open)
        await streams.push(ETH_STREAM, eth_close)
        await firings(telegram, ETH_CHAT, 1)
        assert not fired_in(telegram, ALLOWED)
        await candles.close(100.0)
        assert rsi(candles.closes)[-1] <= 70
        opened = candles.forming_open_ms()
        await candles.close(130.0)  # this candle's close crosses 70
        crossed = rsi(candles.closes)
        assert crossed[-2] <= 70 < crossed[-1]
        (message,) = await firings(telegram, ALLOWED, 1)
        assert f"RSI(14) {crossed[-1]:.2f}" in message.text, message.text
        assert "close 130" in message.text, message.text
        closed_at = datetime.fromtimestamp((opened + STEP_S * 1000) / 1000, UTC)
        assert f"{closed_at:%Y-%m-%d %H:%M}" in message.text, (closed_at, message.text)
        assert not fired_in(telegram, SENTINEL)

        # the next close, still above 70 (and higher): the sentinel crosses, ours does not
        await candles.close(131.0)
        await firings(telegram, SENTINEL, 1)
        assert len(fired_in(telegram, ALLOWED)) == 1


async def test_a_repeating_rsi_alarm_fires_again_only_after_a_close_below(
    telegram: FakeTelegram, binance: FakeBinance, streams: FakeBinanceWS, settings_: Settings
) -> None:
    closes = zigzag(600)
    candles = Candles(binance, streams, closes)
    binance.set_price("BTCUSDT", str(closes[-1]))
    async with running(settings_) as app:
        await asyncio.wait_for(app.alarms.led.wait(), WAIT_S)
        h = Harness(telegram, binance, app)
        assert "Alarm #" in await ask(h, ALLOWED, "/alarm btc rsi > 70 1m repeat 1m")
        await streams.wait_for_subscribed(STREAM)
        await candles.close(130.0)
        await firings(telegram, ALLOWED, 1)
        await candles.close(100.0)  # back under 70 at a close
        assert rsi(candles.closes)[-1] < 70
        await candles.close(170.0)  # crosses again
        assert rsi(candles.closes)[-2] <= 70 < rsi(candles.closes)[-1]
        second = (await firings(telegram, ALLOWED, 2))[-1]
        assert f"{rsi(candles.closes)[-1]:.2f}" in second.text, second.text
        assert len(fired_in(telegram, ALLOWED)) == 2


async def test_a_macd_cross_up_alarm_fires_at_the_close_where_the_line_crosses_its_signal(
    telegram: FakeTelegram, binance: FakeBinance, streams: FakeBinanceWS, settings_: Settings
) -> None:
    closes = [100.0 - 0.05 * i for i in range(600)]  # a steady fall: MACD under its signal
    candles = Candles(binance, streams, closes)
    binance.set_price("BTCUSDT", str(closes[-1]))
    async with running(settings_) as app:
        await asyncio.wait_for(app.alarms.led.wait(), WAIT_S)
        h = Harness(telegram, binance, app)
        assert "Alarm #" in await ask(h, ALLOWED, "/alarm btc macd cross up 1m")
        await streams.wait_for_subscribed(STREAM)
        price = closes[-1]
        crossed_at = None
        for step in range(1, 10):  # a rebound: the line crosses its signal within a few closes
            price += 0.5
            line, signal = macd([*candles.closes, price])
            if line[-2] <= signal[-2] and line[-1] > signal[-1]:
                crossed_at = step
                await candles.close(price)
                break
            await candles.close(price)
        assert crossed_at is not None
        (message,) = await firings(telegram, ALLOWED, 1)
        line, _signal = macd(candles.closes)
        assert "MACD line" in message.text, message.text
        assert f"MACD line {float(f'{line[-1]:.6g}'):f}".rstrip("0") in message.text, message.text
