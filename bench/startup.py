"""Row set 6, start-up and memory: per client, in a fresh process (``bench.run_startup``):
the time to import its modules, the time from spawning the process to the first
ticker/price answer (Python's own start-up, the imports, opening the client and its first
call with whatever that client does first), and the peak RSS of the process after 10,000
more calls over 50 tasks. The fake runs in its own process with a weight limit nobody
reaches; CCXT runs without its rate limiter, as in the overhead rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.overhead import CLIENTS, LABELS
from bench.report import Row, mark_missing, times, verdict
from bench.runner import UNTHROTTLED, fake_process, run_module

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("StartupPlan", "startup_rows")

PEER: Final = "python-binance"  # ours must be at or below it
_MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupPlan:
    repeats: int
    calls: int
    tasks: int


async def startup_rows(plan: StartupPlan, log: Callable[[str], None]) -> list[Row]:
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CLIENTS}
    missing: dict[str, str] = {}
    args = ("--calls", str(plan.calls), "--tasks", str(plan.tasks))
    async with fake_process(*UNTHROTTLED) as url:
        for repeat in range(plan.repeats):
            for client in CLIENTS:
                if client in missing:
                    continue
                log(f"start-up {repeat + 1}/{plan.repeats}: {client}")
                spawned = time.time()
                result = await run_module("bench.run_startup", client, "--url", url, *args)
                if "first_answer_at" in result:
                    result["first_answer_s"] = result["first_answer_at"] - spawned
                if str(result.get("error", "")).startswith("not installed"):
                    missing[client] = result["error"]
                results[client].append(result)
    by_client = {c: _rows(plan, c, results[c], missing.get(c)) for c in CLIENTS}
    for index in range(3):  # import time, time to first answer, peak RSS: against the peer
        for client in CLIENTS:
            if client != PEER:
                judge = client == "ours" and index > 0  # the targets: first answer, peak RSS
                _compare(by_client[client][index], by_client[PEER][index], judge=judge)
    return [row for c in CLIENTS for row in by_client[c]]


def _rows(
    plan: StartupPlan, client: str, results: Sequence[dict[str, Any]], missing: str | None
) -> list[Row]:
    def row(measure: str, fmt: Callable[[float], str]) -> Row:
        return Row(
            section="start-up",
            client=LABELS[client],
            setting=f"fresh process, {plan.calls:,} calls",
            measure=measure,
            fmt=fmt,
        )

    imports = row("import time", lambda s: f"{s * 1000:,.0f} ms")
    first = row("time to first answer", lambda s: f"{s * 1000:,.0f} ms")
    peak = row("peak RSS", lambda b: f"{b / _MIB:,.1f} MiB")
    rows = [imports, first, peak]
    if mark_missing(rows, missing):
        return rows
    for result in results:
        if "error" in result:
            imports.notes.append(str(result["error"]))
            continue
        imports.values.append(result["import_s"])
        first.values.append(result["first_answer_s"])
        peak.values.append(result["peak_rss_bytes"])
        failed = sum(result["failures"].values())
        if failed:
            peak.notes.append(f"{failed} failed calls: {result['failures']}")
    return rows


def _compare(row: Row, peer: Row, *, judge: bool) -> None:
    mine, theirs = row.median, peer.median
    if mine is not None and theirs:
        row.ratio = times(mine / theirs, PEER)
    if judge:
        met = None if mine is None or theirs is None else mine <= theirs
        row.target = verdict(f"≤ {PEER} (medians)", met)
