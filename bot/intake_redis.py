"""The intake in Redis, for several bot processes sharing one store of incoming updates, on a
single Redis or on Redis Cluster, with one turn per chat across processes.

Same contract as ``bot.intake.SqliteIntake`` (the ``Intake`` protocol), plus ``ChatTurns``;
every operation on more than one key is one Lua script, so it is atomic. An owner is alive
while its ``alive:<owner>`` key exists: ``open`` and ``keepalive`` set it for ``lease_s``,
``close`` deletes it, and a killed process's key lapses after ``lease_s``; then ``adopt`` and
``adopt_chats`` may take its updates over. A put of an id that is stored, or was done within
``done_ttl_s`` (``DEFAULT_DONE_TTL_S``: 25 h, longer than Telegram's 24 h of retries), stores
nothing, so an update Telegram delivers again, to any process, is not handled twice; done ids
are one sorted set scored by when, trimmed past that TTL on every ``done``.

Chat turns: ``put_in_chat`` also queues the update in its chat and gives the putter the chat's
turn unless a live owner holds it; the holder takes the queue in update-id order, one update
at a time (``first_in_chat``, then ``done_in_chat``, which answers the next), and the script
that finds the queue empty ends the turn, so an update queued meanwhile is never stranded:
that script sees it, or the put that queued it finds the turn free and takes it. A gone
holder's turn, or one handed over (``hand_over``, on shutdown), goes to ``adopt_chats`` or to
the next put in the chat.

Durability is Redis's own (AOF ``appendfsync always``); where the node has replicas a put
returns once one has it (``utils.redis_conn.wait_replicated``). Failures propagate as
``RedisError``, or ``TimeoutError`` past ``_TIMEOUT_S``. A handed client is not closed.

Keys, all under ``<prefix>{intake}:`` (``utils.redis_conn.key_space``; default prefix
``btb:``): one hash tag, so every key is in one cluster slot and each script runs there.
Scripts get in ``KEYS`` every key named before the call; those they find only in stored data
(the updates of a sorted set, the chats of ``chats``, a turn holder's alive key) they build
under the same key space, passed as an argument:

- ``update:<id>``: hash of one stored update (raw, received_at, owner; chat when queued)
- ``pending``: sorted set of stored update ids, scored by id
- ``done``: sorted set of done update ids, scored by when (unix s)
- ``alive:<owner>``: an owner's lease, with a PX expiry
- ``queue:<chat>``: sorted set of a chat's stored update ids, by id (``-``: no chat)
- ``turn:<chat>``: the owner whose turn it is to handle the chat's queue
- ``chats``: set of the chats whose queue is not empty
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from bot.intake import DEFAULT_DONE_TTL_S, StoredUpdate, Taken, new_owner
from utils.redis_conn import connect, key_space, wait_replicated

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.commands.core import AsyncScript

    from utils.redis_conn import RedisClient

__all__ = ("DEFAULT_LEASE_S", "RedisIntake")

DEFAULT_LEASE_S: Final = 10.0
_TIMEOUT_S: Final = 5.0  # a Redis that does not answer in this time is down
_MAX_CONNECTIONS: Final = 8  # of a client ``from_url`` makes (per node on a cluster)
_NO_CHAT: Final = "-"  # the queue of updates that name no chat and no user


class RedisIntake:
    """The intake in Redis, with chat turns; see the module docstring for the key layout."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = "btb:",
        lease_s: float = DEFAULT_LEASE_S,
        done_ttl_s: float = DEFAULT_DONE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._space = key_space(prefix, "intake")
        self._lease_ms = max(1, round(lease_s * 1000))
        self._ttl_s = done_ttl_s
        self._clock = clock
        self._owner = new_owner()
        self._owns_client = False
        self._is_open = False
        script = redis.register_script
        self._put, self._put_in_chat = script(_PUT_LUA), script(_PUT_IN_CHAT_LUA)
        self._done, self._done_next = script(_DONE_LUA), script(_DONE_NEXT_LUA)
        self._next = script(_NEXT_LUA)
        self._adopt, self._adopt_chats = script(_ADOPT_LUA), script(_ADOPT_CHATS_LUA)
        self._read = script(_READ_LUA)

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
        """An intake on its own client (``redis://`` or ``redis+cluster://``), which ``close``
        closes."""
        client = connect(url, max_connections=_MAX_CONNECTIONS, client_name=f"{prefix}intake")
        intake = cls(client, prefix=prefix, lease_s=lease_s, done_ttl_s=done_ttl_s, clock=clock)
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
        keys = [self._update_key(update_id), self._key("pending"), self._key("done")]
        args = [update_id, raw, repr(now), self._owner, repr(now - self._ttl_s)]
        stored = bool(await self._call(self._put, keys, args))
        if stored:
            await self._replicated(keys[0])
        return stored

    async def pending(self) -> list[StoredUpdate]:
        return _updates(await self._call(self._read, [self._key("pending")], [self._space]))

    async def adopt(self) -> list[StoredUpdate]:
        keys = [self._key("pending")]
        return _updates(await self._call(self._adopt, keys, [self._owner, self._space]))

    async def done(self, update_id: int) -> None:
        now = self._clock()
        keys = [self._update_key(update_id), self._key("pending"), self._key("done")]
        await self._call(self._done, keys, [update_id, repr(now), repr(now - self._ttl_s)])

    async def depth(self) -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return int(await self._redis.zcard(self._key("pending")))

    async def keepalive(self) -> None:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.set(self._alive_key, 1, px=self._lease_ms)

    # --- chat turns (``bot.intake.ChatTurns``) ----------------------------------------------
    async def put_in_chat(self, update_id: int, raw: str, chat: int | None) -> Taken:
        """Store the update and queue it in its chat; whether it is this owner's turn."""
        now = self._clock()
        name = _chat_name(chat)
        keys = [
            self._update_key(update_id),
            self._key("pending"),
            self._key("done"),
            *self._chat_keys(name),
        ]
        args = [update_id, raw, repr(now), self._owner, repr(now - self._ttl_s), name, self._space]
        taken = Taken(int(await self._call(self._put_in_chat, keys, args)))
        if taken is not Taken.REFUSED:
            await self._replicated(keys[0])
        return taken

    async def first_in_chat(self, chat: int | None) -> StoredUpdate | None:
        """The chat's first queued update while it is this owner's turn; None when it is not,
        or when the queue is empty (which ends the turn)."""
        name = _chat_name(chat)
        args = [self._owner, name, self._space, "next"]
        return _update(await self._call(self._next, self._chat_keys(name), args))

    async def done_in_chat(
        self, update_id: int, chat: int | None, *, take_next: bool = True
    ) -> StoredUpdate | None:
        """``done``, then (``take_next``) the chat's next queued update while it is this
        owner's turn; None when it is not, or the queue is empty: the turn has ended. Without
        ``take_next`` the turn is handed over: another owner's ``adopt_chats`` takes it."""
        name, now = _chat_name(chat), self._clock()
        keys = [
            *self._chat_keys(name),
            self._update_key(update_id),
            self._key("pending"),
            self._key("done"),
        ]
        mode = "next" if take_next else "stop"
        args = [
            self._owner,
            name,
            self._space,
            mode,
            update_id,
            repr(now),
            repr(now - self._ttl_s),
        ]
        return _update(await self._call(self._done_next, keys, args))

    async def hand_over(self, chat: int | None) -> None:
        """End this owner's turn in the chat, its queue left for another owner to adopt."""
        name = _chat_name(chat)
        args = [self._owner, name, self._space, "stop"]
        await self._call(self._next, self._chat_keys(name), args)

    async def adopt_chats(self) -> list[tuple[int | None, int]]:
        """Take the turn of every chat with queued updates whose turn no live owner holds;
        those chats, each with how many updates it has queued."""
        rows = await self._call(
            self._adopt_chats, [self._key("chats")], [self._owner, self._space]
        )
        return [(None if _str(c) == _NO_CHAT else int(_str(c)), int(n)) for c, n in rows]

    # --- helpers ---------------------------------------------------------------------------
    @property
    def _alive_key(self) -> str:
        return f"{self._space}alive:{self._owner}"

    def _key(self, name: str) -> str:
        return self._space + name

    def _update_key(self, update_id: int) -> str:
        return f"{self._space}update:{update_id}"

    def _chat_keys(self, name: str) -> list[str]:
        """The chat's queue and turn, and the set of chats: KEYS[1..3] of the chat scripts."""
        return [f"{self._space}queue:{name}", f"{self._space}turn:{name}", self._key("chats")]

    async def _call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return await script(keys=keys, args=args)

    async def _replicated(self, key: str) -> None:
        async with asyncio.timeout(_TIMEOUT_S):
            await wait_replicated(self._redis, key)

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError(f"intake {self._space!r} is not open: call open() first")


