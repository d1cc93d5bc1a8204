"""Indicator alarms across a killed process, with ``python -m bot`` as real processes: an RSI
alarm is set, the bot is SIGKILLed, the fake exchange's candles move on so that a close
crosses while no bot runs; the bot started again evaluates the closes it missed and the
firing arrives once, saying it fired late; started once more, nothing else arrives.

The kline streams carry only what the test pushes (nothing here): every close the bot
evaluates comes from its start-up catch-up over REST (``serve_series``). Expected RSI values
are worked from the definition (``test_indicator_alarms.rsi``), never by ``analysis``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import pytest

from tests.bot.test_alarm_process import (
    alarm_env,
    ask,
    fired,
    firings,
    listening,
    logged,
    then_a_sentinel_fires_and_nothing_else,
)
from tests.bot.test_indicator_alarms import row, rsi, zigzag
from tests.bot.test_intake_process import bot_process, kill, stop
from tests.fakes.fake_ws import FakeBinanceWS
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

STEP_S: Final = 60
CAUGHT_UP: Final = "indicator_closes_caught_up"


@pytest.fixture
async def spot() -> AsyncIterator[FakeBinanceWS]:
    """Streams without a feed of their own: no close reaches the bot live."""
    async with FakeBinanceWS(Market.SPOT) as s:
        yield s


def serve(binance: FakeBinance, closes: list[float]) -> None:
    binance.market.candles.serve_series("spot", "BTCUSDT", "1m", [row(c) for c in closes])


@pytest.mark.parametrize("repeat", ["", " repeat 1m"], ids=["once", "repeating"])
async def test_a_close_that_crossed_while_the_bot_was_down_fires_once_late_after_a_restart(
    repeat: str,
    telegram: FakeTelegram,
    binance: FakeBinance,
    spot: FakeBinanceWS,
    tmp_path: Path,
) -> None:
    """Once: a one-shot fired is not held again. Repeating: held again after the restart,
    its cooldown counted from the close that fired, which the next start looks at again
    (its firing was not recorded when that close was checkpointed): it does not fire."""
    env = alarm_env(telegram, binance, spot, tmp_path, None)
    log = tmp_path / "bot.log"
    closes = zigzag(600)
    binance.clock_skew_s = 1 - time.time() % STEP_S  # the fake's minute starts now
    serve(binance, closes)
    binance.set_price("BTCUSDT", str(closes[-1]))

    async with bot_process(env, tmp_path) as proc:
        reply = await ask(telegram, f"/alarm btc rsi > 70 1m{repeat}")
        assert reply.plain.startswith("Alarm #1 is set"), reply.plain
        await listening(spot, "btcusdt@kline_1m")  # the watch holds it
        await kill(proc)

    # while no bot runs, two candles close: back at 100, then 130, whose RSI crosses 70
    closes += [100.0, 130.0]
    values = rsi(closes)
    assert values[-3] <= 70
    assert values[-2] <= 70 < values[-1]
    binance.clock_skew_s += 2 * STEP_S
    serve(binance, closes)
    binance.set_price("BTCUSDT", "130")

    async with bot_process(env, tmp_path) as proc:
        await fired(telegram, 1)
        await logged(log, CAUGHT_UP, 1)  # the first start had nothing to watch: no line
        await stop(proc)
    (late,) = firings(telegram)
    assert late.startswith("🔔 Alarm #1: BTCUSDT"), late
    assert f"RSI(14) {values[-1]:.2f}" in late, late
    assert "close 130" in late, late
    assert "Fired late" in late, late

    async with bot_process(env, tmp_path) as proc:
        if repeat:  # held again: the missed closes looked at again, none fires
            await logged(log, CAUGHT_UP, 2)
        await then_a_sentinel_fires_and_nothing_else(telegram, binance, spot, 1)
        await stop(proc)
    first, sentinel = firings(telegram)
    assert first == late
    assert sentinel.startswith("🔔 Alarm #2: ETHUSDT"), sentinel
