"""Charts below the bot: what is drawn (``build_frame``), the PNG (``render_png``), the cache
key from the clock, the LRU cache, and the render processes (``ChartPool``): a dead worker
fails one chart only, a closed pool refuses, and renders leave no figure behind and do not
grow the worker's memory.

Expected indicator values come from TA-Lib called here directly on the fixture's closes
(``tests/fixtures/make_ohlcv.py``), not from ``analysis.indicators``.
"""

from __future__ import annotations

import io
import os
import signal
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pandas as pd
import pytest
import talib
from PIL import Image

from analysis.candles import Candles
from analysis.chart import (
    ChartCache,
    ChartImage,
    ChartKey,
    ChartSummary,
    build_frame,
    last_closed_open_ms,
)
from analysis.chart_frame import ChartFrame
from analysis.chart_pool import ChartPool, ChartRenderError
from analysis.chart_render import live_figures, pyplot_figures, render_png
from analysis.errors import NotEnoughHistoryError
from utils.binance.binance_a import Market

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
MB: Final = 1024 * 1024


def candles_of(frame: pd.DataFrame, symbol: str = "BTCUSDT") -> Candles:
    return Candles(
        symbol=symbol,
        interval="1h",
        market=Market.SPOT,
        frame=frame,
        live=False,
        next_close=datetime(2030, 1, 1, tzinfo=UTC),
        available=len(frame),
        gaps=(),
    )


def flat(rows: int, price: float = 100.0) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC", name="open_time")
    values = dict.fromkeys(("open", "high", "low", "close"), price)
    return pd.DataFrame({**values, "volume": 0.0}, index=index, dtype="float64")


def decoded(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


def small_frame() -> ChartFrame:
    """A 30-candle chart of 240x160 pixels: cheap to draw a thousand times."""
    rng = np.random.default_rng(1)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 30))
    nan = np.full(30, np.nan)
    return ChartFrame(
        title="TEST · 1h · spot",
        open_ms=np.arange(30, dtype=np.int64) * 3_600_000,
        open=close - 0.5,
        high=close + 1.0,
        low=close - 1.5,
        close=close,
        volume=np.full(30, 5.0),
        ema_fast=close,
        ema_slow=nan,
        bb_upper=close + 2.0,
        bb_middle=close,
        bb_lower=close - 2.0,
        rsi=np.full(30, 50.0),
        width_px=240,
        height_px=160,
    )


# --- what is drawn -------------------------------------------------------------------------
def test_the_last_candles_are_shown_with_indicators_computed_over_the_whole_history(
    walk: pd.DataFrame,
) -> None:
    frame, summary = build_frame(candles_of(walk), 100)
    close = walk["close"].to_numpy()
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)

    assert len(frame) == 100
    np.testing.assert_array_equal(frame.close, close[-100:])
    np.testing.assert_array_equal(frame.open_ms, walk.index.as_unit("ms").asi8[-100:])
    np.testing.assert_allclose(frame.ema_fast, talib.EMA(close, 20)[-100:], rtol=1e-12)
    np.testing.assert_allclose(frame.ema_slow, talib.EMA(close, 50)[-100:], rtol=1e-12)
    np.testing.assert_allclose(frame.bb_upper, upper[-100:], rtol=1e-12)
    np.testing.assert_allclose(frame.bb_middle, middle[-100:], rtol=1e-12)
    np.testing.assert_allclose(frame.bb_lower, lower[-100:], rtol=1e-12)
    np.testing.assert_allclose(frame.rsi, talib.RSI(close, 14)[-100:], rtol=1e-12)
    assert summary.shown == 100
    assert summary.last_close == close[-1]
    assert summary.change_pct == pytest.approx((close[-1] / walk["open"].iloc[-100] - 1) * 100)
    assert summary.last_open == walk.index[-1].to_pydatetime()
    assert summary.closed_at == datetime(
        2024, 3, 3, 12, tzinfo=UTC
    )  # 1,500 hours after the first open


def test_a_listing_day_history_is_drawn_without_the_lines_it_cannot_have(
    listing: pd.DataFrame,
) -> None:
    frame, summary = build_frame(candles_of(listing), 100)
    assert summary.shown == len(listing) == 30
    assert np.isnan(frame.ema_slow).all()  # EMA(50) needs 50 candles
    assert np.isnan(frame.ema_fast[:19]).all()
    assert np.isfinite(frame.ema_fast[19:]).all()
    assert np.isnan(frame.rsi[:14]).all()
    assert np.isfinite(frame.rsi[14:]).all()
    assert decoded(render_png(frame)) == (1200, 800)


def test_fewer_than_twenty_candles_are_not_enough_for_a_chart(listing: pd.DataFrame) -> None:
    with pytest.raises(NotEnoughHistoryError) as caught:
        build_frame(candles_of(listing.iloc[:19]), 100)
    assert (caught.value.have, caught.value.need) == (19, 20)


def test_constant_prices_draw_flat_bands_and_a_neutral_rsi() -> None:
    frame, summary = build_frame(candles_of(flat(80)), 60)
    assert summary.change_pct == 0.0
    np.testing.assert_allclose(frame.bb_upper[-10:], np.full(10, 100.0), rtol=1e-12)
    np.testing.assert_array_equal(frame.rsi[-10:], np.full(10, 50.0))
    assert decoded(render_png(frame)) == (1200, 800)


