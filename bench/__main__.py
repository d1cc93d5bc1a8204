"""``python -m bench [--quick] [--repeats N] [--only overhead|budget]``: run the row sets,
print one table on stdout (progress goes to stderr) and write ``bench/results.md``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.budget import WEIGHT, BudgetPlan, budget_rows
from bench.overhead import MAX_CALLS, OverheadPlan, overhead_rows
from bench.report import machine, render, write_results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.report import Row


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 repeat, smaller counts")
    parser.add_argument("--repeats", type=int, help="repeats per row (default 3, quick 1)")
    parser.add_argument("--only", choices=("overhead", "budget"), help="one row set only")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results.md"), help="results file"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    overhead = OverheadPlan(
        repeats=repeats,
        sequential_calls=500 if args.quick else 2000,
        concurrent_calls=1000 if args.quick else 5000,
        tasks=50,
    )
    if args.only != "budget" and overhead.total_calls > MAX_CALLS:
        parser.error(
            f"{overhead.total_calls:,} overhead calls would exceed the fake's RAW_REQUESTS pool;"
            f" use fewer repeats (at most {MAX_CALLS:,} calls per run)"
        )
    budget = BudgetPlan(
        repeats=repeats, calls=120 if args.quick else 300, tasks=50, window_s=2, limit=120
    )
    began = time.perf_counter()
    rows = asyncio.run(_run(args.only, overhead, budget))
    table = render(rows)
    sys.stdout.write(table + "\n")
    elapsed = time.perf_counter() - began
    settings = (
        f"{'quick, ' if args.quick else ''}{repeats} repeat(s); overhead: "
        f"{overhead.sequential_calls} sequential calls, {overhead.concurrent_calls} calls over "
        f"{overhead.tasks} tasks; budget: {budget.calls} calls of weight {WEIGHT} over "
        f"{budget.tasks} tasks, limit {budget.limit} per {budget.window_s} s; "
        f"took {elapsed:.0f} s"
    )
    notes = [
        "Min / Median / Max are over repeats; each repeat is a fresh client process.",
        "Overhead ratio: the client's median CPU per call over the floor's, same setting.",
        f"Budget ideal = calls * weight / limit * window = {budget.calls} * {WEIGHT} / "
        f"{budget.limit} * {budget.window_s} s = {budget.ideal_s:.0f} s; runs start on a "
        "window boundary, so a perfect fixed-window client can finish up to one window early.",
        "Budget share: weight the fake counted in each window the run fully spans, over the "
        "limit; the smallest such share per repeat.",
    ]
    write_results(args.out, table, machine(), settings, notes)
    _log(f"wrote {args.out} ({elapsed:.0f} s)")


async def _run(only: str | None, overhead: OverheadPlan, budget: BudgetPlan) -> list[Row]:
    rows: list[Row] = []
    if only in (None, "overhead"):
        rows += await overhead_rows(overhead, _log)
    if only in (None, "budget"):
        rows += await budget_rows(budget, _log)
    return rows


def _log(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
