"""Row set 8, alarm engine (``--only alarms``): a million armed alarms over 2,000 symbols in
``utils.alarms.alarm_engine.AlarmEngine``, against a plain loop over every alarm, in one
fresh process (``python -m bench.alarms``, which prints one JSON line).

The alarms: per symbol, 100 conditions each set by 5 chats (30 % above, 30 % below, 20 %
cross, 12 % percent change over 1 minute to 7 days, 8 % 24 h change; a fifth repeating),
levels 1 % to 50 % away from the price. Measured, per repeat:

- **full-market tick**: 2,000 ``on_price`` calls, one per symbol (a ``!miniTicker@arr``
  frame: close and 24 h open), prices within 0.1 % so nothing fires; the median over the
  repeat's ticks, one a second of simulated time (a minute boundary included).
- **plain loop**: one pass over every alarm with the same prices, each checked against its
  symbol's price (previous price for a cross, lowest/highest seen for a change), in compact
  tuples: the least any engine that looks at every alarm does per tick.
- **tick firing N alarms**: the same tick with some symbols up 60 %, chosen so that N alarms
  fire (the plain loop counts the same N).
- **load** and **memory per alarm**: ``load`` of the million ``Alarm`` objects (built
  before), timed once; then a second engine loaded under ``tracemalloc``, whose traced memory
  after the load is the engine's.

``alarm_rows`` then adds the start-up loads from SQLite and Redis (``bench.alarm_startup``)
and the end-to-end latency through the bot process (``bench.alarm_latency``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from bench.alarm_latency import LatencyPlan, latency_rows
from bench.alarm_startup import StartupLoadPlan, startup_load_rows
from bench.report import Row, times, verdict
from bench.runner import run_module

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from utils.alarms.alarm_model import Alarm

__all__ = ("AlarmMarket", "AlarmPlan", "alarm_rows", "main")

T0: Final = 1_700_000_000
CHATS_PER_CONDITION: Final = 5
JUMP: Final = 1.6  # a triggering symbol's move: past every level (they are at most 50 % away)
WINDOWS: Final = (60, 300, 900, 3600, 14_400, 86_400, 604_800)
TICK_TARGET_S: Final = 0.005
MEMORY_TARGET: Final = 200
_OURS, _FLOOR = "ours: AlarmEngine", "floor: plain loop over all alarms"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmPlan:
    repeats: int
    alarms: int
    symbols: int
    ticks: int  # timed full-market ticks per repeat
    trigger: int  # alarms the triggering tick fires
    firings: int = 200  # end to end, through the bot process (bench.alarm_latency)

    def args(self) -> tuple[str, ...]:
        return (
            *("--repeats", str(self.repeats), "--alarms", str(self.alarms)),
            *("--symbols", str(self.symbols), "--ticks", str(self.ticks)),
            *("--trigger", str(self.trigger)),
        )


async def alarm_rows(plan: AlarmPlan, log: Callable[[str], None]) -> list[Row]:
    """The engine's rows, then the start-up loads (``bench.alarm_startup``) and the end to
    end latency (``bench.alarm_latency``)."""
    log(f"alarm engine: {plan.alarms:,} alarms over {plan.symbols:,} symbols, one process")
    rows = _rows(plan, await run_module("bench.alarms", *plan.args()))
    load = StartupLoadPlan(repeats=plan.repeats, alarms=plan.alarms, symbols=plan.symbols)
    rows += await startup_load_rows(load, log)
    rows += await latency_rows(LatencyPlan(firings=plan.firings), log)
    return rows


def _rows(plan: AlarmPlan, result: dict[str, Any]) -> list[Row]:
    setting = f"{plan.alarms:,} alarms, {plan.symbols:,} symbols"

    def row(client: str, measure: str, fmt: Callable[[float], str]) -> Row:
        return Row(section="alarm engine", client=client, setting=setting, measure=measure,
                   fmt=fmt)  # fmt: skip

    def ms(s: float) -> str:
        return f"{s * 1000:,.2f} ms"

    tick = row(_OURS, f"full-market tick ({plan.symbols:,} updates, none fire)", ms)
    plain = row(_FLOOR, "the same tick", ms)
    fired = min(result.get("trigger_fired") or [plan.trigger])
    trigger = row(_OURS, f"tick firing {fired:,} alarms", ms)
    plain_trigger = row(_FLOOR, "the same tick", ms)
    memory = row(_OURS, "memory per alarm (tracemalloc)", lambda b: f"{b:,.0f} B")
    load = row(_OURS, f"load {plan.alarms:,} alarms", lambda s: f"{s:,.2f} s")
    rows = [tick, plain, trigger, plain_trigger, memory, load]
    if "error" in result:
        for r in rows:
            r.notes.append(str(result["error"]))
        return rows
    tick.values, plain.values = result["tick_s"], result["plain_s"]
    trigger.values, plain_trigger.values = result["trigger_s"], result["plain_trigger_s"]
    memory.values, load.values = [result["bytes_per_alarm"]], [result["load_s"]]
    for mine, floor in ((tick, plain), (trigger, plain_trigger)):
        if mine.median is not None and floor.median:
            mine.ratio = times(mine.median / floor.median, "plain loop")
    tick.target = verdict(f"< {TICK_TARGET_S * 1000:.0f} ms", _below(tick, TICK_TARGET_S))
    memory.target = verdict(f"< {MEMORY_TARGET} B", _below(memory, MEMORY_TARGET))
    tick.notes.append(f"slowest tick {max(result['tick_max_s']) * 1000:,.1f} ms")
    memory.notes.append(f"engine's own estimate {result['estimate_per_alarm']:,.0f} B")
    load.notes.append(f"building the Alarm objects took {result['build_s']:,.1f} s (not counted)")
    for note in result["notes"]:
        trigger.notes.append(note)
    return rows


def _below(row: Row, limit: float) -> bool | None:
    return None if row.median is None else row.median < limit


# The child process


class AlarmMarket:
    """Symbols, their base prices and the alarms on them (seeded: the same every run)."""

    def __init__(self, symbols: int, alarms: int, seed: int = 1) -> None:
        from utils.alarms.alarm_model import (  # noqa: PLC0415 - the child's imports
            Alarm,
            AlarmKind,
            AlarmSpec,
            Direction,
        )

        rng = random.Random(seed)  # noqa: S311 - a reproducible market, no secret
        self.symbols = [f"S{i:04d}USDT" for i in range(symbols)]
        self.base = [round(rng.uniform(0.05, 500), 4) for _ in range(symbols)]
        per_symbol = max(1, alarms // symbols // CHATS_PER_CONDITION)
        dirs = (Direction.UP, Direction.DOWN, Direction.BOTH)
        self.alarms: list[Alarm] = []
        #: per alarm: (symbol index, kind code, direction code, a, b) for the plain loop
        self.plain: list[tuple[int, int, int, float, float]] = []
        for si, symbol in enumerate(self.symbols):
            base = self.base[si]
            for j in range(per_symbol):
                r = j / per_symbol
                d = rng.randrange(3)
                repeat = 900 if rng.random() < 0.2 else None  # noqa: PLR2004 - a fifth
                away = rng.uniform(0.01, 0.5)
                if r < 0.3:  # noqa: PLR2004 - the mix in the docstring
                    kind, level, d = AlarmKind.ABOVE, base * (1 + away), 2
                elif r < 0.6:  # noqa: PLR2004
                    kind, level, d = AlarmKind.BELOW, base * (1 - away), 2
                elif r < 0.8:  # noqa: PLR2004
                    kind, level = AlarmKind.CROSS, base * (1 + rng.choice((away, -away)))
                elif r < 0.92:  # noqa: PLR2004
                    kind, level = AlarmKind.CHANGE, float(rng.randint(2, 50))
                else:
                    kind, level = AlarmKind.DAY_CHANGE, float(rng.randint(2, 50))
                value = Decimal(f"{level:.6g}")
                priced = kind in {AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS}
                spec = AlarmSpec(
                    symbol=symbol,
                    kind=kind,
                    direction=dirs[d],
                    level=value if priced else None,
                    percent=None if priced else value,
                    window_s=rng.choice(WINDOWS) if kind == AlarmKind.CHANGE else None,
                    repeat_s=repeat,
                )
                code = list(AlarmKind).index(kind)
                v = float(value)
                a, b = (1 + v / 100, 1 - v / 100) if kind == AlarmKind.CHANGE else (v, v)
                for _ in range(CHATS_PER_CONDITION):
                    n = len(self.alarms) + 1
                    self.alarms.append(Alarm(id=n, chat_id=10_000 + n % 7919, user_id=1,
                                             spec=spec))  # fmt: skip
                    self.plain.append((si, code, d, a, b))

    def prices(self, k: int, high: set[int]) -> list[float]:
        """Tick ``k``'s prices: within 0.1 % of the base, 60 % up for ``high`` symbols."""
        return [
            b * (1 + 0.001 * ((k + i) % 3 - 1)) * (JUMP if i in high else 1)
            for i, b in enumerate(self.base)
        ]


