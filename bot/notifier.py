"""The delivery queue: every message the bot sends on its own initiative (admin alerts now,
alarms next), and a reply Telegram kept refusing (``bot.pacing.ReplyGuard``), goes through
``Notifier.send``: stored in the durable outbox (``bot.outbox``: Redis or SQLite), delivered
by one process at a time (the outbox's lease), and out of the outbox once Telegram accepted it
(the store write right after Telegram's OK, nothing awaited between) or set aside as a dead
letter with the reason.

Duplicates, honestly bounded: the Bot API has no idempotency key, so a send whose answer was
never recorded (the process was killed, the connection dropped, the request timed out) may or
may not have reached the user; each job's ``DeliveryPolicy`` says what it becomes.
``AT_LEAST_ONCE`` (the default: alarms, replies handed over) is sent again: never lost, and
twice when the crash or the lost answer fell between Telegram taking it and the store write
(1-3 ms in a process at work, tens of ms in one busy starting: ``scripts/crash_delivery.py``).
``AT_MOST_ONCE`` (admin alerts) is marked "sending" in the store right before its request
leaves (after any wait for the pace: ``bot.pacing.BEFORE_REQUEST``) and never sent again once
its outcome is unknown: found marked when delivery starts (a killed process's), it is set
aside as "outcome unknown after a crash"; its answer lost in this process, as "outcome
unknown: <error>". Never twice, and lost when the crash fell between the mark and Telegram
taking it. Telegram's own error answers (429, 4xx, 5xx) and connections never made are known
outcomes, handled alike under both policies.

Telegram's flood limits are kept by scheduling, not by collecting 429s: one message at a time
per chat with ``TELEGRAM_CHAT_INTERVAL_S`` (``TELEGRAM_GROUP_INTERVAL_S`` for groups) between
Telegram's answer and the next send, oldest first per chat; the overall pace
(``TELEGRAM_GLOBAL_RATE``) is the session's ``bot.pacing.SendPacer``, which every request goes
through, replies included, and which holds a chat paused by a 429 for its ``retry_after``.
403 "blocked" and 400 "chat not found" park the chat's messages (never retried until the user
is back); network and server errors retry with backoff and jitter, up to
``TELEGRAM_MAX_ATTEMPTS`` tries, then the message is a dead letter with the reason; so is one
Telegram will never take (400 "can't parse entities"). Texts over 4,096 characters are split.
A full outbox raises ``OutboxFullError`` to the caller and is an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson
import structlog
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import ClientError
from redis.exceptions import RedisError

from bot.outbox import ChatState, DeliveryPolicy, Job, OutboxFullError, new_job_id
from bot.pacing import BEFORE_REQUEST, OUTBOX_SEND, SendPacer, outcome_unknown
from utils.text import split_html

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from aiogram import Bot

    from bot.outbox import Outbox
    from utils.config import TelegramConfig

__all__ = ("UNKNOWN_AFTER_CRASH", "Notifier")

_log = structlog.get_logger(__name__)
#: Failures of the outbox's backend: retried, never a lost message.
STORE_ERRORS: Final = (RedisError, sqlite3.Error, OSError)
_BATCH: Final = 500  # pending jobs looked at per scheduling round
_POLL_S: Final = 1.0  # how often jobs put by other processes are looked for
_T = TypeVar("_T")
#: The dead-letter reason of an AT_MOST_ONCE job found marked "sending" when delivery starts.
UNKNOWN_AFTER_CRASH: Final = "outcome unknown after a crash"
#: What a send can fail with; the rest is a bug, logged by ``_deliver``.
_SEND_ERRORS: Final = (TelegramAPIError, ClientDecodeError, ClientError, TimeoutError)


class _NotPendingError(Exception):
    """The job was parked, delivered or set aside since it was read: it is not sent."""


class Notifier:
    """Durable, flood-safe delivery to Telegram. ``start`` it, ``send`` to it, ``stop`` it."""

    def __init__(
        self,
        bot: Bot,
        outbox: Outbox,
        config: TelegramConfig,
        *,
        on_event: Callable[[str, str, Mapping[str, Any]], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bot = bot
        self.outbox = outbox
        self._config = config
        self.on_event = on_event
        #: Awaited with a chat's id once a send found it unreachable (403 blocked or kicked,
        #: 400 chat not found) and its messages were parked: the alarms pause on it.
        self.on_chat_parked: Callable[[int], Awaitable[object]] | None = None
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(config.delivery_concurrency)
        self._chat_next: dict[int, float] = {}
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._busy_chats: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._leading = False
        self._store_down = False
        self._pacer_marks = False  # the session's SendPacer runs BEFORE_REQUEST
        self.counters: Counter[str] = Counter()
        self._progress = asyncio.Condition()

    # --- the caller's side -------------------------------------------------------------
    async def send(
        self,
        chat_id: int,
        text: str,
        *,
        job_id: str | None = None,
        policy: DeliveryPolicy = DeliveryPolicy.AT_LEAST_ONCE,
        not_before: float = 0.0,
        buttons: Sequence[Sequence[tuple[str, str]]] | None = None,
    ) -> list[Job]:
        """Store ``text`` (HTML; escape what you did not write) for ``chat_id``; returns the
        jobs stored (a long text is several). With ``job_id`` a repeat is not stored again
        (the same id after delivery is ignored for the outbox's dedupe period). ``policy``
        says what a send whose outcome is unknown becomes (the module docstring);
        ``not_before`` (unix time) holds the first try back; ``buttons`` (rows of (text,
        callback_data)) go under the last part as an inline keyboard. Raises
        ``OutboxFullError`` when the outbox is full; nothing is dropped silently."""
        base = job_id or new_job_id()
        parts = split_html(text)
        markup = (
            orjson.dumps([[list(b) for b in row] for row in buttons]).decode() if buttons else ""
        )
        jobs = [
            Job(
                id=base if len(parts) == 1 else f"{base}#{i}",
                chat_id=chat_id,
                text=part,
                policy=policy,
                not_before=not_before,
                markup=markup if i == len(parts) else "",
            )
            for i, part in enumerate(parts, 1)
        ]
        try:
            stored = await self._store(lambda: self.outbox.put_many(jobs))
        except OutboxFullError as e:
            self.counters["refused_full"] += 1
            _log.error("outbox_full", depth=e.depth, capacity=e.capacity, chat_id=chat_id)
            self._event("outbox.full", str(e), {"depth": e.depth, "capacity": e.capacity})
            raise
        self._wake.set()
        return [job for job in stored if job is not None]

    async def stats(self) -> dict[str, Any]:
        """``depth``, ``parked``, ``dead``, ``blocked_chats``, ``in_flight``, counters."""
        depth, parked, dead, states = await asyncio.gather(
            self.outbox.depth(),
            self.outbox.depth("parked"),
            self.outbox.depth("dead"),
            self.outbox.chat_states(),
        )
        return {
            "depth": depth,
            "parked": parked,
            "dead": dead,
            "blocked_chats": len(states),
            "in_flight": len(self._in_flight),
            "leading": self._leading,
            **self.counters,
        }

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Until ``predicate()`` holds, checked after every delivery attempt (for operators'
        tools and tests: "the blocked chat has been recorded")."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(predicate)

    async def chat_blocked(self, chat_id: int) -> None:
        parked = await self.outbox.park_chat(chat_id, ChatState.BLOCKED)
        _log.info("chat_blocked", chat_id=chat_id, parked=parked)

    async def chat_back(self, chat_id: int) -> None:
        if await self.outbox.chat_state(chat_id) is not ChatState.ACTIVE:
            moved = await self.outbox.reactivate_chat(chat_id)
            _log.info("chat_back", chat_id=chat_id, resumed=moved)
            self._wake.set()

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._pacer_marks = any(isinstance(m, SendPacer) for m in self._bot.session.middleware)
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs from the outbox, let the sends in flight finish (and be removed),
        release the lease. What was not sent stays in the outbox for the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task
        if self._in_flight:
            _done, late = await asyncio.wait(tuple(self._in_flight.values()), timeout=timeout_s)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._leading:
            with contextlib.suppress(*STORE_ERRORS):
                await self.outbox.release(self._owner)
            self._leading = False

    # --- the scheduler -----------------------------------------------------------------
    async def _run(self) -> None:
        renew_at = 0.0
        while not self._stopping:
            try:
                lease_s = self._config.delivery_lease_s
                if time.monotonic() >= renew_at:
                    leading = await self.outbox.lead(self._owner, lease_s)
                    if leading and not self._leading:  # taking over: first, the crash's leftovers
                        await self._set_aside_unknown()
                    self._leading = leading
                    renew_at = time.monotonic() + lease_s / 3
                if not self._leading:
                    await self._pause(lease_s / 3)
                    continue
                await self._round(until_s=renew_at - time.monotonic())
                self._store_recovered()
            except STORE_ERRORS as e:
                self._store_failed(e)
                await self._pause(self._config.retry_base_s)

    async def _round(self, *, until_s: float = _POLL_S) -> None:
        """Dispatch the job that is due first, or sleep until one is (or a new one arrives, a
        send ends, or the lease is due for renewal in ``until_s``: a leader whose sends hang
        keeps renewing it, so no other process delivers meanwhile)."""
        now = self._clock()
        job, due = self._next_due(await self.outbox.pending(limit=_BATCH))
        if job is None or due > now:
            await self._pause(min(_POLL_S if job is None else due - now, _POLL_S, until_s))
            return
        if self._slots.locked():  # every slot is sending: wait for one, not past the renewal
            await self._pause(min(_POLL_S, until_s))
            return
        await self._slots.acquire()
        self._busy_chats.add(job.chat_id)
        self._in_flight[job.id] = asyncio.create_task(self._deliver(job), name=f"send-{job.id}")

    def _next_due(self, jobs: list[Job]) -> tuple[Job | None, float]:
        """The oldest job of each chat not busy; of those, the one due first."""
        best: Job | None = None
        best_due = 0.0
        seen: set[int] = set()
        for job in jobs:
            if job.chat_id in seen or job.id in self._in_flight:
                continue
            seen.add(job.chat_id)
            if job.chat_id in self._busy_chats:
                continue
            due = max(job.not_before, self._chat_next.get(job.chat_id, 0.0))
            if best is None or due < best_due:
                best, best_due = job, due
        return best, best_due

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        self._wake.clear()

    async def _set_aside_unknown(self) -> None:
        """Dead-letter the AT_MOST_ONCE jobs a killed leader left marked "sending": their
        request went out and its answer was never recorded, so they may have arrived."""
        keep = frozenset(self._in_flight)  # this process's own sends, if it led before
        for job in await self.outbox.dead_letter_sending(UNKNOWN_AFTER_CRASH, keep=keep):
            self.counters["unknown_after_crash"] += 1
            _log.error(
                "delivery_outcome_unknown",
                job_id=job.id,
                chat_id=job.chat_id,
                reason=UNKNOWN_AFTER_CRASH,
            )

    # --- one send ----------------------------------------------------------------------
    async def _deliver(self, job: Job) -> None:
        OUTBOX_SEND.set(True)  # this task's sends are the outbox's, not replies to retry
        try:
            await self._attempt(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a delivery must never kill the scheduler
            _log.exception("delivery_failed", job_id=job.id, chat_id=job.chat_id)
        finally:
            interval = (
                self._config.group_interval_s if job.chat_id < 0 else self._config.chat_interval_s
            )
            self._chat_next[job.chat_id] = max(
                self._chat_next.get(job.chat_id, 0.0), self._clock() + interval
            )
            self._busy_chats.discard(job.chat_id)
            self._in_flight.pop(job.id, None)
            self._slots.release()
            self._wake.set()
            async with self._progress:
                self._progress.notify_all()

    async def _attempt(self, job: Job) -> None:
        at_most_once = job.policy is DeliveryPolicy.AT_MOST_ONCE
        try:
            if at_most_once:
                await self._mark_sending_late(job)
            await self._bot.send_message(
                chat_id=job.chat_id, text=job.text, reply_markup=_keyboard(job.markup)
            )
        except _NotPendingError:
            return
        except TelegramRetryAfter as e:
            self.counters["retry_after"] += 1
            until = self._clock() + e.retry_after
            self._chat_next[job.chat_id] = until
            await self._store(
                lambda: self.outbox.retry(job.id, attempts=job.attempts, not_before=until)
            )
            _log.warning("telegram_flood", chat_id=job.chat_id, retry_after_s=e.retry_after)
            self._event(
                "telegram.429",
                f"Telegram flood control: chat {job.chat_id} paused for {e.retry_after} s",
                {"chat_id": job.chat_id, "retry_after_s": e.retry_after},
            )
        except TelegramMigrateToChat as e:
            moved = Job(
                id=f"{job.id}@{e.migrate_to_chat_id}",
                chat_id=e.migrate_to_chat_id,
                text=job.text,
                policy=job.policy,
            )
            await self._store(lambda: self.outbox.put(moved))
            await self._store(lambda: self.outbox.ack(job.id))
        except TelegramForbiddenError as e:
            await self._park(job, ChatState.BLOCKED, e.message)
        except TelegramBadRequest as e:
            if "chat not found" in e.message.lower():
                await self._park(job, ChatState.NOT_FOUND, e.message)
            else:  # Telegram will never take this text: set it aside with the reason
                reason = e.message
                self.counters["dead"] += 1
                _log.error("message_rejected", job_id=job.id, chat_id=job.chat_id, reason=reason)
                await self._store(lambda: self.outbox.dead_letter(job.id, reason))
        except _SEND_ERRORS as e:
            if at_most_once and outcome_unknown(e):
                await self._give_up(job, f"outcome unknown: {type(e).__name__}: {e}")
            else:
                await self._retry_later(job, e)
        else:
            # Telegram took it: nothing but this store write until the job is out of the
            # outbox, the one window in which a crash sends an AT_LEAST_ONCE job twice.
            await self._store(lambda: self.outbox.ack(job.id))
            self.counters["sent"] += 1  # delivered and out of the outbox

    async def _mark_sending_late(self, job: Job) -> None:
        """Have the job marked "sending" as late as can be: by the session's pacer once this
        send's turn has come (``BEFORE_REQUEST``, in this task), or now without a pacer."""

        async def mark() -> None:
            if not await self._store(lambda: self.outbox.mark_sending(job.id)):
                raise _NotPendingError(job.id)

        if self._pacer_marks:
            BEFORE_REQUEST.set(mark)
        else:
            await mark()

    async def _park(self, job: Job, state: ChatState, reason: str) -> None:
        self.counters[f"chat_{state}"] += 1
        parked = await self._store(lambda: self.outbox.park_chat(job.chat_id, state))
        if job.policy is DeliveryPolicy.AT_MOST_ONCE:  # refused, so not sent: clear the mark
            await self._store(
                lambda: self.outbox.retry(job.id, attempts=job.attempts, not_before=0.0)
            )
        _log.warning(
            "chat_parked", chat_id=job.chat_id, state=str(state), reason=reason, parked=parked
        )
        if self.on_chat_parked is not None:
            await self.on_chat_parked(job.chat_id)

    async def _give_up(self, job: Job, reason: str) -> None:
        self.counters["dead"] += 1
        _log.error("message_undeliverable", job_id=job.id, chat_id=job.chat_id, reason=reason)
        await self._store(lambda: self.outbox.dead_letter(job.id, reason))

    async def _retry_later(self, job: Job, error: BaseException) -> None:
        attempts = job.attempts + 1
        if attempts >= self._config.max_attempts:
            await self._give_up(job, f"{type(error).__name__} after {attempts} tries: {error}")
            return
        self.counters["retries"] += 1
        ceiling = min(self._config.retry_max_s, self._config.retry_base_s * 2 ** (attempts - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy
        _log.warning(
            "delivery_retry",
            job_id=job.id,
            attempt=attempts,
            delay_s=round(delay, 2),
            error=repr(error),
        )
        await self._store(
            lambda: self.outbox.retry(job.id, attempts=attempts, not_before=self._clock() + delay)
        )

    # --- the outbox's health -----------------------------------------------------------
    async def _store(self, op: Callable[[], Awaitable[_T]]) -> _T:
        """Run an outbox operation, retrying while its backend is down (a Redis blip)."""
        delay = self._config.retry_base_s
        while True:
            try:
                result = await op()
            except STORE_ERRORS as e:
                self._store_failed(e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.retry_max_s)
            else:
                self._store_recovered()
                return result

    def _store_failed(self, error: BaseException) -> None:
        if not self._store_down:
            self._store_down = True
            _log.error("outbox_unreachable", error=repr(error))
            self._event("outbox.down", f"The outbox is unreachable ({type(error).__name__})", {})

    def _store_recovered(self) -> None:
        if self._store_down:
            self._store_down = False
            _log.info("outbox_back")
            self._event("outbox.up", "The outbox answers again; delivery resumed", {})

    def _event(self, kind: str, message: str, data: Mapping[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, message, data)


def _keyboard(markup: str) -> InlineKeyboardMarkup | None:
    """A job's stored buttons as Telegram's inline keyboard (None for a job without)."""
    if not markup:
        return None
    rows = orjson.loads(markup)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
        ]
    )
