"""Background tasks with a supervisor: work started and not waited for (a retry after Binance
comes back, an admin alert being stored), cancelled or awaited at shutdown. Pure asyncio, so
``bot/``, ``handler/`` and ``utils/alarms/`` all import it downward."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ("BackgroundTasks",)


class BackgroundTasks:
    """Tasks its owner starts and does not wait for; ``aclose`` cancels what is left (or lets
    it finish) and waits for it. The bot injects one into handlers as ``tasks``."""

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
