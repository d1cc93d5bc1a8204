"""Ours only, one scenario, in a fresh process; prints one JSON line on stdout.

``python -m bench.run_ours cache --url URL --backend memory|redis [--redis-url R]
--hits N --misses M`` times ticker/price with the response cache on. Hits: in batches, the
key is evicted and fetched once (untimed, so the entry is fresh for the 1 s TTL), then the
batch reads it back; CPU is ``time.process_time()`` over each batch. Misses: before each
call the key is evicted (untimed); wall and CPU time are taken around the call alone, which
goes cache lookup, fetch from the fake, cache store. The cache's own counters confirm that
every hit was a hit and every miss a miss.

``python -m bench.run_ours fanout --url URL --symbols K --rounds R`` picks the first ``K``
symbols listed on both markets of the fake's exchangeInfo, then times one round of the
per-symbol calls ``get_prices`` replaces, made one after another (ticker/price, ticker/24hr,
premiumIndex per symbol), and ``R`` rounds of ``get_prices(symbols)``; cache off.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any, Final

import orjson

from bench.clients import SYMBOL, ours_client

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence

    from utils.binance.binance_a import BinanceClient

__all__ = ("main",)

_PRICE: Final = "GET /api/v3/ticker/price"
_WARMUP: Final = 50
_BATCH: Final = 200  # hits per fresh entry: read back well within the 1 s TTL


async def _cache(args: argparse.Namespace) -> dict[str, Any]:
    from utils.binance.binance_cache import MemoryCache, cache_key  # noqa: PLC0415
    from utils.config import RedisConfig  # noqa: PLC0415

    key = cache_key(_PRICE, {"symbol": SYMBOL})
    redis_url = args.redis_url if args.backend == "redis" else None
    async with ours_client(args.url, redis_url=redis_url, cache=True) as client:
        if redis_url is not None:
            prefix = RedisConfig(url=redis_url, _env_file=None).key_prefix
            redis = client._redis  # the client's own connection, to evict
            if redis is None:
                return {"error": "the client did not open Redis"}

            async def evict() -> None:
                await redis.delete(f"{prefix}:cache:{key}")

        else:
            cache = client._cache  # MemoryCache has no public eviction
            if not isinstance(cache, MemoryCache):
                return {"error": f"expected the memory cache, got {type(cache).__name__}"}

            async def evict() -> None:
                cache._entries.pop(key, None)

        async def call() -> Any:
            return await client.get_symbol_price(SYMBOL)

        await _hits(client, call, evict, _WARMUP)
        await _misses(client, call, evict, _WARMUP)
        hits = await _hits(client, call, evict, args.hits)
        misses = await _misses(client, call, evict, args.misses)
    return {
        "hit_latency_s": statistics.median(hits["latencies"]),
        "hit_cpu_s": hits["cpu_s"] / args.hits,
        "miss_latency_s": statistics.median(misses["latencies"]),
        "miss_cpu_s": misses["cpu_s"] / args.misses,
        "stray": {"hits that missed": hits["wrong"], "misses that hit": misses["wrong"]},
    }


async def _hits(
    client: BinanceClient,
    call: Callable[[], Awaitable[Any]],
    evict: Callable[[], Awaitable[None]],
    n: int,
) -> dict[str, Any]:
    latencies: list[float] = []
    cpu = 0.0
    wrong = 0
    clock = time.perf_counter
    while len(latencies) < n:
        await evict()
        await call()  # a fresh entry: the batch below reads it back
        size = min(_BATCH, n - len(latencies))
        before = client.get_metrics()["cache"]["misses"]
        started = time.process_time()
        for _ in range(size):
            t = clock()
            await call()
            latencies.append(clock() - t)
        cpu += time.process_time() - started
        wrong += client.get_metrics()["cache"]["misses"] - before
    return {"latencies": latencies, "cpu_s": cpu, "wrong": wrong}


async def _misses(
    client: BinanceClient,
    call: Callable[[], Awaitable[Any]],
    evict: Callable[[], Awaitable[None]],
    n: int,
) -> dict[str, Any]:
    latencies: list[float] = []
    cpu = 0.0
    before = client.get_metrics()["cache"]["hits"]
    for _ in range(n):
        await evict()
        c, t = time.process_time(), time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t)
        cpu += time.process_time() - c
    return {
        "latencies": latencies,
        "cpu_s": cpu,
        "wrong": client.get_metrics()["cache"]["hits"] - before,
    }


async def _fanout(args: argparse.Namespace) -> dict[str, Any]:
    async with ours_client(args.url) as client:
        symbols = await _shared_symbols(client, args.symbols)
        if len(symbols) < args.symbols:
            return {"error": f"the fake lists only {len(symbols)} symbols on both markets"}
        await client.get_prices(symbols)  # loads limits and symbol rules, opens connections
        await _one_by_one(client, symbols[:1])
        started = time.perf_counter()
        await _one_by_one(client, symbols)
        sequential = time.perf_counter() - started
        rounds: list[float] = []
        errors = 0
        for _ in range(args.rounds):
            started = time.perf_counter()
            prices = await client.get_prices(symbols)
            rounds.append(time.perf_counter() - started)
            errors += sum(1 for p in prices.values() if p.error or p.mark_price is None)
    return {
        "symbols": len(symbols),
        "sequential_s": sequential,
        "fanout_s": statistics.median(rounds),
        "errors": errors,
    }


async def _shared_symbols(client: BinanceClient, n: int) -> list[str]:
    """The first ``n`` symbols the fake lists, trading, on both spot and futures."""
    spot, futures = await asyncio.gather(
        client.call("GET /api/v3/exchangeInfo"), client.call("GET /fapi/v1/exchangeInfo")
    )
    on_futures = {s["symbol"] for s in futures["symbols"] if s.get("status") == "TRADING"}
    both = [
        s["symbol"]
        for s in spot["symbols"]
        if s.get("status") == "TRADING" and s["symbol"] in on_futures
    ]
    return both[:n]


async def _one_by_one(client: BinanceClient, symbols: Sequence[str]) -> None:
    for symbol in symbols:
        await client.call("GET /api/v3/ticker/price", symbol=symbol)
        await client.call("GET /api/v3/ticker/24hr", symbol=symbol)
        await client.call("GET /fapi/v1/premiumIndex", symbol=symbol)


_SCENARIOS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]] = {
    "cache": _cache,
    "fanout": _fanout,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(_SCENARIOS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--backend", choices=("memory", "redis"), default="memory")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--misses", type=int, default=500)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    result = asyncio.run(_SCENARIOS[args.scenario](args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
