"""Fixtures for the Binance client: a fake exchange on 127.0.0.1 and real clients talking to
it over HTTP, configured with short windows and timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.fakes.fake_binance import FakeBinance
from utils.binance import BinanceClient, BinanceEvent
from utils.binance.binance_types import Market, PoolKind, RateWindow
from utils.config import BinanceConfig, RedisConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster

API_KEY: Final = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET: Final = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def windows(market: Market, *, interval_s: int = 60, limit: int = 6000) -> list[RateWindow]:
    """A market's pools with the weight window scaled down for fast tests."""
    return [
        RateWindow(market, PoolKind.REQUEST_WEIGHT, interval_s, limit),
        RateWindow(market, PoolKind.ORDERS, 10, 50, per_account=True),
    ]


def make_config(fake: FakeBinance, **overrides: Any) -> BinanceConfig:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "secret_key": SECRET,
        "base_url": fake.url,
        "futures_base_url": fake.url,
        "request_timeout": 2.0,
        "retry_base_delay_s": 0.01,
        "retry_max_delay_s": 0.05,
        "breaker_open_s": 0.5,
        "rate_limit_guard_ms": 20,
        "cache_enabled": False,  # these tests count what reaches the fake; cache tests opt in
    }
    values.update(overrides)
    return BinanceConfig(**values, _env_file=None)


def no_redis() -> RedisConfig:
    return RedisConfig(url=None, _env_file=None)


def redis_url_of(request: pytest.FixtureRequest) -> str:
    """The Redis ``request.param`` names: "redis" (a fresh single server) or "cluster" (the
    worker's 3-master Redis Cluster, emptied; its URL is ``redis+cluster://...``)."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(params=["redis", "cluster"])
def shared_redis(request: pytest.FixtureRequest) -> str:
    """The URL of a single Redis, then of a Redis Cluster: a test runs on both."""
    return redis_url_of(request)


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(api_keys={API_KEY: SECRET}) as fake:
        yield fake


@pytest.fixture
async def client(fake_binance: FakeBinance) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as c:
        yield c


class EventLog:
    """Collects a client's events."""

    def __init__(self) -> None:
        self.events: list[BinanceEvent] = []

    def __call__(self, event: BinanceEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def event_log() -> Callable[[BinanceClient], EventLog]:
    def attach(c: BinanceClient) -> EventLog:
        log = EventLog()
        c.events.subscribe(log)
        return log

    return attach