class _Plain:
    """The floor: every alarm checked against its symbol's price, once per tick."""

    def __init__(self, market: AlarmMarket) -> None:
        self.alarms = market.plain
        self.opens = market.base
        self.prev = list(market.base)
        self.lowest, self.highest = list(market.base), list(market.base)
        self.spans: dict[int, tuple[int, int]] = {}  # symbol -> its alarms' range
        for n, (si, *_) in enumerate(self.alarms):
            start, _ = self.spans.get(si, (n, n))
            self.spans[si] = (start, n + 1)

    def tick(self, prices: Sequence[float]) -> int:
        return self._check(self.alarms, prices)

    def count(self, si: int, prices: Sequence[float]) -> int:
        """What one symbol's alarms would fire at these prices."""
        start, stop = self.spans[si]
        return self._check(self.alarms[start:stop], prices)

    def _check(self, alarms: Sequence[tuple[int, int, int, float, float]],
               prices: Sequence[float]) -> int:  # fmt: skip
        fired, prev, lowest, highest, opens = 0, self.prev, self.lowest, self.highest, self.opens
        for si, kind, d, a, b in alarms:
            p = prices[si]
            if kind == 0:
                fired += p >= a
            elif kind == 1:
                fired += p <= a
            elif kind == 2:  # noqa: PLR2004 - the kind codes: AlarmKind's order
                q = prev[si]
                fired += (d != 1 and q < a <= p) or (d != 0 and q > a >= p)
            elif kind == 3:  # noqa: PLR2004
                fired += (d != 1 and p >= lowest[si] * a) or (d != 0 and p <= highest[si] * b)
            else:
                pct = (p - opens[si]) / opens[si] * 100
                fired += (d != 1 and pct >= a) or (d != 0 and -pct >= a)
        return fired

    def advance(self, prices: Sequence[float]) -> None:
        for i, p in enumerate(prices):
            self.prev[i] = p
            self.lowest[i], self.highest[i] = min(self.lowest[i], p), max(self.highest[i], p)


