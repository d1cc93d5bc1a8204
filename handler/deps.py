"""What handlers receive by dependency injection besides the ``BinanceClient`` (named
``binance``): the delivery queue as seen from a handler, and the process's start time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping

__all__ = ("BackgroundTasks", "Delivery")


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


class BackgroundTasks:
    """Work a handler starts and does not wait for (a retry after Binance comes back); the bot
    cancels what is left at shutdown. Injected as ``tasks``."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, *, cancel: bool = True) -> None:
        """Cancel what is left (or, with ``cancel=False``, let it finish) and wait for it."""
        if cancel:
            for task in tuple(self._tasks):
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
