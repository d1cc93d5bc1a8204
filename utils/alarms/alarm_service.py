"""The alarm service: the store, the engine on Binance's streams, and the firings delivered.

``AlarmService(binance, store, delivery, settings, clock)``: ``start()`` opens the store and
``meta``; the process that holds the ``lease`` (always, with ``LocalLease``; with Redis, one
process at a time, the others taking over ``ALARM_LEASE_S`` after it dies: ``alarm_leader``)
loads every live alarm into an ``AlarmEngine`` fed by ``AlarmFeed`` (streams, wicks, gap
fills), whose firings ``alarm_desk.FiringDesk`` delivers and records. Every process serves
the commands (``add_alarm``, ``pause``, ``delete``…): they write the store, and the leader
applies what changed at once in its own process, and from other processes through
``store.changes_since`` within half a second.

Exactly once, by idempotence (not by one atomic step). A firing is delivered first, under
the job id ``Firing.job_id`` (the alarm id and its firing sequence; a merged message joins
its firings' ids), which the outbox ignores when it holds or delivered it; only then does
``store.mark_fired`` record it, a compare-and-set on ``seq``. A process killed before the
delivery leaves the alarm armed and the checkpoint (how far the streams were read, written
every second, never past a firing not yet recorded) before the touch: the next leader
replays the klines from the checkpoint and fires it again with the same sequence, so the
same job id: delivered once. Killed between delivery and record: the replay's job is
ignored by the outbox, then recorded. A deposed leader that still fires meets the same ids.
The limits: a merged message regrouped differently on replay is a different job; a touch
the klines do not show (the feed's gaps over ``MAX_GAP_MINUTES``) is not replayed.

Indicator alarms (RSI, MACD, EMA crosses: ``alarm_indicator``) share the store, the desk and
the commands, but not the price engine: while this process leads, an ``IndicatorWatch`` fed by
the ``indicators`` source given (the bot wires ``analysis.alarm_source``) evaluates them on
candle closes. Without a source they are refused (``AlarmIndicatorsOffError``).

Alarms of one chat that fire in the same second are merged into one message. Expired alarms
are looked for every ``ALARM_SWEEP_S``; their chats are told. A chat that blocked the bot has
its alarms paused (not deleted) as soon as a send to it meets Telegram's 403 (the delivery's
``on_unreachable`` calls ``pause_chat``), and, should that have failed, before the next
firing the desk finds it unreachable for; ``resume_chat`` (``/start``) gives them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import structlog

from utils.alarms.alarm_desk import LOCALE_KEY, AlarmDelivery, FiringDesk
from utils.alarms.alarm_errors import AlarmError
from utils.alarms.alarm_indicator import IndicatorWatch
from utils.alarms.alarm_indicator_words import interval_of, series_names
from utils.alarms.alarm_leader import AlarmLeader
from utils.alarms.alarm_meta import LocalLease, MemoryMeta
from utils.alarms.alarm_model import (
    DEFAULT_EXPIRY_S,
    INDICATOR_KINDS,
    AlarmKind,
    AlarmState,
    Direction,
)
from utils.alarms.alarm_parser import parse_alarm
from utils.binance.binance_a import Market

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from utils.alarms.alarm_indicator import IndicatorSource
    from utils.alarms.alarm_meta import AlarmMeta, Lease
    from utils.alarms.alarm_model import Alarm, AlarmSpec, Firing
    from utils.alarms.alarm_store_types import AlarmStore
    from utils.binance.binance_a import BinanceClient
    from utils.config import AlarmConfig

__all__ = (
    "AddedAlarm",
    "AlarmDelivery",
    "AlarmIndicatorsOffError",
    "AlarmService",
    "AlarmSymbolError",
    "AlarmWouldFireError",
)

_log = structlog.get_logger(__name__)

_CHANGES_S: Final = 0.5  # how often the leader reads the store's change log
_CHECKPOINT_S: Final = 1.0
_STOP_DRAIN_S: Final = 5.0
_CHECKPOINT_KEY: Final = "checkpoint:"


class AlarmSymbolError(AlarmError):
    """The symbol is not traded on the market; ``suggestions`` are the closest that are."""

    def __init__(self, symbol: str, market: str, suggestions: Sequence[str]) -> None:
        super().__init__(f"{symbol} is not traded on Binance {market}")
        self.symbol, self.market, self.suggestions = symbol, market, tuple(suggestions)


class AlarmWouldFireError(AlarmError):
    """The condition already holds (``now`` sets it anyway); ``price`` or ``change`` is why."""

    def __init__(self, spec: AlarmSpec, price: Decimal | None, change: Decimal | None) -> None:
        super().__init__(f"{spec.symbol} already meets the condition")
        self.spec, self.price, self.change = spec, price, change


class AlarmIndicatorsOffError(AlarmError):
    """Indicator alarms are not offered here (the service has no indicator source)."""


@dataclass(frozen=True, slots=True)
class AddedAlarm:
    """A stored alarm and the price it was set at (``change``: the 24 h change, in %;
    ``indicator``: an indicator alarm's value on the last closed candle, ``price`` its close)."""

    alarm: Alarm
    price: Decimal | None
    change: Decimal | None = None
    indicator: Decimal | None = None


class AlarmService:
    """Alarms end to end. ``start``, serve commands, ``stop``."""

    def __init__(
        self,
        binance: BinanceClient,
        store: AlarmStore,
        delivery: AlarmDelivery,
        settings: AlarmConfig,
        clock: Callable[[], float] = time.time,
        *,
        meta: AlarmMeta | None = None,
        lease: Lease | None = None,
        indicators: IndicatorSource | None = None,
    ) -> None:
        self._binance, self.store, self._delivery = binance, store, delivery
        self._settings, self._clock = settings, clock
        self._meta: AlarmMeta = meta or MemoryMeta()
        self.desk = FiringDesk(
            store,
            delivery,
            self._meta,
            pause_chat=self.pause_chat,
            recorded=self._recorded,
        )
        self.leader = AlarmLeader(
            binance, store, self._meta, lease or LocalLease(), self.desk, settings, clock
        )
        self._desk_task: asyncio.Task[None] | None = None
        self._indicators = indicators
        self.watch: IndicatorWatch | None = None  # while leading, with a source
        self._watch_task: asyncio.Task[None] | None = None
        delivery.on_unreachable(self.pause_chat)

    @property
    def settings(self) -> AlarmConfig:
        return self._settings

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return self.leader.leading

    @property
    def led(self) -> asyncio.Event:
        """Set while this process's engine runs (tests, health)."""
        return self.leader.led

    @property
    def fired(self) -> int:
        """Firings this process's engine produced."""
        return self.desk.fired

    async def start(self) -> None:
        await self.store.open()
        await self._meta.open()
        self._desk_task = asyncio.create_task(self.desk.run(), name="alarm-delivery")
        await self.leader.start()
        if self._indicators is not None:
            self._watch_task = asyncio.create_task(self._watch_loop(), name="indicator-watch")

    async def stop(self) -> None:
        """Stop leading, deliver what fired (``_STOP_DRAIN_S`` at most), close the store."""
        if self._watch_task is not None:
            await _cancel(self._watch_task)
            self._watch_task = None
        await self.leader.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STOP_DRAIN_S):
                await self.desk.drain()  # what fired is handed over before stopping
        if self._desk_task is not None:
            await _cancel(self._desk_task)
            self._desk_task = None
        await self.leader.release()
        await self._meta.close()
        await self.store.close()

    # --- commands ----------------------------------------------------------------------
    async def add_alarm(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        now: float | None = None,
        locale: str | None = None,
    ) -> AddedAlarm:
        """Parse, check and store an alarm; raises ``AlarmSyntaxError``,
        ``AlarmSymbolError``, ``AlarmWouldFireError``, ``AlarmExistsError``,
        ``AlarmLimitError`` (nothing stored) or a ``BinanceError``."""
        now = self._clock() if now is None else now
        tz = await self.store.get_tz(chat_id)
        spec = parse_alarm(text, now=now, tz=tz)
        spec = dataclasses.replace(spec, symbol=await self._resolve(spec.symbol, spec.market))
        value: Decimal | None = None
        price: Decimal | None
        change: Decimal | None
        if spec.kind in INDICATOR_KINDS:
            price, value = await self._indicator_now(spec)
            change = None
        else:
            price, change = await self._current(spec)
        if not spec.now and _holds(spec, price, change):
            raise AlarmWouldFireError(spec, price, change)
        alarm = await self.store.add(
            chat_id,
            user_id,
            spec,
            now=now,
            per_chat_limit=self._settings.per_chat,
            global_limit=self._settings.global_cap,
        )
        if locale:
            await self.set_locale(chat_id, locale)
        self._apply(alarm, price)
        return AddedAlarm(alarm, price, change, value)

    async def get(self, alarm_id: int) -> Alarm | None:
        return await self.store.get(alarm_id)

    async def chat_alarms(
        self, chat_id: int, *, offset: int, limit: int
    ) -> tuple[list[Alarm], int]:
        alarms, total = await asyncio.gather(
            self.store.chat_alarms(chat_id, offset=offset, limit=limit),
            self.store.count(chat_id),
        )
        return alarms, total

    async def pause(self, alarm_id: int) -> Alarm | None:
        return self._apply(await self.store.set_state(alarm_id, AlarmState.PAUSED))

    async def resume(self, alarm_id: int) -> Alarm | None:
        """Arm it again; an alarm past its expiry gets the default expiry from now."""
        alarm = await self.store.get(alarm_id)
        if alarm is None:
            return None
        now = self._clock()
        expires = now + DEFAULT_EXPIRY_S if alarm.expires_at <= now else None
        changed = await self.store.set_state(alarm_id, AlarmState.ARMED, expires_at=expires)
        return self._apply(changed)

    async def rearm(self, alarm_id: int) -> Alarm | None:
        """Arm it again as a repeat would: it fires once the price has moved back past the
        level and reached it again (a condition still true does not fire at once)."""
        alarm = await self.store.get(alarm_id)
        if alarm is None:
            return None
        now = self._clock()
        expires = now + DEFAULT_EXPIRY_S if alarm.expires_at <= now else None
        changed = await self.store.set_state(
            alarm_id, AlarmState.FIRED, rearm_at=now, expires_at=expires
        )
        return self._apply(changed)

    async def snooze(self, alarm_id: int, seconds: float) -> Alarm | None:
        """Silence it until ``seconds`` from now; then it re-arms as ``rearm`` does."""
        until = self._clock() + seconds
        changed = await self.store.set_state(alarm_id, AlarmState.FIRED, rearm_at=until)
        return self._apply(changed)

    async def delete(self, alarm_id: int) -> bool:
        deleted = await self.store.delete(alarm_id)
        self.leader.forget(alarm_id)
        if self.watch is not None:
            self.watch.forget(alarm_id)
        return deleted

    async def delete_chat(self, chat_id: int) -> int:
        count = await self.store.delete_chat(chat_id)
        self.leader.poke()
        return count

    async def history(
        self, chat_id: int, limit: int = 20
    ) -> tuple[list[Firing], dict[int, Alarm]]:
        firings = await self.store.history(chat_id, limit)
        alarms: dict[int, Alarm] = {}
        for alarm_id in {f.alarm_id for f in firings}:
            if (alarm := await self.store.get(alarm_id)) is not None:
                alarms[alarm_id] = alarm
        return firings, alarms

    async def get_tz(self, chat_id: int) -> str | None:
        return await self.store.get_tz(chat_id)

    async def set_tz(self, chat_id: int, tz: str | None) -> None:
        await self.store.set_tz(chat_id, tz)

    async def set_locale(self, chat_id: int, locale: str) -> None:
        if await self._meta.get(f"{LOCALE_KEY}{chat_id}") != locale:
            await self._meta.set(f"{LOCALE_KEY}{chat_id}", locale)

    async def pause_chat(self, chat_id: int) -> int:
        """The chat blocked the bot: its live alarms pause until ``resume_chat``."""
        count = await self.store.pause_chat(chat_id)
        self.leader.poke()
        _log.info("alarm_chat_paused", chat_id=chat_id, alarms=count)
        return count

    async def resume_chat(self, chat_id: int) -> int:
        count = await self.store.resume_chat(chat_id)
        self.leader.poke()
        if count:
            _log.info("alarm_chat_resumed", chat_id=chat_id, alarms=count)
        return count

    # --- indicator alarms --------------------------------------------------------------
    def _apply(self, alarm: Alarm | None, price: Decimal | None = None) -> Alarm | None:
        """A change made here: into the engine (price alarms) or the watch (indicators)."""
        if self.watch is not None:
            self.watch.apply(alarm)
        return self.leader.apply_here(alarm, price)

    def _recorded(self, alarm_id: int, state: AlarmState, seq: int, rearm: float | None) -> None:
        self.leader.recorded(alarm_id, state, seq, rearm)
        if self.watch is not None:
            self.watch.recorded(alarm_id, state, seq, rearm)

    async def _watch_loop(self) -> None:
        """An ``IndicatorWatch`` while this process leads (checked every ``_CHANGES_S``)."""
        if self._indicators is None:
            return
        while True:
            await self.leader.led.wait()
            watch = IndicatorWatch(
                self._binance,
                self.store,
                self._indicators,
                self.desk.put,
                self._clock,
                meta=self._meta,
                floor_ms=self.desk.floor_ms,
            )
            try:
                await watch.start()
                self.watch = watch
                while self.leader.leading:  # noqa: ASYNC110 - the leader has no "lost" event
                    await asyncio.sleep(_CHANGES_S)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - started again while leading
                _log.exception("indicator_watch_failed")
                await asyncio.sleep(_CHANGES_S)
            finally:
                self.watch = None
                await watch.stop()

    async def _indicator_now(self, spec: AlarmSpec) -> tuple[Decimal, Decimal]:
        """The last closed candle's close and the alarm's indicator on it."""
        if self._indicators is None:
            raise AlarmIndicatorsOffError("indicator alarms are not offered here")
        names = series_names(spec)
        reading = await self._indicators.read(spec.symbol, interval_of(spec), spec.market, names)
        value = reading.values[names[0]][1]
        return Decimal(repr(reading.close)), Decimal(repr(value))

    # --- checking a new alarm ----------------------------------------------------------
    async def _resolve(self, symbol: str, market: str) -> str:
        """The symbol on ``market`` (a bare asset is its USDT pair), or AlarmSymbolError."""
        rules = await self._binance.symbol_rules(Market(market))
        name = symbol
        if rules.get(name) is None and rules.get(f"{name}USDT") is not None:
            name = f"{name}USDT"
        info = rules.get(name)
        if info is None or info.status != "TRADING":
            raise AlarmSymbolError(name, market, [s for s in rules.suggest(name) if s != name])
        return name

    async def _current(self, spec: AlarmSpec) -> tuple[Decimal | None, Decimal | None]:
        """The price the alarm watches now, and the 24 h change for a DAY_CHANGE alarm."""
        snapshot = (await self._binance.get_prices([spec.symbol]))[spec.symbol]
        if spec.market == "spot":
            return snapshot.price, snapshot.change_24h_pct
        change = None
        if spec.kind is AlarmKind.DAY_CHANGE:
            day = await self._binance.call("GET /fapi/v1/ticker/24hr", symbol=spec.symbol)
            change = Decimal(day["priceChangePercent"])
        return snapshot.mark_price, change


def _holds(spec: AlarmSpec, price: Decimal | None, change: Decimal | None) -> bool:
    """Whether the alarm would fire at once at ``price`` (``change``: the 24 h change)."""
    if spec.kind is AlarmKind.ABOVE:
        return price is not None and spec.level is not None and price >= spec.level
    if spec.kind is AlarmKind.BELOW:
        return price is not None and spec.level is not None and price <= spec.level
    if spec.kind is AlarmKind.DAY_CHANGE and change is not None and spec.percent is not None:
        if spec.direction is Direction.UP:
            return change >= spec.percent
        if spec.direction is Direction.DOWN:
            return change <= -spec.percent
        return abs(change) >= spec.percent
    return False


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
