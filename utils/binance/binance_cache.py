"""Response cache for public Binance GETs: a ``Cache`` protocol, two backends and the glue
the client calls.

- ``MemoryCache``: bounded (LRU) and per-entry TTL; the default when ``REDIS_URL`` is unset.
- ``RedisCache``: shared by every process on one Redis (or Redis Cluster) and key prefix. When
  Redis goes away the cache is bypassed (one ``cache.down`` event), requests keep working, and
  the next call after ``retry_after_s`` probes it (one ``cache.up`` event when it answers
  again).
- ``SingleFlight`` and ``get_or_fetch``: identical requests in flight together go upstream
  once, and a cache failure never fails a request.

Values are the raw JSON body bytes exactly as Binance sent them (already orjson-readable),
so nothing is re-encoded on the way in or out.

On Redis Cluster: an entry is one string key, ``<prefix>:cache:<request>``, read with one
``GET`` and written with one ``SET .. PX``; the cache runs no Lua script and no command that
names two keys. So its keys share no hash tag on purpose: each entry hashes to its own slot
and the entries (the busiest keys the bot has) spread over every master instead of piling on
one. (``cache_key`` percent-encodes braces, so a request cannot make a hash tag either.)

Signed responses are never cached: ``endpoint_ttl`` answers ``None`` for them whatever the
table says. Closed klines never change, so ``kline_ttl`` keeps them for a day and an open one
for a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import urlencode

import orjson

from utils.binance.binance_types import BinanceEvent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from utils.binance.binance_types import Endpoint
    from utils.redis_conn import RedisClient
from utils.logging_setup import get_logger

__all__ = (
    "KLINE_CLOSED_TTL_S",
    "KLINE_OPEN_TTL_S",
    "Cache",
    "CacheStats",
    "MemoryCache",
    "RedisCache",
    "SingleFlight",
    "cache_key",
    "endpoint_ttl",
    "get_or_fetch",
    "kline_ttl",
)

T = TypeVar("T")

KLINE_CLOSED_TTL_S: Final = 86_400.0
KLINE_OPEN_TTL_S: Final = 1.0
_KLINE_CLOSE_TIME: Final = 6  # index of closeTime in a Binance kline row
_MAX_QUERY_CHARS: Final = 120  # longer parameter strings are hashed into the key
# A refused connection, a reset socket, our own deadline: Redis is unreachable.

_log = get_logger(__name__)


class Cache(Protocol):
    """Where response bodies are kept. Implementations never raise on a backend failure."""

    async def get(self, key: str) -> bytes | None:
        """The stored body, or None when absent, expired or the backend is unreachable."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value`` (raw JSON body bytes) for ``ttl_s`` seconds; ``ttl_s <= 0`` keeps
        nothing."""
        ...

    async def aclose(self) -> None: ...

    def stats(self) -> dict[str, int]:
        """``{"hits": .., "misses": .., "errors": ..}`` since creation."""
        ...


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors}


class MemoryCache:
    """In-process cache: at most ``max_entries`` bodies, least recently used evicted first."""

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] <= self._clock():
            del self._entries[key]
            entry = None
        if entry is None:
            self._stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self._stats.hits += 1
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()

    def stats(self) -> dict[str, int]:
        return self._stats.as_dict()


class RedisCache:
    """Cache in Redis under ``{prefix}:cache:``, values stored with ``SET .. PX``.

    It is handed its client and does not close it (the limiter shares it). Every command
    has an ``op_timeout_s`` deadline so a hung Redis costs one short wait, not a stall.
    """

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        emit: Callable[[BinanceEvent], None],
        retry_after_s: float = 5.0,
        op_timeout_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # redis is imported only by a client that uses it (~80 ms and a few MiB otherwise).
        from redis.exceptions import (  # noqa: PLC0415
            ClusterError,
            RedisClusterException,
            RedisError,
        )
        from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415
        from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: PLC0415

        self._outage: tuple[type[BaseException], ...] = (
            RedisConnectionError,
            RedisTimeoutError,
            OSError,
            ClusterError,  # CLUSTERDOWN: a slot without a master, until a failover ends
            RedisClusterException,  # no node reachable, or none serves the slot
        )
        self._answered_error: type[BaseException] = RedisError
        self._redis = redis
        self._prefix = f"{prefix}:cache:"
        self._emit = emit
        self._retry_after_s = retry_after_s
        self._op_timeout_s = op_timeout_s
        self._clock = clock
        self._stats = CacheStats()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False

    @property
    def available(self) -> bool:
        """False from a failed command until a probe succeeds."""
        return self._down_since is None

    async def get(self, key: str) -> bytes | None:
        value = await self._command(self._redis.get, self._prefix + key)
        if isinstance(value, str):  # a client built with decode_responses=True
            value = value.encode()
        if not isinstance(value, bytes):
            self._stats.misses += 1
            return None
        self._stats.hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s > 0:
            px = max(1, round(ttl_s * 1000))
            await self._command(self._redis.set, self._prefix + key, value, px=px)

    async def aclose(self) -> None:
        """Nothing to release: the client belongs to whoever handed it over."""

    def stats(self) -> dict[str, int]:
        return self._stats.as_dict()

    async def _command(self, command: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """Run one command, or skip it while Redis is down; None when skipped or failed."""
        probe = self._down_since is not None
        if probe:
            if self._probing or self._clock() < self._retry_at:
                return None
            self._probing = True  # this call is the probe; the others keep bypassing
        try:
            async with asyncio.timeout(self._op_timeout_s):
                result = await command(*args, **kw)
        except self._outage as e:
            self._stats.errors += 1
            self._went_down(e)
            return None
        except self._answered_error as e:  # Redis answered with an error: entry unusable
            self._stats.errors += 1
            _log.warning("cache_command_failed", error=repr(e))
            result = None
        finally:
            if probe:
                self._probing = False
        if probe:
            self._came_back()
        return result

    def _went_down(self, error: BaseException) -> None:
        now = self._clock()
        self._retry_at = now + self._retry_after_s
        if self._down_since is not None:
            return  # a failed probe, or a command already in flight when it went down
        self._down_since = now
        self._emit(
            BinanceEvent(
                "cache.down",
                None,
                f"Redis cache unreachable ({type(error).__name__}: {error}); requests go "
                f"straight to Binance, retrying Redis in {self._retry_after_s:g} s",
                {"error": type(error).__name__, "retry_after_s": self._retry_after_s},
            )
        )

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        down_for_s = self._clock() - self._down_since
        self._down_since = None
        self._emit(
            BinanceEvent(
                "cache.up",
                None,
                f"Redis cache answers again after {down_for_s:.0f} s; caching resumed",
                {"down_for_s": down_for_s},
            )
        )


@dataclass(slots=True)
class _Flight:
    future: asyncio.Future[Any]
    waiters: int = 0


class SingleFlight:
    """Concurrent calls with one key share one in-flight ``fetch``.

    Every waiter gets the shared result or exception. A cancelled waiter leaves the fetch
    running for the others; when the last one leaves, the fetch is cancelled.
    """

    def __init__(self) -> None:
        self._flights: dict[str, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            new = _Flight(asyncio.create_task(_awaited(fetch), name=f"single-flight {key}"))
            new.future.add_done_callback(lambda _: self._forget(key, new))
            self._flights[key] = flight = new
        flight.waiters += 1
        try:
            result: T = await asyncio.shield(flight.future)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.future.done():
                self._forget(key, flight)  # a new caller must not join a cancelled fetch
                flight.future.cancel()
        return result

    def _forget(self, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]


async def get_or_fetch(
    cache: Cache,
    flights: SingleFlight,
    key: str,
    ttl_s: float | Callable[[bytes], float],
    fetch: Callable[[], Awaitable[bytes]],
) -> tuple[bytes, bool]:
    """The cached body and True, or the fetched (and now stored) body and False.

    ``ttl_s`` may be a function of the body (``kline_ttl``). Storing happens once per flight;
    a failing store is logged and the body still returned.
    """
    cached = await cache.get(key)
    if cached is not None:
        return cached, True

    async def fill() -> bytes:
        body = await fetch()
        ttl = ttl_s(body) if callable(ttl_s) else ttl_s
        try:
            await cache.set(key, body, ttl)
        except Exception:  # noqa: BLE001 - a custom backend's failure must not fail requests
            _log.warning("cache_set_failed", key=key, exc_info=True)
        return body

    return await flights.run(key, fill), False


def cache_key(endpoint_key: str, params: Mapping[str, Any]) -> str:
    """``"GET /api/v3/ticker/price?symbol=BTCUSDT"``: parameters sorted by name, None dropped,
    lists JSON-encoded; parameters longer than a short line become a blake2b digest."""
    pairs = [(name, _encode(params[name])) for name in sorted(params) if params[name] is not None]
    query = urlencode(pairs, safe=',[]":')
    if len(query) > _MAX_QUERY_CHARS:
        return f"{endpoint_key}#{blake2b(query.encode(), digest_size=16).hexdigest()}"
    return f"{endpoint_key}?{query}" if query else endpoint_key


def endpoint_ttl(endpoint: Endpoint) -> float | None:
    """The table's TTL for an endpoint, None when it must not be cached (signed, or no TTL)."""
    if endpoint.signed or endpoint.cache_ttl_s is None or endpoint.cache_ttl_s <= 0:
        return None
    return endpoint.cache_ttl_s


def kline_ttl(
    params: Mapping[str, Any],
    rows: Sequence[Sequence[Any]],
    *,
    now_ms: int,
    closed_ttl_s: float = KLINE_CLOSED_TTL_S,
    open_ttl_s: float = KLINE_OPEN_TTL_S,
) -> float:
    """How long a klines answer may be kept: ``closed_ttl_s`` when every row's closeTime is
    before ``now_ms`` (server time), else ``open_ttl_s``.

    An empty answer is final only when the request's ``endTime`` has passed; an unreadable
    one is treated as still open.
    """
    try:
        if rows:
            closed = all(int(row[_KLINE_CLOSE_TIME]) < now_ms for row in rows)
        else:
            end_ms = params.get("endTime")
            closed = end_ms is not None and int(end_ms) < now_ms
    except (IndexError, TypeError, ValueError):
        return open_ttl_s
    return closed_ttl_s if closed else open_ttl_s


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return orjson.dumps([_encode(item) for item in value]).decode()
    return str(value)


async def _awaited(fetch: Callable[[], Awaitable[T]]) -> T:
    return await fetch()
