"""Which process runs the alarm engine, and what it does while it does: ``AlarmLeader`` takes
the ``Lease`` (always, with ``LocalLease``; with Redis one process at a time, renewed every
third of ``ALARM_LEASE_S`` and taken over that long after its holder dies), then loads every
live alarm into a fresh ``AlarmEngine``, replays the klines from the checkpoint
(``AlarmFeed.fill``; alarms set since then join as the replay reaches their minute), opens the
streams and keeps following the store: its change log (``changes_since``) every
``_CHANGES_S`` or at once when poked by a change made here, expiry every ``ALARM_SWEEP_S``,
and the checkpoint every ``_CHECKPOINT_S``: how far the streams were read, per market, never
past a firing the desk has not recorded (``alarm_service`` tells why). Losing the lease, or a
change log that lost entries, steps it down: streams closed, engine dropped, led again (and
loaded afresh) at the next renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import structlog

from utils.alarms.alarm_engine import AlarmEngine
from utils.alarms.alarm_errors import AlarmChangesLostError
from utils.alarms.alarm_feed import MARKETS, AlarmFeed
from utils.alarms.alarm_startup import load_engine

if TYPE_CHECKING:
    from collections.abc import Callable
    from decimal import Decimal

    from utils.alarms.alarm_desk import FiringDesk
    from utils.alarms.alarm_meta import AlarmMeta, Lease
    from utils.alarms.alarm_model import Alarm, AlarmState
    from utils.alarms.alarm_store_types import AlarmStore
    from utils.binance.binance_a import BinanceClient
    from utils.config import AlarmConfig

__all__ = ("AlarmLeader",)

_log = structlog.get_logger(__name__)

_CHANGES_S: Final = 0.5  # how often the leader reads the store's change log
_CHECKPOINT_S: Final = 1.0
_CHECKPOINT_KEY: Final = "checkpoint:"
_START_WAIT_S: Final = 30.0  # start-up waits this long at most for the engine to run


class AlarmLeader:
    """``start`` contends for the lease; ``engine`` and ``feed`` are set while leading."""

    def __init__(
        self,
        binance: BinanceClient,
        store: AlarmStore,
        meta: AlarmMeta,
        lease: Lease,
        desk: FiringDesk,
        settings: AlarmConfig,
        clock: Callable[[], float],
    ) -> None:
        self._binance, self._store, self._meta = binance, store, meta
        self._lease, self._desk, self._settings, self._clock = lease, desk, settings, clock
        self._owner = uuid.uuid4().hex
        self.engine: AlarmEngine | None = None
        self.feed: AlarmFeed | None = None
        self._changed = asyncio.Event()
        self._own: dict[int, tuple[AlarmState, int, float | None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._leader_tasks: list[asyncio.Task[None]] = []
        self._stepping: asyncio.Task[None] | None = None  # a step down the leader asked for
        self._lead_task: asyncio.Task[None] | None = None
        self._last_feed: AlarmFeed | None = None
        self.leading = False
        self.led = asyncio.Event()  # set while this process's engine runs (tests, health)

    async def start(self) -> None:
        """Contend for the lease; returns after the first round (with the lease: once the
        engine runs), ``_START_WAIT_S`` at most, so that the bot takes updates after it."""
        first = asyncio.Event()
        self._loop = asyncio.create_task(self._lease_loop(first), name="alarm-lease")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), _START_WAIT_S)

    async def stop(self) -> None:
        """Stop leading for good: nothing here leads again."""
        if self._loop is not None:
            await _cancel(self._loop)
            self._loop = None
        self._last_feed = self.feed
        await self._step_down()

    async def release(self) -> None:
        """The last checkpoint (once the desk has recorded what fired), then the lease."""
        with contextlib.suppress(Exception):
            if self._last_feed is not None:
                await self._write_checkpoint(self._last_feed)
            await self._lease.release(self._owner)

    def poke(self) -> None:
        """The store changed here: follow it now."""
        self._changed.set()

    def forget(self, alarm_id: int) -> None:
        """Deleted here: out of the engine now."""
        if self.engine is not None:
            self.engine.remove(alarm_id)
        self._changed.set()

    def apply_here(self, alarm: Alarm | None, price: Decimal | None = None) -> Alarm | None:
        """A change made in this process: into the engine now when it leads."""
        if alarm is None:
            return None
        self._changed.set()
        if self.engine is not None and self.feed is not None:
            self._own[alarm.id] = (alarm.state, alarm.seq, alarm.rearm_at)
            if self.engine.add(alarm, price=price):
                self.feed.track(alarm.spec.market, alarm.spec.symbol)
        return alarm

    def recorded(self, alarm_id: int, state: AlarmState, seq: int, rearm_at: float | None) -> None:
        """The desk records a firing: the engine has it already; the change log's echo of
        it is to be skipped."""
        self._own[alarm_id] = (state, seq, rearm_at)

    # --- leading -----------------------------------------------------------------------
    async def _lease_loop(self, first: asyncio.Event) -> None:
        lease_s = self._settings.lease_s
        renewed = -math.inf
        while True:
            try:
                held = await self._lease.acquire(self._owner, lease_s)
                if held:
                    renewed = time.monotonic()
            except Exception as e:  # noqa: BLE001 - Redis away: lead on until the lease lapses
                held = self.leading and time.monotonic() - renewed < lease_s * 2 / 3
                _log.warning("alarm_lease_unreachable", error=repr(e), leading=held)
            if held and self._lead_task is None:
                self._lead_task = asyncio.create_task(self._lead(), name="alarm-lead")
                self._lead_task.add_done_callback(lambda _task: first.set())
            elif not held and self._lead_task is not None:
                _log.warning("alarm_lease_lost", owner=self._owner)
                await self._step_down()
            if not held:
                first.set()
            await asyncio.sleep(lease_s / 3)

    async def _lead(self) -> None:
        """Load the live alarms, replay what the streams missed, open them, follow changes."""
        try:
            engine = AlarmEngine(clock=self._clock)
            feed = AlarmFeed(self._binance, engine, on_firings=self._desk.put, clock=self._clock)
            cursor = await self._store.change_cursor()
            since = {m: await self._read_checkpoint(m) for m in MARKETS}
            later = await self._load(engine, feed, since)
            self.engine, self.feed = engine, feed

            def admit(alarm: Alarm) -> None:
                if engine.add(alarm):
                    feed.track(alarm.spec.market, alarm.spec.symbol)

            for market, ms in since.items():
                if ms is not None:  # set since the checkpoint: joining as the replay goes
                    joining: dict[str, list[Alarm]] = {}
                    for alarm in later.get(market, ()):
                        joining.setdefault(alarm.spec.symbol, []).append(alarm)
                    await feed.fill(market, ms, joining=joining, admit=admit)
                else:  # watched from now on: a restart replays from here
                    feed.seen_ms[market] = self._binance.now_ms()
            await self._write_checkpoint()
            await feed.start()
            self.leading = True
            self._leader_tasks = [
                asyncio.create_task(self._changes_loop(cursor), name="alarm-changes"),
                asyncio.create_task(self._sweep_loop(), name="alarm-sweep"),
                asyncio.create_task(self._checkpoint_loop(), name="alarm-checkpoint"),
            ]
            self.led.set()
            _log.info("alarm_engine_leading", alarms=len(engine), owner=self._owner)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - retried at the next renewal
            _log.exception("alarm_lead_failed")
            self._lead_task = None
            await self._step_down()

    async def _load(
        self, engine: AlarmEngine, feed: AlarmFeed, since: dict[str, int | None]
    ) -> dict[str, list[Alarm]]:
        """Every live alarm into ``engine``; per market, those created after its checkpoint
        are returned instead, to join the replay at the minute they were created in."""
        loaded = await load_engine(self._store, engine, since=since)  # rows, no Alarm objects
        for market, symbol in loaded.symbols:
            feed.track(market, symbol)
        return loaded.later

    async def _step_down(self) -> None:
        lead, self._lead_task = self._lead_task, None
        if lead is not None and not lead.done():
            await _cancel(lead)
        for task in self._leader_tasks:
            await _cancel(task)
        self._leader_tasks = []
        feed = self.feed
        self.leading, self.engine, self.feed = False, None, None
        self._own.clear()  # the next engine loads the store as it is
        self.led.clear()
        if feed is not None:
            await feed.stop()

    async def _changes_loop(self, cursor: int) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CHANGES_S):
                    await self._changed.wait()
            self._changed.clear()
            try:
                cursor = await self._apply_changes(cursor)
                if self.feed is not None:
                    await self.feed.sync()
            except AlarmChangesLostError as e:
                # Step down; the lease loop leads again at its next renewal, loading afresh.
                _log.warning("alarm_changes_lost", cursor=e.cursor)
                self._stepping = asyncio.create_task(self._step_down())
                return
            except Exception:  # noqa: BLE001 - a store blip: read again next time
                _log.exception("alarm_changes_failed")

    async def _apply_changes(self, cursor: int) -> int:
        ids, cursor = await self._store.changes_since(cursor)
        for alarm_id in ids:
            alarm = await self._store.get(alarm_id)
            engine, feed = self.engine, self.feed
            if engine is None or feed is None:
                break
            own = self._own.pop(alarm_id, None)
            if alarm is None:
                engine.remove(alarm_id)
            elif own != (alarm.state, alarm.seq, alarm.rearm_at) and engine.add(alarm):
                feed.track(alarm.spec.market, alarm.spec.symbol)
        return cursor

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self._expire()
            except Exception:  # noqa: BLE001 - tried again at the next sweep
                _log.exception("alarm_expiry_failed")
            await asyncio.sleep(self._settings.sweep_s)

    async def _expire(self) -> None:
        limit = 1_000
        while True:
            expired = await self._store.expire(self._clock(), limit=limit)
            by_chat: dict[int, list[Alarm]] = {}
            for alarm in expired:
                if self.engine is not None:
                    self.engine.remove(alarm.id)
                by_chat.setdefault(alarm.chat_id, []).append(alarm)
            for chat_id, alarms in by_chat.items():
                await self._desk.expired(chat_id, alarms)
            if len(expired) < limit:
                return

    # --- checkpoint --------------------------------------------------------------------
    async def _read_checkpoint(self, market: str) -> int | None:
        value = await self._meta.get(_CHECKPOINT_KEY + market)
        return int(value) if value else None

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(_CHECKPOINT_S)
            try:
                await self._write_checkpoint()
            except Exception as e:  # noqa: BLE001 - written again next second
                _log.warning("alarm_checkpoint_failed", error=repr(e))

    async def _write_checkpoint(self, feed: AlarmFeed | None = None) -> None:
        """How far the streams were read, never past a firing not yet recorded."""
        feed = feed or self.feed
        if feed is None:
            return
        floor = self._desk.floor_ms()
        for market, seen in list(feed.seen_ms.items()):
            value = seen if floor is None else min(seen, floor)
            await self._meta.set(_CHECKPOINT_KEY + market, str(value))


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
