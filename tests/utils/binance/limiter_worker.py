"""A separate OS process running a real client against the fake, sharing the limiter through
Redis: ``python -m tests.utils.binance.limiter_worker URL REDIS_URL TASKS UNTIL MARGIN`` runs
TASKS users calling until the epoch UNTIL. Prints one JSON line: calls done, errors by class."""

from __future__ import annotations

import asyncio
import sys

import orjson

from tests.utils.binance.conftest import API_KEY, SECRET
from tests.utils.binance.workload import saturate
from utils.binance import BinanceClient, BinanceError
from utils.config import BinanceConfig, RedisConfig


async def main(url: str, redis_url: str, tasks: int, until: float, margin: float) -> None:
    config = BinanceConfig(
        api_key=API_KEY,
        secret_key=SECRET,
        base_url=url,
        futures_base_url=url,
        rate_limit_margin=margin,
        rate_limit_guard_ms=20,
        request_timeout=10,
        _env_file=None,
    )
    redis = RedisConfig(url=redis_url, _env_file=None)
    try:
        async with BinanceClient(config=config, redis=redis) as client:
            await client.call("GET /api/v3/ping")  # learns the limits, shares them in Redis
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            done = await saturate(client, tasks=tasks, until=until)
        result = {"done": done, "error": None}
    except BinanceError as e:
        result = {"done": 0, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    url, redis_url, tasks, until, margin = sys.argv[1:6]
    asyncio.run(main(url, redis_url, int(tasks), float(until), float(margin)))
