"""Admin alerts: what the operator of the bot must know, sent to ``ADMIN_CHAT_ID`` through the
delivery queue. A pool above 80 % / 95 %, a 429 or 418 with its ``Retry-After``, a breaker
opening and closing, Redis lost and back, streams reconnecting, the outbox itself failing,
Telegram's flood control (a 429 met by the queue or by a reply).

Alerts are sent at most once (``DeliveryPolicy.AT_MOST_ONCE``): one whose send's outcome is
unknown (a crash or a lost answer) is set aside as a dead letter, never repeated.

Each kind (per market, per pool and level) is sent at most once per
``TELEGRAM_ALERT_COOLDOWN_S``; what was held back is counted in the next alert of its kind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog

from bot.outbox import DeliveryPolicy, OutboxFullError
from utils.tasks import BackgroundTasks
from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from bot.notifier import Notifier
    from utils.binance.binance_a import BinanceEvent

__all__ = ("ALERTED_KINDS", "AdminAlerts")

_log = structlog.get_logger(__name__)

#: kind -> (icon, cooldown group); the Redis events of the limiter and the cache are one outage.
ALERTED_KINDS: Final[Mapping[str, tuple[str, str]]] = {
    "ratelimit.threshold": ("⚠️", "ratelimit.threshold"),
    "ratelimit.429": ("🛑", "ratelimit.429"),
    "ratelimit.418": ("⛔", "ratelimit.418"),
    "breaker.open": ("🔌", "breaker.open"),
    "breaker.closed": ("✅", "breaker.closed"),
    "ratelimit.redis_down": ("🧱", "redis.down"),
    "cache.down": ("🧱", "redis.down"),
    "ratelimit.redis_up": ("✅", "redis.up"),
    "cache.up": ("✅", "redis.up"),
    "ws.reconnect": ("🔁", "ws.reconnect"),
    "ws.listen_key_expired": ("🔁", "ws.listen_key_expired"),
    "outbox.down": ("📭", "outbox.down"),
    "outbox.up": ("✅", "outbox.up"),
    "telegram.429": ("🐢", "telegram.429"),
}


@dataclass(slots=True)
class _Held:
    last_at: float
    suppressed: int = 0


class AdminAlerts:
    """Subscribe ``on_binance_event`` to ``BinanceClient.events`` and pass ``on_bot_event`` to
    the notifier; both turn events into at most one admin message per kind and cooldown."""

    def __init__(
        self,
        notifier: Notifier,
        chat_id: int | None,
        *,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._chat_id = chat_id
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._tasks = BackgroundTasks()
        self.sent = 0

    def on_binance_event(self, event: BinanceEvent) -> None:
        data = dict(event.data)
        extra = ""
        if event.kind in {"ratelimit.429", "ratelimit.418"} and "retry_after_s" in data:
            extra = f" (Retry-After {data['retry_after_s']:.0f} s)"
        market = str(event.market) if event.market is not None else ""
        detail = ":".join(str(data.get(k, "")) for k in ("pool", "threshold"))
        self._raise(event.kind, f"{market}:{detail}", event.message + extra)

    def on_bot_event(self, kind: str, message: str, data: Mapping[str, Any]) -> None:
        if kind == "telegram.429" and data.get("chat_id") == self._chat_id:
            return  # an alert about the admin chat's own flood would feed the flood
        self._raise(kind, "", message)

    async def aclose(self) -> None:
        """Wait for the alerts being stored (they are durable once stored)."""
        await self._tasks.aclose(cancel=False)

    def _raise(self, kind: str, scope: str, message: str) -> None:
        if self._chat_id is None or kind not in ALERTED_KINDS:
            return
        icon, group = ALERTED_KINDS[kind]
        key = f"{group}:{scope}"
        now = self._clock()
        held = self._held.get(key)
        if held is not None and now - held.last_at < self._cooldown_s:
            held.suppressed += 1
            return
        suppressed = held.suppressed if held is not None else 0
        self._held[key] = _Held(last_at=now)
        text = f"{icon} <b>{escape(kind)}</b>\n{escape(message)}"
        if suppressed:
            text += f"\n<i>{suppressed} more like this since the last alert</i>"
        self._tasks.spawn(self._send(kind, text))

    async def _send(self, kind: str, text: str) -> None:
        assert self._chat_id is not None  # noqa: S101 - checked by _raise
        try:
            await self._notifier.send(self._chat_id, text, policy=DeliveryPolicy.AT_MOST_ONCE)
        except OutboxFullError:
            _log.error("admin_alert_lost_outbox_full", kind=kind)  # the notifier counted it
        else:
            self.sent += 1
