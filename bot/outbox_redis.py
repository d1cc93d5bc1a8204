"""The outbox in Redis, for several bot processes sharing one queue and one delivery lease.

Same contract as ``bot.outbox.SqliteOutbox`` (the ``Outbox`` protocol); every operation that
touches more than one key is one Lua script, so it is atomic. Durability is Redis's own
(AOF with ``appendfsync always`` for the SQLite guarantee). Failures propagate as
``redis.exceptions.RedisError``, or ``TimeoutError`` when Redis does not answer in
``_TIMEOUT_S``. It does not send, and it does not close a client it was handed.

Keys, all under ``prefix`` (default ``btb:``); scripts build the per-job and per-chat keys,
so this is for a single Redis, not Redis Cluster:

- ``seq``: counter behind ``Job.seq``
- ``job:<id>``: hash of one job (chat_id, text, seq, attempts, not_before, created_at,
  policy, state = pending | parked | dead, reason, sending = 1 while marked "sending")
- ``pending``, ``parked``, ``dead``: sorted sets of job ids scored by seq
- ``sending``: sorted set of the ids marked "sending" (``AT_MOST_ONCE`` in flight), by seq
- ``chat:<chat_id>``: sorted set of the chat's pending and parked job ids, scored by seq
- ``chats``: hash chat_id -> ChatState, only chats that are not ACTIVE
- ``delivered``: sorted set of delivered job ids scored by delivery time (unix s)
- ``lead``: the delivery lease, holding its owner, with a PX expiry
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any, Final

from redis.asyncio import Redis

from bot.outbox_types import (
    DEFAULT_CAPACITY,
    DEFAULT_DELIVERED_TTL_S,
    ChatState,
    DeliveryPolicy,
    Job,
    OutboxFullError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from redis.commands.core import AsyncScript

    from bot.outbox_types import JobState

__all__ = ("RedisOutbox",)

_TIMEOUT_S: Final = 5.0  # a Redis that does not answer in this time is down
_FIELDS: Final = (
    "chat_id",
    "text",
    "seq",
    "attempts",
    "not_before",
    "created_at",
    "reason",
    "policy",
    "markup",
)
_PER_JOB: Final = 8  # ARGV entries per job in _PUT_LUA


class RedisOutbox:
    """The outbox in Redis; see the module docstring for the key layout."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "btb:",
        capacity: int = DEFAULT_CAPACITY,
        delivered_ttl_s: float = DEFAULT_DELIVERED_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._capacity = capacity
        self._ttl_s = delivered_ttl_s
        self._clock = clock
        self._owns_client = False
        self._is_open = False
        self._put = redis.register_script(_PUT_LUA)
        self._ack = redis.register_script(_ACK_LUA)
        self._retry = redis.register_script(_RETRY_LUA)
        self._mark = redis.register_script(_MARK_LUA)
        self._sweep = redis.register_script(_SWEEP_LUA)
        self._park = redis.register_script(_PARK_LUA)
        self._dead = redis.register_script(_DEAD_LUA)
        self._read = redis.register_script(_READ_LUA)
        self._lead = redis.register_script(_LEAD_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "btb:",
        capacity: int = DEFAULT_CAPACITY,
        delivered_ttl_s: float = DEFAULT_DELIVERED_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> RedisOutbox:
        """An outbox on its own client, which ``close`` closes."""
        outbox = cls(
            Redis.from_url(url),
            prefix=prefix,
            capacity=capacity,
            delivered_ttl_s=delivered_ttl_s,
            clock=clock,
        )
        outbox._owns_client = True
        return outbox

    async def open(self) -> None:
        """Check that Redis answers; the store needs no set-up."""
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.ping()
        self._is_open = True

    async def close(self) -> None:
        self._is_open = False
        if self._owns_client:
            await self._redis.aclose()

    async def put(self, job: Job) -> Job | None:
        return (await self.put_many([job]))[0]

    async def put_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        now = self._clock()
        args: list[Any] = [self._prefix, repr(now - self._ttl_s), self._capacity, len(jobs)]
        for job in jobs:
            args += [job.id, job.chat_id, job.text, job.attempts, repr(job.not_before)]
            args += [repr(job.created_at or now), job.policy.value, job.markup]
        reply = await self._call(self._put, args)
        if reply and int(reply[0]) < 0:
            raise OutboxFullError(int(reply[1]), self._capacity)
        return [
            dataclasses.replace(job, seq=int(seq), created_at=job.created_at or now)
            if int(seq)
            else None
            for job, seq in zip(jobs, reply, strict=True)
        ]

    async def pending(self, limit: int | None = None) -> list[Job]:
        if limit is not None and limit <= 0:
            return []
        return await self._jobs("pending", -1 if limit is None else limit - 1)

    async def get(self, job_id: str) -> Job | None:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            values = await self._redis.hmget(f"{self._prefix}job:{job_id}", _FIELDS)
        return _job(job_id, values) if values[0] is not None else None

    async def ack(self, job_id: str) -> bool:
        now = self._clock()
        args = [self._prefix, job_id, repr(now), repr(now - self._ttl_s)]
        return bool(await self._call(self._ack, args))

    async def retry(self, job_id: str, *, attempts: int, not_before: float) -> None:
        await self._call(self._retry, [self._prefix, job_id, attempts, repr(not_before)])

    async def mark_sending(self, job_id: str) -> bool:
        return bool(await self._call(self._mark, [self._prefix, job_id]))

    async def dead_letter_sending(self, reason: str, *, keep: Collection[str] = ()) -> list[Job]:
        rows = await self._call(self._sweep, [self._prefix, reason, *keep])
        return [_job(row[0], row[1:]) for row in rows]

    async def park_chat(self, chat_id: int, state: ChatState) -> int:
        if state is ChatState.ACTIVE:
            raise ValueError("park_chat takes BLOCKED or NOT_FOUND; use reactivate_chat")
        return int(await self._call(self._park, [self._prefix, chat_id, "parked", state.value]))

    async def reactivate_chat(self, chat_id: int) -> int:
        return int(await self._call(self._park, [self._prefix, chat_id, "pending", ""]))

    async def chat_state(self, chat_id: int) -> ChatState:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            state = await self._redis.hget(f"{self._prefix}chats", str(chat_id))
        return ChatState(_str(state)) if state is not None else ChatState.ACTIVE

    async def chat_states(self) -> dict[int, ChatState]:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            states = await self._redis.hgetall(f"{self._prefix}chats")
        return {int(chat): ChatState(_str(state)) for chat, state in states.items()}

    async def parked(self, chat_id: int | None = None) -> list[Job]:
        if chat_id is None:
            return await self._jobs("parked", -1)
        return await self._jobs(f"chat:{chat_id}", -1, state="parked")

    async def dead_letter(self, job_id: str, reason: str) -> None:
        await self._call(self._dead, [self._prefix, job_id, reason])

    async def dead_letters(self) -> list[tuple[Job, str]]:
        rows = await self._call(self._read, [self._prefix, "dead", -1, ""])
        return [(_job(row[0], row[1:]), _str(row[7])) for row in rows]

    async def depth(self, state: JobState = "pending") -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return int(await self._redis.zcard(f"{self._prefix}{state}"))

    async def lead(self, owner: str, ttl_s: float) -> bool:
        """Take the lease if free (SET NX PX) or renew it if ``owner`` holds it."""
        ttl_ms = max(1, round(ttl_s * 1000))
        return bool(await self._call(self._lead, [self._prefix, owner, ttl_ms]))

    async def release(self, owner: str) -> None:
        await self._call(self._release, [self._prefix, owner])

    async def _jobs(self, zset: str, stop: int, *, state: str = "") -> list[Job]:
        rows = await self._call(self._read, [self._prefix, zset, stop, state])
        return [_job(row[0], row[1:]) for row in rows]

    async def _call(self, script: AsyncScript, args: list[Any]) -> Any:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return await script(keys=[], args=args)

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError(f"outbox {self._prefix!r} is not open: call open() first")


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _job(job_id: bytes | str, values: Sequence[Any]) -> Job:
    """A job from its hash's ``_FIELDS``, in that order."""
    chat_id, text, seq, attempts, not_before, created_at, _reason, policy = values[:8]
    markup = values[8] if len(values) > 8 else None  # noqa: PLR2004 - the 9th field
    return Job(
        id=_str(job_id),
        chat_id=int(chat_id),
        text=_str(text),
        seq=int(seq),
        attempts=int(attempts),
        not_before=float(not_before),
        created_at=float(created_at),
        # a job stored before policies existed has none: it was sent at least once
        policy=DeliveryPolicy(_str(policy)) if policy else DeliveryPolicy.AT_LEAST_ONCE,
        markup=_str(markup) if markup else "",
    )


# ARGV: prefix, delivered cutoff, capacity, n, then per job: id, chat_id, text, attempts,
# not_before, created_at, policy, markup. Returns a seq per job (0: a duplicate), or {-1, depth}.
_PUT_LUA: Final = """
local p = ARGV[1]; local cutoff = tonumber(ARGV[2]); local cap = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local fresh, seen, count = {}, {}, 0
for i = 1, n do
  local id = ARGV[5 + (i - 1) * 8]
  local dup = seen[id] or redis.call('EXISTS', p .. 'job:' .. id) == 1
  if not dup then
    local at = redis.call('ZSCORE', p .. 'delivered', id)
    dup = at ~= false and tonumber(at) > cutoff
  end
  seen[id] = true; fresh[i] = not dup
  if not dup then count = count + 1 end
end
local depth = redis.call('ZCARD', p .. 'pending') + redis.call('ZCARD', p .. 'parked')
if count > 0 and depth + count > cap then return {-1, depth} end
local out = {}
for i = 1, n do
  out[i] = 0
  if fresh[i] then
    local b = 5 + (i - 1) * 8
    local id = ARGV[b]; local chat = ARGV[b + 1]
    local seq = redis.call('INCR', p .. 'seq')
    local state = 'pending'
    if redis.call('HEXISTS', p .. 'chats', chat) == 1 then state = 'parked' end
    redis.call('HSET', p .. 'job:' .. id, 'chat_id', chat, 'text', ARGV[b + 2], 'seq', seq,
      'attempts', ARGV[b + 3], 'not_before', ARGV[b + 4], 'created_at', ARGV[b + 5],
      'policy', ARGV[b + 6], 'markup', ARGV[b + 7], 'state', state, 'sending', 0)
    redis.call('ZADD', p .. state, seq, id)
    redis.call('ZADD', p .. 'chat:' .. chat, seq, id)
    redis.call('ZREM', p .. 'delivered', id)
    out[i] = seq
  end
end
return out
"""

# ARGV: prefix, id, now, delivered cutoff. Returns 1 if the job was stored, else 0.
_ACK_LUA: Final = """
local p = ARGV[1]; local id = ARGV[2]; local k = p .. 'job:' .. id
local chat = redis.call('HGET', k, 'chat_id')
if not chat then return 0 end
redis.call('DEL', k)
for _, set in ipairs({'pending', 'parked', 'dead', 'sending', 'chat:' .. chat}) do
  redis.call('ZREM', p .. set, id)
end
redis.call('ZADD', p .. 'delivered', ARGV[3], id)
redis.call('ZREMRANGEBYSCORE', p .. 'delivered', '-inf', ARGV[4])
return 1
"""

# ARGV: prefix, id, attempts, not_before. Also clears the "sending" mark.
_RETRY_LUA: Final = """
local k = ARGV[1] .. 'job:' .. ARGV[2]
if redis.call('EXISTS', k) == 1 then
  redis.call('HSET', k, 'attempts', ARGV[3], 'not_before', ARGV[4], 'sending', 0)
  redis.call('ZREM', ARGV[1] .. 'sending', ARGV[2])
end
return 0
"""

# ARGV: prefix, id. Marks a pending job "sending"; 1 if it was pending, else 0.
_MARK_LUA: Final = """
local p = ARGV[1]; local id = ARGV[2]; local k = p .. 'job:' .. id
local job = redis.call('HMGET', k, 'seq', 'state')
if job[2] ~= 'pending' then return 0 end
redis.call('HSET', k, 'sending', 1)
redis.call('ZADD', p .. 'sending', job[1], id)
return 1
"""

# ARGV: prefix, reason, then the ids to keep. Dead-letters every other job marked "sending";
# returns them as _READ_LUA does, by seq.
_SWEEP_LUA: Final = """
local p = ARGV[1]; local keep = {}; local out = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
for _, id in ipairs(redis.call('ZRANGE', p .. 'sending', 0, -1)) do
  if not keep[id] then
    local k = p .. 'job:' .. id
    local job = redis.call('HMGET', k, 'chat_id', 'text', 'seq', 'attempts', 'not_before',
      'created_at', 'reason', 'state', 'policy', 'markup')
    redis.call('ZREM', p .. 'sending', id)
    if job[1] then
      redis.call('ZREM', p .. job[8], id)
      redis.call('ZREM', p .. 'chat:' .. job[1], id)
      redis.call('ZADD', p .. 'dead', job[3], id)
      redis.call('HSET', k, 'state', 'dead', 'reason', ARGV[2], 'sending', 0)
      out[#out + 1] = {id, job[1], job[2], job[3], job[4], job[5], job[6], ARGV[2], job[9],
        job[10]}
    end
  end
end
return out
"""

# Park (to = parked, state = the ChatState) or reactivate (to = pending, state = '') a chat.
# ARGV: prefix, chat_id, to, state. Returns how many jobs moved.
_PARK_LUA: Final = """
local p = ARGV[1]; local chat = ARGV[2]; local to = ARGV[3]
local from = 'parked'
if to == 'parked' then
  from = 'pending'; redis.call('HSET', p .. 'chats', chat, ARGV[4])
else
  redis.call('HDEL', p .. 'chats', chat)
end
local moved = 0
local ids = redis.call('ZRANGE', p .. 'chat:' .. chat, 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  if redis.call('ZREM', p .. from, ids[i]) == 1 then
    redis.call('ZADD', p .. to, ids[i + 1], ids[i])
    redis.call('HSET', p .. 'job:' .. ids[i], 'state', to)
    moved = moved + 1
  end
end
return moved
"""

# ARGV: prefix, id, reason. Moves a pending or parked job to the dead letters.
_DEAD_LUA: Final = """
local p = ARGV[1]; local id = ARGV[2]; local k = p .. 'job:' .. id
local job = redis.call('HMGET', k, 'chat_id', 'seq', 'state')
if not job[1] or job[3] == 'dead' then return 0 end
redis.call('ZREM', p .. job[3], id)
redis.call('ZREM', p .. 'chat:' .. job[1], id)
redis.call('ZREM', p .. 'sending', id)
redis.call('ZADD', p .. 'dead', job[2], id)
redis.call('HSET', k, 'state', 'dead', 'reason', ARGV[3], 'sending', 0)
return 1
"""

# ARGV: prefix, sorted set (after the prefix), stop index, required state ('' for any).
# Returns {id, chat_id, text, seq, attempts, not_before, created_at, reason, policy} per job,
# by seq.
_READ_LUA: Final = """
local p = ARGV[1]; local out = {}
for _, id in ipairs(redis.call('ZRANGE', p .. ARGV[2], 0, tonumber(ARGV[3]))) do
  local job = redis.call('HMGET', p .. 'job:' .. id, 'chat_id', 'text', 'seq', 'attempts',
    'not_before', 'created_at', 'reason', 'state', 'policy', 'markup')
  if job[1] and (ARGV[4] == '' or job[8] == ARGV[4]) then
    out[#out + 1] = {id, job[1], job[2], job[3], job[4], job[5], job[6], job[7], job[9], job[10]}
  end
end
return out
"""

# ARGV: prefix, owner, ttl_ms. Take the free lease or renew our own; 1 if we hold it now.
_LEAD_LUA: Final = """
local k = ARGV[1] .. 'lead'
if redis.call('SET', k, ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
if redis.call('GET', k) == ARGV[2] then
  redis.call('PEXPIRE', k, ARGV[3])
  return 1
end
return 0
"""

# ARGV: prefix, owner. Deletes the lease only if owner holds it.
_RELEASE_LUA: Final = """
local k = ARGV[1] .. 'lead'
if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
return 0
"""
