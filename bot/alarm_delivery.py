"""The alarm service's ``AlarmDelivery``, over the bot's notifier: firings and expiry notices
go through the durable outbox under the service's job ids (a repeated id is ignored, which is
what makes a replayed firing harmless), with their buttons; a chat whose messages the outbox
holds back (it blocked the bot) is unreachable, and the notifier's 403 on a send to a chat
pauses its alarms at once (``on_unreachable``); texts are translated with the bot's
catalogues into the chat's language."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from bot.i18n import DEFAULT_LOCALE
from bot.outbox import ChatState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram.utils.i18n import I18n

    from bot.notifier import Notifier
    from utils.alarms.alarm_text import Buttons

__all__ = ("NotifierDelivery",)

_log = structlog.get_logger(__name__)


class NotifierDelivery:
    """``AlarmDelivery`` for ``AlarmService``: a thin adapter, no state of its own."""

    def __init__(self, notifier: Notifier, i18n: I18n) -> None:
        self._notifier, self._i18n = notifier, i18n

    async def send(
        self, chat_id: int, text: str, *, job_id: str, buttons: Buttons | None = None
    ) -> None:
        await self._notifier.send(chat_id, text, job_id=job_id, buttons=buttons)

    async def reachable(self, chat_id: int) -> bool:
        return await self._notifier.outbox.chat_state(chat_id) is ChatState.ACTIVE

    def on_unreachable(self, pause: Callable[[int], Awaitable[object]]) -> None:
        async def parked(chat_id: int) -> None:
            try:
                await pause(chat_id)
            except Exception as e:  # noqa: BLE001 - the desk pauses it before the next firing
                _log.warning("alarm_chat_pause_failed", chat_id=chat_id, error=repr(e))

        self._notifier.on_chat_parked = parked

    def translator(self, locale: str | None) -> Callable[[str], str]:
        chosen = locale if locale in self._i18n.available_locales else DEFAULT_LOCALE
        i18n = self._i18n

        def gettext(text: str) -> str:
            return i18n.gettext(text, locale=chosen)

        return gettext