def _chat_name(chat: int | None) -> str:
    return _NO_CHAT if chat is None else str(chat)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _update(row: Sequence[Any] | None) -> StoredUpdate | None:
    return _updates([row])[0] if row else None


def _updates(rows: Sequence[Sequence[Any]]) -> list[StoredUpdate]:
    return [
        StoredUpdate(update_id=int(row[0]), raw=_str(row[1]), received_at=float(row[2]))
        for row in rows
    ]


# KEYS: update:<id>, pending, done. ARGV: update_id, raw, now, owner, done cutoff.
# Returns 1 if stored, else 0.
_PUT_LUA: Final = """
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local at = redis.call('ZSCORE', KEYS[3], id)
if at and tonumber(at) > tonumber(ARGV[5]) then return 0 end
redis.call('HSET', KEYS[1], 'raw', ARGV[2], 'received_at', ARGV[3], 'owner', ARGV[4])
redis.call('ZADD', KEYS[2], id, id)
redis.call('ZREM', KEYS[3], id)
return 1
"""

# KEYS: update:<id>, pending, done, queue:<chat>, turn:<chat>, chats.
# ARGV: update_id, raw, now, owner, done cutoff, chat, key space.
# Returns 0 (a repeat: nothing stored), 1 (queued behind a live owner's turn) or 2 (stored,
# and the chat's turn is the caller's).
_PUT_IN_CHAT_LUA: Final = """
local id, me = ARGV[1], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local at = redis.call('ZSCORE', KEYS[3], id)
if at and tonumber(at) > tonumber(ARGV[5]) then return 0 end
redis.call('HSET', KEYS[1], 'raw', ARGV[2], 'received_at', ARGV[3], 'owner', me, 'chat', ARGV[6])
redis.call('ZADD', KEYS[2], id, id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[4], id, id)
redis.call('SADD', KEYS[6], ARGV[6])
local holder = redis.call('GET', KEYS[5])
if holder and holder ~= me and redis.call('EXISTS', ARGV[7] .. 'alive:' .. holder) == 1 then
  return 1
end
redis.call('SET', KEYS[5], me)
return 2
"""

