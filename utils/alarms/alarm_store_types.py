"""The ``AlarmStore`` protocol every alarm store backend provides, and its constants.

Types only, no I/O. Import them from ``alarm_store``, which also holds the SQLite backend and
re-exports the Redis one; this module exists so that both backends can share them without
importing each other.

Vocabulary: an alarm is *live* when the engine watches it (ARMED, or FIRED with a
``rearm_at``), *open* when it may still fire (live or PAUSED) and *finished* otherwise (a
one-shot that FIRED, or EXPIRED). The limits and the duplicate check count open alarms only;
``count`` and ``chat_alarms`` list every alarm the chat has, finished ones too, until deleted.

- ``add`` gives the next short id (a counter, never reused), refuses the same condition
  (``alarm_codec.condition_key``: symbol, market, kind, direction, level, percent, window)
  open in the chat with ``AlarmExistsError``, and ``AlarmLimitError`` past either limit.
- ``mark_fired`` is a compare-and-set on ``seq`` (``firing.seq`` must be the stored seq + 1),
  so a firing recorded twice is applied once; it also keeps the chat's last 100 firings.
- ``pause_chat`` pauses a blocked chat's live alarms and remembers their state;
  ``resume_chat`` restores exactly those (an alarm the user paused stays paused).
- ``changes_since`` reads a change log (every write to an alarm appends its id) so an engine
  in another process sees additions and deletions; the log keeps the last ``keep_changes``
  entries and raises ``AlarmChangesLostError`` for a cursor older than that.
- ``armed`` streams live alarms by id in pages (one read each, not one snapshot: take
  ``change_cursor()`` first, then catch up with ``changes_since``); ``armed_rows`` streams
  the same pages as ``alarm_codec.LiveRow``s, for the engine's start-up load
  (``AlarmEngine.loading``): a million alarms read and held in seconds, no ``Alarm`` built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Iterable

    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_model import Alarm, AlarmSpec, AlarmState, Firing

__all__ = ("DEFAULT_KEEP_CHANGES", "DEFAULT_PAGE", "HISTORY_KEEP", "AlarmStore")

HISTORY_KEEP: Final = 100  # firings kept per chat
DEFAULT_KEEP_CHANGES: Final = 100_000  # change-log entries kept
DEFAULT_PAGE: Final = 5_000  # alarms per read in armed()


class AlarmStore(Protocol):
    """What the alarm service and engine need from a store."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

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
        """Store a new ARMED alarm (``expires_at`` = ``spec.expires_at`` or ``now`` +
        ``DEFAULT_EXPIRY_S``). Raises AlarmExistsError or AlarmLimitError, storing nothing."""

    async def import_alarms(self, alarms: Iterable[Alarm]) -> int:
        """Store alarms as they are, ids included (a restore, a migration, a benchmark): no
        limits, no duplicate check; an id already stored is an error. How many."""

    async def get(self, alarm_id: int) -> Alarm | None: ...

    async def chat_alarms(self, chat_id: int, *, offset: int = 0, limit: int = 10) -> list[Alarm]:
        """The chat's alarms (any state) by id."""

    async def count(self, chat_id: int) -> int:
        """How many alarms (any state) the chat has: the pages of ``chat_alarms``."""

    async def open_count(self, chat_id: int | None = None) -> int:
        """Open alarms of the chat, or of the whole store: what the limits count."""

    async def delete(self, alarm_id: int) -> bool: ...

    async def delete_chat(self, chat_id: int) -> int:
        """Delete every alarm of the chat (its history and zone stay); how many."""

    async def set_state(
        self,
        alarm_id: int,
        state: AlarmState,
        *,
        rearm_at: float | None = None,
        expires_at: float | None = None,
    ) -> Alarm | None:
        """Set the state and ``rearm_at`` (None clears it), and ``expires_at`` when given;
        forgets a pause by ``pause_chat``. None for an unknown id."""

    async def pause_chat(self, chat_id: int) -> int:
        """The chat blocked the bot: pause its live alarms, remembering them; how many."""

    async def resume_chat(self, chat_id: int) -> int:
        """Give back the state of the alarms ``pause_chat`` paused; how many."""

    def armed(self, *, page: int = DEFAULT_PAGE) -> AsyncIterator[Alarm]:
        """Every live alarm, by id, read ``page`` at a time."""

    def armed_rows(self, *, page: int = DEFAULT_PAGE) -> AsyncGenerator[list[LiveRow], None]:
        """``armed`` in pages of at most ``page`` rows (never an empty one), each alarm its
        stored row (``alarm_codec.decode_row`` makes it an ``Alarm``): the same alarms in the
        same order. ``aclose`` it when stopping early."""

    async def mark_fired(
        self, firing: Firing, *, state: AlarmState, rearm_at: float | None
    ) -> bool:
        """Record the firing if the stored seq is ``firing.seq - 1``: set seq, ``state``,
        ``fired_at``, ``rearm_at`` and add it to the chat's history. False, changing nothing,
        otherwise (already recorded, or the alarm is gone)."""

    async def history(self, chat_id: int, limit: int = 20) -> list[Firing]:
        """The chat's last firings, newest first (at most ``HISTORY_KEEP`` are kept)."""

    async def expire(self, now: float, *, limit: int = 1_000) -> list[Alarm]:
        """Open alarms whose ``expires_at`` <= ``now`` become EXPIRED; returns them (at most
        ``limit``, soonest first: call again while it returns ``limit``)."""

    async def get_tz(self, chat_id: int) -> str | None: ...
    async def set_tz(self, chat_id: int, tz: str | None) -> None: ...

    async def change_cursor(self) -> int:
        """The change log's head: ``changes_since`` from here sees what happens next."""

    async def changes_since(self, cursor: int, *, limit: int = 10_000) -> tuple[list[int], int]:
        """Ids of the alarms changed (added, changed, deleted) after ``cursor``, oldest change
        first and each once, and the cursor to pass next time. At most ``limit`` log entries
        are read per call. Raises AlarmChangesLostError when entries after ``cursor`` were
        trimmed."""
