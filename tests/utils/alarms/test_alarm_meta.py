"""What the alarm service keeps beside the store: the small values (``AlarmMeta``) run over
memory, SQLite, Redis and Redis Cluster, and the engine's lease (``RedisLease``) over Redis
and Redis Cluster: one holder at a time, renewed by it, lost when it stops renewing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

import pytest
from redis.asyncio.cluster import RedisCluster

from utils.alarms.alarm_meta import LocalLease, MemoryMeta, RedisLease, RedisMeta, SqliteMeta
from utils.redis_conn import connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.redis_cluster import LocalCluster
    from utils.alarms.alarm_meta import AlarmMeta
    from utils.redis_conn import RedisClient

WAIT_S: Final = 10.0


@pytest.fixture(params=["redis", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url_for_" + str(request.param)))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = connect(redis_url, max_connections=8)
    try:
        yield client
    finally:
        await client.aclose()


def _maker(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AlarmMeta]:
    """Makes a meta store of ``request.param``'s kind; two stores made by one maker share
    what they hold (but in memory)."""
    if request.param == "memory":
        return MemoryMeta
    if request.param == "sqlite":
        return lambda: SqliteMeta(tmp_path / "state" / "alarms.db")
    url = request.getfixturevalue("redis_url_for_" + str(request.param))
    clients: list[RedisClient] = request.getfixturevalue("_clients")

    def make() -> RedisMeta:
        client = connect(url, max_connections=4)
        clients.append(client)
        return RedisMeta(client, prefix="t:")

    return make


@pytest.fixture(params=["memory", "sqlite", "redis", "cluster"])
def meta_maker(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AlarmMeta]:
    return _maker(request, tmp_path)


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def shared_meta_maker(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], AlarmMeta]:
    """Stores that keep their values where other stores (other processes) read them."""
    return _maker(request, tmp_path)


@pytest.fixture
def redis_url_for_redis(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_url_for_cluster(redis_cluster: LocalCluster) -> str:
    return redis_cluster.url


@pytest.fixture
async def _clients() -> AsyncIterator[list[RedisClient]]:
    clients: list[RedisClient] = []
    yield clients
    for client in clients:
        await client.aclose()


@contextlib.asynccontextmanager
async def opened(make: Callable[[], AlarmMeta]) -> AsyncIterator[AlarmMeta]:
    meta = make()
    await meta.open()
    try:
        yield meta
    finally:
        await meta.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``check`` is true (a lease expiring has no event to await)."""
    async with asyncio.timeout(WAIT_S):
        while not await check():  # noqa: ASYNC110 (nothing to await: Redis expires the key)
            await asyncio.sleep(0.02)


async def test_a_value_reads_back_until_overwritten(meta_maker: Callable[[], AlarmMeta]) -> None:
    async with opened(meta_maker) as meta:
        assert await meta.get("checkpoint:spot") is None
        await meta.set("checkpoint:spot", "1700000000000")
        await meta.set("locale:-100123", "tr")
        await meta.set("checkpoint:spot", "1700000060000")
        assert await meta.get("checkpoint:spot") == "1700000060000"
        assert await meta.get("locale:-100123") == "tr"
        await meta.set("note", "fiyat ≥ 70 000 🚀")
        assert await meta.get("note") == "fiyat ≥ 70 000 🚀"


async def test_a_value_set_by_one_store_is_read_by_another_on_the_same_backend(
    shared_meta_maker: Callable[[], AlarmMeta],
) -> None:
    async with opened(shared_meta_maker) as first:
        await first.set("checkpoint:futures", "42")
    async with opened(shared_meta_maker) as second:
        assert await second.get("checkpoint:futures") == "42"


async def test_redis_meta_and_lease_keep_their_keys_in_the_alarm_stores_hash_tag(
    redis: RedisClient,
) -> None:
    await RedisMeta(redis, prefix="one:").set("locale:1", "en")
    assert await RedisLease(redis, prefix="one:").acquire("me", 30)
    if isinstance(redis, RedisCluster):
        found = await redis.keys("*", target_nodes=RedisCluster.PRIMARIES)
    else:
        found = await redis.keys("*")
    names = sorted(key.decode() if isinstance(key, bytes) else key for key in found)
    assert names == ["one:{alarms}:lease", "one:{alarms}:meta"]


async def test_only_one_owner_holds_the_lease_until_it_releases(redis: RedisClient) -> None:
    lease, other = RedisLease(redis, prefix="t:"), RedisLease(redis, prefix="t:")
    assert await lease.acquire("a", 30)
    assert not await other.acquire("b", 30)
    assert await lease.acquire("a", 30)  # renewal by its owner
    await other.release("b")  # not the owner: nothing happens
    assert not await other.acquire("b", 30)
    await lease.release("a")
    assert await other.acquire("b", 30)
    assert not await lease.acquire("a", 30)


async def test_a_lease_whose_owner_stops_renewing_passes_to_another(redis: RedisClient) -> None:
    lease, other = RedisLease(redis, prefix="t:"), RedisLease(redis, prefix="t:")
    assert await lease.acquire("a", 0.2)
    assert not await other.acquire("b", 30)
    await eventually(lambda: other.acquire("b", 30))
    assert not await lease.acquire("a", 30)


async def test_leases_under_different_prefixes_are_apart(redis: RedisClient) -> None:
    assert await RedisLease(redis, prefix="one:").acquire("a", 30)
    assert await RedisLease(redis, prefix="two:").acquire("b", 30)


async def test_one_process_always_leads() -> None:
    lease = LocalLease()
    assert await lease.acquire("a", 1)
    assert await lease.acquire("b", 1)
    await lease.release("a")
