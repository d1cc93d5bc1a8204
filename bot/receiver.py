"""Updates in, nothing lost: each update is stored in the intake before Telegram is told it
arrived, handled, and marked done once its handler has finished.

Long polling (``poll``): ``getUpdates`` → every update ``put`` in the intake → only then the
offset moves past it, so the next ``getUpdates`` confirms it → its handler runs in the
background → ``done``. A crash before ``done`` leaves the update stored; the next process
``recover``s it. An update Telegram delivers again (its confirmation never arrived) is
refused by ``put`` (the id is stored or was done) and not handled twice. Webhook
(``webhook``): the same, answering 200 once the update is stored; a request with the right
secret whose body is not a Telegram update gets 400 and one log line.

Handlers run concurrently, as aiogram runs them, but an update waits for the one before it
from the same chat (or user), so a chat's commands are answered in order: inside one process
by chaining tasks; with a shared intake (``turns``: Redis) across processes, the process
whose turn the chat is (``bot.intake.ChatTurns``) handling its stored updates in update-id
order while the others only store. An exception that escapes the error router is logged and
the update is done all the same (errors are the error router's business); a crash is not
done. ``drain`` stops taking updates and waits for the handlers in flight (a chat's turn is
handed over after the update in hand); those it cancels at its deadline stay stored for the
next process. With a ``poll_lease`` (Redis), ``poll`` polls only while this process is the
elected poller (``bot.poll_lease``); a takeover starts from Telegram's unconfirmed updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar

import structlog
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.exceptions import TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.intake import Taken
from utils.redis_conn import STORE_UNAVAILABLE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram import Bot, Dispatcher

    from bot.intake import ChatTurns, Intake, StoredUpdate
    from bot.poll_lease import PollLease

__all__ = ("SECRET_HEADER", "Receiver")

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header's name
#: Updates handled at once; polling fetches no more until one finishes.
MAX_HANDLING: Final = 256
_STORE_ERRORS: Final = (RedisError, sqlite3.Error, OSError)
_BACKOFF_MIN_S: Final = 1.0  # after a failed getUpdates, as aiogram's polling: x1.3 up to 5 s
_BACKOFF_MAX_S: Final = 5.0
#: How long an update whose handler met a store briefly away is tried again (a failover
#: takes seconds) before it is answered as any error.
STORE_RETRY_S: Final = 30.0
_log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class Receiver:
    """Takes updates in through the intake and hands them to the dispatcher."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        intake: Intake,
        *,
        lease_s: float,
        secret_token: str | None = None,
        turns: ChatTurns | None = None,
        poll_lease: PollLease | None = None,
    ) -> None:
        self._bot = bot
        self._dispatcher = dispatcher
        self._intake = intake
        self._turns = turns
        self._poll_lease = poll_lease
        self._lease_s = lease_s
        self._secret = secret_token.encode() if secret_token else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[int, asyncio.Task[None]] = {}  # the last update of each chat
        self._turns_held: dict[int | None, asyncio.Task[None]] = {}  # with ``turns``
        self._again: set[int | None] = set()  # chats whose turn came back while ending
        self._polling = False
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self.duplicates = 0  # deliveries refused because the update was stored or done
        self.recovered = 0  # updates a gone process left, handled here

    @property
    def handling(self) -> int:
        """Updates being handled or waiting for their chat's previous one (with turns: chats)."""
        return len(self._tasks)

    @property
    def polling(self) -> bool:
        """True while this process long-polls (with a poll lease: while it is the poller)."""
        return self._polling

    async def recover(self) -> int:
        """Start the stored updates whose process is gone (each once, by update id)."""
        if self._closed:
            return 0
        if self._turns is not None:
            return await self._recover_chats(self._turns)
        adopted = await self._intake.adopt()
        for stored in adopted:
            try:
                update = Update.model_validate_json(stored.raw, context={"bot": self._bot})
            except ValidationError as e:
                _log.warning("intake_unreadable", update_id=stored.update_id, error=str(e))
                await self._intake.done(stored.update_id)
                continue
            self._start(update)
        if adopted:
            self.recovered += len(adopted)
            _log.info("intake_recovered", updates=len(adopted))
        return len(adopted)

    async def take(self, update: Update, raw: str) -> bool:
        """Store the update, then handle it in the background; False (and not handled) when
        it is stored already or was done: a delivery Telegram repeated. With ``turns`` it is
        handled here only when its chat's turn is this process's."""
        if self._turns is None:
            stored = await self._intake.put(update.update_id, raw)
        else:
            chat = _chat_key(update)
            taken = await self._turns.put_in_chat(update.update_id, raw, chat)
            stored = taken is not Taken.REFUSED
            if taken is Taken.YOUR_TURN:
                self._take_turn(chat)
        if not stored:
            self.duplicates += 1
            _log.info("update_duplicate", update_id=update.update_id)
            return False
        if self._turns is None:
            self._start(update)
        return True

    async def poll(
        self, stop: asyncio.Event, *, timeout_s: int, allowed_updates: list[str]
    ) -> None:
        """Long polling until ``stop`` is set; with a poll lease, only while this process
        holds it (a standby until then)."""

        async def term(end: asyncio.Event) -> None:
            self._polling = True
            try:
                await self._poll(end, timeout_s=timeout_s, allowed_updates=allowed_updates)
            finally:
                self._polling = False

        if self._poll_lease is None:
            await term(stop)
        else:
            await self._poll_lease.lead(stop, term)

    async def _poll(
        self, stop: asyncio.Event, *, timeout_s: int, allowed_updates: list[str]
    ) -> None:
        offset: int | None = None
        failures = 0
        request_timeout = int(self._bot.session.timeout + timeout_s)
        while not stop.is_set():
            if not await _first(self._room.wait(), stop):
                return
            fetch = self._bot.get_updates(
                offset=offset,
                timeout=timeout_s,
                allowed_updates=allowed_updates,
                request_timeout=request_timeout,
            )
            try:
                updates = await _first(fetch, stop)
            except TelegramRetryAfter as e:
                _log.warning("polling_failed", error=e.message, retry_in_s=e.retry_after)
                await _sleep(e.retry_after, stop)
                continue
            except TelegramUnauthorizedError:
                raise  # the token was revoked: retrying cannot help; the bot stops, saying so
            except Exception as e:  # noqa: BLE001 - Telegram or the network: poll again
                delay = min(_BACKOFF_MAX_S, _BACKOFF_MIN_S * 1.3**failures)
                failures += 1
                _log.warning(
                    "polling_failed", error=f"{type(e).__name__}: {e}", retry_in_s=round(delay, 1)
                )
                await _sleep(delay, stop)
                continue
            if updates is None:
                return
            failures = 0
            for update in updates:
                raw = update.model_dump_json(exclude_unset=True, by_alias=True)
                try:
                    await self.take(update, raw)
                except _STORE_ERRORS as e:
                    # Not stored, so not confirmed: the next getUpdates brings it again.
                    _log.error("intake_failed", update_id=update.update_id, error=repr(e))
                    await _sleep(_BACKOFF_MAX_S, stop)
                    break
                offset = update.update_id + 1

    async def keep_alive(self) -> None:
        """Renew this process's claim on its updates and adopt those of gone processes, every
        third of the lease, until cancelled."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self._intake.keepalive()
                await self.recover()
            except _STORE_ERRORS as e:
                _log.warning("intake_keepalive_failed", error=repr(e))

    async def webhook(self, request: web.Request) -> web.Response:
        """The webhook endpoint: 401 without the secret, 400 for a body that is no update,
        503 while stopping or when the intake fails (Telegram delivers it again), else 200
        once the update is stored."""
        header = request.headers.get(SECRET_HEADER, "").encode()
        if self._secret is not None and not secrets.compare_digest(header, self._secret):
            return web.Response(status=401, text="Unauthorized")
        if self._closed:
            return web.Response(status=503, text="stopping")
        body = await request.read()
        try:
            update = Update.model_validate_json(body, context={"bot": self._bot})
            _ = update.event_type  # raises for an update that carries no event
        except (ValidationError, LookupError) as e:
            _log.warning("webhook_bad_update", size=len(body), error=_why(e))
            return web.Response(status=400, text="not a Telegram update")
        try:
            await self.take(update, body.decode())
        except _STORE_ERRORS as e:
            _log.error("intake_failed", update_id=update.update_id, error=repr(e))
            return web.Response(status=503, text="try again")
        return web.json_response({})

    async def drain(self, timeout_s: float) -> int:
        """Stop taking updates, wait for the handlers in flight; at ``timeout_s`` cancel the
        rest (they stay stored). How many it cancelled: 0 when every handler finished."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._tasks:
            left = deadline - loop.time()
            if left <= 0:
                late = set(self._tasks)
                for task in late:
                    task.cancel()
                await asyncio.wait(late)
                return len(late)
            await asyncio.wait(set(self._tasks), timeout=left)
        return 0

    async def _recover_chats(self, turns: ChatTurns) -> int:
        adopted = await turns.adopt_chats()
        for chat, _queued in adopted:
            self._take_turn(chat)
        if count := sum(queued for _chat, queued in adopted):
            self.recovered += count
            _log.info("intake_recovered", updates=count, chats=len(adopted))
        return count

    def _take_turn(self, chat: int | None) -> None:
        """Handle the chat's queue here: its turn is this process's."""
        if chat in self._turns_held:
            self._again.add(chat)  # the running turn may be ending: it goes on
            return
        task = asyncio.create_task(self._turn(chat))
        self._turns_held[chat] = task
        self._track(task)

    async def _turn(self, chat: int | None) -> None:
        """The chat's queued updates, in update-id order, until its turn ends."""
        turns = self._turns
        assert turns is not None  # noqa: S101 - only started with turns
        try:
            while True:
                self._again.discard(chat)
                stored = await self._retrying(partial(turns.first_in_chat, chat))
                while stored is not None:
                    if self._closed:  # stopping: the rest is left to another process
                        await self._retrying(partial(turns.hand_over, chat))
                        break
                    if not await self._handle_stored(stored):  # closed while Redis was away
                        await self._retrying(partial(turns.hand_over, chat))
                        break
                    go_on = not self._closed
                    done = partial(turns.done_in_chat, stored.update_id, chat, take_next=go_on)
                    stored = await self._retrying(done)
                if chat not in self._again or self._closed:
                    return  # no await before the turn is forgotten: a put now starts anew
        finally:
            if self._turns_held.get(chat) is asyncio.current_task():
                del self._turns_held[chat]

    async def _retrying(self, call: Callable[[], Awaitable[_T]]) -> _T | None:
        """``call()``, tried again every third of the lease while the intake fails; None
        when it still fails once the receiver is closed."""
        while True:
            try:
                return await call()
            except _STORE_ERRORS as e:
                _log.error("intake_turn_failed", error=repr(e))
                if self._closed:
                    return None
                await asyncio.sleep(self._lease_s / 3)

    async def _handle_stored(self, stored: StoredUpdate) -> bool:
        try:
            update = Update.model_validate_json(stored.raw, context={"bot": self._bot})
        except ValidationError as e:
            _log.warning("intake_unreadable", update_id=stored.update_id, error=str(e))
            return True
        return await self._feed(update)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        if len(self._tasks) >= MAX_HANDLING:
            self._room.clear()

        def finished(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if len(self._tasks) < MAX_HANDLING:
                self._room.set()

        task.add_done_callback(finished)

    def _start(self, update: Update) -> None:
        key = _chat_key(update)
        previous = self._tails.get(key) if key is not None else None
        task = asyncio.create_task(self._handle(update, previous))
        self._track(task)
        if key is not None:
            self._tails[key] = task

            def forget(task: asyncio.Task[None]) -> None:
                if self._tails.get(key) is task:
                    del self._tails[key]

            task.add_done_callback(forget)

    async def _handle(self, update: Update, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # its outcome is its own
        if not await self._feed(update):
            return  # still stored: the next process handles it
        try:
            await self._intake.done(update.update_id)
        except _STORE_ERRORS as e:
            # Still stored: the next process handles it again (a duplicate answer).
            _log.error("intake_done_failed", update_id=update.update_id, error=repr(e))

    async def _feed(self, update: Update) -> bool:
        """Handle the update. A store briefly away (``STORE_UNAVAILABLE``: Redis restarting,
        a cluster failover) makes it try again, backing off, for ``STORE_RETRY_S``; the last
        try answers as any error would. False when the receiver closed meanwhile: the update
        stays stored for the next process."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + STORE_RETRY_S
        delay = _BACKOFF_MIN_S / 4
        while True:
            retry = loop.time() < give_up_at
            try:
                result = await self._dispatcher.feed_update(self._bot, update, store_retry=retry)
                if isinstance(result, TelegramMethod):
                    await self._dispatcher.silent_call_request(bot=self._bot, result=result)
            except STORE_UNAVAILABLE as e:
                if self._closed:
                    _log.warning("update_left_stored", update_id=update.update_id, error=repr(e))
                    return False
                _log.warning(
                    "update_retry", update_id=update.update_id, retry_in_s=round(delay, 2)
                )
                await asyncio.sleep(delay)
                delay = min(_BACKOFF_MAX_S, delay * 2)
                continue
            except Exception as e:  # noqa: BLE001 - past the error router: log it, it is done
                _log.error("update_failed", update_id=update.update_id, error=repr(e), exc_info=e)
            return True


def _why(error: Exception) -> str:
    """The first reason a body is no update, in one short line."""
    if not isinstance(error, ValidationError):
        return "the update carries no event"
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _chat_key(update: Update) -> int | None:
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is not None:
        return context.chat.id
    return context.user.id if context.user is not None else None


async def _first(awaitable: Awaitable[_T], stop: asyncio.Event) -> _T | None:
    """``awaitable``'s result, or None (it cancelled) once ``stop`` is set first."""
    task = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return None
    return task.result()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