def _feed(
    engine: Any, market: AlarmMarket, prices: Sequence[float], ts: float
) -> tuple[float, int]:
    on_price, symbols, opens = engine.on_price, market.symbols, market.base
    fired = 0
    began = time.perf_counter()
    for i, symbol in enumerate(symbols):
        fired += len(on_price("spot", symbol, prices[i], ts, open_24h=opens[i]))
    return time.perf_counter() - began, fired


def _trigger_set(
    market: AlarmMarket, plain: _Plain, want: int, used: set[int], k: int
) -> tuple[set[int], int]:
    """Unused symbols whose 60 % jump at tick ``k`` fires ``want`` alarms together (as the
    plain loop counts them), and that count."""
    free = [i for i in range(len(market.symbols)) if i not in used]
    counts = {i: n for i in free if (n := plain.count(i, market.prices(k, {i}))) > 0}
    chosen: set[int] = set()
    left = want
    top = max(counts.values(), default=0)
    for i in sorted(counts, key=counts.__getitem__, reverse=True):  # the largest first
        if left <= 3 * top:
            break
        chosen.add(i)
        left -= counts[i]
    reach: dict[int, tuple[int, int]] = {0: (0, -1)}  # then an exact sum: sum -> (before, i)
    for i in counts.keys() - chosen:
        for before in list(reach):
            total = before + counts[i]
            if total <= left and total not in reach:
                reach[total] = (before, i)
        if left in reach:
            break
    total = max(reach)
    while total:
        total, i = reach[total]
        chosen.add(i)
        left -= counts[i]
    return chosen, want - left


