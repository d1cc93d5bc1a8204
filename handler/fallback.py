"""What no feature's handler took: an unknown command or plain text gets one line pointing to
``/help`` (with the closest command when there is one), at most once per user every
``POINTER_INTERVAL_S``. In a group only a command addressed to the bot (``/foo@bot``) is
answered: a bare ``/foo`` may be another bot's, and the group's chatter is not for us.

Not a feature module: ``handler.build_router`` always puts this router after every feature,
since a catch-all placed before a feature's router would swallow its commands.
"""

from __future__ import annotations

import difflib
import time
from typing import TYPE_CHECKING, Final

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.utils.i18n import gettext as _

from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from aiogram import Bot
    from aiogram.types import Message

    from handler.commands import CommandSpec

__all__ = ("POINTER_INTERVAL_S", "get_router")

#: At most one pointer to /help per user in this many seconds.
POINTER_INTERVAL_S: Final = 30.0
_MAX_USERS: Final = 10_000  # users remembered; beyond it those out of their interval go
_LONGEST_NAME: Final = 32  # Telegram's longest command name


class _Pointer:
    """Answers what no handler took, remembering when each user last got a pointer."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[int, float] = {}

    async def on_message(
        self, message: Message, bot: Bot, commands: Sequence[CommandSpec] = ()
    ) -> None:
        text = await self._pointer(message, bot, commands)
        user_id = message.from_user.id if message.from_user else message.chat.id
        if text is not None and self._due(user_id):
            await message.answer(text)

    async def _pointer(
        self, message: Message, bot: Bot, commands: Sequence[CommandSpec]
    ) -> str | None:
        """The line to answer, or None when the message is not for the bot."""
        private = message.chat.type == ChatType.PRIVATE
        words = (message.text or "").split(maxsplit=1)
        head = words[0] if words else ""
        name, _at, mention = head[1:].partition("@") if head.startswith("/") else ("", "", "")
        if not name:
            return _("I answer commands only — send /help for what I can do.") if private else None
        if mention:
            if mention.lower() != ((await bot.me()).username or "").lower():
                return None  # another bot's command
        elif not private:
            return None
        known = [spec.name for spec in commands if spec.help is not None or spec.menu]
        close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
        command = escape(name[:_LONGEST_NAME])
        if close:
            return _(
                "I don't know /{command} — did you mean /{suggestion}? "
                "Send /help for what I can do."
            ).format(command=command, suggestion=close[0])
        return _("I don't know /{command} — send /help for what I can do.").format(command=command)

    def _due(self, user_id: int) -> bool:
        """True, and remembered, when the user has had no pointer for the interval."""
        now = self._clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self._interval_s:
            return False
        if len(self._last) >= _MAX_USERS:
            self._last = {u: t for u, t in self._last.items() if now - t < self._interval_s}
            if len(self._last) >= _MAX_USERS:
                del self._last[min(self._last, key=self._last.__getitem__)]
        self._last[user_id] = now
        return True


def get_router() -> Router:
    router = Router(name="fallback")
    router.message.register(_Pointer(POINTER_INTERVAL_S).on_message, F.text)
    return router
