"""Indicators over TA-Lib: a thin typed layer, no indicator arithmetic of our own.

Every function takes an OHLCV DataFrame (``BinanceClient.get_klines_dataframe``'s, or
``Candles.frame``) and answers a Series or DataFrame on the same index. TA-Lib does the
arithmetic (RSI, MACD, EMA, SMA, BBANDS, ATR, STOCHF); this module decides what TA-Lib sees
and what its answer means at the edges:

- **NaN never reaches TA-Lib.** TA-Lib carries one NaN into every later value (RSI answers 0,
  which reads as "extremely oversold"), so rows with a missing or non-finite value in a column
  the indicator reads are dropped first; the answer is NaN on those rows and every other row
  is computed as if they were not there.
- **Gaps are bridged, not filled.** Candles Binance did not list (an outage, a halt) leave a
  gap in time but none in the series: the candles on each side are consecutive bars, as on
  Binance's and TradingView's charts, so values match theirs. Nothing is invented (a filled
  flat candle would drag RSI and ATR toward "calm"); ``Candles.gaps`` names the gaps so the
  read-out can say so.
- **Too few candles** raise ``NotEnoughHistoryError(have, need)``: ``need`` is TA-Lib's
  lookback plus one, the fewest rows that give one value.
- **Flat prices get defined values.** Where TA-Lib divides zero by zero it answers 0 (RSI when
  no close moved, Stochastic %K when high equals low over the window) and Bollinger %B would
  be 0/0: we answer 50 (RSI), 50 (%K: the close sits mid-range) and 0.5 (%B: on the middle
  band). Where prices moved before a flat stretch TA-Lib's Wilder averages remember the moves
  and its value stands (as on TradingView).

RSI and ATR are Wilder-smoothed (TA-Lib seeds the average with the simple mean of the first
``period`` values); EMA's ``k = 2 / (period + 1)``, seeded with an SMA; Bollinger bands use the
population standard deviation; Stochastic(14, 3, 3) is the slow one (SMA-smoothed %K and %D).
The seed fades geometrically: read-outs use ~1,000 closed candles so it no longer shows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
import talib
from talib import abstract

from analysis.errors import NotEnoughHistoryError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "FLAT_BAND",
    "atr",
    "atr_percent",
    "bollinger",
    "ema",
    "macd",
    "needed",
    "rsi",
    "sma",
    "stochastic",
    "usable",
    "volume_ratio",
)

#: Bands narrower than this fraction of the middle band count as flat (%B is then 0.5).
FLAT_BAND: Final = 1e-12
_NEUTRAL: Final = 50.0
_MID_BAND: Final = 0.5
_HLC: Final = ("high", "low", "close")


def needed(function: str, **params: int | float) -> int:
    """The fewest rows that give TA-Lib's ``function`` one value: its lookback plus one."""
    return _lookback(function, tuple(sorted(params.items()))) + 1


def usable(frame: pd.DataFrame, columns: Sequence[str] = ("close",)) -> pd.DataFrame:
    """``columns`` of ``frame`` as float64, rows with a NaN or infinity in any of them dropped,
    oldest first and one row per time (the last wins): the rows TA-Lib is given."""
    rows = _Rows.of(frame, columns)
    return pd.DataFrame(rows.arrays, index=rows.index)


