"""A separate OS process running a real client against the fake, sharing the limiter through
Redis: ``python -m tests.utils.binance.limiter_worker URL REDIS_URL TASKS UNTIL MARGIN [EGRESS]``
runs TASKS users calling until the epoch UNTIL, as ``BINANCE_EGRESS_ID=EGRESS`` (unset: the
default id). Prints "ready" once it has learned the limits, then one JSON line: calls done,
errors by class. With UNTIL ``-`` it waits after "ready" for a line on stdin that gives it, so
that several workers start spending together however long each took to start.
``start_worker``, ``go`` and ``result_of`` are the test's side."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from tests.utils.binance.conftest import API_KEY, SECRET
from tests.utils.binance.workload import saturate
from utils.binance import BinanceClient, BinanceError
from utils.config import BinanceConfig, RedisConfig

ROOT = Path(__file__).resolve().parents[3]


async def start_worker(
    url: str,
    redis_url: str,
    *,
    tasks: int,
    until: float | None,
    margin: float,
    egress: str | None = None,
) -> asyncio.subprocess.Process:
    """Start a worker and wait until it has learned the limits (and shared them): from then on
    it spends until ``until``, or with None, once ``go`` has told it until when."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.utils.binance.limiter_worker",
        *(url, redis_url, str(tasks), "-" if until is None else str(until), str(margin)),
        *(() if egress is None else (egress,)),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    ready = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert ready == b"ready\n", ready
    return process


async def early_in_a_window() -> None:
    """Sleep until 0.1 s into the next second (the tests' 1 s windows). A burst of a hundred
    fresh calls booked in a window's last tenths of a second may reach a loaded fake only in
    the next one, which then holds more than the limiter booked there: a 429 no limiter can
    foresee. Workers told to ``go`` early in a window do not make one."""
    await asyncio.sleep(math.floor(time.time()) + 1.1 - time.time())


def go(processes: list[asyncio.subprocess.Process], until: float) -> None:
    """Let workers started with ``until=None`` spend until the epoch ``until``."""
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{until}\n".encode())


async def result_of(process: asyncio.subprocess.Process) -> dict[str, Any]:
    """The worker's result line, once it has exited cleanly."""
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()[-2000:]
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return result


async def main(
    url: str, redis_url: str, tasks: int, until: float | None, margin: float, egress: str | None
) -> None:
    config = BinanceConfig(
        api_key=API_KEY,
        secret_key=SECRET,
        base_url=url,
        futures_base_url=url,
        rate_limit_margin=margin,
        rate_limit_guard_ms=20,
        request_timeout=10,
        **({} if egress is None else {"egress_id": egress}),
        _env_file=None,
    )
    redis = RedisConfig(url=redis_url, _env_file=None)
    try:
        async with BinanceClient(config=config, redis=redis) as client:
            await client.call("GET /api/v3/ping")  # learns the limits, shares them in Redis
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            if until is None:
                line = await asyncio.to_thread(sys.stdin.readline)
                until = float(line)
            done = await saturate(client, tasks=tasks, until=until)
        result = {"done": done, "error": None}
    except BinanceError as e:
        result = {"done": 0, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    url, redis_url, tasks, until, margin = sys.argv[1:6]
    egress = sys.argv[6] if len(sys.argv) > 6 else None
    deadline = None if until == "-" else float(until)
    asyncio.run(main(url, redis_url, int(tasks), deadline, float(margin), egress))
