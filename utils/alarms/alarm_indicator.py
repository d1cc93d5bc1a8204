"""Indicator alarms (RSI, MACD, EMA crosses) evaluated when a candle closes, apart from the
price engine: ``IndicatorWatch`` holds the live indicator alarms keyed by (symbol, interval,
market), follows each key's kline stream (``binance_a``'s ``ws_klines``, which fills in the
closes a reconnect missed over REST) and, on each CLOSED candle only (``kline.closed``; the
forming candle is never evaluated), reads the indicators once for the key through an
``IndicatorSource`` (the bot wires ``analysis.alarm_source``'s: this package may not import
``analysis``), then fires every alarm whose condition became true at that close.

Edge, not level: ``rsi > 70`` fires when the previous closed candle's RSI was <= 70 and this
close's is > 70; a cross when the two series changed sides between the two closes. So a
repeating alarm fires again only after the condition was false at a close, and not before its
cooldown (``repeat_s``, counted in candle time from the close it fired at).

A ``Firing`` of an indicator alarm carries the indicator's value at the close as
``touched_price``, the close price as ``price`` and the candle's close time as ``touched_at``
and ``fired_at``; it goes to the same ``FiringDesk`` as price firings (job id from the alarm id
and its sequence, delivered then recorded: exactly once as ``alarm_service`` explains).

Closes missed while no process led (a restart, a crash) are evaluated when the watch starts,
before any live close: per key, the closes after the last one evaluated (``meta`` key
``indicator:<symbol>:<interval>:<market>``, its open time, written after each close and never
past a firing not yet recorded: ``floor_ms``) or, without one, after the alarms' own
``created_at``/``fired_at``, at most ``MISSED_CLOSES`` candles and ``MISSED_S`` back, oldest
first, each read and judged edge-wise as a live one; what fires is ``late``. Twice never: a
one-shot that fired is no longer held, a repeat holds ``rearm_at`` in candle time, and a close
delivered but not recorded has the same job id (``Firing.candle_ms``).

The watch learns of alarms from the service (``apply``/``forget``, at once) and from the
store's change log (every ``CHANGES_S``: other processes, paused or resumed chats, expiry).
Only the process that leads (``alarm_leader``) runs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog

from utils.alarms.alarm_codec import decode_row, is_live
from utils.alarms.alarm_errors import AlarmChangesLostError
from utils.alarms.alarm_indicator_words import INTERVALS, interval_of, series_names
from utils.alarms.alarm_model import INDICATOR_KINDS, AlarmKind, AlarmState, Direction, Firing

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from utils.alarms.alarm_meta import AlarmMeta
    from utils.alarms.alarm_model import Alarm, AlarmSpec
    from utils.alarms.alarm_store_types import AlarmStore
    from utils.binance.binance_a import BinanceClient, KlineEvent, StreamSubscription

__all__ = (
    "CHANGES_S",
    "MISSED_CLOSES",
    "MISSED_S",
    "IndicatorReading",
    "IndicatorSource",
    "IndicatorWatch",
    "crossed",
)

_log = structlog.get_logger(__name__)

CHANGES_S: Final = 0.5
MISSED_CLOSES: Final = 500  # closes missed while down, evaluated at start at most, per key
MISSED_S: Final = 86_400  # and none older than this before the last close
_LAST_KEY: Final = "indicator:"  # meta key prefix: a key's last close evaluated (open ms)
_SPEC: Final = 7  # where a LiveRow holds its spec_data array
_KIND: Final = 5  # the kind's place in spec_data
_INDICATOR_VALUES: Final = frozenset(kind.value for kind in INDICATOR_KINDS)
_Key = tuple[str, str, str]  # (symbol, interval, market)


class IndicatorReading(Protocol):
    """Indicator values on the last two closed candles of a series."""

    @property
    def close_time_ms(self) -> int:
        """The last closed candle's close time (Binance's ``T``: its last millisecond)."""
        ...

    @property
    def close(self) -> float: ...

    @property
    def values(self) -> Mapping[str, tuple[float, float]]:
        """Series name (``rsi``, ``macd``, ``macd_signal``, ``ema:50``, ``close``) ->
        (value at the candle before, value at the last closed candle)."""
        ...


class IndicatorSource(Protocol):
    """Reads indicator values on closed candles (``analysis.alarm_source`` implements it)."""

    async def read(
        self,
        symbol: str,
        interval: str,
        market: str,
        names: Collection[str],
        *,
        last_open_ms: int | None = None,
    ) -> IndicatorReading:
        """``names`` on the closed candles up to the one opened at ``last_open_ms`` (the
        last closed one when None), from one klines fetch of at least 500 candles."""
        ...


def crossed(spec: AlarmSpec, values: Mapping[str, tuple[float, float]]) -> float | None:
    """The indicator's value at the last close when ``spec``'s condition became true there
    (previous close on one side, this one past it), else None."""
    names = series_names(spec)
    first = values.get(names[0])
    if first is None or not all(math.isfinite(v) for v in first):
        return None
    before, now = first
    if spec.kind in (AlarmKind.RSI_ABOVE, AlarmKind.RSI_BELOW):
        level = float(spec.level or 0)
        if spec.kind is AlarmKind.RSI_ABOVE:
            return now if before <= level < now else None
        return now if before >= level > now else None
    other = values.get(names[1] if len(names) > 1 else "close")
    if other is None or not all(math.isfinite(v) for v in other):
        return None
    if spec.kind is AlarmKind.MACD_CROSS:  # the MACD line against its signal
        a, b = first, other
    else:  # the close against the EMA
        a, b = other, first
    up = a[0] <= b[0] and a[1] > b[1]
    down = a[0] >= b[0] and a[1] < b[1]
    hit = {Direction.UP: up, Direction.DOWN: down, Direction.BOTH: up or down}[spec.direction]
    return now if hit else None


class IndicatorWatch:
    """``start`` (load and follow), ``apply``/``forget`` alarms, ``recorded`` firings, ``stop``."""

    def __init__(
        self,
        binance: BinanceClient,
        store: AlarmStore,
        source: IndicatorSource,
        on_firings: Callable[[Sequence[Firing]], None],
        clock: Callable[[], float],
        *,
        meta: AlarmMeta | None = None,
        floor_ms: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._binance, self._store, self._source = binance, store, source
        self._on_firings, self._clock = on_firings, clock
        self._meta, self._floor_ms = meta, floor_ms
        self._alarms: dict[int, Alarm] = {}
        self._keys: dict[_Key, set[int]] = {}
        self._subs: dict[_Key, StreamSubscription] = {}
        self._last: dict[_Key, int] = {}  # the open time of the last close evaluated
        self._queue: asyncio.Queue[tuple[_Key, KlineEvent]] = asyncio.Queue()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.closes = 0  # closes evaluated (health, tests)
        self.missed = 0  # of which, closes missed while down, evaluated at start

    def __len__(self) -> int:
        return len(self._alarms)

    async def start(self) -> None:
        cursor = await self._store.change_cursor()
        async with contextlib.aclosing(self._store.armed_rows()) as pages:
            async for page in pages:
                for row in page:
                    if row[_SPEC][_KIND] in _INDICATOR_VALUES:
                        self._hold(decode_row(row))
        self._tasks = [
            asyncio.create_task(self._consume(), name="indicator-closes"),
            asyncio.create_task(self._follow(cursor), name="indicator-changes"),
            asyncio.create_task(self._sync_loop(), name="indicator-streams"),
        ]
        self._synced.set()
        if self._alarms:  # an idle bot says nothing
            _log.info("indicator_alarms_watching", alarms=len(self._alarms))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sub in self._subs.values():
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    def apply(self, alarm: Alarm | None) -> None:
        """An alarm changed (added, paused, resumed, re-armed…): hold it while it is live."""
        if alarm is None or alarm.spec.kind not in INDICATOR_KINDS:
            return
        held = self._alarms.get(alarm.id)
        if held is not None and held.seq > alarm.seq:
            return  # a firing of ours not recorded yet: the store is behind
        self._drop(alarm.id)
        if is_live(alarm.state, alarm.rearm_at):
            self._hold(alarm)
        self._synced.set()

    def forget(self, alarm_id: int) -> None:
        self._drop(alarm_id)
        self._synced.set()

    def recorded(self, alarm_id: int, state: AlarmState, seq: int, rearm_at: float | None) -> None:
        """The desk recorded a firing (of any alarm): follow it for ours."""
        held = self._alarms.get(alarm_id)
        if held is not None and held.seq <= seq:
            self._drop(alarm_id)
            if is_live(state, rearm_at):
                self._hold(_replace(held, state=state, seq=seq, rearm_at=rearm_at))
            self._synced.set()

    # --- closes ------------------------------------------------------------------------
    def _kline_callback(self, key: _Key) -> Callable[[KlineEvent], None]:
        def on_kline(event: KlineEvent) -> None:
            if event.closed:  # the forming candle never counts
                self._queue.put_nowait((key, event))

        return on_kline

    async def _consume(self) -> None:
        for key in sorted(k for k, ids in self._keys.items() if ids):
            try:
                await self._catch_up(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the live closes go on
                _log.exception("indicator_catch_up_failed", key=key)
        if self._alarms or self.missed:  # a start with nothing to watch says nothing
            _log.info("indicator_closes_caught_up", closes=self.missed)
        while True:
            key, event = await self._queue.get()
            try:
                await self._evaluate(key, event)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad close must not stop the others
                _log.exception("indicator_close_failed", key=key, open_time=event.open_time)

    async def _evaluate(self, key: _Key, event: KlineEvent) -> None:
        if self._last.get(key, -1) >= event.open_time:
            return  # evaluated already (a close repeated after a reconnect)
        self._last[key] = event.open_time
        ids = sorted(self._keys.get(key, ()))
        if not ids:
            return
        names = {n for i in ids for n in series_names(self._alarms[i].spec)}
        reading = await self._source.read(*key, names, last_open_ms=event.open_time)
        self.closes += 1
        self._fire(key, ids, reading)
        await self._save_last(key, event.open_time)

    async def _catch_up(self, key: _Key) -> None:
        """The closes of ``key`` missed while no process watched, oldest first, late."""
        step = INTERVALS[key[1]] * 1000
        ids = sorted(self._keys.get(key, ()))
        names = {n for i in ids for n in series_names(self._alarms[i].spec)}
        latest = await self._source.read(*key, names)
        last_open = latest.close_time_ms + 1 - step
        saved = await self._meta.get(_LAST_KEY + ":".join(key)) if self._meta else None
        if saved is not None:
            since = int(saved)  # opens after this one
        else:  # a close ending after the alarm was made or last fired
            since = min(_since_ms(self._alarms[i]) for i in ids) - step
        since = max(since, last_open - MISSED_CLOSES * step, last_open - MISSED_S * 1000)
        missed = -((since - last_open) // step)  # the opens on the grid after ``since``
        for open_ms in [last_open - k * step for k in reversed(range(missed))]:
            if self._last.get(key, -1) >= open_ms:
                continue
            self._last[key] = open_ms
            ids = sorted(self._keys.get(key, ()))
            if not ids:
                return
            if open_ms == last_open:
                reading: IndicatorReading = latest
            else:
                reading = await self._source.read(*key, names, last_open_ms=open_ms)
            self.closes += 1
            self.missed += 1
            self._fire(key, ids, reading, late=True)
            await self._save_last(key, open_ms)

    async def _save_last(self, key: _Key, open_ms: int) -> None:
        """``key``'s last close evaluated, kept before any firing not yet recorded."""
        if self._meta is None:
            return
        floor = self._floor_ms()
        if floor is not None:  # that firing's close (closing at ``floor``) is evaluated again
            open_ms = min(open_ms, floor - 2 * INTERVALS[key[1]] * 1000)
        try:
            await self._meta.set(_LAST_KEY + ":".join(key), str(open_ms))
        except Exception as e:  # noqa: BLE001 - written again at the next close
            _log.warning("indicator_last_close_failed", key=key, error=repr(e))

    def _fire(
        self, key: _Key, ids: list[int], reading: IndicatorReading, *, late: bool = False
    ) -> None:
        closed_at = (reading.close_time_ms + 1) / 1000
        now = self._clock()
        firings: list[Firing] = []
        for alarm_id in ids:
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                continue
            if alarm.expires_at <= now:
                self._drop(alarm_id)
                continue
            if alarm.state is not AlarmState.ARMED and (
                alarm.rearm_at is None or closed_at < alarm.rearm_at
            ):
                continue  # cooling down (candle time) or snoozed
            value = crossed(alarm.spec, reading.values)
            if value is None or (late and closed_at <= _since_ms(alarm) / 1000):
                continue  # not crossed; or, missed while down, before it was made or fired
            seq = alarm.seq + 1
            firings.append(
                Firing(
                    alarm_id=alarm_id,
                    chat_id=alarm.chat_id,
                    seq=seq,
                    touched_price=_decimal(value),
                    price=_decimal(reading.close),
                    touched_at=closed_at,
                    fired_at=closed_at,  # late too: a cooldown runs in candle time
                    late=late,
                    candle_ms=round(closed_at * 1000),
                )
            )
            self._drop(alarm_id)
            repeat = alarm.spec.repeat_s
            if repeat is not None:
                rearm_at = closed_at + repeat
                self._hold(_replace(alarm, state=AlarmState.FIRED, seq=seq, rearm_at=rearm_at))
        if firings:
            _log.info("indicator_alarms_fired", key=key, alarms=[f.alarm_id for f in firings])
            self._on_firings(firings)
            self._synced.set()

    # --- streams and changes -----------------------------------------------------------
    async def _sync_loop(self) -> None:
        """Follow the kline streams of the keys held; drop those no alarm needs."""
        while True:
            await self._synced.wait()
            self._synced.clear()
            for key in [k for k in self._subs if not self._keys.get(k)]:
                with contextlib.suppress(Exception):
                    await self._subs.pop(key).unsubscribe()
            for key in [k for k, ids in self._keys.items() if ids and k not in self._subs]:
                symbol, interval, market = key
                try:
                    self._subs[key] = await self._binance.ws_klines(
                        symbol, interval, self._kline_callback(key), market=market
                    )
                except Exception:  # noqa: BLE001 - tried again at the next change
                    _log.exception("indicator_stream_failed", key=key)

    async def _follow(self, cursor: int) -> None:
        while True:
            await asyncio.sleep(CHANGES_S)
            try:
                ids, cursor = await self._store.changes_since(cursor)
                for alarm_id in ids:
                    alarm = await self._store.get(alarm_id)
                    if alarm is None:
                        self.forget(alarm_id)
                    else:
                        self.apply(alarm)
            except AlarmChangesLostError:
                cursor = await self._store.change_cursor()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the store away: tried again
                _log.warning("indicator_changes_failed", error=repr(e))

    def _hold(self, alarm: Alarm) -> None:
        spec = alarm.spec
        self._alarms[alarm.id] = alarm
        self._keys.setdefault((spec.symbol, interval_of(spec), spec.market), set()).add(alarm.id)

    def _drop(self, alarm_id: int) -> None:
        alarm = self._alarms.pop(alarm_id, None)
        if alarm is not None:
            spec = alarm.spec
            self._keys.get((spec.symbol, interval_of(spec), spec.market), set()).discard(alarm_id)


def _since_ms(alarm: Alarm) -> int:
    """When the alarm was made or last fired (ms): closes before it are not its own."""
    return int(max(alarm.created_at, alarm.fired_at or 0.0) * 1000)


def _replace(alarm: Alarm, **changes: Any) -> Alarm:
    return dataclasses.replace(alarm, **changes)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))
