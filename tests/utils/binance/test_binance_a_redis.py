"""One Redis client per process: a client handed in by the app is the one the limiter and the
cache use, and it stays open when the Binance client closes (its owner closes it). Without one,
the client builds its own from ``REDIS_URL``: a single Redis, or a Redis Cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tests.utils.binance.conftest import EventLog, make_config
from utils.binance import BinanceClient
from utils.config import RedisConfig
from utils.redis_conn import connect

if TYPE_CHECKING:
    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance

_EVERY_MASTER: Final = {"target_nodes": RedisCluster.PRIMARIES}  # KEYS on a cluster: ask all


async def test_an_apps_redis_client_is_used_by_limiter_and_cache_and_left_open(
    fake_binance: FakeBinance, redis_server: RedisServer
) -> None:
    app_redis = aioredis.from_url(redis_server.url, client_name="app")
    # REDIS_URL is set as well: the client must still build no connection of its own.
    settings = RedisConfig(url=redis_server.url, key_prefix="one", _env_file=None)
    try:
        config = make_config(fake_binance, cache_enabled=True)
        async with BinanceClient(config=config, redis=settings, redis_client=app_redis) as c:
            await c.get_symbol_price("BTCUSDT")
            assert (await c.get_symbol_price("BTCUSDT"))["symbol"] == "BTCUSDT"
            assert c.get_metrics()["cache"]["hits"] == 1
            connections = await app_redis.client_list()
        assert await app_redis.keys("one:cache:*")  # the cache wrote through it
        assert await app_redis.keys("one:rl:*")  # and so did the limiter
        assert {conn["name"] for conn in connections} == {"app"}
        assert fake_binance.count("GET /api/v3/ticker/price") == 1
        # Still open after the client closed: not one of its connections was dropped.
        after = await app_redis.client_list()
        assert {conn["id"] for conn in connections} <= {conn["id"] for conn in after}
    finally:
        await app_redis.aclose()


async def test_without_one_the_client_builds_and_closes_its_own(
    fake_binance: FakeBinance, shared_redis: str, event_log: Any
) -> None:
    settings = RedisConfig(url=shared_redis, key_prefix="own", _env_file=None)
    config = make_config(fake_binance, cache_enabled=True)
    async with BinanceClient(config=config, redis=settings) as client:
        log: EventLog = event_log(client)
        await client.get_symbol_price("BTCUSDT")
        assert (await client.get_symbol_price("BTCUSDT"))["symbol"] == "BTCUSDT"
        own = client._redis
        assert own is not None
        assert isinstance(own, RedisCluster) == shared_redis.startswith("redis+cluster://")
    assert client._redis is None  # closed and dropped with the client
    assert log.kinds() == []  # neither the limiter nor the cache found Redis unreachable
    assert fake_binance.count("GET /api/v3/ticker/price") == 1  # the second was a cache hit
    check = connect(shared_redis, max_connections=2)
    try:
        keys = await check.keys(
            "own:*", **_EVERY_MASTER if isinstance(check, RedisCluster) else {}
        )
    finally:
        await check.aclose()
    written = {k.decode().split(":")[1] for k in keys}
    assert written == {"cache", "rl"}  # the cache and the limiter both wrote there
