"""Two client middlewares on the ``Bot``'s session (TELEGRAM.md section 5.2) that every request
goes through, outermost first.

``ReplyGuard`` makes replies survive Telegram's refusals. A reply is any request to a chat
(``sendMessage``, ``sendPhoto``, edits, callback answers, deletions) that is not the delivery
queue's own send (``bot.notifier`` marks those with ``OUTBOX_SEND`` and handles their errors
itself): a handler's answer, the error handler's apology, a middleware's refusal, an edit
from a task a handler spawned. On a 429 it reports the flood (``telegram.429``, the admin
alert), waits ``retry_after`` and sends again; on a network error, a 5xx or a proxy's error
page it retries with backoff and jitter; for ``TELEGRAM_REPLY_RETRY_S`` in all. A text reply
still not sent by then is handed to the delivery queue (``Notifier.send``, at least once),
which sends it when Telegram takes messages again; the handler gets a stand-in ``Message``
(``message_id`` ``HANDED_OVER``), and an edit of that stand-in is handed over as a new
message. Anything else, and every 4xx, is raised as before. A reply whose answer was lost
(a timeout, a dropped connection) is sent again, so the user may, rarely, see it twice: the
Bot API has no idempotency key.

``SendPacer`` spaces sends to one chat by ``TELEGRAM_CHAT_INTERVAL_S``
(``TELEGRAM_GROUP_INTERVAL_S`` for groups) and all sends by ``TELEGRAM_GLOBAL_RATE``, so a
burst of replies waits its turn instead of collecting 429s; edits, callback answers and chat
actions are not spaced (Telegram does not count them as messages). It also records every
429 a request to a chat meets, whoever sent it (a reply or the queue), and holds every
request to that chat until its ``retry_after`` has passed. Once a request's turn has come it
awaits the ``BEFORE_REQUEST`` hook, if its task set one, right before the request leaves.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import structlog
from aiogram.client.default import Default
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SendPhoto,
)
from aiogram.types import Chat, Message
from aiohttp import ClientConnectorError, ClientError

from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response, TelegramType

    from bot.notifier import Notifier

__all__ = (
    "BEFORE_REQUEST",
    "HANDED_OVER",
    "OUTBOX_SEND",
    "ReplyGuard",
    "SendPacer",
    "outcome_unknown",
)

_log = structlog.get_logger(__name__)

#: True in the delivery queue's own sending tasks: ``ReplyGuard`` leaves those to it.
OUTBOX_SEND: ContextVar[bool] = ContextVar("outbox_send", default=False)
#: Awaited by ``SendPacer`` once a request's turn has come, right before it leaves: the queue
#: marks an AT_MOST_ONCE job "sending" there, so that waiting for the pace is not time in
#: which a crash would lose it. What it raises stops the request.
BEFORE_REQUEST: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "before_request", default=None
)
#: The ``message_id`` of the stand-in a handler gets for a reply handed to the queue.
HANDED_OVER: Final = 0

_PACED: Final = (SendMessage, SendPhoto)
_REPLIES: Final = (
    SendMessage,
    SendPhoto,
    EditMessageText,
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    AnswerCallbackQuery,
    DeleteMessage,
)
#: Failures worth another try: the network, Telegram's 5xx, a proxy's HTML error page.
_TRANSIENT: Final = (TelegramNetworkError, TelegramServerError, ClientDecodeError)
#: Sends are spaced a little wider than the limit: Telegram counts arrivals, we count starts.
_MARGIN: Final = 1.1
_FORGET_AFTER_S: Final = 600.0
_MAX_CHATS: Final = 10_000  # chats remembered; beyond it, those idle for _FORGET_AFTER_S go


class ReplyGuard(BaseRequestMiddleware):
    """Retries replies through 429s and outages, then hands them to the delivery queue.
    ``notifier`` and ``on_event`` are set once they exist (``bot.app.build_app``)."""

    def __init__(
        self,
        *,
        retry_s: float,
        retry_base_s: float,
        retry_max_s: float,
        pacer: SendPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry_s = retry_s
        self._pacer = pacer
        self._base_s = retry_base_s
        self._max_s = retry_max_s
        self._clock = clock
        self.notifier: Notifier | None = None
        self.on_event: Callable[[str, str, Mapping[str, Any]], Any] | None = None
        self.counters: Counter[str] = Counter()

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if OUTBOX_SEND.get() or not _is_reply(method):
            return await make_request(bot, method)
        if _edits_stand_in(method):
            return await self._hand_over(bot, method, None, 0.0)
        deadline = self._clock() + self._retry_s
        tries = 0
        while True:
            paused_s = self._paused_for(method)
            if paused_s > 0 and self._clock() + paused_s > deadline:  # a 429 met before this
                return await self._hand_over(bot, method, None, paused_s)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as e:
                self._flooded(method, e.retry_after)
                error: Exception = e
                wait_s = float(e.retry_after)
            except _TRANSIENT as e:
                if isinstance(e, TelegramEntityTooLarge):  # Telegram's 413: it will not change
                    raise
                tries += 1
                error = e
                wait_s = self._backoff(tries)
            if self._clock() + wait_s > deadline:
                return await self._hand_over(bot, method, error, wait_s)
            self.counters["retries"] += 1
            _log.warning(
                "reply_retry",
                method=type(method).__name__,
                chat_id=_chat_id(method),
                delay_s=round(wait_s, 2),
                error=repr(error),
                may_arrive_twice=outcome_unknown(error),
            )
            await asyncio.sleep(wait_s)  # after a 429 the pacer holds the chat this long too

    def _paused_for(self, method: TelegramMethod[Any]) -> float:
        chat_id = _chat_id(method)
        return 0.0 if self._pacer is None or chat_id is None else self._pacer.paused_for(chat_id)

    def _flooded(self, method: TelegramMethod[Any], retry_after: float) -> None:
        chat_id = _chat_id(method)
        self.counters["retry_after"] += 1
        _log.warning("reply_flood", chat_id=chat_id, retry_after_s=retry_after)
        if self.on_event is not None:
            self.on_event(
                "telegram.429",
                f"Telegram flood control: a reply to chat {chat_id} waits {retry_after} s",
                {"chat_id": chat_id, "retry_after_s": retry_after},
            )

    def _backoff(self, tries: int) -> float:
        ceiling = min(self._max_s, self._base_s * 2 ** (tries - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy

    async def _hand_over(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        error: Exception | None,
        wait_s: float,
    ) -> Response[TelegramType]:
        """Store a text reply in the delivery queue and return its stand-in; else raise."""
        chat_id = _chat_id(method)
        text = _as_html(bot, method)
        if self.notifier is None or not isinstance(chat_id, int) or text is None:
            self.counters["failed"] += 1
            _log.error("reply_failed", chat_id=chat_id, error=repr(error))
            if error is None:
                raise RuntimeError("a reply handed to the queue cannot be changed but by text")
            raise error
        flooded = error is None or isinstance(error, TelegramRetryAfter)
        not_before = time.time() + wait_s if flooded and wait_s > 0 else 0.0
        await self.notifier.send(chat_id, text, not_before=not_before)  # may raise: logged
        self.counters["handed_over"] += 1
        _log.warning(
            "reply_handed_over",
            chat_id=chat_id,
            error=repr(error),
            paused_s=round(wait_s, 1) if error is None else None,
            buttons_dropped=getattr(method, "reply_markup", None) is not None,
        )
        return cast("Response[TelegramType]", _stand_in(bot, chat_id, text))


class SendPacer(BaseRequestMiddleware):
    def __init__(
        self,
        *,
        chat_interval_s: float,
        group_interval_s: float,
        global_rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chat_s = chat_interval_s * _MARGIN
        self._group_s = group_interval_s * _MARGIN
        self._global_s = _MARGIN / global_rate
        self._clock = clock
        self._next_by_chat: dict[int | str, float] = {}
        self._next_global = 0.0
        self._paused_until: dict[int | str, float] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = _chat_id(method)
        if chat_id is None:
            return await make_request(bot, method)
        await self._wait_turn(chat_id, paced=isinstance(method, _PACED))
        if (hook := BEFORE_REQUEST.get()) is not None:
            await hook()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as e:
            self.pause(chat_id, e.retry_after)
            raise

    def pause(self, chat_id: int | str, seconds: float) -> None:
        """No request to ``chat_id`` starts in the next ``seconds`` (a 429's retry_after)."""
        until = self._clock() + seconds
        self._paused_until[chat_id] = max(self._paused_until.get(chat_id, 0.0), until)

    def paused_for(self, chat_id: int | str) -> float:
        """Seconds until requests to ``chat_id`` may start again (0 when they may now)."""
        return max(0.0, self._paused_until.get(chat_id, 0.0) - self._clock())

    async def _wait_turn(self, chat_id: int | str, *, paced: bool) -> None:
        """Until the chat's pause is over and, for a paced send, its booked moment has come;
        a 429 that arrives meanwhile pauses it again, and the send books anew."""
        booked = not paced
        while True:
            if (pause := self.paused_for(chat_id)) > 0:
                await asyncio.sleep(pause)
                booked = not paced
            elif not booked:
                booked = True
                if (delay := self._book(chat_id)) > 0:
                    await asyncio.sleep(delay)
            else:
                return

    def _book(self, chat_id: int | str) -> float:
        """Reserve the next free moment for this chat (and overall); seconds until it."""
        now = self._clock()
        if len(self._next_by_chat) > _MAX_CHATS:  # bound the memory, keep the recent
            self._next_by_chat = {
                c: t for c, t in self._next_by_chat.items() if t > now - _FORGET_AFTER_S
            }
            self._paused_until = {c: t for c, t in self._paused_until.items() if t > now}
        interval = self._group_s if isinstance(chat_id, int) and chat_id < 0 else self._chat_s
        at = max(now, self._next_by_chat.get(chat_id, 0.0), self._next_global)
        self._next_by_chat[chat_id] = at + interval
        self._next_global = max(self._next_global, at) + self._global_s
        return at - now


def outcome_unknown(error: BaseException) -> bool:
    """Whether a failed send may still have reached the user: its request went out and no
    answer from Telegram came back (a timeout, a dropped connection, a proxy's error page).
    Telegram's own error answer, or a connection never made, means it was not sent."""
    if isinstance(error, TelegramEntityTooLarge):  # Telegram's 413 answer
        return False
    if isinstance(error, TelegramNetworkError):  # aiogram's wrapper of the transport error
        return not isinstance(error.__cause__, ClientConnectorError)
    if isinstance(error, ClientConnectorError):
        return False
    return isinstance(error, ClientDecodeError | ClientError | TimeoutError)


def _is_reply(method: TelegramMethod[Any]) -> bool:
    return isinstance(method, _REPLIES)


def _edits_stand_in(method: TelegramMethod[Any]) -> bool:
    """An edit of a reply that was handed to the queue: it is handed over as a new message."""
    return isinstance(method, EditMessageText) and method.message_id == HANDED_OVER


def _chat_id(method: TelegramMethod[Any]) -> int | str | None:
    chat_id = getattr(method, "chat_id", None)
    return chat_id if isinstance(chat_id, int | str) else None


def _as_html(bot: Bot, method: TelegramMethod[Any]) -> str | None:
    """The reply's text as the queue sends it (HTML), or None when it has none or cannot be
    said so (a photo, entities, Markdown); its buttons are not kept."""
    if not isinstance(method, SendMessage | EditMessageText) or method.entities:
        return None
    mode = method.parse_mode
    if isinstance(mode, Default):
        mode = bot.default[mode.name]
    if mode is None:
        return escape(method.text)
    return method.text if mode == ParseMode.HTML else None


def _stand_in(bot: Bot, chat_id: int, text: str) -> Message:
    """What a handler gets for a reply handed to the queue: ``message_id`` HANDED_OVER."""
    if chat_id > 0:
        kind = ChatType.PRIVATE
    else:
        kind = ChatType.SUPERGROUP if str(chat_id).startswith("-100") else ChatType.GROUP
    chat = Chat(id=chat_id, type=kind)
    message = Message(message_id=HANDED_OVER, date=datetime.now(UTC), chat=chat, text=text)
    return message.as_(bot)
