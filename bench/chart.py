"""Row set 10, charts (``--only chart``): ``/chart``'s render time against plain mplfinance,
the answer time of a cached chart, and a render worker's memory over many renders. Each part
runs in a fresh process (``python -m bench.chart render|memory``, one JSON line out).

The candles are the last 200 and 500 of ``tests/fixtures/ohlcv_walk.csv`` (a seeded random
walk, hourly). Measured:

- **render**: ``analysis.chart_render.render_png`` of the chart ``/chart`` sends (1200x800:
  candles, volume, EMA 20/50, Bollinger(20, 2), RSI(14) panel; indicators computed before,
  as the bot does) against ``mpf.plot(df, type="candle")`` saved to PNG (mplfinance's
  defaults: candles only, 800x575), interleaved, in one process; median over the renders.
  Also ours through the render pool (``ChartPool``, one worker): pickling and the trip to the
  worker process included.
- **answer**: the bot against the fake Bot API and the fake exchange, in one process: the time
  from a ``/chart`` update being queued to the fake receiving the photo, for the first chart
  (klines fetched, drawn, uploaded) and for the same chart asked again from other chats in the
  same candle (sent by ``file_id``: neither drawn nor uploaded); and ``Charts.get`` on a hit.
- **memory**: one render worker draws the 100-candle chart ``renders`` times after 50 warm-up
  renders; its peak RSS (``ru_maxrss``) after the warm-up and at the end, and the figures
  still alive at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.report import Row, times, verdict
from bench.runner import CHILD_TIMEOUT_S, answer, spawn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

__all__ = ("ChartPlan", "chart_rows", "main")

SIZES: Final = (200, 500)
WARMUP_RENDERS: Final = 50
GROWTH_TARGET_MB: Final = 16
_MB: Final = 1024 * 1024
_FIXTURE: Final = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ohlcv_walk.csv"
_OURS: Final = "ours: /chart picture (1200x800, 3 panels)"
_PLAIN: Final = "plain mplfinance: type='candle' defaults"
_SECTION: Final = "chart"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartPlan:
    renders_timed: int  # renders per size and per renderer, interleaved
    answers: int  # cached /chart answers timed
    renders: int  # renders of the memory run

    def args(self) -> tuple[str, ...]:
        return (
            *("--renders-timed", str(self.renders_timed), "--answers", str(self.answers)),
            *("--renders", str(self.renders)),
        )


async def chart_rows(plan: ChartPlan, log: Callable[[str], None]) -> list[Row]:
    log(f"charts: {plan.renders_timed} renders per size, {plan.answers} cached answers")
    timing = await _child("render", plan)
    log(f"charts: memory over {plan.renders:,} renders in one worker")
    memory = await _child("memory", plan, timeout_s=max(CHILD_TIMEOUT_S, plan.renders * 0.6))
    return _render_rows(plan, timing) + _answer_rows(timing) + _memory_rows(plan, memory)


async def _child(mode: str, plan: ChartPlan, *, timeout_s: float = CHILD_TIMEOUT_S) -> Any:
    proc = await spawn("bench.chart", mode, *plan.args())
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"timed out after {timeout_s:.0f} s"}
    return answer(proc, out, err)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def _row(client: str, setting: str, measure: str, fmt: Callable[[float], str]) -> Row:
    return Row(section=_SECTION, client=client, setting=setting, measure=measure, fmt=fmt)


def _render_rows(plan: ChartPlan, result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for n in SIZES:
        ours = _row(_OURS, f"{n} candles", "render to PNG", _ms)
        plain = _row(_PLAIN, f"{n} candles", "render to PNG", _ms)
        rows += [ours, plain]
        if "error" in result:
            ours.notes.append(str(result["error"]))
            continue
        ours.values, plain.values = result[f"ours_{n}"], result[f"plain_{n}"]
        if ours.median is not None and plain.median:
            ours.ratio = times(ours.median / plain.median, "plain")
        ours.notes.append(f"PNG {result[f'ours_bytes_{n}'] / 1024:,.0f} KB")
        plain.notes.append(f"PNG {result[f'plain_bytes_{n}'] / 1024:,.0f} KB")
    pooled = _row(
        "ours through the render pool", f"{SIZES[-1]} candles", "render, IPC included", _ms
    )
    if "error" not in result:
        pooled.values = result["pooled"]
        pooled.notes.append(f"{plan.renders_timed} renders in one worker process")
    return [*rows, pooled]


def _answer_rows(result: dict[str, Any]) -> list[Row]:
    first = _row("ours: bot + fakes", "/chart btc 1h 100", "first answer (draw, upload)", _ms)
    cached = _row("ours: bot + fakes", "same chart, same candle", "cached answer (file_id)", _ms)
    hit = _row("ours: Charts.get", "same chart, same candle", "cache hit", _us)
    rows = [first, cached, hit]
    if "error" in result:
        return rows
    first.values, cached.values, hit.values = result["first"], result["cached"], result["hit"]
    if cached.median is not None and first.median:
        cached.ratio = times(cached.median / first.median, "first")
    cached.notes.append(
        f"renders {result['renders']}, uploads {result['uploads']} for "
        f"{len(result['cached']) + 1} answers"
    )
    return rows


def _memory_rows(plan: ChartPlan, result: dict[str, Any]) -> list[Row]:
    peak = _row(
        "ours: one render worker",
        f"{plan.renders:,} renders of the 100-candle chart",
        "peak RSS at the end",
        lambda b: f"{b / _MB:,.1f} MB",
    )
    if "error" in result:
        peak.notes.append(str(result["error"]))
        return [peak]
    growth = (result["peak_end"] - result["peak_settled"]) / _MB
    peak.values = [result["peak_end"]]
    peak.target = verdict(f"growth < {GROWTH_TARGET_MB} MB", growth < GROWTH_TARGET_MB)
    peak.notes.append(
        f"{result['peak_settled'] / _MB:,.1f} MB after {WARMUP_RENDERS} warm-up renders "
        f"(+{growth:,.1f} MB since); figures alive at the end: {result['live_figures']}, "
        f"held by pyplot: {result['pyplot_figures']}; median render "
        f"{statistics.median(result['render_s']) * 1000:,.0f} ms"
    )
    return [peak]


# --- the child process ---------------------------------------------------------------------
def _walk() -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 - the child's imports

    frame = pd.read_csv(_FIXTURE, index_col="open_time")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, unit="ms", utc=True))
    return frame.astype("float64")


def _candles(frame: pd.DataFrame) -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415 - the child's imports

    from analysis.candles import Candles  # noqa: PLC0415
    from utils.binance.binance_a import Market  # noqa: PLC0415

    return Candles(
        symbol="BTCUSDT",
        interval="1h",
        market=Market.SPOT,
        frame=frame,
        live=False,
        next_close=datetime.now(UTC),
        available=len(frame),
        gaps=(),
    )


async def _render_times(plan: ChartPlan) -> dict[str, Any]:
    import matplotlib as mpl  # noqa: PLC0415 - the child's imports

    mpl.use("Agg")
    import mplfinance as mpf  # type: ignore[import-untyped]  # noqa: PLC0415

    from analysis.chart import build_frame  # noqa: PLC0415
    from analysis.chart_pool import ChartPool  # noqa: PLC0415
    from analysis.chart_render import render_png  # noqa: PLC0415

    walk = _walk()
    out: dict[str, Any] = {}
    for n in SIZES:
        frame, _ = build_frame(_candles(walk), n)
        plain_df = walk.iloc[-n:].rename(columns=str.capitalize)

        def plain(df: pd.DataFrame = plain_df) -> bytes:
            buf = io.BytesIO()
            mpf.plot(df, type="candle", warn_too_much_data=10_000, savefig={"fname": buf})
            return buf.getvalue()

        out[f"ours_bytes_{n}"], out[f"plain_bytes_{n}"] = len(render_png(frame)), len(plain())
        ours_s, plain_s = [], []
        for _ in range(plan.renders_timed):
            began = time.perf_counter()
            render_png(frame)
            ours_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            plain()
            plain_s.append(time.perf_counter() - began)
        out[f"ours_{n}"], out[f"plain_{n}"] = ours_s, plain_s
    pool = ChartPool(workers=1)
    try:
        frame, _ = build_frame(_candles(walk), SIZES[-1])
        await pool.render(frame)  # the worker starts
        pooled = []
        for _ in range(plan.renders_timed):
            began = time.perf_counter()
            await pool.render(frame)
            pooled.append(time.perf_counter() - began)
        out["pooled"] = pooled
    finally:
        await pool.aclose()
    out.update(await _answer_times(plan))
    return out


async def _answer_times(plan: ChartPlan) -> dict[str, Any]:
    from tests.bot.conftest import FAST_FLOOD, TOKEN, bot_settings, running  # noqa: PLC0415
    from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance  # noqa: PLC0415
    from tests.fakes.fake_telegram import FakeTelegram  # noqa: PLC0415

    async with (
        FakeTelegram(TOKEN, **FAST_FLOOD) as telegram,
        FakeBinance(api_keys={TEST_API_KEY: TEST_API_SECRET}) as binance,
    ):
        with tempfile.TemporaryDirectory() as tmp:
            settings = bot_settings(telegram, binance, Path(tmp), throttle_burst=1000)
            async with running(settings) as app:

                async def ask(chat_id: int, text: str) -> float:
                    began = time.monotonic()  # the fake stamps what it receives so
                    telegram.inject_message(chat_id, text)
                    (photo,) = await telegram.wait_for_sent(
                        lambda m: m.chat_id == chat_id and m.method == "sendPhoto",
                        timeout=60,
                    )
                    return photo.t - began

                await ask(20_000, "/chart eth 1h 100")  # starts the render processes
                first = await ask(20_001, "/chart btc 1h 100")
                cached = [await ask(20_002 + i, "/chart btc 1h 100") for i in range(plan.answers)]
                hit = []
                for _ in range(plan.answers):
                    began = time.perf_counter()
                    await app.charts.get(app.binance, "BTCUSDT", "1h", 100)
                    hit.append(time.perf_counter() - began)
                renders, uploads = app.charts.renders, telegram.photos.uploads
    return {
        "first": [first],
        "cached": cached,
        "hit": hit,
        "renders": renders - 1,  # the warm-up chart is not this chart
        "uploads": uploads - 1,
    }


async def _memory(plan: ChartPlan) -> dict[str, Any]:
    from analysis.chart import build_frame  # noqa: PLC0415 - the child's imports
    from analysis.chart_pool import ChartPool  # noqa: PLC0415

    frame, _ = build_frame(_candles(_walk()), 100)
    pool = ChartPool(workers=1)
    render_s: list[float] = []
    try:
        for _ in range(WARMUP_RENDERS):
            await pool.render(frame)
        settled = await pool.probe()
        for _ in range(plan.renders):
            began = time.perf_counter()
            await pool.render(frame)
            render_s.append(time.perf_counter() - began)
        end = await pool.probe()
    finally:
        await pool.aclose()
    return {
        "peak_settled": settled.peak_rss_bytes,
        "peak_end": end.peak_rss_bytes,
        "live_figures": end.live_figures,
        "pyplot_figures": end.pyplot_figures,
        "render_s": render_s,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bench.chart render|memory --renders-timed N --answers N --renders N``."""
    parser = argparse.ArgumentParser(prog="python -m bench.chart")
    parser.add_argument("mode", choices=("render", "memory"))
    parser.add_argument("--renders-timed", type=int, default=15)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--renders", type=int, default=1000)
    args = parser.parse_args(argv)
    plan = ChartPlan(renders_timed=args.renders_timed, answers=args.answers, renders=args.renders)
    work = _render_times if args.mode == "render" else _memory
    result = asyncio.run(work(plan))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
