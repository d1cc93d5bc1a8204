"""From the engine's firings to the chat: ``FiringDesk`` merges the firings of one chat in one
second into one message, delivers it through an ``AlarmDelivery`` (the bot's notifier
implements it), and only then records each firing in the store (``mark_fired``, a
compare-and-set on ``seq``). Each step is retried until it is done (a store or outbox blip),
the message fixed once made, so that a retry repeats its job id; a firing is never dropped.

The job id is ``Firing.job_id`` (the alarm id and its firing sequence; a merged message joins
its firings' ids): a firing replayed after a crash has the same id, which the outbox ignores
when it holds or delivered it. ``floor_ms`` is the oldest touch not yet recorded, below which
the service's checkpoint must stay (``alarm_service`` explains the whole).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import structlog

from utils.alarms.alarm_model import AlarmState
from utils.alarms.alarm_text import expired_text, firing_buttons, firing_text

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from utils.alarms.alarm_meta import AlarmMeta
    from utils.alarms.alarm_model import Alarm, Firing
    from utils.alarms.alarm_store_types import AlarmStore
    from utils.alarms.alarm_text import Buttons

__all__ = ("LOCALE_KEY", "AlarmDelivery", "FiringDesk")

_log = structlog.get_logger(__name__)

LOCALE_KEY: Final = "locale:"  # meta key prefix: a chat's language
_COALESCE_S: Final = 0.05  # firings of one chat this close together share a message
_MERGE_MAX: Final = 10  # alarms in one message (each brings a row of buttons)
_RETRY_S: Final = (0.2, 5.0)  # backoff of a delivery or store write that failed
_T = TypeVar("_T")


class AlarmDelivery(Protocol):
    """How firings reach a chat; the bot's notifier implements it (``bot/alarm_delivery``)."""

    async def send(
        self, chat_id: int, text: str, *, job_id: str, buttons: Buttons | None = None
    ) -> None:
        """Store ``text`` for delivery; a ``job_id`` held or delivered before is ignored."""
        ...

    async def reachable(self, chat_id: int) -> bool:
        """False when the chat blocked the bot (its messages wait until it is back)."""
        ...

    def translator(self, locale: str | None) -> Callable[[str], str]:
        """gettext in ``locale`` (English when None or unknown)."""
        ...

    def on_unreachable(self, pause: Callable[[int], Awaitable[object]]) -> None:
        """Have ``pause(chat_id)`` awaited as soon as a send finds a chat unreachable (a 403:
        it blocked the bot), so that its alarms stop before their next firing."""
        ...


class FiringDesk:
    """``put`` firings (sync, from the engine's feeder), ``run`` the delivery loop."""

    def __init__(
        self,
        store: AlarmStore,
        delivery: AlarmDelivery,
        meta: AlarmMeta,
        *,
        pause_chat: Callable[[int], Awaitable[object]],
        recorded: Callable[[int, AlarmState, int, float | None], None],
    ) -> None:
        self._store, self._delivery, self._meta = store, delivery, meta
        self._pause_chat, self._recorded = pause_chat, recorded
        self._queued: deque[Firing] = deque()
        self._busy: list[Firing] = []  # taken from _queued by the loop, not yet all recorded
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.fired = 0

    def put(self, firings: Sequence[Firing]) -> None:
        self._queued.extend(firings)
        self.fired += len(firings)
        self._idle.clear()
        self._wake.set()

    def floor_ms(self) -> int | None:
        """The oldest touch (ms) of a firing not yet recorded, or None."""
        held = [f.touched_at for f in (*self._queued, *self._busy)]
        return int(min(held) * 1000) if held else None

    async def drain(self) -> None:
        """Until every firing put so far is delivered and recorded."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(_COALESCE_S)  # the rest of the frame, the rest of the second
            self._wake.clear()
            self._busy = list(self._queued)
            self._queued.clear()
            groups: dict[tuple[int, int], list[Firing]] = {}
            for firing in self._busy:
                groups.setdefault((firing.chat_id, int(firing.fired_at)), []).append(firing)
            for (chat_id, _second), firings in groups.items():
                for i in range(0, len(firings), _MERGE_MAX):
                    await self._settle(chat_id, firings[i : i + _MERGE_MAX])
            self._busy = []
            if not self._queued:
                self._idle.set()

    async def gettext(self, chat_id: int) -> Callable[[str], str]:
        """gettext in the chat's language."""
        return self._delivery.translator(await self._meta.get(f"{LOCALE_KEY}{chat_id}"))

    async def expired(self, chat_id: int, alarms: Sequence[Alarm]) -> None:
        """Tell the chat its alarms expired (once: the job id names them)."""
        gettext = await self.gettext(chat_id)
        job_id = "alarm-expired:" + "+".join(str(a.id) for a in alarms)
        send = functools.partial(
            self._delivery.send, chat_id, expired_text(alarms, gettext), job_id=job_id
        )
        await _retrying(send, chat_id)

    async def _settle(self, chat_id: int, firings: list[Firing]) -> None:
        _log.info("alarm_firing", chat_id=chat_id, jobs=[f.job_id for f in firings])
        items = await _retrying(lambda: self._unrecorded(firings), chat_id)
        if not items:
            return
        if not await _retrying(lambda: self._delivery.reachable(chat_id), chat_id):
            await _retrying(lambda: self._pause_chat(chat_id), chat_id)
        text, buttons = await _retrying(lambda: self._message(chat_id, items), chat_id)
        send = functools.partial(
            self._delivery.send,
            chat_id,
            text,
            job_id="+".join(f.job_id for _a, f in items),
            buttons=buttons,
        )
        await _retrying(send, chat_id)
        for alarm, firing in items:
            repeat = alarm.spec.repeat_s
            rearm_at = None if repeat is None else firing.fired_at + repeat
            self._recorded(alarm.id, AlarmState.FIRED, firing.seq, rearm_at)
            mark = functools.partial(
                self._store.mark_fired, firing, state=AlarmState.FIRED, rearm_at=rearm_at
            )
            await _retrying(mark, chat_id)
        _log.info("alarm_fired", chat_id=chat_id, alarms=[a.id for a, _f in items])

    async def _unrecorded(self, firings: list[Firing]) -> list[tuple[Alarm, Firing]]:
        """The firings still to deliver, with their alarms: not deleted, paused or expired
        meanwhile, and not recorded already (a replay of a recorded firing)."""
        items: list[tuple[Alarm, Firing]] = []
        for firing in firings:
            alarm = await self._store.get(firing.alarm_id)
            if alarm is None or alarm.seq >= firing.seq:
                continue
            if alarm.state in (AlarmState.PAUSED, AlarmState.EXPIRED):
                continue
            items.append((alarm, firing))
        return items

    async def _message(
        self, chat_id: int, items: list[tuple[Alarm, Firing]]
    ) -> tuple[str, Buttons]:
        gettext = await self.gettext(chat_id)
        tz = await self._store.get_tz(chat_id)
        buttons = firing_buttons([a.id for a, _f in items], gettext)
        return firing_text(items, gettext, tz=tz), buttons


async def _retrying(op: Callable[[], Awaitable[_T]], chat_id: int) -> _T:
    """``op()`` until it succeeds, with backoff: a firing is kept, never dropped."""
    delay = _RETRY_S[0]
    while True:
        try:
            return await op()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - logged and retried
            _log.warning("alarm_delivery_retry", chat_id=chat_id, error=repr(e))
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_S[1])
