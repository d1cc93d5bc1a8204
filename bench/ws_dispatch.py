"""Row set 7, stream dispatch: ``!miniTicker@arr`` frames of 2,000 symbols pushed by the fake
stream server (in this process) to one consumer process at a time: ours
(``ws_all_mini_tickers``) and a plain ``websockets`` + ``json`` loop, the floor. Measures CPU
per frame in the consumer and frames/s; ratio ours over the floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.report import Row
from bench.run_ws import END_SYMBOL, STREAM
from bench.runner import answer, spawn
from tests.fakes.fake_ws import FakeBinanceWS
from tests.fakes.fake_ws_wire import mini_ticker_array
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("WSPlan", "ws_rows")

_LABELS = {"plain": "floor: websockets + json", "ours": "ours: BinanceClient"}


@dataclass(frozen=True, slots=True, kw_only=True)
class WSPlan:
    repeats: int
    frames: int
    symbols: int


async def ws_rows(plan: WSPlan, log: Callable[[str], None]) -> list[Row]:
    prices = {f"S{i:04d}USDT": f"{100 + i}.{i % 100:02d}" for i in range(plan.symbols)}
    frame = mini_ticker_array(prices)
    last = mini_ticker_array({END_SYMBOL: "1", **dict(list(prices.items())[1:])})
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in _LABELS}
    async with FakeBinanceWS(Market.SPOT, ping_interval_s=0, max_messages_per_s=1000) as fake:
        for repeat in range(plan.repeats):
            for kind in _LABELS:
                log(f"stream dispatch {repeat + 1}/{plan.repeats}: {kind}")
                proc = await spawn("bench.run_ws", kind, "--url", fake.url)
                await fake.wait_until(
                    lambda: any(STREAM in c.streams for c in fake.open_connections),
                    timeout_s=30,
                )
                for _ in range(plan.frames - 1):
                    await fake.push(STREAM, frame)
                await fake.push(STREAM, last)
                out, err = await proc.communicate()
                results[kind].append(answer(proc, out, err))
                await fake.wait_until(lambda: not fake.open_connections, timeout_s=30)
    return _rows(plan, results)


def _rows(plan: WSPlan, results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    setting = f"{plan.frames} frames of {plan.symbols} symbols"
    rows: list[Row] = []
    cpu: dict[str, Row] = {}
    for kind, label in _LABELS.items():
        per_frame = Row(
            section="stream dispatch",
            client=label,
            setting=setting,
            measure="CPU per frame",
            fmt=lambda s: f"{s * 1e6:,.0f} µs",
        )
        rate = Row(
            section="stream dispatch",
            client=label,
            setting=setting,
            measure="frames/s",
            fmt=lambda v: f"{v:,.0f}",
        )
        for result in results[kind]:
            if "error" in result:
                per_frame.notes.append(str(result["error"]))
                continue
            per_frame.values.append(result["cpu_s"] / plan.frames)
            rate.values.append(plan.frames / result["wall_s"])
            if result["callbacks"] < plan.frames:
                per_frame.notes.append(f"{plan.frames - result['callbacks']} frames conflated")
        cpu[kind] = per_frame
        rows += [per_frame, rate]
    _ratio(cpu["ours"], cpu["plain"])
    return rows


def _ratio(mine: Row, floor: Row) -> None:
    if mine.median is not None and floor.median:
        mine.ratio = f"{mine.median / floor.median:.2f}x floor"
