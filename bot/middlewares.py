"""Every middleware of the bot, in the order an update meets them:

- ``InFlight`` (outer, on updates): counts updates being handled, so that shutdown can wait.
- ``ThrottleMiddleware`` (outer, on messages): a token bucket per user
  (``TELEGRAM_THROTTLE_RATE`` commands per second, ``TELEGRAM_THROTTLE_BURST`` at once). A
  flood is answered once, then ignored until the bucket refills; nothing sleeps.
- ``AccessMiddleware`` (inner, on messages): runs for the handler that matched and checks the
  ``CommandSpec`` it was registered with (``handler.commands``): who may run it (``access``)
  and where (``private_only``); others get a polite refusal.

The locale middleware (aiogram's ``SimpleI18nMiddleware``) sits between ``InFlight`` and the
throttle, so that refusals speak the user's language.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatType
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from handler.commands import COMMAND_FLAG

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram.types import TelegramObject, User

    from handler.commands import AccessPolicy, CommandSpec

    Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

__all__ = ("AccessMiddleware", "InFlight", "ThrottleMiddleware")

_MAX_USERS: Final = 100_000  # throttle buckets kept; the idlest are forgotten beyond this


class InFlight(BaseMiddleware):
    """Counts updates being handled and handled so far (``/metrics``, tests)."""

    def __init__(self) -> None:
        self.count = 0
        self.handled = 0
        self._progress = asyncio.Condition()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        self.count += 1
        try:
            return await handler(event, data)
        finally:
            self.count -= 1
            self.handled += 1
            async with self._progress:
                self._progress.notify_all()

    async def wait_handled(self, count: int, timeout_s: float) -> None:
        """Until ``count`` updates have been handled since start."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(lambda: self.handled >= count)


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

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
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


class AccessMiddleware(BaseMiddleware):
    """Inner middleware: runs only for the handler that matched, reads its ``CommandSpec``."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        spec: CommandSpec | None = get_flag(data, COMMAND_FLAG)
        refusal = None if spec is None else self._refusal(spec, event, data)
        if refusal is None:
            return await handler(event, data)
        if isinstance(event, Message):
            await event.answer(refusal)
        return None

    def _refusal(
        self, spec: CommandSpec, event: TelegramObject, data: dict[str, Any]
    ) -> str | None:
        """Why the user may not run ``spec`` here, in their language; None when they may."""
        user: User | None = data.get("event_from_user")
        level = spec.access
        if level is not None and (user is None or not self.policy.permits(user.id, level)):
            if level == "admin":
                return _("Sorry, this command is for the bot's admins only.")
            return _(
                "Sorry, this command is only for authorised users. Ask the bot's "
                "owner to add your id ({user_id}) to ALLOWED_USER_IDS."
            ).format(user_id=user.id if user else "?")
        in_group = isinstance(event, Message) and event.chat.type != ChatType.PRIVATE
        if spec.private_only and in_group:
            return _(spec.private_reason)
        return None
