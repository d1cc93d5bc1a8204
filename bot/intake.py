"""The durable store behind the bot's incoming updates, and its embedded SQLite backend.

An update is put here before Telegram is told it arrived (the next ``getUpdates`` offset, or
the webhook's 200) and marked done once its handler has finished, so a crash in between
loses nothing: the stored update is handled again by the next process. Each update id is
stored at most once: ``put`` refuses an id that is stored or was done within
``done_ttl_s``, which is longer than the 24 h Telegram keeps an update, so a re-delivery
after a crash is not handled twice.

Every store has an ``owner``: the process that stored an update handles it. An update whose
owner is gone (it crashed, or closed with the update unfinished) is taken over by ``adopt``;
an update of a live owner never is, so several processes on one store do not handle one
update twice. How a store knows an owner is gone is its own: here a ``flock`` the kernel
drops when the process dies (so a restart adopts at once), in ``bot.intake_redis`` a lease
of ``lease_s`` the owner renews with ``keepalive``.

A store several processes share (webhook workers behind a load balancer) also gives
``ChatTurns``, so that a chat's updates keep their order across processes, not only inside
one: ``bot.receiver`` then handles each chat's stored updates in update-id order, one at a
time, in whichever process holds the chat's turn. The Redis store does; this SQLite one, for
a single process, does not.

It is pure storage, like the outbox: it knows no aiogram and handles nothing
(``bot.receiver`` does). Store failures propagate as the backend's own exception
(``sqlite3.Error``, ``OSError``; ``redis.exceptions.RedisError`` or ``TimeoutError``).

``SqliteIntake`` keeps one file in WAL mode with ``synchronous=FULL``, so an update whose put
returned survives a SIGKILL or a power cut; other processes may open the same file. Owners'
locks are files in the directory ``<file>.owners``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from utils.sqlite_db import SqliteDatabase

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

__all__ = (
    "DEFAULT_DONE_TTL_S",
    "ChatTurns",
    "Intake",
    "SqliteIntake",
    "StoredUpdate",
    "Taken",
    "new_owner",
)

#: Telegram keeps an unconfirmed update 24 h; a done id is remembered a little longer.
DEFAULT_DONE_TTL_S: Final = 25 * 3_600.0
_PURGE_EVERY_S: Final = 600.0  # done ids past their TTL are purged at most this often


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredUpdate:
    """One update as it was received."""

    update_id: int
    raw: str  # the Update as JSON
    received_at: float  # unix time of the put


class Taken(Enum):
    """What ``ChatTurns.put_in_chat`` did with an update."""

    REFUSED = 0  # stored already, or done within the TTL: a repeated delivery
    QUEUED = 1  # stored; another live owner has the chat's turn and will handle it
    YOUR_TURN = 2  # stored; the chat's turn is the putter's: it handles the chat's queue


def new_owner() -> str:
    return uuid.uuid4().hex


class Intake(Protocol):
    """What ``bot.receiver`` needs from a store; ``SqliteIntake`` and ``RedisIntake`` give it."""

    @property
    def owner(self) -> str:
        """This store's owner id, recorded with every update it puts or adopts."""

    async def open(self) -> None:
        """Open the store and declare this owner alive."""

    async def close(self) -> None:
        """Close it; updates still stored become adoptable by another store."""

    async def put(self, update_id: int, raw: str) -> bool:
        """Store the update atomically, owned by this store; True once it is durable.

        False (storing nothing) when the id is stored, by any owner, or was done within
        ``done_ttl_s``.
        """

    async def pending(self) -> list[StoredUpdate]:
        """Every stored update (not done, any owner), by update id."""

    async def adopt(self) -> list[StoredUpdate]:
        """Take over the stored updates whose owner is gone; those, by update id."""

    async def done(self, update_id: int) -> None:
        """Handled: forget the update, remember its id for ``done_ttl_s``. Idempotent."""

    async def depth(self) -> int:
        """How many updates are stored (not done)."""

    async def keepalive(self) -> None:
        """Tell other stores this owner is alive (for ``lease_s`` more, where that applies)."""


class ChatTurns(Protocol):
    """A shared intake's chat queues: each chat's stored updates are handled in update-id
    order by the one owner whose turn it is, whichever process stored them."""

    async def put_in_chat(self, update_id: int, raw: str, chat: int | None) -> Taken:
        """``put``, also queueing the update in ``chat`` (None: updates naming no chat); the
        chat's turn goes to this owner unless another live owner holds it."""

    async def first_in_chat(self, chat: int | None) -> StoredUpdate | None:
        """The chat's first queued update while it is this owner's turn; None when it is not
        or the queue is empty (the turn ends)."""

    async def done_in_chat(
        self, update_id: int, chat: int | None, *, take_next: bool = True
    ) -> StoredUpdate | None:
        """``done``, then the chat's next update as ``first_in_chat`` does; without
        ``take_next`` the turn is handed over instead."""

    async def hand_over(self, chat: int | None) -> None:
        """End this owner's turn; the chat's queued updates wait for ``adopt_chats``."""

    async def adopt_chats(self) -> list[tuple[int | None, int]]:
        """Take the turn of every chat with queued updates and no live holder: those chats,
        each with how many updates it has queued."""


