"""The indicator conditions of ``/alarm``, read and written: ``rsi > 70 1h``, ``rsi < 30 4h``,
``macd cross [up|down] 4h``, ``ema 50 cross [up|down] 1d``. ``alarm_parser`` hands the words
after the symbol here when the first names an indicator; ``render_indicator`` writes a spec's
condition back, ``describe_indicator`` says it in words.

The candle interval is required and comes right after the condition (``INTERVALS``: Binance's
kline intervals of a fixed length; ``1s`` and ``1M`` are not offered). It is stored as
``AlarmSpec.window_s`` in seconds; an RSI level (0 < L < 100, exclusive) and an EMA period
(2 to 500) as ``AlarmSpec.level``. The indicators are fixed: RSI(14), MACD(12, 26, 9),
EMA(period) of the close, as ``/ta`` computes them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Protocol

from utils.alarms.alarm_errors import N_, AlarmSyntaxError
from utils.alarms.alarm_model import AlarmKind, AlarmSpec, Direction
from utils.alarms.alarm_words import grouped_text, number_text, read_number, to_plain

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "EMA_PERIODS",
    "INDICATORS",
    "INDICATOR_TEXTS",
    "INTERVALS",
    "KNOWN_ELSEWHERE",
    "RSI_PERIOD",
    "describe_indicator",
    "interval_of",
    "read_indicator",
    "render_indicator",
    "series_names",
)

RSI_PERIOD: Final = 14
MACD_PERIODS: Final = (12, 26, 9)
EMA_PERIODS: Final = (2, 500)  # inclusive
#: Candle interval -> seconds, shortest first.
INTERVALS: Final[Mapping[str, int]] = {
    **{f"{n}m": n * 60 for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": n * 3_600 for n in (1, 2, 4, 6, 8, 12)},
    **{"1d": 86_400, "3d": 3 * 86_400, "1w": 7 * 86_400},
}
_NAMES: Final = {seconds: name for name, seconds in INTERVALS.items()}
INDICATORS: Final = frozenset({"rsi", "macd", "ema"})
#: Indicators people ask for that alarms do not offer: answered with the ones they do.
KNOWN_ELSEWHERE: Final = frozenset(
    {"sma", "ma", "stoch", "stochrsi", "bb", "boll", "bollinger", "atr", "adx", "cci", "mfi"}
    | {"obv", "vwap", "kdj", "wr", "willr", "sar", "ichimoku", "roc", "mom", "trix"}
)
_UP_OPS: Final = frozenset({">", ">=", "≥", "above"})
_DOWN_OPS: Final = frozenset({"<", "<=", "≤", "below"})
_CROSS: Final = frozenset({"cross", "crosses"})
_PERIOD: Final = re.compile(r"[0-9]{1,4}")

#: ``describe_indicator``'s texts, by kind and direction.
INDICATOR_TEXTS: Final[Mapping[str, str]] = {
    "rsi_above": N_("{symbol} {market} RSI(14) on {interval} candles closes above {level}"),
    "rsi_below": N_("{symbol} {market} RSI(14) on {interval} candles closes below {level}"),
    "macd_cross_both": N_(
        "{symbol} {market} MACD(12,26,9) crosses its signal line either way on a {interval} close"
    ),
    "macd_cross_up": N_(
        "{symbol} {market} MACD(12,26,9) crosses above its signal line on a {interval} close"
    ),
    "macd_cross_down": N_(
        "{symbol} {market} MACD(12,26,9) crosses below its signal line on a {interval} close"
    ),
    "ema_cross_both": N_("{symbol} {market} {interval} close crosses EMA {period} either way"),
    "ema_cross_up": N_("{symbol} {market} {interval} close crosses EMA {period} upwards"),
    "ema_cross_down": N_("{symbol} {market} {interval} close crosses EMA {period} downwards"),
    "spot": N_("spot"),
    "futures": N_("futures"),
}


class Words(Protocol):
    """The parser's reader of the command's words (``alarm_parser._Words``)."""

    def peek(self, ahead: int = 0) -> str | None: ...
    def take(self) -> str | None: ...


def read_indicator(symbol: str, name: str, words: Words) -> AlarmSpec:
    """The condition after ``name`` (``rsi``, ``macd`` or ``ema``, already taken), with its
    interval; raises ``AlarmSyntaxError`` naming what is wrong."""
    if name == "rsi":
        op = (words.take() or "").lower()
        if op in _UP_OPS | _DOWN_OPS:
            level = _rsi_level(words.take(), symbol)
            kind = AlarmKind.RSI_ABOVE if op in _UP_OPS else AlarmKind.RSI_BELOW
            return _with_interval(symbol, words, kind=kind, level=level, example="rsi > 70")
        raise AlarmSyntaxError("rsi_op", symbol=symbol)
    if name == "macd":
        direction = _cross(words)
        if direction is None:
            raise AlarmSyntaxError("macd_cross", symbol=symbol)
        return _with_interval(
            symbol, words, kind=AlarmKind.MACD_CROSS, direction=direction, example="macd cross"
        )
    period = _ema_period(words.take(), symbol)
    direction = _cross(words)
    if direction is None:
        raise AlarmSyntaxError("ema_cross", symbol=symbol, period=period)
    return _with_interval(
        symbol,
        words,
        kind=AlarmKind.EMA_CROSS,
        direction=direction,
        level=Decimal(period),
        example=f"ema {period} cross",
    )


def render_indicator(spec: AlarmSpec) -> list[str]:
    """The condition's words as ``read_indicator`` reads them."""
    interval = interval_of(spec)
    turn = [] if spec.direction is Direction.BOTH else [spec.direction.value]
    if spec.kind is AlarmKind.RSI_ABOVE:
        return ["rsi", ">", number_text(spec.level), interval]
    if spec.kind is AlarmKind.RSI_BELOW:
        return ["rsi", "<", number_text(spec.level), interval]
    if spec.kind is AlarmKind.MACD_CROSS:
        return ["macd", "cross", *turn, interval]
    return ["ema", number_text(spec.level), "cross", *turn, interval]


