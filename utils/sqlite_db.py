"""One durable SQLite file behind one aiosqlite connection: the embedded default of every store
the bot keeps (outbox, intake, alarms). WAL with ``synchronous=FULL`` (a committed transaction
survives a power cut), the schema applied on open, and statements serialised by one lock:
``read()`` for queries, ``write()`` for one ``BEGIN IMMEDIATE`` transaction, committed on exit
and rolled back on any exception."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiosqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ("SqliteDatabase",)

_BUSY_TIMEOUT_S: Final = 10.0  # another process's write transaction: wait this long for it


class SqliteDatabase:
    """``what`` names the store in errors ("outbox data/outbox.sqlite3 is not open")."""

    def __init__(
        self,
        path: str | Path,
        schema: str,
        *,
        what: str,
        migrate: Callable[[aiosqlite.Connection], Awaitable[None]] | None = None,
    ) -> None:
        """``migrate`` runs after the schema: it brings a file an older version made up to it."""
        self.path = Path(path)
        self._schema, self._what, self._migrate = schema, what, migrate
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def open(self) -> None:
        """Create the file (and its folder) if needed, set WAL and FULL sync, apply the schema."""
        if self._db is not None:
            raise RuntimeError(f"{self._what} {self.path} is already open")
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_S)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.executescript(self._schema)
            if self._migrate is not None:
                await self._migrate(db)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._db is None:
            raise RuntimeError(f"{self._what} {self.path} is not open: call open() first")
        async with self._lock:
            yield self._db

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One IMMEDIATE transaction: committed on exit, rolled back on any exception."""
        async with self.read() as db:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
