"""Alarm rows, start-up (``--only alarms``): how long the bot's alarm engine takes to start
with a million alarms in its store, SQLite and Redis, each in a fresh process.

The store is written once per run (``python -m bench.alarm_startup write``): the million
alarms of ``bench.alarms.AlarmMarket`` (2,000 symbols, the engine rows' mix), one in a
hundred a repeat cooling down after a firing (they take the engine's general path), put in
with the store's bulk ``import_alarms``; SQLite in a file of a temporary directory, Redis in
``bench.redis_server``'s throw-away server. The two stores are written at once (two
processes; SQLite's work is mostly its own thread, Redis's the server's).

Each repeat then times, in a fresh process per store (``python -m bench.alarm_startup
load``), what the bot's leader does when it starts: open the store, read every live alarm
(``armed_rows``) and load the engine (``alarm_startup.load_engine``), until the engine holds
them all. Python's own start-up and imports are not counted. The notes give the load's CPU
time and the machine's load average when it ran: the machine is shared, and wall time on a
busy one is longer than the CPU spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.redis_server import REDIS_MISSING, redis_server
from bench.report import Row, mark_missing, verdict
from bench.runner import answer, spawn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from utils.alarms.alarm_store_types import AlarmStore

__all__ = ("StartupLoadPlan", "main", "startup_load_rows")

LOAD_TARGET_S: Final = 10.0
COOLING_EVERY: Final = 100  # one alarm in this many is a repeat cooling down after a firing
_IMPORT_CHUNK: Final = 50_000  # alarms per import_alarms call (one transaction in SQLite)
_WRITE_TIMEOUT_S: Final = 900.0  # writing a million alarms on a busy machine takes minutes
_LOAD_TIMEOUT_S: Final = 180.0
_OURS: Final = "ours: load_engine"
_STORES: Final = ("SQLite", "Redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class StartupLoadPlan:
    repeats: int
    alarms: int
    symbols: int


async def startup_load_rows(plan: StartupLoadPlan, log: Callable[[str], None]) -> list[Row]:
    setting = f"{plan.alarms:,} alarms, {plan.symbols:,} symbols"
    rows = {
        store: Row(section="alarm start-up", client=_OURS, setting=setting,
                   measure=f"start-up load from {store}", fmt=lambda s: f"{s:,.2f} s")
        for store in _STORES
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-alarms-") as directory:
        targets = {"SQLite": str(Path(directory) / "alarms.sqlite3")}
        async with redis_server() as server:
            if server is None:
                mark_missing([rows["Redis"]], REDIS_MISSING)
            else:
                targets["Redis"] = server.url
            log(f"alarm start-up: writing {plan.alarms:,} alarms into {', '.join(targets)}")
            count = ("--alarms", str(plan.alarms), "--symbols", str(plan.symbols))
            written = await asyncio.gather(
                *(_child("write", store, target, *count) for store, target in targets.items())
            )
            for (store, target), wrote in zip(targets.items(), written, strict=True):
                if "error" in wrote:
                    rows[store].notes.append(f"writing the store failed: {wrote['error']}")
                    continue
                rows[store].notes.append(f"written in {wrote['write_s']:,.0f} s (not counted)")
                results = []
                for _ in range(plan.repeats):
                    log(f"alarm start-up: loading from {store}")
                    results.append(await _child("load", store, target))
                _record(rows[store], results, plan.alarms)
    for row in rows.values():
        met = None if row.median is None else row.median < LOAD_TARGET_S
        row.target = verdict(f"< {LOAD_TARGET_S:.0f} s", met)
    return list(rows.values())


def _record(row: Row, results: list[dict[str, Any]], alarms: int) -> None:
    """The repeats' load times, and one note for their CPU and the machine's load."""
    cpu, load = [], []
    for result in results:
        if "error" in result:
            row.notes.append(str(result["error"]))
            continue
        row.values.append(result["load_s"])
        cpu.append(result["cpu_s"])
        load.append(result["loadavg"])
        if result["held"] != alarms:
            row.notes.append(f"the engine holds {result['held']:,} of {alarms:,}")
    if cpu:
        machine = f"machine load average {_span(load, '{:.1f}')}"
        row.notes.append(f"CPU {_span(cpu, '{:.1f}')} s, {machine}")


def _span(values: list[float], fmt: str) -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}–{high}"  # noqa: RUF001 - an en dash, on purpose


async def _child(command: str, store: str, target: str, *args: str) -> dict[str, Any]:
    timeout = _WRITE_TIMEOUT_S if command == "write" else _LOAD_TIMEOUT_S
    proc = await spawn("bench.alarm_startup", command, store, target, *args)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"{command} timed out after {timeout:.0f} s"}
    return answer(proc, out, err)


# The child process


def _store(kind: str, target: str) -> AlarmStore:
    from utils.alarms.alarm_store import (  # noqa: PLC0415 - the child's imports
        RedisAlarmStore,
        SqliteAlarmStore,
    )

    return SqliteAlarmStore(target) if kind == "SQLite" else RedisAlarmStore.from_url(target)


async def _write(kind: str, target: str, alarms: int, symbols: int) -> dict[str, Any]:
    import dataclasses  # noqa: PLC0415 - the child's imports

    from bench.alarms import AlarmMarket  # noqa: PLC0415
    from utils.alarms.alarm_model import AlarmState  # noqa: PLC0415

    market = AlarmMarket(symbols, alarms)
    now = time.time()
    mix = [
        dataclasses.replace(
            a, state=AlarmState.FIRED, seq=1, fired_at=now, rearm_at=now + 86_400.0
        )
        if a.id % COOLING_EVERY == 0 and a.spec.repeat_s is not None
        else a
        for a in market.alarms
    ]
    del market
    store = _store(kind, target)
    began = time.perf_counter()
    await store.open()
    try:
        for start in range(0, len(mix), _IMPORT_CHUNK):
            await store.import_alarms(mix[start : start + _IMPORT_CHUNK])
    finally:
        await store.close()
    return {"write_s": time.perf_counter() - began, "alarms": len(mix)}


async def _load(kind: str, target: str) -> dict[str, Any]:
    from utils.alarms.alarm_engine import AlarmEngine  # noqa: PLC0415 - the child's imports
    from utils.alarms.alarm_startup import load_engine  # noqa: PLC0415

    store = _store(kind, target)
    engine = AlarmEngine()
    began, cpu = time.perf_counter(), time.process_time()
    await store.open()
    try:
        loaded = await load_engine(store, engine, since={})
        took, cpu_s = time.perf_counter() - began, time.process_time() - cpu
    finally:
        await store.close()
    return {
        "load_s": took,
        "cpu_s": cpu_s,
        "held": len(engine),
        "loaded": loaded.held,
        "loadavg": os.getloadavg()[0],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alarm_startup", description=__doc__)
    parser.add_argument("command", choices=("write", "load"))
    parser.add_argument("store", choices=_STORES)
    parser.add_argument("target", help="the SQLite file or the Redis URL")
    parser.add_argument("--alarms", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.command == "write":
        result = asyncio.run(_write(args.store, args.target, args.alarms, args.symbols))
    else:
        result = asyncio.run(_load(args.store, args.target))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
