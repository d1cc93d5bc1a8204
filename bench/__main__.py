"""``python -m bench [--quick] [--repeats N] [--only ROW_SET]``: run the row sets, print one
table on stdout (progress goes to stderr) and write ``bench/results.md``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.alarms import AlarmPlan, alarm_rows
from bench.budget import WEIGHT, BudgetPlan, budget_rows
from bench.cache_rows import CachePlan, cache_rows
from bench.chart import ChartPlan, chart_rows
from bench.fanout import FanoutPlan, fanout_rows
from bench.overhead import MAX_CALLS, OverheadPlan, overhead_rows
from bench.report import machine, render, write_results
from bench.scale import TASKS as SCALE_TASKS
from bench.scale import ScalePlan, scale_rows
from bench.shared_ip import PROCESSES, SharedPlan, shared_ip_rows
from bench.startup import StartupPlan, startup_rows
from bench.ta import TaPlan, ta_rows
from bench.ws_dispatch import WSPlan, ws_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.report import Row

ROW_SETS = (
    "overhead",
    "budget",
    "shared-ip",
    "cache",
    "fanout",
    "startup",
    "ws",
    "alarms",
    "ta",
    "chart",
    "scale",
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 repeat, smaller counts")
    parser.add_argument("--repeats", type=int, help="repeats per row (default 3, quick 1)")
    parser.add_argument("--only", choices=ROW_SETS, help="one row set only")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results.md"), help="results file"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    plans = _Plans(
        overhead=OverheadPlan(
            repeats=repeats,
            sequential_calls=500 if quick else 2000,
            concurrent_calls=1000 if quick else 5000,
            tasks=50,
        ),
        budget=BudgetPlan(
            repeats=repeats, calls=120 if quick else 300, tasks=50, window_s=2, limit=120
        ),
        # Two processes together send more than one window allows: a client without a
        # shared limiter gets throttled.
        shared=SharedPlan(
            repeats=repeats, calls=45 if quick else 60, tasks=50, window_s=2, limit=120
        ),
        cache=CachePlan(
            repeats=repeats, hits=500 if quick else 2000, misses=200 if quick else 500
        ),
        fanout=FanoutPlan(repeats=repeats, symbols=20, rounds=5, latency_ms=20),
        startup=StartupPlan(repeats=repeats, calls=2000 if quick else 10_000, tasks=50),
        ws=WSPlan(repeats=repeats, frames=100 if quick else 300, symbols=2000),
        # The same density (500 alarms a symbol) at a tenth of the size when quick.
        alarms=AlarmPlan(
            repeats=repeats,
            alarms=100_000 if quick else 1_000_000,
            symbols=200 if quick else 2000,
            ticks=20 if quick else 60,
            trigger=1000 if quick else 10_000,
            firings=50 if quick else 200,
        ),
        ta=TaPlan(repeats=repeats, symbols=200),
        chart=ChartPlan(
            renders_timed=5 if quick else 15,
            answers=5 if quick else 20,
            renders=200 if quick else 1000,
        ),
        scale=ScalePlan(repeats=repeats, calls=500 if quick else 2000),
    )
    if args.only in (None, "overhead") and plans.overhead.total_calls > MAX_CALLS:
        parser.error(
            f"{plans.overhead.total_calls:,} overhead calls would exceed the fake's RAW_REQUESTS"
            f" pool; use fewer repeats (at most {MAX_CALLS:,} calls per run)"
        )
    began = time.perf_counter()
    rows = asyncio.run(_run(args.only, plans))
    table = render(rows)
    sys.stdout.write(table + "\n")
    elapsed = time.perf_counter() - began
    settings = f"{'quick, ' if quick else ''}{repeats} repeat(s); {plans.describe(args.only)}"
    write_results(
        args.out, table, machine(), f"{settings}; took {elapsed:.0f} s", plans.notes(args.only)
    )
    _log(f"wrote {args.out} ({elapsed:.0f} s)")


class _Plans:
    def __init__(  # noqa: PLR0913 - one plan per row set
        self,
        *,
        overhead: OverheadPlan,
        budget: BudgetPlan,
        shared: SharedPlan,
        cache: CachePlan,
        fanout: FanoutPlan,
        startup: StartupPlan,
        ws: WSPlan,
        alarms: AlarmPlan,
        ta: TaPlan,
        chart: ChartPlan,
        scale: ScalePlan,
    ) -> None:
        self.overhead, self.budget, self.shared = overhead, budget, shared
        self.cache, self.fanout, self.startup, self.ws = cache, fanout, startup, ws
        self.alarms, self.ta, self.chart, self.scale = alarms, ta, chart, scale

    def describe(self, only: str | None) -> str:
        o, b, s = self.overhead, self.budget, self.shared
        c, f, u = self.cache, self.fanout, self.startup
        parts = {
            "overhead": f"overhead: {o.sequential_calls} sequential calls, {o.concurrent_calls} "
            f"calls over {o.tasks} tasks",
            "budget": f"budget: {b.calls} calls of weight {WEIGHT} over {b.tasks} tasks, "
            f"limit {b.limit} per {b.window_s} s",
            "shared-ip": f"shared IP: {PROCESSES} processes x {s.calls} calls over {s.tasks} "
            f"tasks, limit {s.limit} per {s.window_s} s",
            "cache": f"cache: {c.hits} hits, {c.misses} misses",
            "fanout": f"fan-out: {f.symbols} symbols, {f.rounds} rounds, "
            f"{f.latency_ms} ms latency",
            "startup": f"start-up: {u.calls} calls over {u.tasks} tasks",
            "ws": f"stream dispatch: {self.ws.frames} frames of {self.ws.symbols} symbols",
            "alarms": f"alarm engine: {self.alarms.alarms:,} alarms over "
            f"{self.alarms.symbols:,} symbols, {self.alarms.ticks} ticks a repeat; "
            f"alarm end to end: {self.alarms.firings} firings",
            "ta": f"ta: {self.ta.symbols} /ta read-outs at once, klines cached",
            "chart": f"chart: {self.chart.renders_timed} renders per size, "
            f"{self.chart.answers} cached answers, {self.chart.renders:,} renders for memory",
            "scale": f"scale: {self.scale.calls:,} limiter bookings and outbox puts per "
            f"measure, one at a time and over {SCALE_TASKS} tasks",
        }
        return "; ".join(text for name, text in parts.items() if only in (None, name))

    def notes(self, only: str | None) -> list[str]:
        b, s = self.budget, self.shared
        notes = {
            "overhead": [
                "Overhead ratio: the client's median CPU per call over the floor's, same setting."
            ],
            "budget": [
                f"Budget ideal = calls * weight / limit * window = {b.calls} * {WEIGHT} / "
                f"{b.limit} * {b.window_s} s = {b.ideal_s:.0f} s; runs start on a window "
                "boundary, so a perfect fixed-window client can finish up to one window early.",
                "Budget share: weight the fake counted in each window the run fully spans, "
                "over the limit; the smallest such share per repeat.",
            ],
            "shared-ip": [
                f"Shared IP: {PROCESSES} processes of one client fire {s.calls} calls each, "
                f"from one start moment; ideal = {PROCESSES} * {s.calls} * {WEIGHT} / "
                f"{s.limit} * {s.window_s} s = {s.ideal_s:.0f} s; share as for budget, "
                "both processes' weight together.",
            ],
            "cache": [
                "Cache: a hit reads an entry stored just before its batch; a miss is the same "
                "call with the key evicted first (lookup, fetch, store). Ratio: hit over miss.",
            ],
            "fanout": [
                "Fan-out: median of the get_prices rounds against one round of the same calls "
                "made one after another.",
            ],
            "ws": [
                "Stream dispatch: CPU of the consumer process per !miniTicker@arr frame "
                "(decode and hand to a no-op callback); ratio ours over plain websockets + json.",
            ],
            "startup": [
                "Start-up: time to first answer counts from spawning the process (Python's "
                "start-up included, alike for all); peak RSS is the process's VmHWM after the "
                "calls.",
            ],
            "alarms": [
                "Alarm engine: one process for every repeat (the million alarms are built "
                "once); tick = median over the repeat's ticks; ratio over one pass of a plain "
                "loop over every alarm at the same prices.",
                "Alarm start-up: the store is written once (import_alarms, not counted); each "
                "repeat is a fresh process timing open + read every live alarm + engine loaded "
                "(alarm_startup.load_engine). Notes give its CPU time and the machine's load "
                "average: on a busy shared machine the wall time exceeds the CPU.",
                "Alarm end to end: one run of python -m bot against the fakes; per firing, from "
                "the fake exchange writing the crossing !miniTicker@arr frame to the fake Bot API "
                "receiving its sendMessage; p50 and p99 over the firings after 5 of warm-up.",
            ],
            "ta": [
                "TA: one process for every repeat; klines held in memory (a warm cache); CPU "
                "per symbol counts every thread; ratio: one read-out at a time over the bare "
                "TA-Lib calls on ready arrays.",
            ],
            "chart": [
                "Chart: render rows are single renders in one process (Min / Median / Max over "
                "the renders); ratio: ours over plain mplfinance on the same candles; answers "
                "are over the bot and the fakes in one process.",
            ],
            "scale": [
                "Scale: in one process, the product's limiter (Redis ledger) and Redis outbox on "
                "a fresh single Redis, a fresh 3-master Redis Cluster and a fresh 3+3 cluster "
                "with replicas (each put WAITs for one replica); all on this machine's loopback, "
                "so network latency is not in the numbers. Ratio: over one Redis, same run.",
            ],
        }
        lines = ["Min / Median / Max are over repeats; each repeat is a fresh client process."]
        for name, texts in notes.items():
            if only in (None, name):
                lines += texts
        return lines


async def _run(only: str | None, plans: _Plans) -> list[Row]:
    steps = (
        ("overhead", lambda: overhead_rows(plans.overhead, _log)),
        ("budget", lambda: budget_rows(plans.budget, _log)),
        ("shared-ip", lambda: shared_ip_rows(plans.shared, _log)),
        ("cache", lambda: cache_rows(plans.cache, _log)),
        ("fanout", lambda: fanout_rows(plans.fanout, _log)),
        ("startup", lambda: startup_rows(plans.startup, _log)),
        ("ws", lambda: ws_rows(plans.ws, _log)),
        ("alarms", lambda: alarm_rows(plans.alarms, _log)),
        ("ta", lambda: ta_rows(plans.ta, _log)),
        ("chart", lambda: chart_rows(plans.chart, _log)),
        ("scale", lambda: scale_rows(plans.scale, _log)),
    )
    rows: list[Row] = []
    for name, step in steps:
        if only in (None, name):
            _log(f"row set: {name}")
            rows += await step()
    return rows


def _log(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
