"""The intake in Redis, for several bot processes sharing one store of incoming updates.

Same contract as ``bot.intake.SqliteIntake`` (the ``Intake`` protocol); every operation that
touches more than one key is one Lua script, so it is atomic. An owner is alive while its
``alive:<owner>`` key exists: ``open`` and ``keepalive`` set it for ``lease_s``, ``close``
deletes it, and a killed process's key lapses after ``lease_s``, after which ``adopt`` may
take its updates over. Durability is Redis's own (AOF with ``appendfsync always`` for the
SQLite guarantee). Failures propagate as ``redis.exceptions.RedisError``, or ``TimeoutError``
when Redis does not answer in ``_TIMEOUT_S``. It does not close a client it was handed.

Keys, all under ``prefix`` + ``intake:`` (a single Redis, not Redis Cluster):

- ``update:<id>``: hash of one stored update (raw, received_at, owner)
- ``pending``: sorted set of stored update ids, scored by id
- ``done``: sorted set of done update ids, scored by when (unix s)
- ``alive:<owner>``: an owner's lease, with a PX expiry
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from redis.asyncio import Redis

from bot.intake import DEFAULT_DONE_TTL_S, StoredUpdate, new_owner

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.commands.core import AsyncScript

__all__ = ("DEFAULT_LEASE_S", "RedisIntake")

DEFAULT_LEASE_S: Final = 10.0
_TIMEOUT_S: Final = 5.0  # a Redis that does not answer in this time is down


class RedisIntake:
    """The intake in Redis; see the module docstring for the key layout."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "btb:",
        lease_s: float = DEFAULT_LEASE_S,
        done_ttl_s: float = DEFAULT_DONE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "intake:"
        self._lease_ms = max(1, round(lease_s * 1000))
        self._ttl_s = done_ttl_s
        self._clock = clock
        self._owner = new_owner()
        self._owns_client = False
        self._is_open = False
        self._put = redis.register_script(_PUT_LUA)
        self._done = redis.register_script(_DONE_LUA)
        self._adopt = redis.register_script(_ADOPT_LUA)
        self._read = redis.register_script(_READ_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "btb:",
        lease_s: float = DEFAULT_LEASE_S,
        done_ttl_s: float = DEFAULT_DONE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> RedisIntake:
        """An intake on its own client, which ``close`` closes."""
        intake = cls(
            Redis.from_url(url), prefix=prefix, lease_s=lease_s, done_ttl_s=done_ttl_s, clock=clock
        )
        intake._owns_client = True
        return intake

    @property
    def owner(self) -> str:
        return self._owner

    async def open(self) -> None:
        """Check that Redis answers and take this owner's lease."""
        self._is_open = True
        try:
            await self.keepalive()
        except BaseException:
            self._is_open = False
            raise

    async def close(self) -> None:
        was_open, self._is_open = self._is_open, False
        try:
            if was_open:
                async with asyncio.timeout(_TIMEOUT_S):
                    await self._redis.delete(self._alive_key)
        finally:
            if self._owns_client:
                await self._redis.aclose()

    async def put(self, update_id: int, raw: str) -> bool:
        now = self._clock()
        args = [self._prefix, update_id, raw, repr(now), self._owner, repr(now - self._ttl_s)]
        return bool(await self._call(self._put, args))

    async def pending(self) -> list[StoredUpdate]:
        return _updates(await self._call(self._read, [self._prefix]))

    async def adopt(self) -> list[StoredUpdate]:
        return _updates(await self._call(self._adopt, [self._prefix, self._owner]))

    async def done(self, update_id: int) -> None:
        now = self._clock()
        await self._call(self._done, [self._prefix, update_id, repr(now), repr(now - self._ttl_s)])

    async def depth(self) -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return int(await self._redis.zcard(self._prefix + "pending"))

    async def keepalive(self) -> None:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.set(self._alive_key, 1, px=self._lease_ms)

    @property
    def _alive_key(self) -> str:
        return f"{self._prefix}alive:{self._owner}"

    async def _call(self, script: AsyncScript, args: list[Any]) -> Any:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return await script(keys=[], args=args)

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError(f"intake {self._prefix!r} is not open: call open() first")


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _updates(rows: Sequence[Sequence[Any]]) -> list[StoredUpdate]:
    return [
        StoredUpdate(update_id=int(row[0]), raw=_str(row[1]), received_at=float(row[2]))
        for row in rows
    ]


# ARGV: prefix, update_id, raw, now, owner, done cutoff. Returns 1 if stored, else 0.
_PUT_LUA: Final = """
local p = ARGV[1]; local id = ARGV[2]; local k = p .. 'update:' .. id
if redis.call('EXISTS', k) == 1 then return 0 end
local at = redis.call('ZSCORE', p .. 'done', id)
if at and tonumber(at) > tonumber(ARGV[6]) then return 0 end
redis.call('HSET', k, 'raw', ARGV[3], 'received_at', ARGV[4], 'owner', ARGV[5])
redis.call('ZADD', p .. 'pending', id, id)
redis.call('ZREM', p .. 'done', id)
return 1
"""

# ARGV: prefix, update_id, now, done cutoff.
_DONE_LUA: Final = """
local p = ARGV[1]; local id = ARGV[2]
redis.call('DEL', p .. 'update:' .. id)
redis.call('ZREM', p .. 'pending', id)
redis.call('ZADD', p .. 'done', ARGV[3], id)
redis.call('ZREMRANGEBYSCORE', p .. 'done', '-inf', ARGV[4])
return 0
"""

# ARGV: prefix, owner. Takes over the updates whose owner's lease is gone.
# Returns {update_id, raw, received_at} per adopted update, by update id.
_ADOPT_LUA: Final = """
local p = ARGV[1]; local me = ARGV[2]; local out = {}; local alive = {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'pending', 0, -1)) do
  local k = p .. 'update:' .. id
  local row = redis.call('HMGET', k, 'owner', 'raw', 'received_at')
  local owner = row[1]
  if owner and owner ~= me then
    if alive[owner] == nil then
      alive[owner] = redis.call('EXISTS', p .. 'alive:' .. owner) == 1
    end
    if not alive[owner] then
      redis.call('HSET', k, 'owner', me)
      out[#out + 1] = {id, row[2], row[3]}
    end
  end
end
return out
"""

# ARGV: prefix. Returns {update_id, raw, received_at} per stored update, by update id.
_READ_LUA: Final = """
local p = ARGV[1]; local out = {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'pending', 0, -1)) do
  local row = redis.call('HMGET', p .. 'update:' .. id, 'raw', 'received_at')
  if row[1] then out[#out + 1] = {id, row[1], row[2]} end
end
return out
"""
