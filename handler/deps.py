"""What handlers receive by dependency injection besides the ``BinanceClient`` (named
``binance``): the delivery queue as seen from a handler. The others are ``tasks``
(``utils.tasks.BackgroundTasks``), ``started_at`` (the process's monotonic start time),
``commands`` (every declared ``handler.commands.CommandSpec``), ``access``
(``handler.commands.AccessPolicy``) and ``price_retry_s`` (``TELEGRAM_PRICE_RETRY_S``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("Delivery",)


class Delivery(Protocol):
    """The bot's notifier (``bot.notifier.Notifier``), injected as ``notifier``."""

    async def stats(self) -> Mapping[str, Any]:
        """``depth`` (waiting), ``parked``, ``dead``, ``sent``, ``blocked_chats``."""
        ...

    async def chat_blocked(self, chat_id: int) -> None:
        """The user blocked the bot: park the chat's messages."""
        ...

    async def chat_back(self, chat_id: int) -> None:
        """The user is reachable again: deliver what was parked."""
        ...