class SqliteIntake:
    """The intake in one SQLite file (WAL, ``synchronous=FULL``); owners alive by ``flock``."""

    def __init__(
        self,
        path: str | Path,
        *,
        done_ttl_s: float = DEFAULT_DONE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._owners = self._path.with_name(self._path.name + ".owners")
        self._ttl_s = done_ttl_s
        self._clock = clock
        self._owner = new_owner()
        self._owner_fd: int | None = None
        self._db = SqliteDatabase(self._path, _SCHEMA, what="intake")
        self._purged_at = 0.0

    @property
    def owner(self) -> str:
        return self._owner

    async def open(self) -> None:
        if self._db.is_open:
            raise RuntimeError(f"intake {self._path} is already open")
        await asyncio.to_thread(self._owners.mkdir, parents=True, exist_ok=True)
        # Alive before any row names this owner, so an adopter never mistakes it for gone.
        self._owner_fd = await asyncio.to_thread(_lock_owner, self._owners / self._owner)
        try:
            await self._db.open()
        except BaseException:
            await asyncio.to_thread(self._release_owner)
            raise

    async def close(self) -> None:
        await self._db.close()
        await asyncio.to_thread(self._release_owner)

    async def put(self, update_id: int, raw: str) -> bool:
        now = self._clock()
        async with self._db.write() as tx:
            cursor = await tx.execute(_PUT, (update_id, raw, now, self._owner, now - self._ttl_s))
            stored = cursor.rowcount == 1
            if stored:
                await tx.execute("DELETE FROM done WHERE update_id=?", (update_id,))
        return stored

    async def pending(self) -> list[StoredUpdate]:
        async with self._db.read() as db, db.execute(_SELECT + " ORDER BY update_id") as rows:
            return [_stored(row) async for row in rows]

    async def adopt(self) -> list[StoredUpdate]:
        sql = "SELECT DISTINCT owner FROM updates WHERE owner != ?"
        async with self._db.read() as db, db.execute(sql, (self._owner,)) as rows:
            others = [str(row[0]) async for row in rows]
        gone = [o for o in others if not await asyncio.to_thread(_owner_alive, self._owners / o)]
        if not gone:
            return []
        marks = ",".join("?" * len(gone))
        async with self._db.write() as tx:
            where = f" WHERE owner IN ({marks}) ORDER BY update_id"  # only placeholders
            async with tx.execute(_SELECT + where, gone) as rows:
                adopted = [_stored(row) async for row in rows]
            sql = f"UPDATE updates SET owner=? WHERE owner IN ({marks})"  # noqa: S608 - only ?s
            await tx.execute(sql, (self._owner, *gone))
        return adopted

    async def done(self, update_id: int) -> None:
        now = self._clock()
        async with self._db.write() as tx:
            await tx.execute("DELETE FROM updates WHERE update_id=?", (update_id,))
            await tx.execute(
                "INSERT OR REPLACE INTO done (update_id, at) VALUES (?, ?)", (update_id, now)
            )
            if now - self._purged_at >= _PURGE_EVERY_S:
                await tx.execute("DELETE FROM done WHERE at<=?", (now - self._ttl_s,))
                self._purged_at = now

    async def depth(self) -> int:
        async with self._db.read() as db, db.execute("SELECT COUNT(*) FROM updates") as rows:
            row = await rows.fetchone()
        return int(row[0]) if row is not None else 0

    async def keepalive(self) -> None:
        """Nothing to renew: the ``flock`` lasts as long as the process."""

    def _release_owner(self) -> None:
        fd, self._owner_fd = self._owner_fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self._owners / self._owner).unlink()
        os.close(fd)  # drops the flock


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS updates (
    update_id INTEGER PRIMARY KEY,
    raw TEXT NOT NULL,
    received_at REAL NOT NULL,
    owner TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_by_owner ON updates (owner);
CREATE TABLE IF NOT EXISTS done (update_id INTEGER PRIMARY KEY, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS done_by_time ON done (at);
"""
# Parameters: update_id, raw, received_at, owner, done cutoff. Inserts nothing for an id that
# is stored or was done after the cutoff.
_PUT: Final = """
INSERT INTO updates (update_id, raw, received_at, owner)
SELECT ?1, ?2, ?3, ?4
WHERE NOT EXISTS (SELECT 1 FROM updates WHERE update_id=?1)
  AND NOT EXISTS (SELECT 1 FROM done WHERE update_id=?1 AND at>?5)
"""
_SELECT: Final = "SELECT update_id, raw, received_at FROM updates"


def _stored(row: sqlite3.Row) -> StoredUpdate:
    return StoredUpdate(update_id=int(row[0]), raw=str(row[1]), received_at=float(row[2]))


def _lock_owner(path: Path) -> int:
    """An fd holding an exclusive lock on ``path``, created for this owner."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _owner_alive(path: Path) -> bool:
    """Whether the owner whose lock file this is still holds it; a gone owner's file is
    removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    finally:
        os.close(fd)
