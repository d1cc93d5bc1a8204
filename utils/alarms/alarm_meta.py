"""What the alarm service keeps beside the store: a few small values (``AlarmMeta``: how far
the engine had read the streams, each chat's language) and the engine's lease (``Lease``:
with several processes on one Redis, one engine evaluates the alarms).

Backends: in memory (tests, one process without a file), SQLite (a table of its own in the
alarms file, its own connection) and Redis, single or Cluster (one key each under the alarm
store's key space ``<prefix>{alarms}:``, so in its hash slot; on the client the app hands out,
never closed here). ``LocalLease`` always leads (one process); ``RedisLease`` is ``SET NX PX``
renewed by its owner and released on stop, so a holder that dies loses it ``ttl_s`` later;
its scripts name their one key in ``KEYS``.

Neither waits for a replica: what they hold is made again if a failover loses it (the
checkpoint is rewritten every second and a replay from an older one fires under the same job
ids, which the outbox ignores; the lease is renewed or taken again).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import aiosqlite

from utils.redis_conn import key_space

if TYPE_CHECKING:
    from utils.redis_conn import RedisClient

__all__ = (
    "AlarmMeta",
    "Lease",
    "LocalLease",
    "MemoryMeta",
    "RedisLease",
    "RedisMeta",
    "SqliteMeta",
)

_BUSY_TIMEOUT_S: Final = 10.0
_TIMEOUT_S: Final = 5.0

#: Take the lease when it is free, renew it when ``owner`` holds it: 1 when held after.
_ACQUIRE: Final = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class AlarmMeta(Protocol):
    """A small string key-value store."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str) -> None: ...


class Lease(Protocol):
    """Who runs the engine."""

    async def acquire(self, owner: str, ttl_s: float) -> bool:
        """Take the lease, or renew it when ``owner`` holds it; whether ``owner`` holds it."""
        ...

    async def release(self, owner: str) -> None: ...


class MemoryMeta:
    """In memory: gone with the process."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get(self, key: str) -> str | None:
        return self._values.get(key)

    async def set(self, key: str, value: str) -> None:
        self._values[key] = value


class SqliteMeta:
    """A table ``alarm_meta`` in a SQLite file (the alarms file), on its own connection."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self._path.parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(self._path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS alarm_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)"
            )
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    async def get(self, key: str) -> str | None:
        async with self._lock:
            rows = await self._conn().execute_fetchall(
                "SELECT v FROM alarm_meta WHERE k=?", (key,)
            )
        return next((str(row[0]) for row in rows), None)

    async def set(self, key: str, value: str) -> None:
        async with self._lock:
            await self._conn().execute(
                "INSERT INTO alarm_meta (k, v) VALUES (?, ?) "
                "ON CONFLICT (k) DO UPDATE SET v=excluded.v",
                (key, value),
            )

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"alarm meta {self._path} is not open")
        return self._db


class RedisMeta:
    """One Redis hash, ``<prefix>{alarms}:meta``."""

    def __init__(self, redis: RedisClient, *, prefix: str = "btb:") -> None:
        self._redis = redis
        self._key = key_space(prefix, "alarms") + "meta"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get(self, key: str) -> str | None:
        async with asyncio.timeout(_TIMEOUT_S):
            value = await self._redis.hget(self._key, key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str) -> None:
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.hset(self._key, key, value)


class LocalLease:
    """One process: it always leads."""

    async def acquire(self, owner: str, ttl_s: float) -> bool:
        return True

    async def release(self, owner: str) -> None:
        return None


class RedisLease:
    """``<prefix>{alarms}:lease`` holds the owner's id for ``ttl_s``; renewed by its owner."""

    def __init__(self, redis: RedisClient, *, prefix: str = "btb:") -> None:
        self._key = key_space(prefix, "alarms") + "lease"
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, owner: str, ttl_s: float) -> bool:
        async with asyncio.timeout(_TIMEOUT_S):
            held = await self._acquire(keys=[self._key], args=[owner, max(1, int(ttl_s * 1000))])
        return bool(held)

    async def release(self, owner: str) -> None:
        async with asyncio.timeout(_TIMEOUT_S):
            await self._release(keys=[self._key], args=[owner])
