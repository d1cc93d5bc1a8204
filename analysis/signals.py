"""Signal detection over indicator series: crosses ("MACD crossed down 3 bars ago") and
levels (RSI overbought, close outside the Bollinger bands, a volume spike).

A cross is a change of side: series ``a`` was below ``b`` and is now above (``UP``), or the
other way (``DOWN``). Touching (``a == b``) is no side, so a line that touches and turns back
has not crossed, and one that touches and goes through crosses on the bar it gets through.
``bars_ago`` counts candles back from the last one (0: the cross happened on the last candle).
Bars where either series is NaN (warm-up, dropped rows) are no side either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import pandas as pd

__all__ = (
    "OVERBOUGHT",
    "OVERSOLD",
    "STOCH_HIGH",
    "STOCH_LOW",
    "VOLUME_SPIKE",
    "Cross",
    "Direction",
    "Level",
    "crossings",
    "last_cross",
    "rsi_level",
    "stoch_level",
)

#: RSI above this is overbought, below ``OVERSOLD`` oversold (Wilder's levels).
OVERBOUGHT: Final = 70.0
OVERSOLD: Final = 30.0
#: Stochastic %K above this is overbought, below ``STOCH_LOW`` oversold.
STOCH_HIGH: Final = 80.0
STOCH_LOW: Final = 20.0
#: Volume at least this many times its 20-bar average is a spike.
VOLUME_SPIKE: Final = 2.0


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class Level(StrEnum):
    """Where an oscillator stands."""

    OVERBOUGHT = "overbought"
    OVERSOLD = "oversold"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class Cross:
    """The most recent cross: its direction and how many candles ago (0: the last one)."""

    direction: Direction
    bars_ago: int


def crossings(a: pd.Series, b: pd.Series | float) -> pd.Series:
    """Per bar: 1 where ``a`` crossed above ``b``, -1 where it crossed below, else 0."""
    other = b.to_numpy(dtype="float64") if isinstance(b, pd.Series) else b
    return pd.Series(_marks(a.to_numpy(dtype="float64"), other), index=a.index, name="cross")


def last_cross(a: pd.Series, b: pd.Series | float, *, within: int | None = None) -> Cross | None:
    """The most recent cross of ``a`` over ``b``, if any happened in the last ``within``
    candles (all of them when None)."""
    other = b.to_numpy(dtype="float64") if isinstance(b, pd.Series) else b
    marks = _marks(a.to_numpy(dtype="float64"), other)
    where = np.flatnonzero(marks)
    if not len(where):
        return None
    bars_ago = len(marks) - 1 - int(where[-1])
    if within is not None and bars_ago >= within:
        return None
    return Cross(Direction.UP if marks[where[-1]] > 0 else Direction.DOWN, bars_ago)


def rsi_level(value: float) -> Level:
    return _level(value, OVERSOLD, OVERBOUGHT)


def stoch_level(value: float) -> Level:
    return _level(value, STOCH_LOW, STOCH_HIGH)


def _marks(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """1 / -1 on the bars where the side of ``a - b`` changes; a touch or NaN has no side
    and keeps the one before it."""
    side = np.sign(a - b)
    sided = np.isfinite(side) & (side != 0)
    last = np.maximum.accumulate(np.where(sided, np.arange(len(side)), -1))
    held = np.where(last >= 0, side[np.maximum(last, 0)], 0.0)
    marks = np.zeros(len(side), dtype="int64")
    if len(side) > 1:
        turned = sided[1:] & (held[:-1] != 0) & (held[:-1] != side[1:])
        marks[1:] = np.where(turned, side[1:], 0).astype("int64")
    return marks


def _level(value: float, low: float, high: float) -> Level:
    if value > high:
        return Level.OVERBOUGHT
    if value < low:
        return Level.OVERSOLD
    return Level.NEUTRAL
