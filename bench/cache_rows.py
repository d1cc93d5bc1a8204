"""Row set 4, cache: ours with its response cache on, in memory and in Redis, each in a fresh
process per repeat: median latency and CPU per call of a cache hit against a miss of the
same cache (the key evicted before each call, so the call looks up, fetches from the fake
and stores). The fake runs in its own process without latency; the Redis is a
``redis-server`` this row set starts itself and stops (with it, ours also books its limiter
there, as it does whenever ``REDIS_URL`` is set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.overhead import LABELS
from bench.redis_server import REDIS_MISSING, RedisServer, redis_server
from bench.report import Row, mark_missing, times
from bench.runner import UNTHROTTLED, fake_process, run_module

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("CachePlan", "cache_rows")

BACKENDS: Final = ("memory", "redis")
SETTINGS: Final = {"memory": "memory cache", "redis": "Redis cache (and limiter)"}
_ONE_DECIMAL_BELOW_S: Final = 1e-4  # under 100 µs, a tenth of a µs still says something


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePlan:
    repeats: int
    hits: int
    misses: int


async def cache_rows(plan: CachePlan, log: Callable[[str], None]) -> list[Row]:
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    missing: dict[str, str] = {}
    async with fake_process(*UNTHROTTLED) as url, redis_server() as redis:
        if redis is None:
            missing["redis"] = REDIS_MISSING
        for repeat in range(plan.repeats):
            for backend in BACKENDS:
                if backend in missing:
                    continue
                log(f"cache {repeat + 1}/{plan.repeats}: {SETTINGS[backend]}")
                results[backend].append(await _one(plan, backend, url, redis))
    rows: list[Row] = []
    for backend in BACKENDS:
        rows += _rows(backend, results[backend], missing.get(backend))
    return rows


async def _one(
    plan: CachePlan, backend: str, url: str, redis: RedisServer | None
) -> dict[str, Any]:
    args = ["--url", url, "--backend", backend]
    args += ["--hits", str(plan.hits), "--misses", str(plan.misses)]
    if backend == "redis" and redis is not None:
        await redis.flush()
        args += ["--redis-url", redis.url]
    return await run_module("bench.run_ours", "cache", *args)


def _rows(backend: str, results: Sequence[dict[str, Any]], missing: str | None) -> list[Row]:
    def row(measure: str, fmt: Callable[[float], str]) -> Row:
        return Row(
            section="cache",
            client=LABELS["ours"],
            setting=SETTINGS[backend],
            measure=measure,
            fmt=fmt,
        )

    hit_latency = row("hit: median latency", _micros)
    miss_latency = row("miss: median latency", _micros)
    hit_cpu = row("hit: CPU per call", _micros)
    miss_cpu = row("miss: CPU per call", _micros)
    rows = [hit_latency, miss_latency, hit_cpu, miss_cpu]
    if mark_missing(rows, missing):
        return rows
    for result in results:
        if "error" in result:
            hit_latency.notes.append(str(result["error"]))
            continue
        for r, name in (
            (hit_latency, "hit_latency_s"),
            (miss_latency, "miss_latency_s"),
            (hit_cpu, "hit_cpu_s"),
            (miss_cpu, "miss_cpu_s"),
        ):
            r.values.append(result[name])
        stray = {kind: n for kind, n in result["stray"].items() if n}
        if stray:
            hit_latency.notes.append(", ".join(f"{n} {kind}" for kind, n in stray.items()))
    for hit, miss in ((hit_latency, miss_latency), (hit_cpu, miss_cpu)):
        if hit.median is not None and miss.median:
            hit.ratio = times(hit.median / miss.median, "miss")
    return rows


def _micros(seconds: float) -> str:
    return (
        f"{seconds * 1e6:,.1f} µs"
        if seconds < _ONE_DECIMAL_BELOW_S
        else f"{seconds * 1e6:,.0f} µs"
    )
