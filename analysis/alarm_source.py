"""Indicator values for the indicator alarms (``utils.alarms.alarm_indicator``'s
``IndicatorSource``, implemented here structurally: ``analysis`` and ``utils.alarms`` do not
import each other; ``bot/app.py`` hands this to the alarm service).

``AlarmSource.read`` fetches the candles once, through ``binance_a``, its cache and its
limiter: for a close (``last_open_ms``), the ``CANDLES`` candles ending with the one that just
closed (``endTime`` its close time: a request of its own, never an answer cached while that
candle was still forming, and final, so cached as closed); otherwise ``fetch_candles``' last
``CANDLES`` closed ones. The forming candle never counts. It reads the asked series with
``analysis.indicators`` (TA-Lib): ``rsi``, ``macd``, ``macd_signal``, ``ema:N`` and ``close``,
each at the candle before and the last closed one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pandas as pd

from analysis import indicators
from analysis.candles import fetch_candles, frame_from_rows
from analysis.errors import NotEnoughHistoryError
from utils.binance.binance_a import Market

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from utils.binance.binance_a import BinanceClient

__all__ = ("CANDLES", "AlarmReading", "AlarmSource")

CANDLES: Final = 500  # closed candles read per close: the smoothing's seed no longer shows
_RSI: Final = 14


@dataclass(frozen=True, slots=True)
class AlarmReading:
    """The series at the last two closed candles (``values``: name -> (before, last))."""

    close_time_ms: int
    close: float
    values: Mapping[str, tuple[float, float]]


class AlarmSource:
    """Reads indicator values on closed candles for the indicator alarms."""

    def __init__(self, client: BinanceClient) -> None:
        self._client = client

    async def read(
        self,
        symbol: str,
        interval: str,
        market: str,
        names: Collection[str],
        *,
        last_open_ms: int | None = None,
    ) -> AlarmReading:
        """Raises ``NotEnoughHistoryError`` with fewer than two values, and what
        ``fetch_candles`` raises."""
        if last_open_ms is None:
            candles = await fetch_candles(
                self._client, symbol, interval, limit=CANDLES, market=Market(market)
            )
            frame = candles.closed
        else:
            rows = await self._client.get_klines(
                symbol,
                interval,
                CANDLES,
                Market(market),
                end_time=last_open_ms + _step_ms(interval) - 1,
            )
            frame = await asyncio.to_thread(frame_from_rows, rows)
            last = pd.Timestamp(last_open_ms, unit="ms", tz="UTC")
            frame = frame[frame.index <= last]
        return await asyncio.to_thread(_reading, frame, tuple(names), interval)


def _reading(frame: pd.DataFrame, names: tuple[str, ...], interval: str) -> AlarmReading:
    if len(frame) < 2:  # noqa: PLR2004 - a value before and one at the close
        raise NotEnoughHistoryError(len(frame), 2)
    values: dict[str, tuple[float, float]] = {"close": _pair(frame["close"])}
    for name in names:
        if name == "rsi":
            values[name] = _pair(indicators.rsi(frame, _RSI))
        elif name in ("macd", "macd_signal"):
            lines = indicators.macd(frame)
            values["macd"], values["macd_signal"] = _pair(lines["macd"]), _pair(lines["signal"])
        elif name.startswith("ema:"):
            values[name] = _pair(indicators.ema(frame, int(name.removeprefix("ema:"))))
    last: pd.Timestamp = frame.index[-1]
    step = _step_ms(interval)
    return AlarmReading(
        close_time_ms=int(last.value // 1_000_000) + step - 1,
        close=float(frame["close"].iloc[-1]),
        values=values,
    )


def _pair(series: pd.Series) -> tuple[float, float]:
    return float(series.iloc[-2]), float(series.iloc[-1])


def _step_ms(interval: str) -> int:
    value, unit = int(interval[:-1]), interval[-1]
    return value * {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[unit]
