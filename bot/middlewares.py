"""The per-user command throttle: a token bucket per user (``TELEGRAM_THROTTLE_RATE`` commands
per second, ``TELEGRAM_THROTTLE_BURST`` at once). A flood is answered once, then ignored until
the bucket refills; nothing sleeps."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiogram import BaseMiddleware
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram.types import TelegramObject

__all__ = ("ThrottleMiddleware",)

_MAX_USERS: Final = 100_000  # buckets kept; the idlest are forgotten beyond this


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class ThrottleMiddleware(BaseMiddleware):
    """Outer middleware on messages: counts commands only (text starting with ``/``)."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.from_user is None:
            return await handler(event, data)
        if not (event.text or "").startswith("/"):
            return await handler(event, data)
        bucket = self._refill(event.from_user.id)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.warned = False
            return await handler(event, data)
        if not bucket.warned:
            bucket.warned = True
            await event.answer(_("Too many commands; I will ignore the rest for a moment."))
        return None

    def _refill(self, user_id: int) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= _MAX_USERS:
                oldest = min(self._buckets, key=lambda uid: self._buckets[uid].at)
                del self._buckets[oldest]
            bucket = self._buckets[user_id] = _Bucket(tokens=float(self.burst), at=now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket
