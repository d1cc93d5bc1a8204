"""The summary's scoring: each indicator votes buy, neutral or sell on the last candle, and the
votes add up to a total and a verdict. The rules are data (``RULES``), so ``/help ta`` and the
README print the same text the code follows:

- RSI(14): below 30 buy, above 70 sell.
- MACD(12,26,9): line above its signal buy, below sell.
- EMA 20, 50 and 200 (one vote each): close above the EMA buy, below sell.
- Bollinger(20,2): %B below 0 (close under the lower band) buy, above 1 sell.
- Stochastic(14,3,3): %K below 20 buy, above 80 sell.
- Anything else, or an indicator without enough history, is neutral.

Total = buy votes - sell votes, from -7 to +7: +4 or more strong buy, +2 to +3 buy, -1 to +1
neutral, -2 to -3 sell, -4 or less strong sell. Trend votes (MACD, EMAs) and
mean-reversion votes (RSI, %B, Stochastic) can disagree; the total says which side has more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Final

from analysis.signals import OVERBOUGHT, OVERSOLD, STOCH_HIGH, STOCH_LOW
from analysis.words import N_

if TYPE_CHECKING:
    from analysis.readout import Readout

__all__ = ("RULES", "STRONG", "VOTERS", "WEAK", "Score", "Verdict", "Vote", "score", "verdict")

#: |total| from which the verdict is strong, and from which it leaves neutral.
STRONG: Final = 4
WEAK: Final = 2
#: The rules in words, one line each, in order (also ``/help ta`` and the README).
RULES: Final = (
    N_("RSI(14): below 30 buy, above 70 sell"),
    N_("MACD(12,26,9): line above its signal buy, below sell"),
    N_("EMA 20, 50, 200 (a vote each): close above buy, below sell"),
    N_("Bollinger(20,2): %B below 0 buy, above 1 sell"),
    N_("Stochastic(14,3,3): %K below 20 buy, above 80 sell"),
    N_("otherwise, or without enough history: neutral"),
    N_(
        "total = buys - sells (-7..+7): +4 or more strong buy, +2..+3 buy, -1..+1 neutral, "
        "-2..-3 sell, -4 or less strong sell"
    ),
)


class Vote(IntEnum):
    SELL = -1
    NEUTRAL = 0
    BUY = 1


class Verdict(StrEnum):
    STRONG_SELL = "strong sell"
    SELL = "sell"
    NEUTRAL = "neutral"
    BUY = "buy"
    STRONG_BUY = "strong buy"


@dataclass(frozen=True, slots=True)
class Score:
    """One vote per indicator (in ``VOTERS`` order), their total and the verdict."""

    votes: tuple[tuple[str, Vote], ...]
    total: int
    verdict: Verdict


#: The voters, in the order of the /ta all columns.
VOTERS: Final = ("RSI", "MACD", "EMA20", "EMA50", "EMA200", "%B", "Stoch")


def score(r: Readout) -> Score:
    """The votes of the read-out ``r`` (see the module docstring for the rules)."""
    votes = (
        ("RSI", _band(r.rsi, OVERSOLD, OVERBOUGHT)),
        ("MACD", _side(r.macd, r.macd_signal)),
        *((f"EMA{period}", _side(r.close, value)) for period, value in r.emas),
        ("%B", _band(r.percent_b, 0.0, 1.0)),
        ("Stoch", _band(r.stoch_k, STOCH_LOW, STOCH_HIGH)),
    )
    total = sum(int(v) for _, v in votes)
    return Score(votes, total, verdict(total))


def verdict(total: int) -> Verdict:
    if total >= STRONG:
        return Verdict.STRONG_BUY
    if total >= WEAK:
        return Verdict.BUY
    if total <= -STRONG:
        return Verdict.STRONG_SELL
    if total <= -WEAK:
        return Verdict.SELL
    return Verdict.NEUTRAL


def _side(value: float | None, reference: float | None) -> Vote:
    """Above ``reference`` buy, below sell."""
    if value is None or reference is None or value == reference:
        return Vote.NEUTRAL
    return Vote.BUY if value > reference else Vote.SELL


def _band(value: float | None, low: float, high: float) -> Vote:
    """Below ``low`` buy (oversold), above ``high`` sell (overbought)."""
    if value is None:
        return Vote.NEUTRAL
    if value < low:
        return Vote.BUY
    if value > high:
        return Vote.SELL
    return Vote.NEUTRAL
