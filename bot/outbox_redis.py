"""The outbox in Redis, for several bot processes sharing one queue and one delivery lease, on
a single Redis or on Redis Cluster.

Same contract as ``bot.outbox.SqliteOutbox`` (the ``Outbox`` protocol); every operation that
touches more than one key is one Lua script (``bot.outbox_lua``), so it is atomic.
Durability is Redis's own (AOF with ``appendfsync always`` for the SQLite guarantee); where
the node has replicas, a put and an ack return only once a replica has them
(``utils.redis_conn.wait_replicated``), so a failover that promotes it loses neither a job
nor a delivery (a lost ack would send the message again). Failures propagate as
``redis.exceptions.RedisError`` (``ReplicationTimeoutError`` when no replica acknowledged:
the write may be on the master alone), or ``TimeoutError`` when Redis does not answer in
``_TIMEOUT_S``; either is safe to retry: a put of an id already stored stores nothing, an ack
of a job already acked does nothing. It does not send, and it does not close a client it was
handed.

Keys, all under ``<prefix>{outbox}:`` (``utils.redis_conn.key_space``; default prefix
``btb:``): one hash tag, so every key is in one cluster slot and each script runs there.
Scripts get in ``KEYS`` every key named before the call; the few they find in stored data (a
job's chat, the jobs of a set) they name under the same key space:

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

from bot import outbox_lua
from bot.outbox_types import (
    DEFAULT_CAPACITY,
    DEFAULT_DELIVERED_TTL_S,
    ChatState,
    DeliveryPolicy,
    Job,
    OutboxFullError,
)
from utils.redis_conn import connect, key_space, wait_replicated

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from redis.commands.core import AsyncScript

    from bot.outbox_types import JobState
    from utils.redis_conn import RedisClient

__all__ = ("RedisOutbox",)

_TIMEOUT_S: Final = 5.0  # a Redis that does not answer in this time is down
_MAX_CONNECTIONS: Final = 64  # of a client ``from_url`` makes: callers' commands in flight
_SETS: Final = ("pending", "parked", "dead")  # the sorted sets by state, in the scripts' order
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


class RedisOutbox:
    """The outbox in Redis; see the module docstring for the key layout."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = "btb:",
        capacity: int = DEFAULT_CAPACITY,
        delivered_ttl_s: float = DEFAULT_DELIVERED_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._space = key_space(prefix, "outbox")
        self._capacity = capacity
        self._ttl_s = delivered_ttl_s
        self._clock = clock
        self._owns_client = False
        self._is_open = False
        script = redis.register_script
        self._put, self._ack = script(outbox_lua.PUT), script(outbox_lua.ACK)
        self._retry, self._mark = script(outbox_lua.RETRY), script(outbox_lua.MARK)
        self._sweep, self._park = script(outbox_lua.SWEEP), script(outbox_lua.PARK)
        self._dead, self._read = script(outbox_lua.DEAD), script(outbox_lua.READ)
        self._lead, self._release = script(outbox_lua.LEAD), script(outbox_lua.RELEASE)

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
        """An outbox on its own client (``redis://`` or ``redis+cluster://``), which
        ``close`` closes."""
        outbox = cls(
            connect(url, max_connections=_MAX_CONNECTIONS, client_name=f"{prefix}outbox"),
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
        """Returns once a replica has the jobs, where the node has replicas; a duplicate
        (None) too, so a put retried after a failure returns only once the first one is
        safe."""
        now = self._clock()
        keys = self._keys("seq", "pending", "parked", "chats", "delivered")
        args: list[Any] = [repr(now - self._ttl_s), self._capacity, len(jobs)]
        for job in jobs:
            keys += self._keys(f"job:{job.id}", f"chat:{job.chat_id}")
            args += [job.id, job.chat_id, job.text, job.attempts, repr(job.not_before)]
            args += [repr(job.created_at or now), job.policy.value, job.markup]
        reply = await self._call(self._put, keys, args, durable=bool(jobs))
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
            values = await self._redis.hmget(f"{self._space}job:{job_id}", _FIELDS)
        return _job(job_id, values) if values[0] is not None else None

    async def ack(self, job_id: str) -> bool:
        """Returns once a replica has it, where the node has replicas."""
        now = self._clock()
        keys = [self._space, *self._keys(f"job:{job_id}", *_SETS, "sending", "delivered")]
        args = [job_id, repr(now), repr(now - self._ttl_s)]
        return bool(await self._call(self._ack, keys, args, durable=True))

    async def retry(self, job_id: str, *, attempts: int, not_before: float) -> None:
        keys = self._keys(f"job:{job_id}", "sending")
        await self._call(self._retry, keys, [job_id, attempts, repr(not_before)])

    async def mark_sending(self, job_id: str) -> bool:
        return bool(await self._call(self._mark, self._keys(f"job:{job_id}", "sending"), [job_id]))

    async def dead_letter_sending(self, reason: str, *, keep: Collection[str] = ()) -> list[Job]:
        keys = [self._space, *self._keys("sending", *_SETS)]
        rows = await self._call(self._sweep, keys, [reason, *keep])
        return [_job(row[0], row[1:]) for row in rows]

    async def park_chat(self, chat_id: int, state: ChatState) -> int:
        if state is ChatState.ACTIVE:
            raise ValueError("park_chat takes BLOCKED or NOT_FOUND; use reactivate_chat")
        return await self._move_chat(chat_id, "parked", state.value)

    async def reactivate_chat(self, chat_id: int) -> int:
        return await self._move_chat(chat_id, "pending", "")

    async def chat_state(self, chat_id: int) -> ChatState:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            state = await self._redis.hget(f"{self._space}chats", str(chat_id))
        return ChatState(_str(state)) if state is not None else ChatState.ACTIVE

    async def chat_states(self) -> dict[int, ChatState]:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            states = await self._redis.hgetall(f"{self._space}chats")
        return {int(chat): ChatState(_str(state)) for chat, state in states.items()}

    async def parked(self, chat_id: int | None = None) -> list[Job]:
        if chat_id is None:
            return await self._jobs("parked", -1)
        return await self._jobs(f"chat:{chat_id}", -1, state="parked")

    async def dead_letter(self, job_id: str, reason: str) -> None:
        keys = [self._space, *self._keys(f"job:{job_id}", *_SETS, "sending")]
        await self._call(self._dead, keys, [job_id, reason])

    async def dead_letters(self) -> list[tuple[Job, str]]:
        rows = await self._call(self._read, [self._space, *self._keys("dead")], [-1, ""])
        return [(_job(row[0], row[1:]), _str(row[7])) for row in rows]

    async def depth(self, state: JobState = "pending") -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return int(await self._redis.zcard(f"{self._space}{state}"))

    async def lead(self, owner: str, ttl_s: float) -> bool:
        """Take the lease if free (SET NX PX) or renew it if ``owner`` holds it."""
        ttl_ms = max(1, round(ttl_s * 1000))
        return bool(await self._call(self._lead, self._keys("lead"), [owner, ttl_ms]))

    async def release(self, owner: str) -> None:
        await self._call(self._release, self._keys("lead"), [owner])

    async def _move_chat(self, chat_id: int, to: str, state: str) -> int:
        keys = [self._space, *self._keys("chats", f"chat:{chat_id}", "pending", "parked")]
        return int(await self._call(self._park, keys, [chat_id, to, state]))

    async def _jobs(self, zset: str, stop: int, *, state: str = "") -> list[Job]:
        rows = await self._call(self._read, [self._space, *self._keys(zset)], [stop, state])
        return [_job(row[0], row[1:]) for row in rows]

    def _keys(self, *names: str) -> list[str]:
        return [self._space + name for name in names]

    async def _call(
        self, script: AsyncScript, keys: list[str], args: list[Any], *, durable: bool = False
    ) -> Any:
        """Run ``script``; with ``durable``, return once a replica has its writes."""
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            reply = await script(keys=keys, args=args)
            if durable:
                await wait_replicated(self._redis, keys[0])
            return reply

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError(f"outbox {self._space!r} is not open: call open() first")


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
