"""What an alarm is: the condition a user asked for (``AlarmSpec``), the stored alarm with its
state (``Alarm``) and one firing (``Firing``). Plain frozen types, no I/O.

Kinds and their fields:

- ``ABOVE`` / ``BELOW``: ``level``; fires when the price is at or past it.
- ``CROSS``: ``level`` and ``direction`` (``UP``, ``DOWN`` or ``BOTH``); fires when the price
  moves from one side of the level to the other (or touches it from the side it was on).
- ``CHANGE``: ``percent`` (a magnitude) within a rolling ``window_s`` and ``direction``: a rise
  (``UP``), fall (``DOWN``) or either (``BOTH``) of at least ``percent`` % within the window.
- ``DAY_CHANGE``: ``percent`` and ``direction`` against Binance's own 24 h change.

- ``RSI_ABOVE`` / ``RSI_BELOW``: ``level`` (0 to 100) on RSI(14) of the ``window_s``
  candles; fires at the close where RSI goes from at-or-under (over) the level to past it.
- ``MACD_CROSS``: MACD(12, 26, 9)'s line crossing its signal line, ``direction``.
- ``EMA_CROSS``: the close crossing the EMA whose period is ``level`` (2 to 500), ``direction``.

The indicator kinds (``INDICATOR_KINDS``) take ``window_s`` as their candle interval and are
evaluated only when a candle of it closes (``alarm_indicator``), never by the price engine.

``market`` is ``spot`` (the spot last price) or ``futures`` (the perpetual's mark price).
``repeat_s`` None means once; otherwise the alarm re-arms ``repeat_s`` after a firing, and only
once the price has moved back past the level by ``hysteresis`` (a fraction: 0.002 = 0.2 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

__all__ = (
    "DEFAULT_EXPIRY_S",
    "DEFAULT_HYSTERESIS",
    "DEFAULT_REPEAT_S",
    "INDICATOR_KINDS",
    "MAX_NOTE",
    "MAX_PERCENT",
    "MAX_WINDOW_S",
    "MIN_WINDOW_S",
    "Alarm",
    "AlarmKind",
    "AlarmSpec",
    "AlarmState",
    "Direction",
    "Firing",
)

DEFAULT_REPEAT_S: Final = 15 * 60
DEFAULT_HYSTERESIS: Final = Decimal("0.002")
DEFAULT_EXPIRY_S: Final = 90 * 86_400
MIN_WINDOW_S: Final = 60
MAX_WINDOW_S: Final = 7 * 86_400
MAX_NOTE: Final = 200
MAX_PERCENT: Final = Decimal(1000)


class AlarmKind(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CROSS = "cross"
    CHANGE = "change"
    DAY_CHANGE = "day_change"
    RSI_ABOVE = "rsi_above"
    RSI_BELOW = "rsi_below"
    MACD_CROSS = "macd_cross"
    EMA_CROSS = "ema_cross"


#: Kinds evaluated on candle closes (``alarm_indicator``), not on prices (``alarm_engine``).
INDICATOR_KINDS: Final = frozenset(
    {AlarmKind.RSI_ABOVE, AlarmKind.RSI_BELOW, AlarmKind.MACD_CROSS, AlarmKind.EMA_CROSS}
)


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


class AlarmState(StrEnum):
    ARMED = "armed"
    FIRED = "fired"  # a one-shot that fired, or a repeating one waiting out its cooldown
    PAUSED = "paused"  # by the user, or because the chat blocked the bot
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSpec:
    """The condition as the user asked for it (parsed once; ``alarm_parser.render`` writes it
    back as command text that parses to the same spec)."""

    symbol: str  # "BTCUSDT"
    market: str = "spot"  # "spot" (last price) or "futures" (mark price)
    kind: AlarmKind
    direction: Direction = Direction.BOTH
    level: Decimal | None = None  # ABOVE, BELOW, CROSS; RSI_*: the RSI; EMA_CROSS: the period
    percent: Decimal | None = None  # CHANGE, DAY_CHANGE: a positive magnitude
    window_s: int | None = None  # CHANGE: the window; indicator kinds: the candle interval
    repeat_s: int | None = None  # None: fires once
    hysteresis: Decimal = DEFAULT_HYSTERESIS
    expires_at: float | None = None  # unix time; None: the default expiry applies on create
    note: str = ""
    now: bool = False  # the user accepts that it may fire at once


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """A stored alarm. ``seq`` counts its firings: a firing's delivery id is derived from
    ``(id, seq)``, so the same firing is never delivered twice."""

    id: int
    chat_id: int
    user_id: int
    spec: AlarmSpec
    state: AlarmState = AlarmState.ARMED
    created_at: float = 0.0
    expires_at: float = 0.0
    seq: int = 0
    fired_at: float | None = None
    rearm_at: float | None = None  # repeat: not before this time


@dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """One firing: which alarm, the price that touched the level, when the touch happened
    (``touched_at``, unix seconds; earlier than ``fired_at`` when found in a gap), and the
    price at firing time."""

    alarm_id: int
    chat_id: int
    seq: int
    touched_price: Decimal
    price: Decimal
    touched_at: float
    fired_at: float
    late: bool = False
    # Indicator alarms: the candle close (unix ms) that fired it. Closes are not replayed
    # after a restart, so the next firing may reuse the sequence of one delivered but not
    # recorded before a crash; the close keeps its job id apart.
    candle_ms: int | None = None

    @property
    def job_id(self) -> str:
        """The delivery id: one per (alarm, firing), so a repeat is not stored again."""
        base = f"alarm:{self.alarm_id}:{self.seq}"
        return base if self.candle_ms is None else f"{base}:{self.candle_ms}"