class _Run:
    """One bench process: the market, the engine fed tick after tick, the plain loop."""

    def __init__(self, market: AlarmMarket) -> None:
        from utils.alarms.alarm_engine import AlarmEngine  # noqa: PLC0415 - the child's imports

        self.market, self.plain = market, _Plain(market)
        self.k, self.now = 0, float(T0)
        self.high: set[int] = set()
        self.used: set[int] = set()
        self.notes: list[str] = []
        self.engine = AlarmEngine(clock=lambda: self.now)

    def load(self) -> float:
        gc.collect()
        began = time.perf_counter()
        self.engine.load(self.market.alarms)
        took = time.perf_counter() - began
        gc.collect()
        gc.freeze()  # the million Alarm objects are the bench's, not the engine's: not scanned
        return took

    def step(self) -> tuple[float, int]:
        """The next tick (one second later) through the engine: its time and its firings."""
        self.k += 1
        self.now = float(T0 + self.k)
        prices = self.market.prices(self.k, self.high)
        took, fired = _feed(self.engine, self.market, prices, self.now)
        self.plain.advance(prices)
        return took, fired

    def quiet(self, ticks: int) -> list[float]:
        spent = []
        for _ in range(ticks):
            took, fired = self.step()
            spent.append(took)
            if fired:
                self.notes.append(f"{fired} alarms fired in a quiet tick")
        return spent

    def plain_tick(self) -> float:
        prices = self.market.prices(self.k + 1, self.high)
        began = time.perf_counter()
        self.plain.tick(prices)
        return time.perf_counter() - began

    def trigger(self, want: int) -> tuple[float, int]:
        chosen, expected = _trigger_set(self.market, self.plain, want, self.used, self.k + 1)
        self.used |= chosen
        self.high |= chosen
        took, fired = self.step()
        if fired != expected:
            self.notes.append(f"fired {fired}, the plain loop counts {expected}")
        return took, fired


def measure(
    *, symbols: int, alarms: int, repeats: int, ticks: int, trigger: int
) -> dict[str, Any]:
    began = time.perf_counter()
    market = AlarmMarket(symbols, alarms)
    build_s = time.perf_counter() - began
    run = _Run(market)
    load_s = run.load()
    run.quiet(70)  # warm-up: every cross takes its side, the history spans a minute
    out: dict[str, list[float]] = {k: [] for k in ("tick_s", "tick_max_s", "plain_s")}
    out |= {"trigger_s": [], "plain_trigger_s": [], "trigger_fired": []}
    for _ in range(repeats):
        spent = run.quiet(ticks)
        out["tick_s"].append(statistics.median(spent))
        out["tick_max_s"].append(max(spent))
        out["plain_s"].append(run.plain_tick())
        took, fired = run.trigger(trigger)
        out["trigger_s"].append(took)
        out["trigger_fired"].append(fired)
        out["plain_trigger_s"].append(run.plain_tick())
    estimate = run.engine.memory_stats()["bytes_per_alarm"]
    del run.engine
    gc.unfreeze()
    return {
        **out,
        "build_s": build_s,
        "load_s": load_s,
        "bytes_per_alarm": _traced_bytes_per_alarm(market),
        "estimate_per_alarm": estimate,
        "notes": sorted(set(run.notes)),
    }


def _traced_bytes_per_alarm(market: AlarmMarket) -> float:
    from utils.alarms.alarm_engine import AlarmEngine  # noqa: PLC0415 - the child's imports

    gc.collect()
    tracemalloc.start()
    try:
        engine = AlarmEngine()
        engine.load(market.alarms)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] / len(engine)
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alarms", description=__doc__)
    for name, default in (("repeats", 3), ("alarms", 1_000_000), ("symbols", 2000)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--trigger", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = measure(
        symbols=args.symbols,
        alarms=args.alarms,
        repeats=args.repeats,
        ticks=args.ticks,
        trigger=args.trigger,
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
