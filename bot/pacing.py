"""Pacing every message the bot sends, replies included: a client middleware on the ``Bot``'s
session (TELEGRAM.md section 5.2) that spaces sends to one chat by ``TELEGRAM_CHAT_INTERVAL_S``
(``TELEGRAM_GROUP_INTERVAL_S`` for groups) and all sends by ``TELEGRAM_GLOBAL_RATE``, so a burst
of replies waits its turn instead of collecting 429s. Edits, callback answers and chat actions
are not paced (Telegram does not count them as messages)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.methods import SendMessage, SendPhoto

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiogram import Bot
    from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response, TelegramType

__all__ = ("SendPacer",)

_PACED: Final = (SendMessage, SendPhoto)
#: Sends are spaced a little wider than the limit: Telegram counts arrivals, we count starts.
_MARGIN: Final = 1.1
_FORGET_AFTER_S: Final = 600.0


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

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, _PACED):
            delay = self._book(method.chat_id)
            if delay > 0:
                await asyncio.sleep(delay)
        return await make_request(bot, method)

    def _book(self, chat_id: Any) -> float:
        """Reserve the next free moment for this chat (and overall); seconds until it."""
        now = self._clock()
        if len(self._next_by_chat) > 10_000:  # noqa: PLR2004 - bound the memory, keep recent
            self._next_by_chat = {
                c: t for c, t in self._next_by_chat.items() if t > now - _FORGET_AFTER_S
            }
        interval = self._group_s if isinstance(chat_id, int) and chat_id < 0 else self._chat_s
        at = max(now, self._next_by_chat.get(chat_id, 0.0), self._next_global)
        self._next_by_chat[chat_id] = at + interval
        self._next_global = max(self._next_global, at) + self._global_s
        return at - now
