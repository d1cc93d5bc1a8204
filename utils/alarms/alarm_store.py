"""Where alarms live: import the ``AlarmStore`` protocol (``alarm_store_types``), its errors,
``SqliteAlarmStore`` (below) and ``RedisAlarmStore`` (``alarm_store_redis``) from here.

Two backends keep one contract (one test suite runs over both): SQLite (the embedded
default, one file) and Redis (for several processes). Every operation that reads and then
writes is one transaction (SQLite) or one Lua script (Redis), so a refusal stores nothing and
two stores on one database never overshoot a limit.

The contract (live and open alarms, what each operation promises) is ``AlarmStore``'s, in
``alarm_store_types``.

``SqliteAlarmStore``: one file, WAL, ``synchronous=FULL`` (a write that returned survives a
power cut); other processes may open the same file, SQLite serialises their writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

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
from utils.alarms.alarm_model import DEFAULT_EXPIRY_S, Alarm, AlarmState
from utils.alarms.alarm_store_redis import RedisAlarmStore
from utils.alarms.alarm_store_types import (
    DEFAULT_KEEP_CHANGES,
    DEFAULT_PAGE,
    HISTORY_KEEP,
    AlarmStore,
)
from utils.sqlite_db import SqliteDatabase

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable

    import aiosqlite

    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_model import AlarmSpec, Firing

__all__ = (
    "DEFAULT_KEEP_CHANGES",
    "DEFAULT_PAGE",
    "HISTORY_KEEP",
    "AlarmChangesLostError",
    "AlarmExistsError",
    "AlarmLimitError",
    "AlarmStore",
    "RedisAlarmStore",
    "SqliteAlarmStore",
)

_TRIM_EVERY: Final = 256  # writes between two trims of the change log
_IMPORT_CHECK: Final = 500  # ids per look-up in import_alarms (SQLite allows 999 variables)


class SqliteAlarmStore:
    """The alarm store in one SQLite file (WAL, ``synchronous=FULL``)."""

    def __init__(self, path: str | Path, *, keep_changes: int = DEFAULT_KEEP_CHANGES) -> None:
        self._path = Path(path)
        self._keep = keep_changes
        self._db = SqliteDatabase(self._path, _SCHEMA, what="alarm store")
        self._writes = 0

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

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
        cond = condition_key(spec)
        data = spec_data(user_id, now, spec)
        async with self._write() as tx:
            sql = "SELECT id FROM alarms WHERE chat_id=? AND cond=? AND is_open LIMIT 1"
            if (existing := await _scalar(tx, sql, chat_id, cond)) is not None:
                raise AlarmExistsError(existing)
            sql = "SELECT COUNT(*) FROM alarms WHERE chat_id=? AND is_open"
            if (count := await _scalar(tx, sql, chat_id)) >= per_chat_limit:
                raise AlarmLimitError(count, per_chat_limit, scope="chat")
            if (total := await _scalar(tx, _OPEN_TOTAL)) >= global_limit:
                raise AlarmLimitError(total, global_limit, scope="global")
            cursor = await tx.execute(
                "INSERT INTO alarms (chat_id, cond, state, expires_at, data) VALUES (?,?,?,?,?)",
                (chat_id, cond, AlarmState.ARMED.value, expires_at, data),
            )
            alarm_id = cursor.lastrowid
        assert alarm_id is not None  # noqa: S101 (an INSERT always sets it)
        return Alarm(
            id=alarm_id,
            chat_id=chat_id,
            user_id=user_id,
            spec=spec,
            created_at=float(now),
            expires_at=expires_at,
        )

    async def import_alarms(self, alarms: Iterable[Alarm]) -> int:
        rows = [
            (
                *(a.id, a.chat_id, condition_key(a.spec), a.state.value, a.seq),
                None if a.fired_at is None else finite(a.fired_at),
                None if a.rearm_at is None else finite(a.rearm_at),
                finite(a.expires_at),
                spec_data(a.user_id, a.created_at, a.spec),
            )
            for a in alarms
        ]
        async with self._write() as tx:
            for start in range(0, len(rows), _IMPORT_CHECK):
                ids = [row[0] for row in rows[start : start + _IMPORT_CHECK]]
                marks = ",".join("?" * len(ids))
                sql = f"SELECT min(id) FROM alarms WHERE id IN ({marks})"  # noqa: S608 (marks)
                if (taken := await _scalar(tx, sql, *ids)) is not None:
                    raise ValueError(f"alarm {taken} is already stored: nothing was imported")
            await tx.executemany(
                "INSERT INTO alarms (id, chat_id, cond, state, seq, fired_at, rearm_at, "
                "expires_at, data) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            await self._trim(tx)
        return len(rows)

    async def get(self, alarm_id: int) -> Alarm | None:
        alarms = await self._alarms("id=?", (alarm_id,))
        return alarms[0] if alarms else None

    async def chat_alarms(self, chat_id: int, *, offset: int = 0, limit: int = 10) -> list[Alarm]:
        where = "chat_id=? ORDER BY id LIMIT ? OFFSET ?"
        return await self._alarms(where, (chat_id, max(0, limit), max(0, offset)))

    async def count(self, chat_id: int) -> int:
        async with self._db.read() as db:
            return int(await _scalar(db, "SELECT COUNT(*) FROM alarms WHERE chat_id=?", chat_id))

    async def open_count(self, chat_id: int | None = None) -> int:
        async with self._db.read() as db:
            if chat_id is None:
                return int(await _scalar(db, _OPEN_TOTAL))
            sql = "SELECT COUNT(*) FROM alarms WHERE chat_id=? AND is_open"
            return int(await _scalar(db, sql, chat_id))

    async def delete(self, alarm_id: int) -> bool:
        async with self._write() as tx:
            cursor = await tx.execute("DELETE FROM alarms WHERE id=?", (alarm_id,))
        return cursor.rowcount == 1

    async def delete_chat(self, chat_id: int) -> int:
        async with self._write() as tx:
            cursor = await tx.execute("DELETE FROM alarms WHERE chat_id=?", (chat_id,))
        return cursor.rowcount

    async def set_state(
        self,
        alarm_id: int,
        state: AlarmState,
        *,
        rearm_at: float | None = None,
        expires_at: float | None = None,
    ) -> Alarm | None:
        rearm = None if rearm_at is None else finite(rearm_at)
        expires = None if expires_at is None else finite(expires_at)
        sql = (
            "UPDATE alarms SET state=?, rearm_at=?, blocked=NULL, "
            "expires_at=coalesce(?, expires_at) WHERE id=? "
            "RETURNING id, chat_id, data, state, seq, fired_at, rearm_at, expires_at"
        )
        async with self._write() as tx:
            rows = await tx.execute_fetchall(sql, (state.value, rearm, expires, alarm_id))
        return _decode_row(next(iter(rows))) if rows else None

    async def pause_chat(self, chat_id: int) -> int:
        sql = "UPDATE alarms SET blocked=state, state='paused' WHERE chat_id=? AND is_live"
        async with self._write() as tx:
            cursor = await tx.execute(sql, (chat_id,))
        return cursor.rowcount

    async def resume_chat(self, chat_id: int) -> int:
        sql = "UPDATE alarms SET state=blocked, blocked=NULL WHERE chat_id=? AND blocked NOT NULL"
        async with self._write() as tx:
            cursor = await tx.execute(sql, (chat_id,))
        return cursor.rowcount

    async def armed(self, *, page: int = DEFAULT_PAGE) -> AsyncIterator[Alarm]:
        async with contextlib.aclosing(self._pages(page)) as pages:
            async for rows in pages:
                for row in rows:
                    yield decode_row(row)

    def armed_rows(self, *, page: int = DEFAULT_PAGE) -> AsyncGenerator[list[LiveRow], None]:
        return self._pages(page)

    async def _pages(self, page: int) -> AsyncGenerator[list[LiveRow], None]:
        """The live rows a page at a time; the next page is read (in aiosqlite's thread)
        while the caller works on this one."""
        rows = await self._live_after(0, page)
        ahead: asyncio.Future[list[LiveRow]] | None = None
        try:
            while True:
                if len(rows) == page:
                    ahead = asyncio.ensure_future(self._live_after(rows[-1][0], page))
                    await asyncio.sleep(0)  # it starts now: the read overlaps this page's use
                if rows:
                    yield rows
                if ahead is None:
                    return
                rows, ahead = await ahead, None
        finally:
            if ahead is not None:  # the reader stopped early: stop the read ahead too
                await _cancel(ahead)

    async def _live_after(self, after: int, page: int) -> list[LiveRow]:
        async with self._db.read() as db:
            rows = await db.execute_fetchall(_LIVE, (after, page))
        loads = orjson.loads
        return [(i, c, s, q, f, r, e, loads(d)) for i, c, s, q, f, r, e, d in rows]

    async def mark_fired(
        self, firing: Firing, *, state: AlarmState, rearm_at: float | None
    ) -> bool:
        data = encode_firing(firing)
        rearm = None if rearm_at is None else finite(rearm_at)
        async with self._write() as tx:
            rows = await tx.execute_fetchall(
                "UPDATE alarms SET seq=?, state=?, fired_at=?, rearm_at=?, blocked=NULL "
                "WHERE id=? AND seq=? RETURNING chat_id",
                (firing.seq, state.value, firing.fired_at, rearm, firing.alarm_id, firing.seq - 1),
            )
            if not rows:
                return False
            chat_id = next(iter(rows))[0]
            await tx.execute("INSERT INTO firings (chat_id, data) VALUES (?, ?)", (chat_id, data))
            await tx.execute(
                "DELETE FROM firings WHERE chat_id=? AND n <= (SELECT n FROM firings "
                "WHERE chat_id=? ORDER BY n DESC LIMIT 1 OFFSET ?)",
                (chat_id, chat_id, HISTORY_KEEP),
            )
        return True

    async def history(self, chat_id: int, limit: int = 20) -> list[Firing]:
        sql = "SELECT data FROM firings WHERE chat_id=? ORDER BY n DESC LIMIT ?"
        async with self._db.read() as db:
            rows = await db.execute_fetchall(sql, (chat_id, max(0, limit)))
        return [decode_firing(row[0]) for row in rows]

    async def expire(self, now: float, *, limit: int = 1_000) -> list[Alarm]:
        sql = (
            "UPDATE alarms SET state='expired', blocked=NULL WHERE id IN (SELECT id FROM alarms "
            "WHERE is_open AND expires_at<=? ORDER BY expires_at LIMIT ?) "
            "RETURNING id, chat_id, data, state, seq, fired_at, rearm_at, expires_at"
        )
        async with self._write() as tx:
            rows = await tx.execute_fetchall(sql, (finite(now), limit))
        return sorted((_decode_row(row) for row in rows), key=lambda a: (a.expires_at, a.id))

    async def get_tz(self, chat_id: int) -> str | None:
        async with self._db.read() as db:
            rows = await db.execute_fetchall("SELECT tz FROM chats WHERE chat_id=?", (chat_id,))
        return next((str(row[0]) for row in rows), None)

    async def set_tz(self, chat_id: int, tz: str | None) -> None:
        async with self._write() as tx:
            if tz is None:
                await tx.execute("DELETE FROM chats WHERE chat_id=?", (chat_id,))
            else:
                await tx.execute(
                    "INSERT INTO chats (chat_id, tz) VALUES (?, ?) "
                    "ON CONFLICT (chat_id) DO UPDATE SET tz=excluded.tz",
                    (chat_id, tz),
                )

    async def change_cursor(self) -> int:
        async with self._db.read() as db:
            return int(await _scalar(db, _HEAD))

    async def changes_since(self, cursor: int, *, limit: int = 10_000) -> tuple[list[int], int]:
        async with self._db.read() as db:
            head = await _scalar(db, _HEAD)
            oldest = await _scalar(db, "SELECT coalesce(min(n), 0) FROM changes")
            rows = await db.execute_fetchall(
                "SELECT n, alarm_id FROM changes WHERE n>? ORDER BY n LIMIT ?", (cursor, limit)
            )
        if cursor > head or (cursor < head and (oldest == 0 or oldest > cursor + 1)):
            raise AlarmChangesLostError(head)  # trimmed, or a cursor from another log
        entries = list(rows)
        if not entries:
            return [], head
        return list(dict.fromkeys(int(row[1]) for row in entries)), int(entries[-1][0])

    async def _alarms(self, where: str, args: tuple[Any, ...]) -> list[Alarm]:
        async with self._db.read() as db:
            rows = await db.execute_fetchall(f"{_SELECT}{where}", args)
        return [_decode_row(row) for row in rows]

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction (``SqliteDatabase.write``); every so often it trims the change log."""
        async with self._db.write() as tx:
            yield tx
            self._writes += 1
            if self._writes % _TRIM_EVERY == 0:
                await self._trim(tx)

    async def _trim(self, tx: aiosqlite.Connection) -> None:
        """Keep the last ``keep_changes`` entries of the change log."""
        sql = "DELETE FROM changes WHERE n <= (SELECT max(n) FROM changes) - ?"
        await tx.execute(sql, (self._keep,))


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel and wait for it, without raising what it ended with (its reader is gone)."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved: an error of a read nobody wants is not logged


async def _scalar(db: aiosqlite.Connection, sql: str, *args: object) -> Any:
    async with db.execute(sql, args) as rows:
        row = await rows.fetchone()
    return row[0] if row is not None else None


def _decode_row(row: Any) -> Alarm:
    return decode(*row)


_SELECT: Final = (
    "SELECT id, chat_id, data, state, seq, fired_at, rearm_at, expires_at FROM alarms WHERE "
)
_LIVE: Final = (
    "SELECT id, chat_id, state, seq, fired_at, rearm_at, expires_at, data FROM alarms "
    "WHERE is_live AND id>? ORDER BY id LIMIT ?"
)
_OPEN_TOTAL: Final = "SELECT n FROM totals WHERE k='open'"
_HEAD: Final = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name='changes'), 0)"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the short id, never reused
    chat_id INTEGER NOT NULL,
    cond TEXT NOT NULL,  -- alarm_codec.condition_key
    state TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    fired_at REAL,
    rearm_at REAL,
    expires_at REAL NOT NULL,
    blocked TEXT,  -- the state pause_chat paused it from
    data BLOB NOT NULL,  -- alarm_codec.spec_data
    is_live INTEGER GENERATED ALWAYS AS (
        state='armed' OR (state='fired' AND rearm_at NOT NULL)) VIRTUAL,
    is_open INTEGER GENERATED ALWAYS AS (
        state IN ('armed', 'paused') OR (state='fired' AND rearm_at NOT NULL)) VIRTUAL
);
CREATE INDEX IF NOT EXISTS alarms_by_chat ON alarms (chat_id, cond);
CREATE INDEX IF NOT EXISTS alarms_live ON alarms (id) WHERE is_live;
CREATE INDEX IF NOT EXISTS alarms_expiry ON alarms (expires_at) WHERE is_open;
CREATE TABLE IF NOT EXISTS totals (k TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO totals (k, n) VALUES ('open', 0);
CREATE TABLE IF NOT EXISTS changes (
    n INTEGER PRIMARY KEY AUTOINCREMENT, alarm_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS firings (
    n INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL, data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS firings_by_chat ON firings (chat_id, n);
CREATE TABLE IF NOT EXISTS chats (chat_id INTEGER PRIMARY KEY, tz TEXT);
CREATE TRIGGER IF NOT EXISTS alarms_added AFTER INSERT ON alarms BEGIN
    UPDATE totals SET n = n + new.is_open WHERE k='open';
    INSERT INTO changes (alarm_id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS alarms_changed AFTER UPDATE ON alarms BEGIN
    UPDATE totals SET n = n + new.is_open - old.is_open WHERE k='open';
    INSERT INTO changes (alarm_id) VALUES (new.id);
END;
CREATE TRIGGER IF NOT EXISTS alarms_deleted AFTER DELETE ON alarms BEGIN
    UPDATE totals SET n = n - old.is_open WHERE k='open';
    INSERT INTO changes (alarm_id) VALUES (old.id);
END;
"""