@pytest.mark.parametrize("size", [(1200, 800), (640, 480), (241, 163)])
def test_the_png_has_exactly_the_size_asked(walk: pd.DataFrame, size: tuple[int, int]) -> None:
    frame, _ = build_frame(candles_of(walk), 200, size=size)
    assert decoded(render_png(frame)) == size


def test_a_frame_needs_one_value_per_candle_in_every_array() -> None:
    good = small_frame()
    with pytest.raises(ValueError, match="one value per candle"):
        ChartFrame(
            title="x",
            open_ms=good.open_ms,
            open=good.open,
            high=good.high,
            low=good.low,
            close=good.close[:-1],
            volume=good.volume,
            ema_fast=good.ema_fast,
            ema_slow=good.ema_slow,
            bb_upper=good.bb_upper,
            bb_middle=good.bb_middle,
            bb_lower=good.bb_lower,
            rsi=good.rsi,
        )


# --- the cache key and the cache -----------------------------------------------------------
def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("interval", "now", "last_closed"),
    [
        ("1h", "2024-01-03 10:30:00", "2024-01-03 09:00:00"),
        ("1h", "2024-01-03 10:00:00", "2024-01-03 09:00:00"),  # 10:00 just opened
        ("1h", "2024-01-03 09:59:59.999", "2024-01-03 08:00:00"),
        ("4h", "2024-01-03 10:30:00", "2024-01-03 04:00:00"),
        ("15m", "2024-01-03 10:31:00", "2024-01-03 10:15:00"),
        ("1d", "2024-01-03 10:30:00", "2024-01-02 00:00:00"),
        ("1w", "2024-01-03 10:30:00", "2023-12-25 00:00:00"),  # weeks open on Monday
        ("1w", "2024-01-01 00:00:00", "2023-12-25 00:00:00"),  # a Monday, just opened
    ],
)
def test_the_last_closed_candle_is_known_from_the_clock(
    interval: str, now: str, last_closed: str
) -> None:
    assert last_closed_open_ms(interval, ms(now)) == ms(last_closed)


def test_a_month_is_left_to_the_candles_to_say() -> None:
    assert last_closed_open_ms("1M", ms("2024-01-03 10:30:00")) is None


def image(n: int, size: int) -> ChartImage:
    key = ChartKey("BTCUSDT", "1h", 100, Market.SPOT, n)
    summary = ChartSummary("BTCUSDT", "1h", Market.SPOT, 100, 100, datetime.now(UTC), 1.0, 0.0)
    return ChartImage(key, b"x" * size, summary)


def test_the_cache_drops_the_least_recently_used_chart_beyond_its_count() -> None:
    cache = ChartCache(max_entries=2)
    first, second, third = image(1, 10), image(2, 10), image(3, 10)
    cache.put(first)
    cache.put(second)
    assert cache.get(first.key) is first  # now the most recent
    cache.put(third)
    assert cache.get(second.key) is None
    assert cache.get(first.key) is first
    assert cache.get(third.key) is third
    assert (len(cache), cache.size_bytes) == (2, 20)


def test_the_cache_drops_charts_beyond_its_bytes_but_keeps_the_newest() -> None:
    cache = ChartCache(max_entries=10, max_bytes=25)
    for n in range(3):
        cache.put(image(n, 10))
    assert [cache.get(image(n, 0).key) is not None for n in range(3)] == [False, True, True]
    cache.put(image(9, 100))  # larger than the bound on its own: kept, alone
    assert (len(cache), cache.size_bytes) == (1, 100)


# --- the render processes ------------------------------------------------------------------
async def test_a_dead_render_process_fails_one_chart_and_the_next_is_drawn() -> None:
    pool = ChartPool(workers=1)
    try:
        assert decoded(await pool.render(small_frame())) == (240, 160)
        os.kill((await pool.probe()).pid, signal.SIGKILL)
        with pytest.raises(ChartRenderError, match="died"):
            await pool.render(small_frame())
        assert decoded(await pool.render(small_frame())) == (240, 160)
    finally:
        await pool.aclose()


async def test_a_closed_pool_refuses_to_draw() -> None:
    pool = ChartPool(workers=1)
    await pool.aclose()
    with pytest.raises(ChartRenderError, match="closed"):
        await pool.render(small_frame())
    assert not pool.started


#: Renders in the memory test. ``bench/chart.py`` runs 1,000 with the same checks; here 250
#: keep the test near 25 s of CPU (a render of even a small chart costs about 90 ms) while a
#: leak of one figure per render (over 300 KB each at this size) would still add 75 MB.
RENDERS: Final = 250


async def test_many_renders_leave_no_figure_and_do_not_grow_the_worker() -> None:
    pool = ChartPool(workers=1)
    frame = small_frame()
    try:
        for _ in range(50):  # fonts, caches and allocator pools settle first
            await pool.render(frame)
        settled = await pool.probe()
        for _ in range(RENDERS):
            await pool.render(frame)
        after = await pool.probe()
    finally:
        await pool.aclose()
    assert after.pid == settled.pid
    assert after.renders == 50 + RENDERS
    assert (after.live_figures, after.pyplot_figures) == (0, 0)
    assert after.peak_rss_bytes - settled.peak_rss_bytes < 16 * MB


def test_figures_do_not_outlive_a_render_in_this_process_either() -> None:
    render_png(small_frame())
    assert (live_figures(), pyplot_figures()) == (0, 0)
