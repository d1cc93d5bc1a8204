"""``EventBus``: the client's ``BinanceEvent``s (rate-limit thresholds, 429/418, breakers,
clock resyncs, stream trouble) handed to whoever subscribed. A failing or slow subscriber is
logged and isolated; it never breaks the client."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from utils.binance.binance_types import BinanceEvent

__all__ = ("EventBus",)

_log = get_logger(__name__)


class EventBus:
    """Fan-out of ``BinanceEvent``s to subscribers; a failing subscriber is logged, isolated."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[BinanceEvent], Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, callback: Callable[[BinanceEvent], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) for every event; returns an unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: BinanceEvent) -> None:
        _log.info("binance_event", kind=event.kind, message=event.message)
        for callback in tuple(self._subscribers):
            try:
                result = callback(event)
            except Exception:  # noqa: BLE001 - a subscriber must not break the client
                _log.exception("event_subscriber_failed", kind=event.kind)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("event_subscriber_failed", error=repr(task.exception()))

    async def aclose(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
