"""The durable store behind the bot's outbound delivery queue, and its embedded SQLite backend.

A job is one Telegram message to one chat, ready to send. The store keeps each job in one of
three states: pending (waiting for delivery, ordered by ``seq``), parked (its chat is
BLOCKED or NOT_FOUND) or dead (given up, kept with a reason), and remembers delivered ids for
``delivered_ttl_s`` so that a job id is stored at most once. A job keeps its
``DeliveryPolicy``; an ``AT_MOST_ONCE`` job is marked "sending" (``mark_sending``) before its
request goes out, so that after a crash it can be set aside instead of sent again
(``dead_letter_sending``). Pending plus parked jobs are
bounded by ``capacity``: a put that does not fit raises OutboxFullError and stores nothing.
The delivery lease (``lead``/``release``) lets one process of several deliver.

Import it all from here: the types and the ``Outbox`` protocol (``bot.outbox_types``),
``SqliteOutbox`` (below) and ``RedisOutbox`` (``bot.outbox_redis``). It is pure storage: it
does not send, retry on a timer or know aiogram; ``bot.notifier`` does. Store failures
propagate as the backend's own exception (``sqlite3.Error``, ``OSError``; for Redis a
``redis.exceptions.RedisError``, or ``TimeoutError``, an ``OSError``) for the caller to
retry; a retried put is safe because ids dedupe.

``SqliteOutbox`` is the embedded default for a single process: one file in WAL mode with
``synchronous=FULL``, so a job whose put returned survives a SIGKILL or power cut. Other
processes may open the same file (writes are serialised by SQLite's lock); the lease is a row
with its expiry, plus a ``flock`` its holder keeps so that a dead holder is replaced at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot.outbox_redis import RedisOutbox
from bot.outbox_types import (
    DEFAULT_CAPACITY,
    DEFAULT_DELIVERED_TTL_S,
    ChatState,
    DeliveryPolicy,
    Job,
    Outbox,
    OutboxFullError,
    new_job_id,
)
from utils.sqlite_db import SqliteDatabase

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Collection, Sequence

    import aiosqlite

    from bot.outbox_types import JobState

__all__ = (
    "DEFAULT_CAPACITY",
    "DEFAULT_DELIVERED_TTL_S",
    "ChatState",
    "DeliveryPolicy",
    "Job",
    "Outbox",
    "OutboxFullError",
    "RedisOutbox",
    "SqliteOutbox",
    "new_job_id",
)

_PURGE_EVERY_S: Final = 3_600.0  # delivered ids are purged at most this often


class SqliteOutbox:
    """The outbox in one SQLite file (WAL, ``synchronous=FULL``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        capacity: int = DEFAULT_CAPACITY,
        delivered_ttl_s: float = DEFAULT_DELIVERED_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._capacity = capacity
        self._ttl_s = delivered_ttl_s
        self._clock = clock
        self._db = SqliteDatabase(self._path, _SCHEMA, what="outbox", migrate=_migrate)
        self._purged_at = 0.0
        self._lease: tuple[int, str] | None = None  # (locked fd, owner)

    async def open(self) -> None:
        await self._db.open()
        async with self._db.write() as tx:
            await self._purge(tx, self._clock())

    async def close(self) -> None:
        if self._lease is not None:
            await self.release(self._lease[1])
        await self._db.close()

    async def put(self, job: Job) -> Job | None:
        return (await self.put_many([job]))[0]

    async def put_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        now = self._clock()
        async with self._db.write() as tx:
            fresh: dict[str, Job] = {}
            for job in jobs:
                if job.id not in fresh and not await self._known(tx, job.id, now):
                    fresh[job.id] = job
            depth = await _scalar(tx, "SELECT COUNT(*) FROM jobs WHERE state != 'dead'")
            if fresh and depth + len(fresh) > self._capacity:
                raise OutboxFullError(depth, self._capacity)
            stored: dict[str, Job] = {}
            for job in fresh.values():
                blocked = await _scalar(
                    tx, "SELECT COUNT(*) FROM chats WHERE chat_id=?", job.chat_id
                )
                created = job.created_at or now
                await tx.execute("DELETE FROM delivered WHERE id=?", (job.id,))
                row = {
                    **dataclasses.asdict(job),
                    "policy": job.policy.value,
                    "created_at": created,
                    "parked": blocked,
                }
                cursor = await tx.execute(_INSERT, row)
                assert cursor.lastrowid is not None  # noqa: S101 (an INSERT always sets it)
                stored[job.id] = dataclasses.replace(job, seq=cursor.lastrowid, created_at=created)
        return [stored.pop(job.id, None) for job in jobs]

    async def pending(self, limit: int | None = None) -> list[Job]:
        return await self._jobs("state='pending'", (), limit)

    async def get(self, job_id: str) -> Job | None:
        jobs = await self._jobs("id=?", (job_id,), None)
        return jobs[0] if jobs else None

    async def ack(self, job_id: str) -> bool:
        now = self._clock()
        async with self._db.write() as tx:
            cursor = await tx.execute("DELETE FROM jobs WHERE id=?", (job_id,))
            if cursor.rowcount == 0:
                return False
            await tx.execute(
                "INSERT OR REPLACE INTO delivered (id, at) VALUES (?, ?)", (job_id, now)
            )
            if now - self._purged_at >= _PURGE_EVERY_S:
                await self._purge(tx, now)
        return True

    async def retry(self, job_id: str, *, attempts: int, not_before: float) -> None:
        async with self._db.write() as tx:
            await tx.execute(
                "UPDATE jobs SET attempts=?, not_before=?, sending=0 WHERE id=?",
                (attempts, not_before, job_id),
            )

    async def mark_sending(self, job_id: str) -> bool:
        async with self._db.write() as tx:
            cursor = await tx.execute(
                "UPDATE jobs SET sending=1 WHERE id=? AND state='pending'", (job_id,)
            )
        return cursor.rowcount == 1

    async def dead_letter_sending(self, reason: str, *, keep: Collection[str] = ()) -> list[Job]:
        async with self._db.write() as tx:
            async with tx.execute(_SELECT + "sending=1 ORDER BY seq") as rows:
                jobs = [_job(row) async for row in rows if str(row[0]) not in keep]
            await tx.executemany(
                "UPDATE jobs SET state='dead', reason=?, sending=0 WHERE id=?",
                [(reason, job.id) for job in jobs],
            )
        return jobs

    async def park_chat(self, chat_id: int, state: ChatState) -> int:
        if state is ChatState.ACTIVE:
            raise ValueError("park_chat takes BLOCKED or NOT_FOUND; use reactivate_chat")
        async with self._db.write() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO chats (chat_id, state) VALUES (?, ?)", (chat_id, state)
            )
            cursor = await tx.execute(
                "UPDATE jobs SET state='parked' WHERE chat_id=? AND state='pending'", (chat_id,)
            )
        return cursor.rowcount

    async def reactivate_chat(self, chat_id: int) -> int:
        async with self._db.write() as tx:
            await tx.execute("DELETE FROM chats WHERE chat_id=?", (chat_id,))
            cursor = await tx.execute(
                "UPDATE jobs SET state='pending' WHERE chat_id=? AND state='parked'", (chat_id,)
            )
        return cursor.rowcount

    async def chat_state(self, chat_id: int) -> ChatState:
        sql = "SELECT state FROM chats WHERE chat_id=?"
        async with self._db.read() as db, db.execute(sql, (chat_id,)) as rows:
            row = await rows.fetchone()
        return ChatState(row[0]) if row is not None else ChatState.ACTIVE

    async def chat_states(self) -> dict[int, ChatState]:
        async with self._db.read() as db, db.execute("SELECT chat_id, state FROM chats") as rows:
            return {int(row[0]): ChatState(row[1]) async for row in rows}

    async def parked(self, chat_id: int | None = None) -> list[Job]:
        if chat_id is None:
            return await self._jobs("state='parked'", (), None)
        return await self._jobs("state='parked' AND chat_id=?", (chat_id,), None)

    async def dead_letter(self, job_id: str, reason: str) -> None:
        async with self._db.write() as tx:
            await tx.execute(
                "UPDATE jobs SET state='dead', reason=?, sending=0 WHERE id=? AND state!='dead'",
                (reason, job_id),
            )

    async def dead_letters(self) -> list[tuple[Job, str]]:
        async with (
            self._db.read() as db,
            db.execute(_SELECT + "state='dead' ORDER BY seq") as rows,
        ):
            return [(_job(row), str(row[7])) async for row in rows]

    async def depth(self, state: JobState = "pending") -> int:
        async with self._db.read() as db:
            return await _scalar(db, "SELECT COUNT(*) FROM jobs WHERE state=?", state)

    async def lead(self, owner: str, ttl_s: float) -> bool:
        """Take the lease if it is free, lapsed (not renewed within ``ttl_s`` by the
        store's clock) or held by a dead process, or renew it for ``owner``.

        The row ``lease`` names the holder and when its lease lapses; the holder also keeps an
        exclusive ``flock`` on ``<file>.lead-<owner hash>``, which the kernel drops when its
        process dies, so a killed leader is replaced at once and a stuck one after ``ttl_s``.
        """
        if not self._db.is_open:
            raise RuntimeError(f"outbox {self._path} is not open: call open() first")
        if self._lease is not None and self._lease[1] != owner:
            return False  # this store leads for another owner
        mine = self._lock_file(owner)
        fd = self._lease[0] if self._lease else await asyncio.to_thread(_try_flock, mine)
        if fd is None:
            return False
        now = self._clock()
        async with self._db.write() as tx:
            async with tx.execute("SELECT owner, expires_at FROM lease") as rows:
                row = await rows.fetchone()
            won = row is None or str(row[0]) == owner or float(row[1]) <= now
            if not won and row is not None:  # a dead holder's lock is free
                won = await asyncio.to_thread(_unheld, self._lock_file(str(row[0])), drop=True)
            if won:
                await tx.execute(
                    "INSERT OR REPLACE INTO lease (id, owner, expires_at) VALUES (1, ?, ?)",
                    (owner, now + ttl_s),
                )
        if not won:
            self._lease = None
            _unlock(fd, mine)
            return False
        self._lease = (fd, owner)
        return True

    async def release(self, owner: str) -> None:
        if self._lease is None or self._lease[1] != owner:
            return
        fd, self._lease = self._lease[0], None
        async with self._db.write() as tx:
            await tx.execute("DELETE FROM lease WHERE owner=?", (owner,))
        _unlock(fd, self._lock_file(owner))

    def _lock_file(self, owner: str) -> Path:
        digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
        return self._path.with_name(f"{self._path.name}.lead-{digest}")

    async def _known(self, tx: aiosqlite.Connection, job_id: str, now: float) -> bool:
        """Whether the id is stored, or was delivered within ``delivered_ttl_s``."""
        if await _scalar(tx, "SELECT COUNT(*) FROM jobs WHERE id=?", job_id):
            return True
        sql = "SELECT COUNT(*) FROM delivered WHERE id=? AND at>?"
        return bool(await _scalar(tx, sql, job_id, now - self._ttl_s))

    async def _purge(self, tx: aiosqlite.Connection, now: float) -> None:
        await tx.execute("DELETE FROM delivered WHERE at<=?", (now - self._ttl_s,))
        self._purged_at = now

    async def _jobs(self, where: str, args: tuple[object, ...], limit: int | None) -> list[Job]:
        sql = f"{_SELECT}{where} ORDER BY seq"
        if limit is not None:
            sql, args = f"{sql} LIMIT ?", (*args, max(0, limit))
        async with self._db.read() as db, db.execute(sql, args) as rows:
            return [_job(row) async for row in rows]


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused, so always increasing
    id TEXT NOT NULL UNIQUE,
    chat_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    not_before REAL NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'parked', 'dead')),
    reason TEXT,
    policy TEXT NOT NULL DEFAULT 'at_least_once',
    sending INTEGER NOT NULL DEFAULT 0,  -- 1 from mark_sending until the outcome is recorded
    markup TEXT NOT NULL DEFAULT ''  -- inline buttons, JSON rows of [text, callback_data]
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_by_chat ON jobs (chat_id, state);
CREATE TABLE IF NOT EXISTS delivered (id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS delivered_by_time ON delivered (at);
CREATE TABLE IF NOT EXISTS chats (chat_id INTEGER PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires_at REAL NOT NULL
);
"""
#: Columns added since the first schema, for files an older version created: (name, type).
_ADDED: Final = (
    ("policy", "TEXT NOT NULL DEFAULT 'at_least_once'"),
    ("sending", "INTEGER NOT NULL DEFAULT 0"),
    ("markup", "TEXT NOT NULL DEFAULT ''"),
)
_INSERT: Final = (
    "INSERT INTO jobs (id, chat_id, text, attempts, not_before, created_at, policy, markup, "
    "state) VALUES (:id, :chat_id, :text, :attempts, :not_before, :created_at, :policy, :markup, "
    "iif(:parked, 'parked', 'pending'))"
)
_SELECT: Final = (
    "SELECT id, chat_id, text, seq, attempts, not_before, created_at, reason, policy, markup "
    "FROM jobs WHERE "
)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=str(row[0]),
        chat_id=int(row[1]),
        text=str(row[2]),
        seq=int(row[3]),
        attempts=int(row[4]),
        not_before=float(row[5]),
        created_at=float(row[6]),
        policy=DeliveryPolicy(row[8]),
        markup=str(row[9]),
    )


async def _migrate(db: aiosqlite.Connection) -> None:
    """Add the columns a file made by an older version lacks (SQLite adds them in place)."""
    async with db.execute("PRAGMA table_info(jobs)") as rows:
        have = {str(row[1]) async for row in rows}
    for name, kind in _ADDED:
        if name not in have:
            await db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
    await db.execute("CREATE INDEX IF NOT EXISTS jobs_sending ON jobs (seq) WHERE sending=1")


async def _scalar(db: aiosqlite.Connection, sql: str, *args: object) -> int:
    async with db.execute(sql, args) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


def _try_flock(path: Path) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None if another holder has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unheld(path: Path, *, drop: bool) -> bool:
    """Whether nobody holds ``path``'s lock (its holder released it, or died); with ``drop``
    a lock file found so is removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        if drop:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # closing drops a lock taken here
    return True


def _unlock(fd: int, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
