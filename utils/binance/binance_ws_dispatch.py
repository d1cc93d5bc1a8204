"""Delivery of stream messages to subscribers: one bounded mailbox and one task per
subscriber, so a slow or failing callback never blocks the socket reader or anyone else.
A message is what the owner hands in: a market stream's typed event (``binance_ws_events``),
a user data stream's decoded dict.

Price-like streams (tickers, mark prices, book tickers, ``!…@arr``) conflate: the newest
message replaces an unread older one of the same stream. Other streams keep every message
until the mailbox is full; an overflow is reported (``on_overflow``), never silent.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import TYPE_CHECKING, Any

from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("DispatchStats", "Subscriber", "is_price_stream")

_log = get_logger(__name__)
_PRICE_KINDS = frozenset({"ticker", "miniTicker", "markPrice", "bookTicker"})


def is_price_stream(stream: str) -> bool:
    """Whether only the newest message of ``stream`` matters (conflation is allowed)."""
    if stream.startswith("!"):
        return True
    parts = stream.split("@")
    return len(parts) > 1 and parts[1] in _PRICE_KINDS


class DispatchStats:
    """Counters shared by every subscriber of a manager."""

    __slots__ = ("callback_errors", "conflated", "delivered", "overflows")

    def __init__(self) -> None:
        self.delivered = self.conflated = self.overflows = self.callback_errors = 0


class Subscriber:
    """One callback with its own bounded mailbox and task; ``callback(data)`` or, with
    ``with_stream``, ``callback(stream, data)``; sync or async."""

    def __init__(
        self,
        callback: Callable[..., Any],
        *,
        queue_size: int,
        stats: DispatchStats,
        on_overflow: Callable[[str], None],
        with_stream: bool = False,
    ) -> None:
        self._callback, self._with_stream = callback, with_stream
        self._size, self._stats, self._on_overflow = queue_size, stats, on_overflow
        self._order: deque[tuple[str, Any, bool]] = deque()  # (stream, data, conflatable)
        self._latest: dict[str, Any] = {}  # price streams: the newest unread message
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, stream: str, data: Any) -> None:
        """Queue one message without waiting (the reader calls this)."""
        if is_price_stream(stream):
            if stream in self._latest:
                self._latest[stream] = data
                self._stats.conflated += 1
                return
            if len(self._order) >= self._size:
                self._overflow(stream)
                return
            self._latest[stream] = data
            self._order.append((stream, None, True))
        elif len(self._order) >= self._size:
            self._overflow(stream)
            return
        else:
            self._order.append((stream, data, False))
        self._wake.set()

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def _overflow(self, stream: str) -> None:
        self._stats.overflows += 1
        self._on_overflow(stream)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._order:
                stream, data, conflatable = self._order.popleft()
                if conflatable:
                    data = self._latest.pop(stream)
                await self._call(stream, data)

    async def _call(self, stream: str, data: Any) -> None:
        try:
            result = self._callback(stream, data) if self._with_stream else self._callback(data)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - one subscriber's bug must not stop the others
            self._stats.callback_errors += 1
            _log.exception("ws_callback_failed", stream=stream)
        else:
            self._stats.delivered += 1
