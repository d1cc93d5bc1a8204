"""Row set 1, overhead: client-process CPU per uncached ticker/price call and requests/s,
sequential and with many concurrent tasks, against the fake in its own process with a weight
limit nobody reaches. Each (client, setting, repeat) runs in a fresh process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.report import Row, mark_missing, times, verdict
from bench.run_client import WARMUP_CALLS
from bench.runner import UNTHROTTLED, fake_process, run_client

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("OverheadPlan", "overhead_rows")

CLIENTS: Final = ("floor", "ours", "python-binance", "ccxt")
LABELS: Final = {
    "floor": "floor: aiohttp + orjson",
    "ours": "ours: BinanceClient",
    "python-binance": "python-binance AsyncClient",
    "ccxt": "ccxt.async_support.binance",
}
TARGET: Final = 1.15  # ours, CPU per call at the concurrent setting, against the floor's
# The fake keeps Binance's RAW_REQUESTS pool (300,000 per 5 min); stay well inside it.
MAX_CALLS: Final = 250_000


@dataclass(frozen=True, slots=True, kw_only=True)
class OverheadPlan:
    repeats: int
    sequential_calls: int
    concurrent_calls: int
    tasks: int

    @property
    def total_calls(self) -> int:
        """Requests the one fake process answers (warm-ups included)."""
        per_run = self.sequential_calls + self.concurrent_calls + 2 * WARMUP_CALLS
        return self.repeats * len(CLIENTS) * per_run


async def overhead_rows(plan: OverheadPlan, log: Callable[[str], None]) -> list[Row]:
    settings = (
        ("sequential", plan.sequential_calls, 1),
        (f"{plan.tasks} tasks", plan.concurrent_calls, plan.tasks),
    )
    results: dict[tuple[str, str], list[dict[str, Any]]] = {
        (c, s): [] for c in CLIENTS for s, _, _ in settings
    }
    missing: dict[str, str] = {}
    async with fake_process(*UNTHROTTLED) as url:
        for repeat in range(plan.repeats):
            for client in CLIENTS:  # interleaved, so that drift in the machine hits all alike
                for setting, calls, tasks in settings:
                    if client in missing:
                        continue
                    log(f"overhead {repeat + 1}/{plan.repeats}: {client}, {setting}")
                    args = ("--calls", str(calls), "--tasks", str(tasks))
                    result = await run_client(client, "overhead", url, *args)
                    if str(result.get("error", "")).startswith("not installed"):
                        missing[client] = result["error"]
                    results[client, setting].append(result)
    rows: list[Row] = []
    for setting, _, _ in settings:
        floor = _cpu_row(setting, "floor", results["floor", setting], missing)
        for client in CLIENTS:
            cpu = (
                floor
                if client == "floor"
                else _cpu_row(setting, client, results[client, setting], missing)
            )
            _ratio(cpu, floor, enforce=client == "ours" and setting != "sequential")
            rows += [cpu, _rate_row(setting, client, results[client, setting], missing)]
    return rows


def _cpu_row(
    setting: str, client: str, results: Sequence[dict[str, Any]], missing: dict[str, str]
) -> Row:
    return _metric_row(
        setting,
        client,
        results,
        missing,
        measure="CPU per call",
        fmt=lambda s: f"{s * 1e6:.0f} µs",
        value=lambda r: r["cpu_s"] / r["calls"],
    )


def _rate_row(
    setting: str, client: str, results: Sequence[dict[str, Any]], missing: dict[str, str]
) -> Row:
    return _metric_row(
        setting,
        client,
        results,
        missing,
        measure="requests/s",
        fmt=lambda v: f"{v:,.0f}",
        value=lambda r: r["calls"] / r["wall_s"],
    )


def _metric_row(
    setting: str,
    client: str,
    results: Sequence[dict[str, Any]],
    missing: dict[str, str],
    *,
    measure: str,
    fmt: Callable[[float], str],
    value: Callable[[dict[str, Any]], float],
) -> Row:
    row = Row(section="overhead", client=LABELS[client], setting=setting, measure=measure, fmt=fmt)
    _fill(row, results, missing.get(client), value)
    return row


def _fill(
    row: Row,
    results: Sequence[dict[str, Any]],
    missing: str | None,
    value: Callable[[dict[str, Any]], float],
) -> None:
    if mark_missing([row], missing):
        return
    for result in results:
        if "error" in result:
            row.notes.append(str(result["error"]))
            continue
        row.values.append(value(result))
        failed = sum(result["failures"].values())
        if failed:
            row.notes.append(f"{failed} failed calls: {result['failures']}")


def _ratio(row: Row, floor: Row, *, enforce: bool) -> None:
    mine, base = row.median, floor.median
    ratio = mine / base if mine is not None and base else None
    if ratio is not None:
        row.ratio = times(ratio, "floor")
    if enforce:
        row.target = verdict(
            f"≤ {times(TARGET, 'floor')} at {row.setting}",
            None if ratio is None else ratio <= TARGET,
        )
