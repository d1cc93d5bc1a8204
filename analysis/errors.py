"""Every error ``analysis/`` raises. Branch on the class and its fields, never on text.

::

    AnalysisError
    └── AnalysisInputError         (also ValueError) the request cannot be answered as asked
        ├── UnknownIntervalError   not a kline interval of the market; ``interval``, ``valid``
        ├── LimitOutOfRangeError   a candle count outside ``[lo, hi]``; ``limit``, ``lo``, ``hi``
        └── NotEnoughHistoryError  fewer closed candles than a period needs; ``have``, ``need``

Binance's own errors (an unknown symbol: ``BinanceUnknownSymbolError`` with its
``suggestions``; rate limits; timeouts) pass through untouched: handlers answer them as
``handler/price.py`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "AnalysisError",
    "AnalysisInputError",
    "LimitOutOfRangeError",
    "NotEnoughHistoryError",
    "UnknownIntervalError",
)


class AnalysisError(Exception):
    """Root of every error raised by ``analysis``."""


class AnalysisInputError(AnalysisError, ValueError):
    """The request cannot be answered as asked; nothing more was fetched."""


class UnknownIntervalError(AnalysisInputError):
    """``interval`` is not one of the market's kline intervals; ``valid`` lists them in order."""

    def __init__(self, interval: str, valid: Sequence[str]) -> None:
        super().__init__(f"interval {interval!r} is not one of {', '.join(valid)}")
        self.interval, self.valid = interval, tuple(valid)


class LimitOutOfRangeError(AnalysisInputError):
    """A candle count outside ``[lo, hi]``."""

    def __init__(self, limit: int, lo: int, hi: int) -> None:
        super().__init__(f"the candle count must be from {lo} to {hi}, got {limit}")
        self.limit, self.lo, self.hi = limit, lo, hi


class NotEnoughHistoryError(AnalysisInputError):
    """``have`` closed candles exist where ``need`` are required (a new listing, a short
    series); ``what`` names what needed them (``"RSI(14)"``) when one thing did."""

    def __init__(self, have: int, need: int, what: str = "") -> None:
        subject = f"{what} needs" if what else "needs"
        super().__init__(f"{subject} {need} closed candles; {have} exist")
        self.have, self.need, self.what = have, need, what
