"""The alarm store in Redis, for several bot processes sharing one set of alarms, on a single
Redis or on Redis Cluster.

Same contract as ``alarm_store.SqliteAlarmStore`` (the ``AlarmStore`` protocol). Every
operation that changes more than one key is one Lua script, so it is atomic: a refused
``add`` stores nothing, two processes adding at once never pass a limit, and ``mark_fired``
compares ``seq`` and records the firing in one step. Durability is Redis's own (AOF with
``appendfsync always`` keeps every acknowledged write across a restart); where the node has
replicas, every change a user or a firing makes (add, import, delete, delete_chat, set_state,
pause_chat, resume_chat, mark_fired, set_tz) returns only once a replica has it
(``utils.redis_conn.wait_replicated``), so a failover that promotes it loses none. ``expire``
does not wait: an expiry lost in a failover is made again by the next sweep. Failures
propagate as ``redis.exceptions.RedisError`` (``ReplicationTimeoutError`` when no replica
acknowledged: the change may be on the master alone), or ``TimeoutError`` when Redis does not
answer in ``_TIMEOUT_S``. Retrying a change is safe: an ``add`` whose first try was stored
meets its own condition (``AlarmExistsError`` naming it, no second alarm), a ``mark_fired``
its own ``seq`` (False), a delete finds nothing, a state set again is the same state. A client
it is handed is not closed by ``close``.

Every key lives under ``<prefix>{alarms}:`` (``utils.redis_conn.key_space``; default
``btb:{alarms}:``): one hash tag, so every script runs on one cluster slot. The scripts
(``alarm_store_lua``) get in ``KEYS`` every key named before the call; the keys of a chat they
read from a stored alarm they name under the same key space:

- ``id``: the counter behind short ids
- ``a``: hash id -> the alarm as one JSON row ``[id, chat, "state", seq, fired_at, rearm_at,
  expires_at, data]`` (null when unset; ``data`` is ``alarm_codec.spec_data``): what a read
  returns as it is, and what a script rewrites in place
- ``k``: hash id -> a digest of its condition key; ``b``: hash id -> the state
  ``pause_chat`` paused it from (a few hashes for all alarms rather than a key per alarm:
  a million alarms cost about 600 bytes each, indexes included)
- ``chat:<chat>``: sorted set of the chat's alarm ids (score = id)
- ``o:<chat>``: the chat's open alarms; ``cond:<chat>``: hash condition key -> open alarm id
- ``live``: every live alarm (score = id), what ``armed`` pages through
- ``open``: every open alarm scored by expires_at: the global count and the expiry sweep
- ``h:<chat>``: list of the chat's last firings, newest first
- ``tz``: hash chat -> IANA zone
- ``chgn``, ``chg``: the change log's counter and its entries (``<n>:<id>`` scored by n)

Reads that return alarms build one JSON array per call in Lua, which orjson parses at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any, Final

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from utils.alarms.alarm_codec import (
    condition_key,
    decode,
    decode_firing,
    decode_row,
    encode_firing,
    finite,
    spec_data,
)
from utils.alarms.alarm_errors import AlarmChangesLostError, AlarmExistsError, AlarmLimitError
from utils.alarms.alarm_model import DEFAULT_EXPIRY_S, Alarm
from utils.alarms.alarm_store_lua import (
    ADD,
    CHANGES,
    CHAT,
    CHAT_KEYS,
    DELETE,
    EXPIRE,
    FIXED,
    GET,
    IMPORT,
    MARK,
    PAGE,
    PAUSE,
    PRELUDE,
    PURGE,
    RESUME,
    SET_STATE,
)
from utils.alarms.alarm_store_types import DEFAULT_KEEP_CHANGES, DEFAULT_PAGE, HISTORY_KEEP
from utils.redis_conn import connect, key_space, wait_replicated

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable

    from redis.asyncio.connection import AbstractConnection
    from redis.commands.core import AsyncScript

    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_model import AlarmSpec, AlarmState, Firing
    from utils.redis_conn import RedisClient

__all__ = ("RedisAlarmStore",)

_TIMEOUT_S: Final = 5.0  # a Redis that does not answer in this time is down
_MAX_CONNECTIONS: Final = 64  # of a client ``from_url`` makes: callers' commands in flight
_IMPORT_BATCH: Final = 1_000  # alarms per script in import_alarms
_EXISTS, _CHAT_FULL, _STORE_FULL = -1, -2, -3  # _ADD's refusals


class RedisAlarmStore:
    """The alarm store in Redis; see the module docstring for the key layout."""

    def __init__(
        self, redis: RedisClient, *, prefix: str = "btb:", keep_changes: int = DEFAULT_KEEP_CHANGES
    ) -> None:
        self._redis = redis
        self._base = key_space(prefix, "alarms")
        self._fixed = [self._base, *(self._base + name for name in FIXED)]  # KEYS[1..9]
        self._keep = keep_changes
        self._owns_client = False
        self._is_open = False

        def script(body: str) -> AsyncScript:
            return redis.register_script(PRELUDE + body)

        self._add, self._import, self._get = script(ADD), script(IMPORT), script(GET)
        self._chat, self._delete, self._delete_chat = script(CHAT), script(DELETE), script(PURGE)
        self._set_state, self._pause = script(SET_STATE), script(PAUSE)
        self._resume, self._mark = script(RESUME), script(MARK)
        self._expire, self._page, self._changes = script(EXPIRE), script(PAGE), script(CHANGES)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "btb:", keep_changes: int = DEFAULT_KEEP_CHANGES
    ) -> RedisAlarmStore:
        """A store on its own client (``redis://`` or ``redis+cluster://``), which ``close``
        closes."""
        client = connect(url, max_connections=_MAX_CONNECTIONS, client_name=f"{prefix}alarms")
        store = cls(client, prefix=prefix, keep_changes=keep_changes)
        store._owns_client = True
        return store

    async def open(self) -> None:
        """Check that Redis answers; the store needs no set-up."""
        async with asyncio.timeout(_TIMEOUT_S):
            await self._redis.ping()
        self._is_open = True

    async def close(self) -> None:
        self._is_open = False
        if self._owns_client:
            await self._redis.aclose()

    async def add(
        self,
        chat_id: int,
        user_id: int,
        spec: AlarmSpec,
        *,
        now: float,
        per_chat_limit: int,
        global_limit: int,
    ) -> Alarm:
        expires_at = finite(
            spec.expires_at if spec.expires_at is not None else now + DEFAULT_EXPIRY_S
        )
        args = [chat_id, _digest(spec), per_chat_limit, global_limit]
        data = spec_data(user_id, now, spec)
        reply = await self._call(
            self._add, [*args, data, repr(expires_at)], chats=[chat_id], durable=True
        )
        code = int(reply[0])
        if code == _EXISTS:
            raise AlarmExistsError(int(reply[1]))
        if code == _CHAT_FULL:
            raise AlarmLimitError(int(reply[1]), per_chat_limit, scope="chat")
        if code == _STORE_FULL:
            raise AlarmLimitError(int(reply[1]), global_limit, scope="global")
        return Alarm(
            id=code,
            chat_id=chat_id,
            user_id=user_id,
            spec=spec,
            created_at=float(now),
            expires_at=expires_at,
        )

    async def import_alarms(self, alarms: Iterable[Alarm]) -> int:
        """Atomic per batch of ``_IMPORT_BATCH`` alarms, not as a whole."""
        done, batch = 0, []
        for alarm in alarms:
            batch.append(alarm)
            if len(batch) == _IMPORT_BATCH:
                done += await self._import_batch(batch)
                batch = []
        return done + (await self._import_batch(batch) if batch else 0)

    async def _import_batch(self, alarms: list[Alarm]) -> int:
        args: list[Any] = [len(alarms)]
        chats: list[int] = []
        for a in alarms:
            chats.append(a.chat_id)
            row = f'[{a.id},{a.chat_id},"{a.state.value}",{a.seq},{_json(a.fired_at)},'
            row += f"{_json(a.rearm_at)},{finite(a.expires_at)!r},"
            data = spec_data(a.user_id, a.created_at, a.spec)
            args += [a.id, _digest(a.spec), row.encode() + data + b"]"]
        reply = await self._call(self._import, args, chats=chats, durable=True)
        if int(reply[0]) < 0:
            raise ValueError(
                f"alarm {int(reply[1])} is already stored: this batch was not imported"
            )
        return int(reply[0])

    async def get(self, alarm_id: int) -> Alarm | None:
        alarms = _alarms(await self._call(self._get, [alarm_id]))
        return alarms[0] if alarms else None

    async def chat_alarms(self, chat_id: int, *, offset: int = 0, limit: int = 10) -> list[Alarm]:
        if limit <= 0:
            return []
        start = max(0, offset)
        args = [start, start + limit - 1]
        return _alarms(await self._call(self._chat, args, chats=[chat_id]))

    async def count(self, chat_id: int) -> int:
        return await self._zcard(f"chat:{chat_id}")

    async def open_count(self, chat_id: int | None = None) -> int:
        return await self._zcard("open" if chat_id is None else f"o:{chat_id}")

    async def delete(self, alarm_id: int) -> bool:
        return bool(await self._call(self._delete, [alarm_id], durable=True))

    async def delete_chat(self, chat_id: int) -> int:
        return int(await self._call(self._delete_chat, [], chats=[chat_id], durable=True))

    async def set_state(
        self,
        alarm_id: int,
        state: AlarmState,
        *,
        rearm_at: float | None = None,
        expires_at: float | None = None,
    ) -> Alarm | None:
        args = [alarm_id, state.value, _optional(rearm_at), _optional(expires_at)]
        reply = await self._call(self._set_state, args, durable=True)
        alarms = _alarms(reply) if reply is not None else []
        return alarms[0] if alarms else None

    async def pause_chat(self, chat_id: int) -> int:
        return int(await self._call(self._pause, [], chats=[chat_id], durable=True))

    async def resume_chat(self, chat_id: int) -> int:
        return int(await self._call(self._resume, [], chats=[chat_id], durable=True))

    async def armed(self, *, page: int = DEFAULT_PAGE) -> AsyncIterator[Alarm]:
        async with contextlib.aclosing(self.armed_rows(page=page)) as pages:
            async for rows in pages:
                for row in rows:
                    yield decode_row(row)

    async def armed_rows(self, *, page: int = DEFAULT_PAGE) -> AsyncGenerator[list[LiveRow], None]:
        """Pipelined on a connection of its own: the next page's request is on the wire
        before this page is handed over, so Redis reads while the caller works (a task
        reading ahead would only send it at the caller's next await)."""
        last, count, rows = await self._call(self._page, [0, page])  # loads the script
        async with self._connection() as conn:
            asked: int | None = None  # the last id of the page asked for and not read yet
            try:
                while True:
                    if int(count) == page:
                        asked = int(last)
                        command = ("EVALSHA", self._page.sha, len(self._fixed), *self._fixed)
                        await conn.send_command(*command, self._keep, asked, page)
                    parsed: list[LiveRow] = orjson.loads(rows)
                    if parsed:
                        yield parsed
                    if asked is None:
                        return
                    try:
                        async with asyncio.timeout(_TIMEOUT_S):
                            last, count, rows = await conn.read_response()
                    except NoScriptError:  # flushed meanwhile: the script object loads it again
                        last, count, rows = await self._call(self._page, [asked, page])
                    asked = None
            finally:
                if asked is not None:  # stopped early: its answer is unread, so is the connection
                    await conn.disconnect()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AbstractConnection]:
        """A connection of its own to the node that holds the store's slot."""
        if isinstance(self._redis, RedisCluster):
            node = self._redis.get_node_from_key(self._base)
            if node is None:
                raise RedisError(f"no cluster node serves {self._base!r} now")
            own = node.acquire_connection()
            try:
                yield own
            finally:
                node.release(own)
            return
        pool = self._redis.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # a decorated method
        try:
            yield conn
        finally:
            await pool.release(conn)

    async def mark_fired(
        self, firing: Firing, *, state: AlarmState, rearm_at: float | None
    ) -> bool:
        args: list[Any] = [firing.alarm_id, firing.seq - 1, firing.seq, state.value]
        args += [repr(finite(firing.fired_at)), _optional(rearm_at), encode_firing(firing)]
        return bool(await self._call(self._mark, [*args, HISTORY_KEEP], durable=True))

    async def history(self, chat_id: int, limit: int = 20) -> list[Firing]:
        if limit <= 0:
            return []
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            rows = await self._redis.lrange(f"{self._base}h:{chat_id}", 0, limit - 1)
        return [decode_firing(row) for row in rows]

    async def expire(self, now: float, *, limit: int = 1_000) -> list[Alarm]:
        alarms = _alarms(await self._call(self._expire, [repr(finite(now)), limit]))
        return sorted(alarms, key=lambda a: (a.expires_at, a.id))

    async def get_tz(self, chat_id: int) -> str | None:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            tz = await self._redis.hget(f"{self._base}tz", str(chat_id))
        return None if tz is None else tz.decode() if isinstance(tz, bytes) else str(tz)

    async def set_tz(self, chat_id: int, tz: str | None) -> None:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            if tz is None:
                await self._redis.hdel(f"{self._base}tz", str(chat_id))
            else:
                await self._redis.hset(f"{self._base}tz", str(chat_id), tz)
            await wait_replicated(self._redis, self._base)

    async def change_cursor(self) -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            head = await self._redis.get(f"{self._base}chgn")
        return int(head or 0)

    async def changes_since(self, cursor: int, *, limit: int = 10_000) -> tuple[list[int], int]:
        head, oldest, entries = await self._call(self._changes, [cursor, limit])
        head, oldest = int(head), int(oldest)
        if cursor > head or (cursor < head and (oldest == 0 or oldest > cursor + 1)):
            raise AlarmChangesLostError(head)  # trimmed, or a cursor from another log
        if not entries:
            return [], head
        pairs = [_str(entry).split(":") for entry in entries]
        return list(dict.fromkeys(int(alarm) for _, alarm in pairs)), int(pairs[-1][0])

    async def _zcard(self, key: str) -> int:
        self._check_open()
        async with asyncio.timeout(_TIMEOUT_S):
            return int(await self._redis.zcard(self._base + key))

    async def _call(
        self,
        script: AsyncScript,
        args: list[Any],
        *,
        chats: Iterable[int] = (),
        durable: bool = False,
    ) -> Any:
        """Run ``script`` with the fixed keys and those of ``chats`` (``alarm_store_lua``);
        with ``durable``, return once a replica has its writes."""
        self._check_open()
        keys = [*self._fixed, *(self._base + k.format(c) for c in chats for k in CHAT_KEYS)]
        async with asyncio.timeout(_TIMEOUT_S):
            reply = await script(keys=keys, args=[self._keep, *args])
            if durable:
                await wait_replicated(self._redis, self._base)
            return reply

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError(f"alarm store {self._base!r} is not open: call open() first")


def _digest(spec: AlarmSpec) -> str:
    """The condition key in 24 characters (96 bits: a collision is out of reach)."""
    return hashlib.blake2b(condition_key(spec).encode(), digest_size=12).hexdigest()


def _optional(value: float | None) -> str:
    return "" if value is None else repr(finite(value))


def _json(value: float | None) -> str:
    return "null" if value is None else repr(finite(value))


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _alarms(page: bytes | str) -> list[Alarm]:
    """Alarms from a JSON array of ``[id, chat, state, seq, fired, rearm, expires, data]``."""
    return [decode(i, c, d, s, q, f, r, e) for i, c, s, q, f, r, e, d in orjson.loads(page)]
