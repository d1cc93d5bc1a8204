"""Indicator values: TA-Lib through ``analysis.indicators`` against talipp (an independent,
incremental implementation used only here) on the shipped random-walk fixture, a few values
worked by hand from the definitions, and the edges (NaN rows, gaps, short history, flat prices).

Where talipp and TA-Lib agree on the definition the values agree to 1e-9 relative from the
first bar (RSI, EMA, SMA, Bollinger). Two differ only in how they seed, and the difference
decays geometrically, so those are compared after ``WARM_UP`` bars:
- MACD: TA-Lib starts the fast EMA on the slow EMA's first bar (seeded with the SMA of the
  12 bars before it), talipp seeds each EMA on its own first bar; the gap shrinks by 11/13
  per bar (fast EMA) and 8/10 (signal): below 1e-9 relative after ~160 bars on the fixture.
- ATR: TA-Lib's first true range is bar 1's (it needs a previous close), talipp's first is bar
  0's high - low; Wilder's average forgets it by 13/14 per bar: below 1e-9 after ~250 bars.
Stochastic differs on purpose where high equals low over the window: talipp answers 100,
TA-Lib 0, we 50 (``analysis.indicators`` docstring); those bars are left out of the comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
import pytest
from talipp.indicators import ATR, BB, EMA, MACD, RSI, SMA, Stoch
from talipp.ohlcv import OHLCV

from analysis import indicators as ind
from analysis.errors import NotEnoughHistoryError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

REL: Final = 1e-9
WARM_UP: Final = 300


def talipp_values(values: Iterable[object], field: str | None = None) -> np.ndarray:
    out = []
    for v in values:
        item = v if field is None or v is None else getattr(v, field)
        out.append(math.nan if item is None else float(item))
    return np.asarray(out)


def bars(frame: pd.DataFrame) -> list[OHLCV]:
    cols = frame[["open", "high", "low", "close", "volume"]].itertuples(index=False)
    return [OHLCV(o, h, lo, c, v) for o, h, lo, c, v in cols]


def assert_agree(ours: pd.Series, theirs: np.ndarray, *, start: int = 0) -> None:
    """Equal to ``REL`` relative wherever talipp has a value (from ``start``), and NaN
    exactly where talipp has none yet (TA-Lib's lookback equals talipp's warm-up)."""
    mine = ours.to_numpy()[start:]
    other = theirs[start:]
    assert np.array_equal(np.isnan(mine), np.isnan(other))
    both = ~np.isnan(other)
    assert both.sum() > 0
    np.testing.assert_allclose(mine[both], other[both], rtol=REL, atol=0)


# --- against talipp, on the random walk (gaps bridged, flat stretches included) ------------
def test_rsi_agrees_with_talipp_from_its_first_value(walk: pd.DataFrame) -> None:
    assert_agree(ind.rsi(walk), talipp_values(RSI(14, walk["close"].tolist())))


@pytest.mark.parametrize("period", [20, 50, 200])
def test_ema_agrees_with_talipp_from_its_first_value(walk: pd.DataFrame, period: int) -> None:
    assert_agree(ind.ema(walk, period), talipp_values(EMA(period, walk["close"].tolist())))


@pytest.mark.parametrize("field", ["macd", "signal", "histogram"])
def test_macd_agrees_with_talipp_once_the_seeds_have_faded(walk: pd.DataFrame, field: str) -> None:
    theirs = talipp_values(MACD(12, 26, 9, walk["close"].tolist()), field)
    column = {"macd": "macd", "signal": "signal", "histogram": "hist"}[field]
    assert_agree(ind.macd(walk)[column], theirs, start=WARM_UP)


def test_macd_seeding_differs_early_which_is_why_warm_up_is_skipped(walk: pd.DataFrame) -> None:
    theirs = talipp_values(MACD(12, 26, 9, walk["close"].tolist()), "macd")
    ours = ind.macd(walk)["macd"].to_numpy()
    first = int(np.flatnonzero(~np.isnan(ours))[0])
    assert abs(ours[first] - theirs[first]) > REL * abs(theirs[first])


@pytest.mark.parametrize("field", ["ub", "cb", "lb"])
def test_bollinger_bands_agree_with_talipp(walk: pd.DataFrame, field: str) -> None:
    column = {"ub": "upper", "cb": "middle", "lb": "lower"}[field]
    theirs = talipp_values(BB(20, 2.0, walk["close"].tolist()), field)
    assert_agree(ind.bollinger(walk)[column], theirs)


def test_percent_b_is_where_the_close_sits_between_talipps_bands(walk: pd.DataFrame) -> None:
    values = list(BB(20, 2.0, walk["close"].tolist()))
    upper, lower = talipp_values(values, "ub"), talipp_values(values, "lb")
    close = walk["close"].to_numpy()
    wide = (upper - lower) > 1e-6 * close  # the halts' flat bands are tested on their own
    expected = (close - lower) / (upper - lower)
    ours = ind.bollinger(walk)["percent_b"].to_numpy()
    np.testing.assert_allclose(ours[wide], expected[wide], rtol=1e-7, atol=1e-9)


def test_atr_agrees_with_talipp_once_the_seeds_have_faded(walk: pd.DataFrame) -> None:
    assert_agree(ind.atr(walk), talipp_values(ATR(14, bars(walk))), start=WARM_UP)


def test_stochastic_agrees_with_talipp_where_the_range_is_not_flat(walk: pd.DataFrame) -> None:
    fast = list(Stoch(14, 3, bars(walk)))  # talipp's k is the fast %K, its d our slow %K
    slow_k = talipp_values(fast, "d")
    start = int(np.flatnonzero(~np.isnan(slow_k))[0])
    slow_d = np.concatenate([slow_k[:start], talipp_values(SMA(3, slow_k[start:].tolist()))])
    flat = (walk["high"].rolling(14).max() == walk["low"].rolling(14).min()).to_numpy()
    touched = np.convolve(flat.astype(int), np.ones(5, dtype=int))[: len(flat)] > 0
    ours = ind.stochastic(walk)
    keep = ~touched & ~np.isnan(slow_d)
    assert keep.sum() > 1000
    np.testing.assert_allclose(ours["k"].to_numpy()[keep], slow_k[keep], rtol=REL)
    np.testing.assert_allclose(ours["d"].to_numpy()[keep], slow_d[keep], rtol=REL)


def test_volume_average_agrees_with_talipp(walk: pd.DataFrame) -> None:
    theirs = talipp_values(SMA(20, walk["volume"].tolist()))
    ours = ind.sma(walk, 20, "volume").to_numpy()
    # TA-Lib keeps a running sum: over the halts' zero volume it leaves ~1e-14, not 0
    np.testing.assert_allclose(ours[19:], theirs[19:], rtol=REL, atol=1e-12)


# --- worked by hand ---------------------------------------------------------------------
def frame(
    close: list[float], high: list[float] | None = None, low: list[float] | None = None
) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="open_time")
    return pd.DataFrame(
        {
            "open": close,
            "high": high or close,
            "low": low or close,
            "close": close,
            "volume": [1.0] * len(close),
        },
        index=index,
    )


def test_rsi_by_hand() -> None:
    # closes 1, 2, 3, 2: changes +1, +1, -1. RSI(2): first average gain (1 + 1) / 2 = 1,
    # loss 0 -> 100 * 1 / (1 + 0) = 100. Then Wilder: gain (1 * 1 + 0) / 2 = 0.5,
    # loss (0 * 1 + 1) / 2 = 0.5 -> 100 * 0.5 / (0.5 + 0.5) = 50.
    values = ind.rsi(frame([1, 2, 3, 2]), period=2).tolist()
    assert values[:2] == [pytest.approx(math.nan, nan_ok=True)] * 2
    assert values[2:] == [pytest.approx(100.0), pytest.approx(50.0)]


def test_ema_by_hand() -> None:
    # EMA(3), k = 2 / (3 + 1) = 0.5: seed = SMA(1, 2, 3) = 2; then 2 + 0.5 * (4 - 2) = 3;
    # 3 + 0.5 * (6 - 3) = 4.5.
    assert ind.ema(frame([1, 2, 3, 4, 6]), 3).tolist()[2:] == [2.0, 3.0, 4.5]


def test_bollinger_by_hand() -> None:
    # closes 1, 2, 3: middle 2, population sd = sqrt(((1-2)^2 + 0 + (3-2)^2) / 3) = sqrt(2/3);
    # upper = 2 + 2 sd, lower = 2 - 2 sd; %B of 3 = (3 - lower) / (4 sd) = 0.5 + 1 / (4 sd).
    sd = math.sqrt(2 / 3)
    last = ind.bollinger(frame([1, 2, 3]), period=3).iloc[-1]
    assert last["upper"] == pytest.approx(2 + 2 * sd, rel=1e-12)
    assert last["lower"] == pytest.approx(2 - 2 * sd, rel=1e-12)
    assert last["percent_b"] == pytest.approx(0.5 + 1 / (4 * sd), rel=1e-12)  # 0.80619


def test_atr_and_atr_percent_by_hand() -> None:
    # (high, low, close): (10, 8, 9), (11, 9, 10), (12, 9, 11), (11, 10, 10.5).
    # TR1 = max(11-9, |11-9|, |9-9|) = 2; TR2 = max(12-9, |12-10|, |9-10|) = 3;
    # TR3 = max(11-10, |11-11|, |10-11|) = 1. ATR(2): (2 + 3) / 2 = 2.5, then Wilder
    # (2.5 * 1 + 1) / 2 = 1.75; as % of the close 10.5: 16.666...%.
    f = frame([9, 10, 11, 10.5], high=[10, 11, 12, 11], low=[8, 9, 9, 10])
    assert ind.atr(f, 2).tolist()[2:] == [2.5, 1.75]
    assert ind.atr_percent(f, 2).iloc[-1] == pytest.approx(1.75 / 10.5 * 100, rel=1e-12)


def test_stochastic_by_hand() -> None:
    # fast %K(3) = (close - lowest low) / (highest high - lowest low) * 100 over 3 bars:
    # bars 2..5: (5-1)/(6-1)=80, (6-2)/(7-2)=80, (4-3)/(8-3)=20, (7-4)/(9-4)=60 (rounded in
    # words; exact below). Slow %K(3,2) = SMA2: 80, 50, 40; %D(2) = SMA2 of that: 65, 45.
    high = [2, 3, 6, 7, 8, 9]
    low = [1, 2, 3, 4, 5, 4]
    close = [1.5, 2.5, 5, 6, 5.8, 7]
    st = ind.stochastic(frame(close, high, low), k_period=3, k_smooth=2, d_period=2)
    fast = [(5 - 1) / (6 - 1), (6 - 2) / (7 - 2), (5.8 - 3) / (8 - 3), (7 - 4) / (9 - 4)]
    fast = [100 * v for v in fast]
    slow = [(fast[i] + fast[i + 1]) / 2 for i in range(3)]
    assert st["k"].tolist()[3:] == pytest.approx(slow, rel=1e-12)
    assert st["d"].tolist()[4:] == pytest.approx(
        [(slow[0] + slow[1]) / 2, (slow[1] + slow[2]) / 2]
    )


# --- edges --------------------------------------------------------------------------------
def test_a_nan_row_does_not_poison_later_values(walk: pd.DataFrame) -> None:
    holed = walk.copy()
    holed.iloc[700, holed.columns.get_loc("close")] = math.nan
    ours = ind.rsi(holed)
    clean = ind.rsi(walk.drop(walk.index[700]))
    assert math.isnan(ours.iloc[700])
    assert ours.drop(walk.index[700]).equals(clean)
    assert (ours.iloc[701:] > 0).all()  # TA-Lib alone answers 0 from the NaN on


def test_talib_alone_would_answer_zero_after_a_nan_which_is_why_rows_are_dropped(
    walk: pd.DataFrame,
) -> None:
    import talib  # noqa: PLC0415 - the raw library, to show what the layer protects from

    close = walk["close"].to_numpy().copy()
    close[700] = math.nan
    assert (talib.RSI(close, 14)[701:] == 0).all()


def test_a_gap_is_bridged_the_rows_on_each_side_are_consecutive_bars(walk: pd.DataFrame) -> None:
    # the fixture lacks 30 candles in 3 gaps; the same rows with a time index without gaps
    # give the same values: nothing is filled in
    regular = walk.set_axis(
        pd.date_range(walk.index[0], periods=len(walk), freq="h", name="open_time")
    )
    assert ind.rsi(walk).to_numpy().tobytes() == ind.rsi(regular).to_numpy().tobytes()
    assert ind.atr(walk).to_numpy().tobytes() == ind.atr(regular).to_numpy().tobytes()


@pytest.mark.parametrize(
    ("call", "have", "need"),
    [
        (ind.rsi, 14, 15),
        (lambda f: ind.ema(f, 200), 150, 200),
        (ind.macd, 33, 34),
        (ind.bollinger, 19, 20),
        (ind.atr, 14, 15),
        (ind.stochastic, 17, 18),
    ],
)
def test_too_few_candles_say_how_many_exist_and_how_many_are_needed(
    walk: pd.DataFrame, call: Callable[[pd.DataFrame], object], have: int, need: int
) -> None:
    call(walk.iloc[:need])  # enough: one value
    with pytest.raises(NotEnoughHistoryError) as e:
        call(walk.iloc[:have])
    assert (e.value.have, e.value.need) == (have, need)


def test_one_candle_more_than_the_lookback_gives_exactly_one_value(
    listing: pd.DataFrame,
) -> None:
    assert ind.rsi(listing.iloc[:15]).notna().sum() == 1
    assert ind.stochastic(listing.iloc[:18])["d"].notna().sum() == 1


def test_constant_prices_have_defined_values_not_talibs_zeros() -> None:
    flat = frame([100.0] * 60)
    assert (ind.rsi(flat).dropna() == 50.0).all()
    st = ind.stochastic(flat).dropna()
    assert np.allclose(st["k"], 50.0, rtol=0, atol=1e-9)
    assert np.allclose(st["d"], 50.0, rtol=0, atol=1e-9)
    assert (ind.bollinger(flat)["percent_b"].dropna() == 0.5).all()
    assert (ind.atr_percent(flat).dropna() == 0.0).all()
    assert (ind.macd(flat)["hist"].dropna() == 0.0).all()


def test_a_halt_after_movement_keeps_rsi_where_the_movement_left_it(walk: pd.DataFrame) -> None:
    # the fixture's first halt is 40 flat candles (high = low); Wilder's averages only decay,
    # so the RSI holds its last value, as on TradingView, and %B sits on the middle band
    flat = walk.index[walk["high"] == walk["low"]]
    halt = walk.loc[flat[20:36]]  # from 20 candles into the halt: a flat Bollinger window
    rsi = ind.rsi(walk).loc[halt.index]
    np.testing.assert_allclose(rsi, rsi.iloc[0], rtol=1e-12)  # decaying alike, to rounding
    assert 0 < rsi.iloc[0] < 100
    assert (ind.bollinger(walk)["percent_b"].loc[halt.index] == 0.5).all()
    stoch = ind.stochastic(walk).loc[halt.index[-5:]]
    assert np.allclose(stoch["k"], 50.0, atol=1e-9)


def test_tiny_prices_give_the_same_rsi_as_large_ones(walk: pd.DataFrame) -> None:
    # TA-Lib treats an average below 1e-14 as zero; a coin at 1e-8 stays well above that
    tiny = walk * 1e-9
    np.testing.assert_allclose(ind.rsi(tiny), ind.rsi(walk), rtol=1e-9)
