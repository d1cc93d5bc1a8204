"""The Redis cache backend on its own: prefixes keep caches apart, clients of one Redis (or
Redis Cluster) share entries, a cluster spreads the entries over its masters, and an outage or
an unreadable entry costs a miss, never a failed request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from tests.utils.binance.conftest import EventLog
from tests.utils.binance.test_binance_cache import BODY, PREFIX, PRICE_KEY, WAIT_S, Clock
from utils.binance.binance_cache import RedisCache, cache_key
from utils.redis_conn import connect

if TYPE_CHECKING:
    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster


async def test_caches_with_different_prefixes_do_not_see_each_others_entries(
    shared_redis: str,
) -> None:
    client = connect(shared_redis, max_connections=8)
    try:
        ours = RedisCache(client, prefix="bot-a", emit=EventLog())
        theirs = RedisCache(client, prefix="bot-b", emit=EventLog())
        await ours.set(PRICE_KEY, BODY, 60)
        assert await theirs.get(PRICE_KEY) is None
        assert await client.get(f"bot-a:cache:{PRICE_KEY}") == BODY
    finally:
        await client.aclose()


async def test_two_clients_on_one_redis_and_prefix_share_entries(shared_redis: str) -> None:
    first = connect(shared_redis, max_connections=8)
    second = connect(shared_redis, max_connections=8)
    try:
        writer = RedisCache(first, prefix=PREFIX, emit=EventLog())
        reader = RedisCache(second, prefix=PREFIX, emit=EventLog())
        await writer.set(PRICE_KEY, BODY, 60)
        assert await reader.get(PRICE_KEY) == BODY
    finally:
        await first.aclose()
        await second.aclose()


async def test_on_a_cluster_the_entries_spread_over_every_master(
    redis_cluster: LocalCluster,
) -> None:
    # No script and no two-key command: an entry needs no hash tag, so the busiest keys the
    # bot has are not all served by one master.
    client = connect(redis_cluster.url, max_connections=8)
    try:
        cache = RedisCache(client, prefix=PREFIX, emit=EventLog())
        for n in range(30):
            key = cache_key("GET /api/v3/ticker/price", {"symbol": f"COIN{n}USDT"})
            await cache.set(key, BODY, 60)
            assert await cache.get(key) == BODY
    finally:
        await client.aclose()

    def sizes() -> list[int]:
        counts = []
        for node in redis_cluster.masters():
            with node.client() as master:
                counts.append(int(master.dbsize()))
        return counts

    per_master = await asyncio.to_thread(sizes)
    assert len(per_master) == 3
    assert sum(per_master) == 30
    assert min(per_master) > 0, per_master


async def test_a_redis_outage_bypasses_the_cache_with_one_event_and_heals_by_itself(
    redis_server: RedisServer,
) -> None:
    clock, log = Clock(), EventLog()
    client = Redis.from_url(redis_server.url)
    cache = RedisCache(client, prefix=PREFIX, emit=log, retry_after_s=5.0, clock=clock)
    try:
        await cache.set(PRICE_KEY, BODY, 60)
        await redis_server.stop()
        assert await asyncio.gather(*(cache.get(PRICE_KEY) for _ in range(10))) == [None] * 10
        await cache.set(PRICE_KEY, BODY, 60)  # skipped, not raised
        clock.advance(5.0)
        assert await cache.get(PRICE_KEY) is None  # the probe fails: still down, no new event
        assert (log.kinds(), cache.available) == (["cache.down"], False)
        down = log.events[0]
        assert str(down.data["error"]) in down.message

        await redis_server.start()  # empty again; write behind the cache's back
        await client.set(f"{PREFIX}:cache:{PRICE_KEY}", BODY, px=60_000)
        assert await cache.get(PRICE_KEY) is None  # bypassed until retry_after_s has passed
        clock.advance(5.0)
        assert await cache.get(PRICE_KEY) == BODY  # the probe succeeds
        await cache.set("other", b"[]", 60)
        assert await cache.get("other") == b"[]"
        assert log.kinds() == ["cache.down", "cache.up"]
        assert cache.available
        assert cache.stats()["errors"] >= 2
    finally:
        await client.aclose()


async def test_a_redis_that_never_answers_costs_one_short_timeout() -> None:
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # swallow commands until the client leaves
        writer.close()
        hung_up.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client, log = Redis(host="127.0.0.1", port=port), EventLog()
    cache = RedisCache(client, prefix=PREFIX, emit=log, op_timeout_s=0.05)
    try:
        async with asyncio.timeout(WAIT_S):
            assert await cache.get(PRICE_KEY) is None
            assert await cache.get(PRICE_KEY) is None  # bypassed: no second wait
    finally:
        await client.aclose()
        async with asyncio.timeout(WAIT_S):
            await hung_up.wait()
        server.close()
        await server.wait_closed()
    assert log.kinds() == ["cache.down"]
    assert "TimeoutError" in log.events[0].message


async def test_an_entry_redis_cannot_read_is_a_miss_not_an_outage(shared_redis: str) -> None:
    client, log = connect(shared_redis, max_connections=8), EventLog()
    cache = RedisCache(client, prefix=PREFIX, emit=log)
    try:
        await client.hset(f"{PREFIX}:cache:{PRICE_KEY}", "not", "a string")
        assert await cache.get(PRICE_KEY) is None
    finally:
        await client.aclose()
    assert cache.stats() == {"hits": 0, "misses": 1, "errors": 1}
    assert cache.available
    assert log.events == []
