"""Row set 5, fan-out: ours ``get_prices`` for 20 symbols listed on both markets (spot last
price and 24 h change, futures mark and funding) against the same per-symbol calls made one
after another (ticker/price, ticker/24hr, premiumIndex per symbol, through ``client.call``),
with 20 ms of latency injected by the fake (its ``--latency-ms`` flag), response cache off.
Each repeat is a fresh process: one sequential round, then several ``get_prices`` rounds
(their median)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.overhead import LABELS
from bench.report import Row, times
from bench.runner import UNTHROTTLED, fake_process, run_module

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("FanoutPlan", "fanout_rows")

CALLS_PER_SYMBOL: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class FanoutPlan:
    repeats: int
    symbols: int
    rounds: int
    latency_ms: int


async def fanout_rows(plan: FanoutPlan, log: Callable[[str], None]) -> list[Row]:
    flags = (*UNTHROTTLED, "--latency-ms", str(plan.latency_ms))
    args = ("--symbols", str(plan.symbols), "--rounds", str(plan.rounds))
    results: list[dict[str, Any]] = []
    async with fake_process(*flags) as url:
        for repeat in range(plan.repeats):
            log(f"fan-out {repeat + 1}/{plan.repeats}: ours, {plan.symbols} symbols")
            results.append(await run_module("bench.run_ours", "fanout", "--url", url, *args))
    return _rows(plan, results)


def _rows(plan: FanoutPlan, results: Sequence[dict[str, Any]]) -> list[Row]:
    setting = f"{plan.symbols} symbols, {plan.latency_ms} ms latency"

    def row(measure: str) -> Row:
        return Row(
            section="fan-out",
            client=LABELS["ours"],
            setting=setting,
            measure=measure,
            fmt=lambda s: f"{s * 1000:,.0f} ms",
        )

    fanout = row(f"get_prices({plan.symbols} symbols)")
    sequential = row(f"{CALLS_PER_SYMBOL * plan.symbols} calls one after another")
    for result in results:
        if "error" in result:
            fanout.notes.append(str(result["error"]))
            continue
        fanout.values.append(result["fanout_s"])
        sequential.values.append(result["sequential_s"])
        if result["errors"]:
            fanout.notes.append(f"{result['errors']} symbols answered with an error")
    if fanout.median is not None and sequential.median:
        fanout.ratio = times(fanout.median / sequential.median, "one after another")
    fanout.notes.append(f"one round trip = {plan.latency_ms} ms")
    return [fanout, sequential]
