"""Row set 3, shared IP: two processes of the same client, started together, spend one IP's
budget. The fake runs in this (parent) process, fresh for every run, with the budget rows'
small REQUEST_WEIGHT window, so its ledger gives the combined weight of each window and the
429s and 418s. Ours shares its limiter through a ``redis-server`` this row set starts itself
(on a free port, no persistence, emptied between runs, stopped at the end); the peers run with
their defaults, which share nothing.

Both processes warm up (one call), say ``ready``, and are then handed the same start moment,
the next window boundary, on stdin.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bench.budget import WEIGHT
from bench.overhead import LABELS
from bench.redis_server import REDIS_MISSING, RedisServer, redis_server
from bench.report import Row, limit_rows, mark_missing, times, verdict
from bench.runner import CHILD_TIMEOUT_S, answer, spawn
from tests.fakes.fake_binance import FakeBinance
from utils.binance.binance_constants import DEFAULT_RATE_WINDOWS
from utils.binance.binance_types import Market, PoolKind, RateWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("SharedPlan", "shared_ip_rows")

PROCESSES: Final = 2
SHARE_TARGET: Final = 0.90
CLIENTS: Final = ("floor", "ours", "python-binance", "ccxt")
SETTINGS: Final = {
    "floor": "2 processes, no limiter",
    "ours": "2 processes, limiter shared in Redis, default margin",
    "python-binance": "2 processes, defaults",
    "ccxt": "2 processes, defaults",
}
_READY_S: Final = 60.0  # import and warm-up of a slow client on a busy machine
_LEAD_S: Final = 0.2  # a start closer than this to the next boundary goes to the one after


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedPlan:
    repeats: int
    calls: int  # per process
    tasks: int  # per process
    window_s: int
    limit: int

    @property
    def ideal_s(self) -> float:
        return PROCESSES * self.calls * WEIGHT / self.limit * self.window_s


async def shared_ip_rows(plan: SharedPlan, log: Callable[[str], None]) -> list[Row]:
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CLIENTS}
    missing: dict[str, str] = {}
    async with redis_server() as redis:
        if redis is None:
            missing["ours"] = REDIS_MISSING
        for repeat in range(plan.repeats):
            for client in CLIENTS:
                if client in missing:
                    continue
                log(f"shared IP {repeat + 1}/{plan.repeats}: {client}, {SETTINGS[client]}")
                result = await _one(plan, client, redis)
                if str(result.get("error", "")).startswith("not installed"):
                    missing[client] = result["error"]
                results[client].append(result)
    rows: list[Row] = []
    for client in CLIENTS:
        rows += _rows(plan, client, results[client], missing.get(client))
    return rows


async def _one(plan: SharedPlan, client: str, redis: RedisServer | None) -> dict[str, Any]:
    spot = [
        RateWindow(Market.SPOT, PoolKind.REQUEST_WEIGHT, plan.window_s, plan.limit),
        *(w for w in DEFAULT_RATE_WINDOWS[Market.SPOT] if w.kind is not PoolKind.REQUEST_WEIGHT),
    ]
    args = ["--calls", str(plan.calls), "--tasks", str(plan.tasks)]
    if client == "ours" and redis is not None:
        await redis.flush()
        args += ["--redis-url", redis.url]
    async with FakeBinance(spot_windows=spot) as fake:
        answers = await _together(client, fake.url, args, plan.window_s)
        usage = fake.window_usage(Market.SPOT, plan.window_s)
        counts = {"429": fake.count(status=429), "418": fake.count(status=418)}
    errors = [str(a["error"]) for a in answers if "error" in a]
    if errors:
        return {"error": errors[0]}
    start, end = answers[0]["start"], max(a["end"] for a in answers)
    first, last = int(start // plan.window_s), int(end // plan.window_s)
    shares = [usage.get(i, 0) / plan.limit for i in range(first, last)]
    return {
        "wall_s": end - start,
        "min_share": min(shares) if shares else None,
        "shares": shares,
        "ok": sum(a["ok"] for a in answers),
        **counts,
    }


async def _together(
    client: str, url: str, args: Sequence[str], window_s: int
) -> list[dict[str, Any]]:
    """Start the processes, wait until every one is ready, hand them one start moment."""
    procs = [
        await spawn("bench.run_client", client, "shared", "--url", url, *args, stdin=True)
        for _ in range(PROCESSES)
    ]
    try:
        async with asyncio.timeout(_READY_S):
            ready = [await _ready_line(p) for p in procs]
        now = time.time() + _LEAD_S
        start = math.ceil(now / window_s) * window_s
        for proc in procs:
            await _send(proc, f"{start}\n".encode())
        async with asyncio.timeout(CHILD_TIMEOUT_S):
            finished = [await proc.communicate() for proc in procs]
    except TimeoutError:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return [{"error": "timed out"}]
    answers = []
    for proc, line, (out, err) in zip(procs, ready, finished, strict=True):
        # A child that failed before "ready" printed its JSON answer in place of that line.
        answers.append(answer(proc, out if line == b"ready" else line + b"\n" + out, err))
    return answers


async def _ready_line(proc: asyncio.subprocess.Process) -> bytes:
    assert proc.stdout is not None  # noqa: S101 - spawned with pipes
    return (await proc.stdout.readline()).strip()


async def _send(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None  # noqa: S101 - spawned with stdin=True
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # it already gave up (its answer says why)


def _rows(
    plan: SharedPlan, client: str, results: Sequence[dict[str, Any]], missing: str | None
) -> list[Row]:
    def row(measure: str, fmt: Callable[[float], str]) -> Row:
        return Row(
            section="shared IP",
            client=LABELS[client],
            setting=SETTINGS[client],
            measure=measure,
            fmt=fmt,
        )

    rows = list(limit_rows(row, "min combined share of a full window"))
    wall, share, throttled, banned = rows
    if not mark_missing(rows, missing):
        _fill(plan, results, wall, share, throttled, banned)
    if wall.median is not None:
        wall.ratio = times(wall.median / plan.ideal_s, f"ideal {plan.ideal_s:.0f} s")
    if client == "ours":
        share.target = verdict(
            f"≥ {SHARE_TARGET:.0%}", min(share.values) >= SHARE_TARGET if share.values else None
        )
        for r in (throttled, banned):
            r.target = verdict("0", max(r.values) == 0 if r.values else None)
    return rows


def _fill(
    plan: SharedPlan,
    results: Sequence[dict[str, Any]],
    wall: Row,
    share: Row,
    throttled: Row,
    banned: Row,
) -> None:
    total = PROCESSES * plan.calls
    worst: list[float] | None = None
    for result in results:
        if "error" in result:
            wall.notes.append(str(result["error"]))
            continue
        wall.values.append(result["wall_s"])
        if result["min_share"] is not None:
            share.values.append(result["min_share"])
            if worst is None or result["min_share"] < min(worst):
                worst = result["shares"]
        else:
            share.notes.append("no full window")
        throttled.values.append(result["429"])
        banned.values.append(result["418"])
        if result["ok"] < total:
            wall.notes.append(f"{result['ok']}/{total} ok")
    if worst is not None and min(worst) < SHARE_TARGET:
        share.notes.append(
            "full windows of the worst repeat: " + ", ".join(f"{v:.1%}" for v in worst)
        )