def rsi(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    """RSI (Wilder); 50 where no close moved over the window (TA-Lib answers 0 there)."""
    rows = _Rows.of(frame, ("close",)).need(f"RSI({period})", "RSI", timeperiod=period)
    close = rows["close"]
    values = talib.RSI(close, timeperiod=period)
    still = _window_max(close, period + 1) == _window_min(close, period + 1)
    return rows.series(np.where((values == 0.0) & still, _NEUTRAL, values), frame, "rsi")


def ema(frame: pd.DataFrame, period: int, column: str = "close") -> pd.Series:
    """Exponential moving average of ``column`` (TA-Lib seeds it with the SMA)."""
    rows = _Rows.of(frame, (column,)).need(f"EMA({period})", "EMA", timeperiod=period)
    return rows.series(talib.EMA(rows[column], timeperiod=period), frame, "ema")


def sma(frame: pd.DataFrame, period: int, column: str = "close") -> pd.Series:
    """Simple moving average of ``column`` (``"volume"`` for the volume average)."""
    rows = _Rows.of(frame, (column,)).need(f"SMA({period})", "SMA", timeperiod=period)
    return rows.series(talib.SMA(rows[column], timeperiod=period), frame, "sma")


def macd(frame: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (EMA fast - EMA slow), its signal line and the histogram."""
    rows = _Rows.of(frame, ("close",)).need(
        f"MACD({fast},{slow},{signal})",
        "MACD",
        fastperiod=fast,
        slowperiod=slow,
        signalperiod=signal,
    )
    line, sig, hist = talib.MACD(
        rows["close"], fastperiod=fast, slowperiod=slow, signalperiod=signal
    )
    return rows.frame({"macd": line, "signal": sig, "hist": hist}, frame)


def bollinger(frame: pd.DataFrame, period: int = 20, width: float = 2.0) -> pd.DataFrame:
    """Bollinger bands (SMA, population standard deviation) and %B, where the close sits
    between the bands: 0 on the lower band, 1 on the upper; 0.5 when the bands are flat."""
    rows = _Rows.of(frame, ("close",)).need(
        f"Bollinger({period},{width:g})", "BBANDS", timeperiod=period
    )
    close = rows["close"]
    upper, middle, lower = talib.BBANDS(
        close, timeperiod=period, nbdevup=width, nbdevdn=width, matype=talib.MA_Type.SMA
    )
    span = upper - lower
    flat = span <= FLAT_BAND * np.abs(middle)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent_b = np.where(flat, _MID_BAND, (close - lower) / span)
    percent_b = np.where(np.isnan(middle), np.nan, percent_b)
    columns = {"upper": upper, "middle": middle, "lower": lower, "percent_b": percent_b}
    return rows.frame(columns, frame)


def atr(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    """Average true range (Wilder), in price units."""
    rows = _Rows.of(frame, _HLC).need(f"ATR({period})", "ATR", timeperiod=period)
    values = talib.ATR(rows["high"], rows["low"], rows["close"], timeperiod=period)
    return rows.series(values, frame, "atr")


def atr_percent(frame: pd.DataFrame, period: int = 14) -> pd.Series:
    """ATR as a percentage of the close it ends at."""
    rows = _Rows.of(frame, _HLC).need(f"ATR({period})", "ATR", timeperiod=period)
    values = talib.ATR(rows["high"], rows["low"], rows["close"], timeperiod=period)
    return rows.series(values / rows["close"] * 100.0, frame, "atr_pct")


def stochastic(
    frame: pd.DataFrame, k_period: int = 14, k_smooth: int = 3, d_period: int = 3
) -> pd.DataFrame:
    """Slow Stochastic: ``k`` is the SMA(``k_smooth``) of the fast %K over ``k_period``,
    ``d`` the SMA(``d_period``) of ``k``. The fast %K is 50 where high equals low over its
    window (TA-Lib answers 0); otherwise this equals ``talib.STOCH`` with SMA smoothing."""
    rows = _Rows.of(frame, _HLC)
    need = needed("STOCHF", fastk_period=k_period, fastd_period=1) + k_smooth + d_period - 2
    rows.require(f"Stochastic({k_period},{k_smooth},{d_period})", need)
    high, low = rows["high"], rows["low"]
    fast_k, _ = talib.STOCHF(high, low, rows["close"], fastk_period=k_period, fastd_period=1)
    flat = _window_max(high, k_period) == _window_min(low, k_period)
    fast_k = np.where(flat & ~np.isnan(fast_k), _NEUTRAL, fast_k)
    k = talib.SMA(fast_k, timeperiod=k_smooth)
    d = talib.SMA(k, timeperiod=d_period)
    return rows.frame({"k": k, "d": d}, frame)


def volume_ratio(frame: pd.DataFrame, period: int = 20) -> pd.Series:
    """Volume over its ``period``-bar simple average (2.0: twice the usual); NaN where the
    average is 0 (nothing traded)."""
    rows = _Rows.of(frame, ("volume",)).need(f"SMA({period})", "SMA", timeperiod=period)
    volume = rows["volume"]
    average = talib.SMA(volume, timeperiod=period)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(average > 0, volume / average, np.nan)
    return rows.series(ratio, frame, "volume_ratio")


# --- private helpers ---------------------------------------------------------------------
@lru_cache(maxsize=64)
def _lookback(function: str, params: tuple[tuple[str, int | float], ...]) -> int:
    indicator = abstract.Function(function)  # type: ignore[attr-defined]  # not in its stubs
    indicator.set_parameters(dict(params))
    return int(indicator.lookback)


class _Rows:
    """The rows of a frame TA-Lib may see: float64 arrays by column, sorted, unique, finite;
    ``index`` their times. Built with numpy alone on the usual clean frame (no copy)."""

    __slots__ = ("arrays", "index")

    def __init__(self, index: pd.Index, arrays: dict[str, np.ndarray]) -> None:
        self.index, self.arrays = index, arrays

    @classmethod
    def of(cls, frame: pd.DataFrame, columns: Sequence[str]) -> _Rows:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise KeyError(f"the frame has no column {', '.join(missing)}")
        index = frame.index
        arrays = {c: frame[c].to_numpy(dtype="float64") for c in columns}
        if not (index.is_monotonic_increasing and index.is_unique):
            keep = ~index.duplicated(keep="last")
            order = np.argsort(index[keep], kind="stable")
            index = index[keep][order]
            arrays = {c: a[keep][order] for c, a in arrays.items()}
        finite = np.ones(len(index), dtype=bool)
        for values in arrays.values():
            finite &= np.isfinite(values)
        if not finite.all():
            index = index[finite]
            arrays = {c: a[finite] for c, a in arrays.items()}
        return cls(index, arrays)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.arrays[column]

    def __len__(self) -> int:
        return len(self.index)

    def require(self, what: str, need: int) -> None:
        if len(self) < need:
            raise NotEnoughHistoryError(len(self), need, what)

    def need(self, what: str, function: str, **params: int | float) -> _Rows:
        self.require(what, needed(function, **params))
        return self

    def series(self, values: np.ndarray, frame: pd.DataFrame, name: str) -> pd.Series:
        """TA-Lib's answer on these rows, on ``frame``'s index (NaN on dropped rows)."""
        out = pd.Series(values, index=self.index, name=name, dtype="float64")
        return out if self.index is frame.index else out.reindex(frame.index)

    def frame(self, columns: dict[str, np.ndarray], frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(columns, index=self.index, dtype="float64")
        return out if self.index is frame.index else out.reindex(frame.index)


def _window_max(values: np.ndarray, n: int) -> np.ndarray:
    """The maximum of each ``n`` values ending at each row (NaN before the first window)."""
    out = np.full(len(values), np.nan)
    if len(values) >= n:
        out[n - 1 :] = np.lib.stride_tricks.sliding_window_view(values, n).max(axis=1)
    return out


def _window_min(values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    if len(values) >= n:
        out[n - 1 :] = np.lib.stride_tricks.sliding_window_view(values, n).min(axis=1)
    return out
