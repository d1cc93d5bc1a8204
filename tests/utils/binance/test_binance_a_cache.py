"""The client's cache over HTTP: public answers are shared (through Redis, or a Redis Cluster,
between clients), identical concurrent calls go upstream once, signed answers never come from
the cache, and a Redis outage costs nothing but the cache."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tests.utils.binance.conftest import EventLog, make_config, no_redis
from utils.binance import BinanceClient
from utils.config import RedisConfig

if TYPE_CHECKING:
    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance

PRICE = "GET /api/v3/ticker/price"


def cached_config(fake: FakeBinance) -> Any:
    return make_config(fake, cache_enabled=True)


async def test_two_clients_sharing_redis_share_cache_entries(
    fake_binance: FakeBinance, shared_redis: str
) -> None:
    redis = RedisConfig(url=shared_redis, _env_file=None)
    async with (
        BinanceClient(config=cached_config(fake_binance), redis=redis) as first,
        BinanceClient(config=cached_config(fake_binance), redis=redis) as second,
    ):
        a = await first.get_symbol_price("BTCUSDT")
        b = await second.get_symbol_price("BTCUSDT")
        info_a = await first.get_exchange_info()
        info_b = await second.get_exchange_info()
    assert a == b
    assert info_a["symbols"] == info_b["symbols"]
    assert fake_binance.count(PRICE) == 1
    assert second.get_metrics()["http"]["endpoints"][PRICE]["cache_hits"] == 1


async def test_50_identical_concurrent_requests_make_one_upstream_call(
    fake_binance: FakeBinance,
) -> None:
    fake_binance.latency_s = 0.05  # all 50 are in flight together
    async with BinanceClient(config=cached_config(fake_binance), redis=no_redis()) as client:
        await client.call("GET /api/v3/ping")
        answers = await asyncio.gather(*(client.get_order_book("ETHUSDT") for _ in range(50)))
    assert all(a == answers[0] for a in answers)
    assert fake_binance.count("GET /api/v3/depth") == 1


async def test_signed_answers_are_never_cached(fake_binance: FakeBinance) -> None:
    async with BinanceClient(config=cached_config(fake_binance), redis=no_redis()) as client:
        await client.get_account()
        await client.get_account()
    assert fake_binance.count("GET /api/v3/account") == 2


async def test_calls_survive_redis_going_away_and_the_cache_returns_with_it(
    fake_binance: FakeBinance, redis_server: RedisServer, event_log: Any
) -> None:
    config = make_config(fake_binance, cache_enabled=True, redis_retry_s=0.3)
    async with BinanceClient(
        config=config, redis=RedisConfig(url=redis_server.url, _env_file=None)
    ) as client:
        log: EventLog = event_log(client)
        await client.get_symbol_price("BTCUSDT")
        await redis_server.stop()
        for _ in range(3):  # Redis is gone: every call goes upstream, none fails
            assert (await client.get_symbol_price("SOLUSDT"))["symbol"] == "SOLUSDT"
        assert log.kinds().count("cache.down") == 1
        assert fake_binance.count(PRICE) == 4
        await redis_server.start()
        await asyncio.sleep(0.3)  # the one deadline: BINANCE_REDIS_RETRY_S
        await client.get_symbol_price("XRPUSDT")
        await client.get_symbol_price("XRPUSDT")
    assert log.kinds().count("cache.up") == 1
    assert fake_binance.count(PRICE) == 5  # the second XRPUSDT call was a cache hit again
