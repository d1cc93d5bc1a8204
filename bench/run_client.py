"""One client, one scenario, in a fresh process; prints one JSON line on stdout.

``python -m bench.run_client CLIENT overhead --url URL --calls N --tasks T``
measures client-process CPU (``time.process_time``) and wall time over ``N`` calls spread
over ``T`` tasks, after a warm-up that opens the connections (and, for ours, loads the
limits from exchangeInfo).

``python -m bench.run_client CLIENT budget --url URL --calls N --tasks T --window-s W``
warms up, waits for the next clock-aligned window of ``W`` seconds, then fires the calls and
reports the start and end moments; the parent reads the weight used per window from the fake.

``python -m bench.run_client CLIENT shared --url URL --calls N --tasks T [--redis-url R]``
warms up, prints ``ready`` and waits for the parent to write a start moment (epoch seconds)
on stdin, so that two processes fire together; then as ``budget``.

A client that fails to import answers ``{"error": "not installed: ..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from bench.clients import CLIENTS, HttpStatusError, open_client

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence

__all__ = ("WARMUP_CALLS", "fire", "main")

WARMUP_CALLS = 100


async def fire(call: Callable[[], Awaitable[Any]], calls: int, tasks: int) -> Counter[str]:
    """``calls`` calls over ``tasks`` tasks; returns failures by kind (none counted as ok)."""
    failures: Counter[str] = Counter()

    async def worker(n: int) -> None:
        for _ in range(n):
            try:
                await call()
            except Exception as e:  # noqa: BLE001 - a benchmark counts failures, never stops
                failures[_kind(e)] += 1

    share, extra = divmod(calls, tasks)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(tasks)))
    return failures


async def _overhead(args: argparse.Namespace) -> dict[str, Any]:
    async with open_client(args.client, args.url, rate_limit=False) as call:
        warm = await fire(call, WARMUP_CALLS, min(args.tasks, WARMUP_CALLS))
        if warm:
            return {"error": f"warm-up failed: {dict(warm)}"}
        cpu, wall = time.process_time(), time.perf_counter()
        failures = await fire(call, args.calls, args.tasks)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"calls": args.calls, "cpu_s": cpu, "wall_s": wall, "failures": dict(failures)}


async def _budget(args: argparse.Namespace) -> dict[str, Any]:
    async with open_client(args.client, args.url, margin=args.margin) as call:
        warm = await fire(call, 1, 1)
        if warm:
            return {"error": f"warm-up failed: {dict(warm)}"}
        start = (math.floor(time.time() / args.window_s) + 1) * args.window_s
        await asyncio.sleep(start - time.time())
        failures = await fire(call, args.calls, args.tasks)
        end = time.time()
    ok = args.calls - sum(failures.values())
    return {"start": start, "end": end, "ok": ok, "failures": dict(failures)}


async def _shared(args: argparse.Namespace) -> dict[str, Any]:
    async with open_client(args.client, args.url, redis_url=args.redis_url) as call:
        warm = await fire(call, 1, 1)
        sys.stdout.write("ready\n" if not warm else "warm-up failed\n")
        sys.stdout.flush()
        if warm:
            return {"error": f"warm-up failed: {dict(warm)}"}
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = float(line)
        await asyncio.sleep(start - time.time())
        failures = await fire(call, args.calls, args.tasks)
        end = time.time()
    ok = args.calls - sum(failures.values())
    return {"start": start, "end": end, "ok": ok, "failures": dict(failures)}


def _kind(error: Exception) -> str:
    if isinstance(error, HttpStatusError):
        return str(error)
    status = getattr(error, "status_code", None) or getattr(error, "http_status", None)
    return f"{type(error).__name__} {status}" if status else type(error).__name__


_SCENARIOS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]] = {
    "overhead": _overhead,
    "budget": _budget,
    "shared": _shared,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("scenario", choices=sorted(_SCENARIOS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--window-s", type=int, default=2)
    parser.add_argument("--margin", type=float, default=None, help="ours: rate_limit_margin")
    parser.add_argument("--redis-url", default=None, help="ours: share the limiter there")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_SCENARIOS[args.scenario](args))
    except ImportError as e:
        result = {"error": f"not installed: {e.name or e}"}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