# KEYS: update:<id>, pending, done. ARGV: update_id, now, done cutoff.
_DONE_LUA: Final = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])
return 0
"""

# KEYS: queue:<chat>, turn:<chat>, chats. ARGV: owner, chat, key space, mode ("next": the
# chat's first queued update {update_id, raw, received_at}, the turn ending when there is
# none; "stop": hand the turn over). Returns nil when it is not (or no longer) the owner's turn.
_NEXT_LUA: Final = """
local me, chat = ARGV[1], ARGV[2]
if redis.call('GET', KEYS[2]) ~= me then
  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], chat) end
  return false
end
while ARGV[4] == 'next' do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not first then break end
  local row = redis.call('HMGET', ARGV[3] .. 'update:' .. first, 'raw', 'received_at')
  if row[1] then return {first, row[1], row[2]} end
  redis.call('ZREM', KEYS[1], first)
end
redis.call('DEL', KEYS[2])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], chat) end
return false
"""

# KEYS: queue:<chat>, turn:<chat>, chats, update:<id>, pending, done. ARGV: as _NEXT_LUA's,
# then update_id, now, done cutoff. The update is done (as _DONE_LUA), then as _NEXT_LUA.
_DONE_NEXT_LUA: Final = (
    """
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[6], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', ARGV[7])
redis.call('ZREM', KEYS[1], ARGV[5])
"""
    + _NEXT_LUA
)

# KEYS: pending. ARGV: owner, key space. Takes over the updates put outside any chat queue
# whose owner's lease is gone. Returns {update_id, raw, received_at} per adopted update, by id.
_ADOPT_LUA: Final = """
local me, p = ARGV[1], ARGV[2]; local out = {}; local alive = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = p .. 'update:' .. id
  local row = redis.call('HMGET', k, 'owner', 'raw', 'received_at', 'chat')
  local owner = row[1]
  if owner and owner ~= me and not row[4] then
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

# KEYS: chats. ARGV: owner, key space. Takes the turn of every chat with queued updates whose
# turn is free or held by an owner whose lease is gone. Returns {chat, queued} per chat taken.
_ADOPT_CHATS_LUA: Final = """
local me, p = ARGV[1], ARGV[2]; local out = {}
for _, chat in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local queued = redis.call('ZCARD', p .. 'queue:' .. chat)
  if queued == 0 then
    redis.call('SREM', KEYS[1], chat)
  else
    local turn = p .. 'turn:' .. chat
    local holder = redis.call('GET', turn)
    if not holder or (holder ~= me and redis.call('EXISTS', p .. 'alive:' .. holder) == 0) then
      redis.call('SET', turn, me)
      out[#out + 1] = {chat, queued}
    end
  end
end
return out
"""

# KEYS: pending. ARGV: key space. Returns {update_id, raw, received_at} per stored update, by id.
_READ_LUA: Final = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local row = redis.call('HMGET', ARGV[1] .. 'update:' .. id, 'raw', 'received_at')
  if row[1] then out[#out + 1] = {id, row[1], row[2]} end
end
return out
"""
