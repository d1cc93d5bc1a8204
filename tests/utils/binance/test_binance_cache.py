"""The response cache: one contract run over the in-memory backend, a single Redis and a Redis
Cluster, identical requests in flight going upstream once, and a Redis outage that requests
never notice beyond one event each way."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Final

import pytest

from tests.utils.binance.conftest import EventLog, redis_url_of
from utils.binance.binance_cache import (
    MemoryCache,
    RedisCache,
    SingleFlight,
    cache_key,
    endpoint_ttl,
    get_or_fetch,
    kline_ttl,
)
from utils.binance.binance_constants import endpoint
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from utils.binance.binance_cache import Cache
    from utils.redis_conn import RedisClient

PREFIX: Final = "test"
BODY: Final = b'{"symbol":"BTCUSDT","price":"65000.01000000"}'
PRICE_KEY: Final = cache_key("GET /api/v3/ticker/price", {"symbol": "BTCUSDT"})
WAIT_S: Final = 5.0  # upper bound on anything a test awaits
DAY_S: Final = 86_400.0  # README: closed candles are cached a day,
TICKER_S: Final = 1.0  # an open one as long as a ticker (~1 s)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclasses.dataclass
class Backend:
    cache: MemoryCache | RedisCache
    clock: Clock
    redis: RedisClient | None = None  # the raw client, to look at what Redis holds


@pytest.fixture(params=["memory", "redis", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else redis_url_of(request)


@pytest.fixture
async def backend(redis_url: str | None) -> AsyncIterator[Backend]:
    clock = Clock()
    if redis_url is None:
        memory = MemoryCache(clock=clock)
        yield Backend(memory, clock)
        await memory.aclose()
        return
    client = connect(redis_url, max_connections=8)
    try:
        yield Backend(
            RedisCache(client, prefix=PREFIX, emit=EventLog(), clock=clock), clock, client
        )
    finally:
        await client.aclose()


class MissGate:
    """A pass-through ``Cache`` that opens ``all_missed`` once ``expected`` lookups missed."""

    def __init__(self, inner: Cache, expected: int) -> None:
        self.inner, self.expected, self.missed = inner, expected, 0
        self.all_missed = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        value = await self.inner.get(key)
        if value is None:
            self.missed += 1
            if self.missed == self.expected:
                self.all_missed.set()
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.inner.set(key, value, ttl_s)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def stats(self) -> dict[str, int]:
        return self.inner.stats()


class BrokenStore(MemoryCache):
    """A backend whose writes fail."""

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        raise RuntimeError("disk full")


class Upstream:
    """A fetch the test releases: counts calls, and notices being cancelled."""

    def __init__(self, body: bytes = BODY, error: Exception | None = None) -> None:
        self.body, self.error, self.calls = body, error, 0
        self.started, self.release, self.cancelled = (asyncio.Event() for _ in range(3))

    async def __call__(self) -> bytes:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return self.body


# --- the contract, on every backend --------------------------------------------------------
async def test_a_stored_body_comes_back_byte_for_byte(backend: Backend) -> None:
    await backend.cache.set(PRICE_KEY, BODY, 1.0)
    assert await backend.cache.get(PRICE_KEY) == BODY


async def test_hits_and_misses_are_counted(backend: Backend) -> None:
    assert await backend.cache.get(PRICE_KEY) is None
    await backend.cache.set(PRICE_KEY, BODY, 1.0)
    await backend.cache.get(PRICE_KEY)
    assert backend.cache.stats() == {"hits": 1, "misses": 1, "errors": 0}


async def test_a_newer_body_replaces_the_older(backend: Backend) -> None:
    await backend.cache.set(PRICE_KEY, b"[1]", 1.0)
    await backend.cache.set(PRICE_KEY, b"[2]", 1.0)
    assert await backend.cache.get(PRICE_KEY) == b"[2]"


async def test_a_zero_ttl_keeps_nothing(backend: Backend) -> None:
    await backend.cache.set(PRICE_KEY, BODY, 0)
    assert await backend.cache.get(PRICE_KEY) is None


async def test_an_entry_lives_exactly_for_its_ttl(backend: Backend) -> None:
    await backend.cache.set(PRICE_KEY, BODY, 1.0)
    if backend.redis is not None:  # Redis keeps its own time: read the expiry it was given
        pttl = await backend.redis.pttl(f"{PREFIX}:cache:{PRICE_KEY}")
        assert 0 < pttl <= 1000
        return
    backend.clock.advance(0.999)
    assert await backend.cache.get(PRICE_KEY) == BODY
    backend.clock.advance(0.001)
    assert await backend.cache.get(PRICE_KEY) is None


async def test_fifty_identical_requests_in_flight_go_upstream_once(backend: Backend) -> None:
    gate, flights, upstream = MissGate(backend.cache, 50), SingleFlight(), Upstream()
    async with asyncio.timeout(WAIT_S):
        tasks = [
            asyncio.create_task(get_or_fetch(gate, flights, PRICE_KEY, 1.0, upstream))
            for _ in range(50)
        ]
        await gate.all_missed.wait()  # every caller has missed and joined the flight
        upstream.release.set()
        results = await asyncio.gather(*tasks)
    assert upstream.calls == 1
    assert results == [(BODY, False)] * 50
    assert len(flights) == 0
    assert await get_or_fetch(gate, flights, PRICE_KEY, 1.0, upstream) == (BODY, True)
    assert upstream.calls == 1


# --- memory backend ------------------------------------------------------------------------
async def test_memory_cache_evicts_the_least_recently_used_entry_beyond_its_bound() -> None:
    cache = MemoryCache(max_entries=3)
    for key in "abc":
        await cache.set(key, key.encode(), 60)
    await cache.get("a")  # "b" is now the least recently used
    await cache.set("d", b"d", 60)
    assert len(cache) == 3
    assert [await cache.get(k) for k in "abcd"] == [b"a", None, b"c", b"d"]


async def test_memory_cache_drops_an_expired_entry_when_it_is_read() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("a", b"a", 1.0)
    clock.advance(1.0)
    assert await cache.get("a") is None
    assert len(cache) == 0


def test_memory_cache_refuses_a_bound_below_one() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)


# --- single flight and get_or_fetch --------------------------------------------------------
async def test_a_failed_fetch_fails_every_waiter_and_the_next_call_tries_again() -> None:
    flights, upstream = SingleFlight(), Upstream(error=ConnectionResetError("reset by peer"))
    async with asyncio.timeout(WAIT_S):
        tasks = [asyncio.create_task(flights.run("k", upstream)) for _ in range(5)]
        await upstream.started.wait()
        upstream.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert upstream.calls == 1
    assert all(result is upstream.error for result in results)
    upstream.error = None
    assert await flights.run("k", upstream) == BODY
    assert upstream.calls == 2


async def test_a_cancelled_waiter_does_not_cancel_the_fetch_for_the_others() -> None:
    flights, upstream = SingleFlight(), Upstream()
    async with asyncio.timeout(WAIT_S):
        tasks = [asyncio.create_task(flights.run("k", upstream)) for _ in range(3)]
        await upstream.started.wait()
        tasks[0].cancel()  # the caller that started the fetch
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        upstream.release.set()
        assert await asyncio.gather(*tasks[1:]) == [BODY, BODY]
    assert upstream.calls == 1
    assert not upstream.cancelled.is_set()


async def test_the_fetch_is_cancelled_when_every_waiter_has_left() -> None:
    flights, upstream = SingleFlight(), Upstream()
    async with asyncio.timeout(WAIT_S):
        tasks = [asyncio.create_task(flights.run("k", upstream)) for _ in range(2)]
        await upstream.started.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.cancelled.wait()
    assert len(flights) == 0


async def test_a_failing_store_still_returns_the_fetched_body() -> None:
    upstream = Upstream()
    upstream.release.set()
    result = await get_or_fetch(BrokenStore(), SingleFlight(), PRICE_KEY, 1.0, upstream)
    assert result == (BODY, False)


async def test_closed_klines_fetched_once_are_served_from_the_cache_for_a_day() -> None:
    clock = Clock()
    cache, now_ms = MemoryCache(clock=clock), 1_700_000_000_000
    rows = [[now_ms - 120_000, "1", "1", "1", "1", "1", now_ms - 60_001]]
    upstream = Upstream(body=str(rows).replace("'", '"').encode())
    upstream.release.set()
    key = cache_key("GET /api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1})
    await get_or_fetch(
        cache, SingleFlight(), key, lambda _body: kline_ttl({}, rows, now_ms=now_ms), upstream
    )
    clock.advance(DAY_S - 1)
    assert await cache.get(key) == upstream.body


# --- pure helpers --------------------------------------------------------------------------
def test_klines_stay_long_only_when_every_candle_has_closed() -> None:
    now = 1_700_000_000_000

    def row(close_ms: int) -> list[object]:
        return [close_ms - 59_999, "1", "2", "0.5", "1.5", "10", close_ms, "15", 3]

    assert kline_ttl({}, [row(now - 60_001), row(now - 1)], now_ms=now) == DAY_S
    assert kline_ttl({}, [row(now - 60_001), row(now + 59_999)], now_ms=now) == TICKER_S
    assert kline_ttl({}, [], now_ms=now) == TICKER_S
    assert kline_ttl({"endTime": now - 1}, [], now_ms=now) == DAY_S
    assert kline_ttl({}, [["garbage"]], now_ms=now) == TICKER_S


def test_signed_endpoints_are_never_cached_whatever_the_table_says() -> None:
    account = dataclasses.replace(endpoint("GET /api/v3/account"), cache_ttl_s=60)
    assert account.signed
    assert endpoint_ttl(account) is None
    assert endpoint_ttl(endpoint("GET /api/v3/ticker/price")) == 1
    assert endpoint_ttl(endpoint("GET /api/v3/exchangeInfo")) == 3600
    assert endpoint_ttl(endpoint("GET /api/v3/klines")) is None  # kline_ttl decides


def test_cache_keys_ignore_parameter_order_and_keep_list_order() -> None:
    price = "GET /api/v3/ticker/price"
    assert cache_key(price, {"symbol": "BTCUSDT", "x": None}) == f"{price}?symbol=BTCUSDT"
    assert cache_key("GET /api/v3/klines", {"symbol": "A", "interval": "1m"}) == cache_key(
        "GET /api/v3/klines", {"interval": "1m", "symbol": "A"}
    )
    pair = cache_key(price, {"symbols": ["BTCUSDT", "ETHUSDT"]})
    assert pair == cache_key(price, {"symbols": ("BTCUSDT", "ETHUSDT")})
    assert pair != cache_key(price, {"symbols": ["ETHUSDT", "BTCUSDT"]})
    assert cache_key(price, {"a": True}) == cache_key(price, {"a": "true"})
    assert cache_key(price, {}) == price
    assert cache_key(price, {}) != cache_key("GET /fapi/v1/ticker/price", {})


def test_long_parameter_lists_make_short_distinct_keys() -> None:
    price = "GET /api/v3/ticker/price"
    many = [f"COIN{i}USDT" for i in range(200)]
    key = cache_key(price, {"symbols": many})
    assert key.startswith(price)
    assert len(key) < len(price) + 40
    assert key == cache_key(price, {"symbols": list(many)})
    assert key != cache_key(price, {"symbols": many[:-1]})