def describe_indicator(spec: AlarmSpec, gettext: Callable[[str], str] = str) -> str:
    """The condition in words: "BTCUSDT spot RSI(14) on 1h candles closes above 70"."""
    key = spec.kind.value
    if spec.kind in (AlarmKind.MACD_CROSS, AlarmKind.EMA_CROSS):
        key = f"{key}_{spec.direction.value}"
    market = INDICATOR_TEXTS.get(spec.market)
    return gettext(INDICATOR_TEXTS[key]).format(
        symbol=spec.symbol,
        market=gettext(market) if market else spec.market,
        interval=interval_of(spec),
        level=grouped_text(spec.level),
        period=number_text(spec.level),
    )


def interval_of(spec: AlarmSpec) -> str:
    """The kline interval (``1h``) of an indicator alarm."""
    return _NAMES.get(spec.window_s or 0, f"{spec.window_s}s")


def series_names(spec: AlarmSpec) -> tuple[str, ...]:
    """The series an ``IndicatorSource`` reads for this alarm (``alarm_indicator``)."""
    if spec.kind in (AlarmKind.RSI_ABOVE, AlarmKind.RSI_BELOW):
        return ("rsi",)
    if spec.kind is AlarmKind.MACD_CROSS:
        return ("macd", "macd_signal")
    return (f"ema:{number_text(spec.level)}",)


def _with_interval(
    symbol: str,
    words: Words,
    *,
    kind: AlarmKind,
    example: str,
    direction: Direction = Direction.BOTH,
    level: Decimal | None = None,
) -> AlarmSpec:
    word = words.take()
    valid = ", ".join(INTERVALS)
    if word is None:
        raise AlarmSyntaxError("no_interval", symbol=symbol, valid=valid, example=example)
    seconds = INTERVALS.get(word if word.endswith("M") else word.lower())  # 1M: a month
    if seconds is None:
        raise AlarmSyntaxError("interval", word=word[:40], valid=valid)
    return AlarmSpec(symbol=symbol, kind=kind, direction=direction, level=level, window_s=seconds)


def _cross(words: Words) -> Direction | None:
    if (words.peek() or "").lower() not in _CROSS:
        return None
    words.take()
    if (turn := (words.peek() or "").lower()) in ("up", "down"):
        words.take()
        return Direction(turn)
    return Direction.BOTH


def _rsi_level(word: str | None, symbol: str) -> Decimal:
    value = None if word is None else read_number(word)
    if value is None or not 0 < value < 100:  # noqa: PLR2004 - RSI's range
        raise AlarmSyntaxError("rsi_level", word=(word or "")[:40], symbol=symbol)
    return to_plain(value)


def _ema_period(word: str | None, symbol: str) -> int:
    low, high = EMA_PERIODS
    if word is None or not _PERIOD.fullmatch(word) or not low <= int(word) <= high:
        raise AlarmSyntaxError(
            "ema_period", word=(word or "")[:40], symbol=symbol, low=low, high=high
        )
    return int(word)
