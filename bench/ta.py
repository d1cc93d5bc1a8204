"""Row set 9, technical analysis (``--only ta``): the ``/ta`` read-out for 200 symbols at once
with their klines cached, in one fresh process (``python -m bench.ta``, one JSON line out).

The klines: per symbol, 1,000 Binance rows (999 closed hourly candles and the forming one) of
a seeded random walk, held in memory by a stand-in for the client that answers ``get_klines``
and the symbol rules from that memory, as a warm cache would: no network, so what is measured
is ours. Per repeat:

- **200 at once**: ``asyncio.gather`` of 200 read-outs as ``handler/ta.py`` makes them
  (``fetch_candles``: rows to the closed-candle frame, gaps checked; ``compute_readout`` in a
  worker thread; ``readout_text``): the wall time until the last answer is worded, and the
  process's CPU time (every thread) per symbol.
- **one at a time**: the same 200 read-outs one after another: CPU per symbol.
- **floor**: the bare TA-Lib calls a read-out needs (RSI, MACD, EMA 20/50/200, BBANDS, ATR,
  STOCH, SMA of volume) on ready float arrays of the same candles: CPU per symbol, the least
  any TA-Lib read-out does. The ratio says what the frame, the checks, the crosses and the
  words cost on top.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from bench.report import Row, times, verdict
from bench.runner import run_module

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("TaPlan", "main", "ta_rows")

CANDLES: Final = 999
HOUR_MS: Final = 3_600_000
#: 200 read-outs at once should be answered within this many seconds on 2 cores.
WALL_TARGET_S: Final = 2.0
_OURS, _FLOOR = "ours: /ta read-out", "floor: bare TA-Lib calls"


class TaPlan:
    def __init__(self, *, repeats: int, symbols: int) -> None:
        self.repeats, self.symbols = repeats, symbols

    def args(self) -> tuple[str, ...]:
        return ("--repeats", str(self.repeats), "--symbols", str(self.symbols))


async def ta_rows(plan: TaPlan, log: Callable[[str], None]) -> list[Row]:
    log(f"ta: {plan.symbols} read-outs at once, klines cached, one process")
    result = await run_module("bench.ta", *plan.args())
    setting = f"{plan.symbols} symbols, {CANDLES} closed 1h candles each"

    def row(client: str, measure: str, fmt: Callable[[float], str]) -> Row:
        return Row(section="ta", client=client, setting=setting, measure=measure, fmt=fmt)

    def ms(s: float) -> str:
        return f"{s * 1000:,.2f} ms"

    wall = row(_OURS, f"{plan.symbols} at once: wall time to the last answer", ms)
    cpu = row(_OURS, f"{plan.symbols} at once: CPU per symbol", ms)
    alone = row(_OURS, "one at a time: CPU per symbol", ms)
    floor = row(_FLOOR, "CPU per symbol", ms)
    rows = [wall, cpu, alone, floor]
    if "error" in result:
        for r in rows:
            r.notes.append(str(result["error"]))
        return rows
    wall.values, cpu.values = result["wall_s"], result["cpu_per_symbol_s"]
    alone.values, floor.values = result["alone_cpu_per_symbol_s"], result["floor_per_symbol_s"]
    if alone.median is not None and floor.median:
        alone.ratio = times(alone.median / floor.median, "floor")
    if wall.median is not None:
        wall.target = verdict(f"< {WALL_TARGET_S:.0f} s", wall.median < WALL_TARGET_S)
    cpu.notes.append("CPU of every thread of the process (time.process_time)")
    return rows


# The child process


def _walk(seed: int, start: float) -> list[list[Any]]:
    """``CANDLES + 1`` Binance kline rows of a random walk, the last one still forming."""
    rng = np.random.default_rng(seed)
    steps = np.exp(rng.normal(0.0, 0.01, CANDLES + 1))
    closes = start * np.cumprod(steps)
    opens = np.concatenate([[start], closes[:-1]])
    wick = np.abs(rng.normal(0.0, 0.004, (2, CANDLES + 1)))
    highs = np.maximum(opens, closes) * (1 + wick[0])
    lows = np.minimum(opens, closes) * (1 - wick[1])
    volumes = rng.lognormal(3.0, 0.5, CANDLES + 1)
    first = 1_704_067_200_000
    return [
        [
            first + i * HOUR_MS,
            *(f"{v:.8f}" for v in (opens[i], highs[i], lows[i], closes[i], volumes[i])),
            first + (i + 1) * HOUR_MS - 1,
            "0",
            100,
            "0",
            "0",
            "0",
        ]
        for i in range(CANDLES + 1)
    ]


class _Info:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol


class _Rules:
    def __init__(self, symbols: Sequence[str]) -> None:
        self._known = {s: _Info(s) for s in symbols}

    def get(self, symbol: str) -> _Info | None:
        return self._known.get(symbol)

    def require(self, symbol: str) -> _Info:
        return self._known[symbol]


class _CachedKlines:
    """What ``fetch_candles`` asks of a ``BinanceClient``, answered from memory."""

    def __init__(self, rows: dict[str, list[list[Any]]]) -> None:
        self._rows, self._rules = rows, _Rules(list(rows))
        self._now_ms = int(rows[next(iter(rows))][-1][0]) + HOUR_MS // 2  # mid forming candle

    async def symbol_rules(self, market: object) -> _Rules:
        return self._rules

    async def get_klines(
        self, symbol: str, interval: str, limit: int, market: object, **_: object
    ) -> list[list[Any]]:
        return self._rows[symbol][-limit:]

    def now_ms(self) -> int:
        return self._now_ms


def measure(symbols: int, repeats: int) -> dict[str, Any]:
    from zoneinfo import ZoneInfo  # noqa: PLC0415 - the child's imports

    import talib  # noqa: PLC0415

    from analysis.candles import fetch_candles  # noqa: PLC0415
    from analysis.readout import compute_readout, readout_text  # noqa: PLC0415

    names = [f"S{i:03d}USDT" for i in range(symbols)]
    rows = {name: _walk(i, 10.0 + i) for i, name in enumerate(names)}
    client: Any = _CachedKlines(rows)
    zone = ZoneInfo("UTC")

    def same(text: str) -> str:
        return text

    async def one(name: str) -> str:
        candles = await fetch_candles(client, name, "1h", limit=CANDLES)
        readout = await asyncio.to_thread(compute_readout, candles)
        return readout_text(readout, same, zone)

    async def at_once() -> list[str]:
        return await asyncio.gather(*(one(n) for n in names))

    async def one_by_one() -> None:
        for name in names:
            candles = await fetch_candles(client, name, "1h", limit=CANDLES)
            readout_text(compute_readout(candles), same, zone)

    arrays = [
        {k: np.array([float(r[i]) for r in rows[n][:-1]]) for i, k in enumerate("ohlcv", 1)}
        for n in names
    ]

    def floor() -> None:
        for a in arrays:
            c = a["c"]
            talib.RSI(c, 14)
            talib.MACD(c, 12, 26, 9)
            for p in (20, 50, 200):
                talib.EMA(c, p)
            talib.BBANDS(c, 20, 2.0, 2.0)
            talib.ATR(a["h"], a["l"], c, 14)
            talib.STOCH(a["h"], a["l"], c, 14, 3, talib.MA_Type.SMA, 3, talib.MA_Type.SMA)
            talib.SMA(a["v"], 20)

    asyncio.run(at_once())  # warm-up: imports, thread pool, first calls
    result: dict[str, list[float]] = {
        k: []
        for k in ("wall_s", "cpu_per_symbol_s", "alone_cpu_per_symbol_s", "floor_per_symbol_s")
    }
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        answers = asyncio.run(at_once())
        result["wall_s"].append(time.perf_counter() - wall0)
        result["cpu_per_symbol_s"].append((time.process_time() - cpu0) / symbols)
        if len(answers) != symbols or not all("RSI(14)" in a for a in answers):
            raise RuntimeError("a read-out is missing")
        cpu0 = time.process_time()
        asyncio.run(one_by_one())
        result["alone_cpu_per_symbol_s"].append((time.process_time() - cpu0) / symbols)
        cpu0 = time.process_time()
        floor()
        result["floor_per_symbol_s"].append((time.process_time() - cpu0) / symbols)
    result["median_wall_s"] = [statistics.median(result["wall_s"])]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ta", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=200)
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(measure(args.symbols, args.repeats)) + "\n")


if __name__ == "__main__":
    main()
