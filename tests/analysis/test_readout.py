"""The /ta read-out: its values against talipp on the fixture, the crosses it reports, the
summary and footer it words, and the scoring of ``/ta all`` (rules worked by hand)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from talipp.indicators import ATR, BB, EMA, MACD, RSI, Stoch
from talipp.ohlcv import OHLCV

from analysis.candles import Candles, Gap
from analysis.errors import NotEnoughHistoryError
from analysis.overview import Row, overview_text
from analysis.readout import MIN_CANDLES, Readout, compute_readout, readout_text, summary_text
from analysis.scoring import RULES, Verdict, Vote, score
from analysis.signals import Cross, Direction, crossings, last_cross
from utils.binance.binance_a import Market

UTC_ZONE = ZoneInfo("UTC")
NEXT = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def same(text: str) -> str:
    return text


def candles(frame: pd.DataFrame, *, live: bool = False, gaps: tuple[Gap, ...] = ()) -> Candles:
    return Candles("BTCUSDT", "1h", Market.SPOT, frame, live, NEXT, len(frame), gaps)


# --- crosses -------------------------------------------------------------------------------
def test_a_touch_is_no_cross_and_going_through_crosses_on_the_bar_it_gets_through() -> None:
    a = pd.Series([1.0, 2.0, 3.0, 2.0, 1.0])
    assert crossings(a, 2.0).tolist() == [0, 0, 1, 0, -1]
    assert crossings(pd.Series([1.0, 2.0, 1.0]), 2.0).tolist() == [0, 0, 0]


def test_the_last_cross_counts_bars_back_from_the_last_candle() -> None:
    a = pd.Series([1.0, 3.0, 3.0, 3.0, 3.0])
    assert last_cross(a, 2.0) == Cross(Direction.UP, 3)
    assert last_cross(a, 2.0, within=3) is None
    assert last_cross(a, pd.Series([math.nan, 2.0, 4.0, 4.0, 1.0])) == Cross(Direction.UP, 0)


# --- values ----------------------------------------------------------------------------------
def test_the_readout_is_the_last_candles_values_as_talipp_computes_them(
    walk: pd.DataFrame,
) -> None:
    r = compute_readout(candles(walk))
    close = walk["close"].tolist()
    bars = [OHLCV(*row) for row in walk.itertuples(index=False)]
    last_close = close[-1]
    assert r.close == last_close
    assert r.rsi == pytest.approx(RSI(14, close)[-1], rel=1e-9)
    assert r.ema[200] == pytest.approx(EMA(200, close)[-1], rel=1e-9)
    m = MACD(12, 26, 9, close)[-1]
    assert (r.macd, r.macd_signal, r.macd_hist) == pytest.approx(
        (m.macd, m.signal, m.histogram), rel=1e-9
    )
    b = BB(20, 2.0, close)[-1]
    assert r.percent_b == pytest.approx((last_close - b.lb) / (b.ub - b.lb), rel=1e-9)
    assert r.atr_pct == pytest.approx(ATR(14, bars)[-1] / last_close * 100, rel=1e-9)
    assert r.stoch_k == pytest.approx(Stoch(14, 3, bars)[-1].d, rel=1e-9)
    volumes = walk["volume"].tolist()
    assert r.volume_ratio == pytest.approx(volumes[-1] / (sum(volumes[-20:]) / 20), rel=1e-9)
    assert r.bars == len(walk)
    assert r.candle_open == walk.index[-1].to_pydatetime()


def test_emas_without_enough_history_are_absent_not_made_up(walk: pd.DataFrame) -> None:
    r = compute_readout(candles(walk.tail(150)))
    assert r.ema[200] is None
    assert r.ema[50] is not None
    text = readout_text(r, same, UTC_ZONE)
    assert "EMA200" in text
    assert "needs 200 candles" in text
    assert "fewer than 500: early smoothing may still show" in text


def test_fewer_candles_than_macd_needs_is_not_enough_history(listing: pd.DataFrame) -> None:
    with pytest.raises(NotEnoughHistoryError) as e:
        compute_readout(candles(listing))
    assert (e.value.have, e.value.need) == (30, MIN_CANDLES)
    assert MIN_CANDLES == 35  # MACD(12,26,9): lookback 33, one value, one before it


def test_the_crosses_reported_are_those_of_the_last_ten_candles(walk: pd.DataFrame) -> None:
    r = compute_readout(candles(walk))
    # the fixture's MACD crossed its signal up 4 candles before the end (worked from talipp)
    values = MACD(12, 26, 9, walk["close"].tolist())
    hist = [v.histogram for v in values[-6:]]
    assert [h > 0 for h in hist] == [False, True, True, True, True, True]
    assert r.macd_cross == Cross(Direction.UP, 4)


# --- words -----------------------------------------------------------------------------------
def test_the_summary_reads_like_the_issues_example(walk: pd.DataFrame) -> None:
    r = compute_readout(candles(walk))
    shaped = dataclasses.replace(
        r,
        rsi=74.2,
        close=120_000.0,
        macd_cross=Cross(Direction.DOWN, 3),
        ema_crosses=(),
        trend_cross=None,
        percent_b=0.8,
        stoch_k=50.0,
        volume_ratio=1.0,
    )
    assert summary_text(shaped, same) == (
        "RSI 74 overbought · above EMA200 · MACD crossed down 3 bars ago"
    )


def test_the_footer_names_the_candle_the_history_wilder_and_the_next_close(
    walk: pd.DataFrame,
) -> None:
    gaps = (Gap(NEXT, NEXT, 5), Gap(NEXT, NEXT, 1))
    r = compute_readout(candles(walk, gaps=gaps))
    text = readout_text(r, same, ZoneInfo("Europe/Istanbul"))
    assert "Close <b>91,397.10</b> · candle closed 2024-03-03 15:00 Europe/Istanbul" in text
    assert "Candle: the last closed 1h one, opened 2024-03-03 14:00 Europe/Istanbul" in text
    assert "1470 candles of history" in text
    assert "6 candles missing in 2 gaps, bridged" in text
    assert "RSI and ATR are Wilder-smoothed" in text
    assert "next candle closes 2030-01-01 15:00 Europe/Istanbul" in text
    assert "early smoothing" not in text


def test_a_live_readout_says_the_candle_is_still_forming(walk: pd.DataFrame) -> None:
    r = compute_readout(candles(walk, live=True))
    text = readout_text(r, same, UTC_ZONE)
    assert "forming candle, closes 2030-01-01 12:00 UTC" in text
    assert "live: it moves until it closes" in text


# --- scoring ---------------------------------------------------------------------------------
def shaped(r: Readout, **changes: object) -> Readout:
    return dataclasses.replace(r, **changes)  # type: ignore[arg-type]


def test_votes_follow_the_documented_rules(walk: pd.DataFrame) -> None:
    base = compute_readout(candles(walk))
    r = shaped(
        base,
        rsi=25.0,  # below 30: buy
        macd=1.0,
        macd_signal=2.0,  # line below signal: sell
        close=100.0,
        emas=((20, 90.0), (50, 110.0), (200, None)),  # above: buy, below: sell, none: neutral
        percent_b=1.2,  # above 1: sell
        stoch_k=10.0,  # below 20: buy
    )
    result = score(r)
    assert dict(result.votes) == {
        "RSI": Vote.BUY,
        "MACD": Vote.SELL,
        "EMA20": Vote.BUY,
        "EMA50": Vote.SELL,
        "EMA200": Vote.NEUTRAL,
        "%B": Vote.SELL,
        "Stoch": Vote.BUY,
    }
    assert result.total == 0  # 3 buys - 3 sells
    assert result.verdict is Verdict.NEUTRAL


@pytest.mark.parametrize(
    ("total", "verdict"),
    [
        (7, Verdict.STRONG_BUY),
        (4, Verdict.STRONG_BUY),
        (3, Verdict.BUY),
        (2, Verdict.BUY),
        (1, Verdict.NEUTRAL),
        (-1, Verdict.NEUTRAL),
        (-2, Verdict.SELL),
        (-3, Verdict.SELL),
        (-4, Verdict.STRONG_SELL),
    ],
)
def test_the_verdict_thresholds(walk: pd.DataFrame, total: int, verdict: Verdict) -> None:
    from analysis.scoring import verdict as judge  # noqa: PLC0415 - next to its table

    assert judge(total) is verdict


def test_the_overview_has_one_row_per_timeframe_and_says_why_one_is_missing(
    walk: pd.DataFrame,
) -> None:
    r = compute_readout(candles(walk))
    rows = [Row("15m", r), Row("1h", r), Row("4h", None, "only 30 candles"), Row("1d", r)]
    text = overview_text("BTCUSDT", Market.SPOT, rows, same)
    table = text.split("<pre>")[1].split("</pre>")[0]
    lines = table.splitlines()
    assert len(lines) == 5
    assert lines[3].startswith("4h")
    assert "only 30 candles" in lines[3]
    result = score(r)
    shown = f"{result.total:+d}" if result.total else "0"
    assert lines[2].startswith("1h")
    assert lines[2].endswith(f"  {shown} {result.verdict.value}")
    assert "/help ta" in text


def test_the_readme_quotes_the_scoring_rules_as_the_code_has_them() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Technical analysis", 1)[1]
    for rule in RULES:
        assert rule in section, rule


def test_volume_spike_and_band_breaks_are_in_the_summary(walk: pd.DataFrame) -> None:
    r = shaped(
        compute_readout(candles(walk)),
        percent_b=-0.1,
        volume_ratio=2.5,
        stoch_k=90.0,
        macd_cross=None,
        ema_crosses=((50, Cross(Direction.UP, 0)),),
        trend_cross=Cross(Direction.UP, 1),
    )
    words = summary_text(r, same).split(" · ")
    assert "crossed above EMA50 on the last candle" in words
    assert "golden cross (EMA50 over EMA200) 1 bar ago" in words
    assert "below the lower Bollinger band" in words
    assert "Stochastic overbought" in words
    assert "volume 2.5x its average" in words
    assert np.isfinite(r.rsi)
