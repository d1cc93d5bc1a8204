"""Row set ``scale``: the shared state on one Redis against a Redis Cluster, in the same run.

Three backends, each fresh: a single ``redis-server``; a 3-master Redis Cluster; the same
with one replica per master, where every outbox put waits for a replica (``WAIT``). On each:

- limiter booking: the weight limiter's Redis ledger booking one call (one Lua script) and
  settling it, one after another (latency per booking) and from 50 tasks (bookings a second);
- outbox put: a job stored by the outbox (and, with replicas, acknowledged by one), one after
  another (latency) and from 50 tasks (puts a second).

The clients are the product's own (``WeightLimiter`` with a Redis ledger, ``RedisOutbox``),
built with ``utils.redis_conn.connect`` from the URL the bot would be given.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.redis_server import REDIS_MISSING, redis_binary, redis_server
from bench.report import Row, mark_missing, times
from bot.outbox_redis import RedisOutbox
from bot.outbox_types import Job
from tests.redis_cluster import LocalCluster
from utils.binance.binance_constants import endpoint
from utils.binance.binance_ratelimit import LimiterConfig, WeightLimiter
from utils.binance.binance_types import Market, PoolKind, RateWindow
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ("ScalePlan", "scale_rows")

BACKENDS: Final = ("single", "cluster", "replicas")
SETTINGS: Final = {
    "single": "one Redis",
    "cluster": "Redis Cluster, 3 masters",
    "replicas": "Redis Cluster, 3 masters + 3 replicas (puts WAIT for one)",
}
TASKS: Final = 50
_SECTION: Final = "Scale"
_ENDPOINT: Final = "GET /api/v3/ticker/price"
# A budget no run can exhaust: the rows time the booking, not waiting for a window.
_HUGE: Final = 10**12


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalePlan:
    repeats: int
    calls: int  # per measure: sequential calls, and again spread over TASKS tasks


async def scale_rows(plan: ScalePlan, log: Callable[[str], None]) -> list[Row]:
    results: dict[str, list[dict[str, float]]] = {b: [] for b in BACKENDS}
    missing: str | None = None if redis_binary() is not None else REDIS_MISSING
    if missing is None:
        for backend in BACKENDS:
            for repeat in range(plan.repeats):
                log(f"scale {repeat + 1}/{plan.repeats}: {SETTINGS[backend]}")
                async with _backend(backend) as url:
                    results[backend].append(await _measure(plan, url))
    return _rows(results, missing)


@contextlib.asynccontextmanager
async def _backend(name: str) -> AsyncIterator[str]:
    if name == "single":
        async with redis_server() as server:
            assert server is not None  # noqa: S101 - checked by the caller
            yield server.url
        return
    binary = redis_binary()
    assert binary is not None  # noqa: S101 - checked by the caller
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as directory:
        cluster = LocalCluster(binary, Path(directory), replicas=1 if name == "replicas" else 0)
        await asyncio.to_thread(cluster.start)
        try:
            yield cluster.url
        finally:
            await asyncio.to_thread(cluster.stop)


async def _measure(plan: ScalePlan, url: str) -> dict[str, float]:
    client = connect(url, max_connections=TASKS + 8)
    try:
        events: list[str] = []
        limiter = WeightLimiter(
            LimiterConfig(threshold_events=False),
            emit=lambda event: events.append(str(event)),
            redis=client,
            key_prefix="bench",
            windows={Market.SPOT: [RateWindow(Market.SPOT, PoolKind.REQUEST_WEIGHT, 60, _HUGE)]},
        )
        call = endpoint(_ENDPOINT)
        params: dict[str, Any] = {"symbol": "BTCUSDT"}

        async def book() -> None:
            ticket = await limiter.acquire(call, params)
            if ticket.local:
                raise RuntimeError(f"the limiter booked in process: {events}")
            await limiter.settle(ticket, None, succeeded=True)

        outbox = RedisOutbox(client, prefix="bench:", capacity=10 * plan.calls * (TASKS + 1))
        await outbox.open()
        counter = iter(range(10**9))

        async def put() -> None:
            n = next(counter)
            if await outbox.put(Job(id=f"j{n}", chat_id=n % 997, text="x")) is None:
                raise RuntimeError("the outbox refused a new job")

        try:
            out: dict[str, float] = {}
            await _sequential(book, 50)  # warm-up: scripts loaded, connections open
            await _sequential(put, 50)
            out["book_us"] = await _sequential(book, plan.calls)
            out["book_rate"] = await _concurrent(book, plan.calls)
            out["put_us"] = await _sequential(put, plan.calls)
            out["put_rate"] = await _concurrent(put, plan.calls)
            return out
        finally:
            limiter.close()
            await outbox.close()
    finally:
        await client.aclose()


async def _sequential(step: Callable[[], Awaitable[None]], calls: int) -> float:
    """The median latency of one step, in µs."""
    spent = []
    for _ in range(calls):
        began = time.perf_counter()
        await step()
        spent.append(time.perf_counter() - began)
    return statistics.median(spent) * 1e6


async def _concurrent(step: Callable[[], Awaitable[None]], calls: int) -> float:
    """Steps a second, ``calls`` steps from ``TASKS`` tasks."""
    per_task = max(1, calls // TASKS)

    async def worker() -> None:
        for _ in range(per_task):
            await step()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return per_task * TASKS / (time.perf_counter() - began)


def _rows(results: dict[str, list[dict[str, float]]], missing: str | None) -> list[Row]:
    measures = (
        ("book_us", "limiter booking, µs each (one at a time)", "{:.0f}".format),
        ("book_rate", f"limiter bookings/s ({TASKS} tasks)", "{:,.0f}".format),
        ("put_us", "outbox put, µs each (one at a time)", "{:.0f}".format),
        ("put_rate", f"outbox puts/s ({TASKS} tasks)", "{:,.0f}".format),
    )
    rows: list[Row] = []
    for backend in BACKENDS:
        for key, measure, fmt in measures:
            row = Row(
                section=_SECTION,
                client="ours",
                setting=SETTINGS[backend],
                measure=measure,
                fmt=fmt,
            )
            if mark_missing([row], missing):
                rows.append(row)
                continue
            row.values = [run[key] for run in results[backend]]
            single = [run[key] for run in results["single"]]
            if backend != "single" and row.values and single:
                ratio = statistics.median(row.values) / statistics.median(single)
                row.ratio = times(ratio, "one Redis")
            rows.append(row)
    return rows
