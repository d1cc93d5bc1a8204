"""One Redis client per process, on a single Redis or on Redis Cluster, and the two rules
every store follows to run on both.

``REDIS_URL`` names a single server (``redis://``, ``rediss://``, ``unix://``) or a cluster
(``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://`` for TLS): any of the
listed nodes is enough to find the rest. ``connect`` builds the matching client; both have
the same command methods, ``register_script`` and ``pipeline``.

1. **One slot per script.** Each store's keys live under ``key_space(prefix, component)``
   (``<prefix>{<component>}:``): the braces are a hash tag, so every key of a component hashes
   to the same cluster slot and a Lua script that touches several of them runs on one node.
   Scripts name every key they touch in ``KEYS``.
2. **Durable writes wait for a replica.** ``wait_replicated(client, key)`` after a write the bot
   must not lose (an outbox put, an alarm change): when the node that holds ``key`` has
   replicas, it returns once one of them has the write (Redis ``WAIT``), so a failover that
   promotes that replica keeps it; without replicas it returns at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeAlias
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    MaxConnectionsError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

__all__ = (
    "CLUSTER_SCHEMES",
    "STORE_UNAVAILABLE",
    "RedisClient",
    "ReplicationTimeoutError",
    "cluster_nodes",
    "connect",
    "is_cluster_url",
    "key_space",
    "wait_replicated",
)

#: A process's Redis client: one server, or a cluster.
RedisClient: TypeAlias = Redis | RedisCluster
CLUSTER_SCHEMES: Final = frozenset({"redis+cluster", "rediss+cluster"})
_DEFAULT_PORT: Final = 6379
_ROLE_TTL_S: Final = 1.0  # how long a node's replica count is trusted
_MARK_TTL_MS: Final = 10_000
_ROLE_CACHE_MAX: Final = 256


class ReplicationTimeoutError(RedisError):
    """The node has replicas, but none acknowledged a write in time: it is on the master
    only, and a failover now would lose it."""


#: What a Redis that is briefly away looks like (a restart, a failover while a replica is
#: promoted, a node out of connections, our own deadline): work that met one of these is worth
#: trying again in a moment, not worth an apology.
STORE_UNAVAILABLE: Final = (
    RedisConnectionError,  # refused, reset, loading, no free connection
    RedisTimeoutError,
    ClusterDownError,  # a slot without a master until its replica is promoted
    TryAgainError,
    ReplicationTimeoutError,
    TimeoutError,  # a store's own deadline (asyncio.timeout)
)


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` nodes a ``redis+cluster://`` URL lists."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part, "", "")
        host = host.strip("[]") or part.strip()
        if not host:
            raise ValueError(f"a cluster node without a host in {_masked(url)}")
        nodes.append((host, int(port) if port else _DEFAULT_PORT))
    return nodes


def connect(
    url: str, *, max_connections: int, wait_s: float = 5.0, client_name: str | None = None
) -> RedisClient:
    """A client for ``url``. On a single Redis, a blocking pool of ``max_connections`` (a
    caller waits ``wait_s`` for a free connection rather than failing); on a cluster, up to
    ``max_connections`` commands in flight (a caller waits ``wait_s`` for a turn). Connections
    are named ``client_name`` (``CLIENT LIST``)."""
    if not is_cluster_url(url):
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=wait_s, client_name=client_name
        )
        return Redis.from_pool(pool)
    parts = urlsplit(url)
    return _WaitingCluster(
        wait_s=wait_s,
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_nodes(url)],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme.startswith("rediss"),
        max_connections=max_connections,
        client_name=client_name,
    )


_IN_TURN: ContextVar[bool] = ContextVar("redis_cluster_turn", default=False)


class _WaitingCluster(RedisCluster):
    """redis-py's async cluster client raises ``MaxConnectionsError`` at once when a node's
    ``max_connections`` are all busy (its single-server pool can wait; this one cannot). Here a
    command or pipeline waits up to ``wait_s`` for one of ``max_connections`` turns, so no node
    ever has more in flight; what the client sends from inside a turn (a pipeline's retry of a
    command) takes no second one."""

    def __init__(self, *, wait_s: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._turns = asyncio.Semaphore(max_connections)
        self._wait_s = wait_s

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused there, as it says
        return _WaitingPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if _IN_TURN.get():
            yield
            return
        try:
            async with asyncio.timeout(self._wait_s):
                await self._turns.acquire()
        except TimeoutError:
            raise MaxConnectionsError(
                f"no free Redis connection within {self._wait_s:g} s"
            ) from None
        token = _IN_TURN.set(True)
        try:
            yield
        finally:
            _IN_TURN.reset(token)
            self._turns.release()


class _WaitingPipeline(ClusterPipeline):
    """A cluster pipeline that takes a turn of its client for its ``execute``."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client = self.cluster_client
        assert isinstance(client, _WaitingCluster)  # noqa: S101 - only it builds these
        async with client.turn():
            return await super().execute(raise_on_error, allow_redirections)


def key_space(prefix: str, component: str) -> str:
    """``<prefix>{<component>}:``: the start of every key of one store; the hash tag puts them
    all in one cluster slot."""
    return f"{prefix}{{{component}}}:"


async def wait_replicated(client: RedisClient, key: str, *, timeout_ms: int = 1000) -> int:
    """After a write to ``key``'s slot: how many replicas of its node have it (0 when the node
    has none, at once). Raises ``ReplicationTimeoutError`` when it has replicas and none
    acknowledged within ``timeout_ms``.

    ``WAIT`` counts the writes of its own connection, and a pooled client's next command may
    run on another one; so this writes a marker in the same slot and waits for it on one
    connection: the replication stream is in order, so a replica that has the marker has
    every write the node acknowledged before it."""
    marker = _marker(key)
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)
        if node is None:
            raise ReplicationTimeoutError(f"no node serves {key!r} now")
        if await _replicas(node) == 0:
            return 0
        _, acked = await _on_one_connection(
            node, [("SET", marker, "1", "PX", _MARK_TTL_MS), ("WAIT", 1, timeout_ms)]
        )
    else:
        if await _replicas(client) == 0:
            return 0
        pipe = client.pipeline(transaction=False)  # one connection for both
        _ = pipe.set(marker, "1", px=_MARK_TTL_MS)
        _ = pipe.execute_command("WAIT", 1, timeout_ms)
        _, acked = await pipe.execute()
    if int(acked) < 1:
        raise ReplicationTimeoutError(f"no replica acknowledged the write within {timeout_ms} ms")
    return int(acked)


_role_cache: dict[tuple[int, str], tuple[float, int]] = {}


async def _replicas(target: Redis | ClusterNode) -> int:
    """Connected replicas of a server or cluster node (``ROLE``), trusted ``_ROLE_TTL_S``."""
    ident = (id(target), getattr(target, "name", ""))
    now = time.monotonic()
    cached = _role_cache.get(ident)
    if cached is not None and now - cached[0] < _ROLE_TTL_S:
        return cached[1]
    if isinstance(target, ClusterNode):
        (role,) = await _on_one_connection(target, [("ROLE",)])
    else:
        role = await target.execute_command("ROLE")  # type: ignore[no-untyped-call]
    count = len(role[2]) if _text(role[0]) == "master" else 0
    if len(_role_cache) > _ROLE_CACHE_MAX:
        _role_cache.clear()
    _role_cache[ident] = (now, count)
    return count


async def _on_one_connection(node: ClusterNode, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    connection = node.acquire_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        replies = [await connection.read_response() for _ in commands]
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        node.release(connection)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _marker(key: str) -> str:
    """A key in ``key``'s slot: the same hash tag (and what precedes it, so the marker stays
    under the store's prefix), or the key itself as the tag."""
    start = key.find("{")
    end = key.find("}", start + 1)
    if start >= 0 and end > start + 1:
        return f"{key[: end + 1]}:replicated"
    return f"{{{key}}}:replicated"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _masked(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
