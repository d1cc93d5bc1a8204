"""What users read about their alarms: the confirmation, a firing message and its buttons,
an expiry notice, the ``/alarms`` lines, ``/history``. Pure functions; every text is an
``N_``-marked gettext message id, translated by the ``gettext`` passed in (the reader's
language), and every value is HTML-escaped (messages go out in HTML parse mode).

Button data (``callback_data``, at most 64 bytes) reads ``al:<action>:<id>[:<arg>]``:
``ACTIONS`` names them; ``pack`` and ``unpack`` write and read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from utils.alarms.alarm_errors import N_
from utils.alarms.alarm_indicator_words import interval_of
from utils.alarms.alarm_model import INDICATOR_KINDS, AlarmKind, AlarmState
from utils.alarms.alarm_parser import describe
from utils.alarms.alarm_words import duration_text, grouped_text, number_text, zone_of
from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from utils.alarms.alarm_model import Alarm, AlarmSpec, Firing

__all__ = (
    "ACTIONS",
    "BUTTON_PREFIX",
    "Buttons",
    "Press",
    "alarm_line",
    "confirmation",
    "expired_text",
    "firing_buttons",
    "firing_text",
    "history_text",
    "list_buttons",
    "list_text",
    "pack",
    "price_text",
    "state_text",
    "unpack",
    "when_text",
)

#: Inline keyboard rows of (text, callback_data).
Buttons = list[list[tuple[str, str]]]

BUTTON_PREFIX: Final = "al"
#: action -> what it does. Firing messages: snooze, rearm, delete; /alarms: pause, resume,
#: drop (delete from the list), page; /delalarm all: all (confirm), keep (cancel).
ACTIONS: Final = frozenset(
    {"snooze", "rearm", "delete", "pause", "resume", "drop", "page", "all", "keep"}
)

TEXTS: Final[Mapping[str, str]] = {
    "set": N_("Alarm #{id} is set: {condition}."),
    "now_level": N_("Now: {price} ({distance} % to the level)."),
    "now_price": N_("Now: {price}."),
    "now_day": N_("24 h change now: {change} %."),
    "repeat": N_("Repeats: after a {cooldown} cooldown, once the price has moved back."),
    "expires": N_("Expires: {when}."),
    "note": N_("Note: {note}"),
    "fired": N_("🔔 Alarm #{id}: {condition}"),
    "touched": N_("Touched {touched} at {when}; now {price}."),
    "late": N_(
        "Fired late: the touch ({touched}) happened in the minute from {when}, while the "
        "price stream was interrupted; now {price}."
    ),
    "rearms": N_("It fires again after {cooldown}, once the price has moved back."),
    "ind_late": N_("Fired late: this candle closed while the bot was down."),
    "now_rsi": N_("RSI(14) on the last closed {interval} candle: {value} (close {price})."),
    "now_macd": N_("MACD line on the last closed {interval} candle: {value} (close {price})."),
    "now_ema": N_("EMA {period} on the last closed {interval} candle: {value} (close {price})."),
    "fired_rsi": N_(
        "RSI(14) {value} at the close of the {interval} candle at {when}; close {price}."
    ),
    "fired_macd": N_(
        "MACD line {value} crossed its signal at the close of the {interval} candle at {when}; "
        "close {price}."
    ),
    "fired_ema": N_(
        "EMA {period} {value} crossed at the close of the {interval} candle at {when}; "
        "close {price}."
    ),
    "ind_repeat": N_(
        "Repeats: at a later close, after a {cooldown} cooldown, once the condition was "
        "false at a close."
    ),
    "ind_rearms": N_(
        "It fires again at a later close after {cooldown}, once the condition was false at a "
        "close."
    ),
    "expired": N_("⌛ Alarm #{id} expired without firing: {condition}."),
    "snooze": N_("Snooze 1 h"),
    "rearm": N_("Re-arm"),
    "delete": N_("Delete"),
    "pause": N_("Pause"),
    "resume": N_("Resume"),
    "prev": N_("« Back"),
    "next": N_("More »"),
    "armed": N_("armed"),
    "paused": N_("paused"),
    "done": N_("fired"),
    "gone": N_("expired"),
    "cooling": N_("fired, re-arms after {when}"),
    "list": N_("Alarms of this chat ({first} to {last} of {total}):"),
    "list_empty": N_("This chat has no alarms. Set one: /alarm btc > 70000"),
    "history": N_("Last firings in this chat:"),
    "history_empty": N_("No alarm has fired in this chat yet."),
    "history_line": N_("{when}: #{id} {condition}: touched {touched}"),
    "history_late": N_("(late)"),
    "history_gone": N_("(deleted alarm)"),
}


@dataclass(frozen=True, slots=True)
class Press:
    """A pressed button: ``action`` on alarm ``alarm_id`` (0 when none), ``arg`` a page."""

    action: str
    alarm_id: int
    arg: int = 0


def pack(action: str, alarm_id: int = 0, arg: int = 0) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown alarm button action {action!r}")
    return f"{BUTTON_PREFIX}:{action}:{alarm_id}:{arg}"


def unpack(data: str | None) -> Press | None:
    """The press in ``data``, or None when it is no alarm button (or malformed)."""
    parts = (data or "").split(":")
    if len(parts) != 4 or parts[0] != BUTTON_PREFIX or parts[1] not in ACTIONS:  # noqa: PLR2004
        return None
    if not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    return Press(parts[1], int(parts[2]), int(parts[3]))


def when_text(ts: float, tz: str | None) -> str:
    """A moment in the chat's zone: ``2026-11-24 18:28:03 Europe/Istanbul``."""
    moment = datetime.fromtimestamp(ts, zone_of(tz))
    return f"{moment:%Y-%m-%d %H:%M:%S} {tz or 'UTC'}"


def price_text(value: Decimal | float | None) -> str:
    """A price as Binance wrote it, grouped: ``70,012.5``."""
    if value is None:
        return "—"
    number = value if isinstance(value, Decimal) else Decimal(repr(value))
    return grouped_text(number)


def confirmation(
    alarm: Alarm,
    gettext: Callable[[str], str],
    *,
    tz: str | None,
    price: Decimal | None,
    change: Decimal | None = None,
    indicator: Decimal | None = None,
) -> str:
    """The answer to ``/alarm``: id, condition in words, the price now and how far the level
    is, repeat, expiry and note."""
    spec = alarm.spec
    lines = [
        gettext(TEXTS["set"]).format(
            id=alarm.id, condition=escape(describe(spec, gettext=gettext))
        )
    ]
    indicator_kind = spec.kind in INDICATOR_KINDS
    if indicator_kind and indicator is not None:
        lines.append(_indicator_line("now", spec, gettext, indicator, price, None))
    elif indicator_kind:
        pass  # no value read (a source that answered none)
    elif spec.kind is AlarmKind.DAY_CHANGE and change is not None:
        lines.append(gettext(TEXTS["now_day"]).format(change=f"{change:+.2f}"))
    elif spec.level is not None and price:
        distance = (spec.level - price) / price * 100
        lines.append(
            gettext(TEXTS["now_level"]).format(
                price=price_text(price), distance=f"{distance:+.2f}"
            )
        )
    elif price is not None:
        lines.append(gettext(TEXTS["now_price"]).format(price=price_text(price)))
    if spec.repeat_s is not None:
        repeat = TEXTS["ind_repeat" if indicator_kind else "repeat"]
        lines.append(gettext(repeat).format(cooldown=duration_text(spec.repeat_s)))
    lines.append(gettext(TEXTS["expires"]).format(when=when_text(alarm.expires_at, tz)))
    if spec.note:
        lines.append(gettext(TEXTS["note"]).format(note=escape(spec.note)))
    return "\n".join(lines)


def firing_text(
    items: Sequence[tuple[Alarm, Firing]], gettext: Callable[[str], str], *, tz: str | None
) -> str:
    """One message for the firings of one chat: per alarm its condition, the touched price
    and when, the price now, the note."""
    blocks = []
    for alarm, firing in items:
        spec = alarm.spec
        condition = escape(describe(spec, gettext=gettext))
        lines = [gettext(TEXTS["fired"]).format(id=alarm.id, condition=condition)]
        key = "late" if firing.late else "touched"
        indicator_kind = spec.kind in INDICATOR_KINDS
        if indicator_kind:
            lines.append(
                _indicator_line(
                    "fired", spec, gettext, firing.touched_price, firing.price, (firing, tz)
                )
            )
            if firing.late:
                lines.append(gettext(TEXTS["ind_late"]))
        else:
            lines.append(
                gettext(TEXTS[key]).format(
                    touched=price_text(firing.touched_price),
                    when=when_text(firing.touched_at, tz),
                    price=price_text(firing.price),
                )
            )
        if spec.repeat_s is not None:
            rearms = TEXTS["ind_rearms" if indicator_kind else "rearms"]
            lines.append(gettext(rearms).format(cooldown=duration_text(spec.repeat_s)))
        if spec.note:
            lines.append(gettext(TEXTS["note"]).format(note=escape(spec.note)))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def firing_buttons(alarm_ids: Sequence[int], gettext: Callable[[str], str]) -> Buttons:
    """Snooze 1 h, re-arm, delete: one row per alarm (its id first when there are several)."""
    rows: Buttons = []
    for alarm_id in alarm_ids:
        mark = f"#{alarm_id} " if len(alarm_ids) > 1 else ""
        rows.append(
            [
                (mark + gettext(TEXTS["snooze"]), pack("snooze", alarm_id)),
                (gettext(TEXTS["rearm"]), pack("rearm", alarm_id)),
                (gettext(TEXTS["delete"]), pack("delete", alarm_id)),
            ]
        )
    return rows


def expired_text(alarms: Sequence[Alarm], gettext: Callable[[str], str]) -> str:
    return "\n".join(
        gettext(TEXTS["expired"]).format(
            id=a.id, condition=escape(describe(a.spec, gettext=gettext))
        )
        for a in alarms
    )


def state_text(alarm: Alarm, gettext: Callable[[str], str], *, tz: str | None, now: float) -> str:
    if alarm.state is AlarmState.ARMED or (
        alarm.state is AlarmState.FIRED and alarm.rearm_at is not None and alarm.rearm_at <= now
    ):
        return gettext(TEXTS["armed"])
    if alarm.state is AlarmState.PAUSED:
        return gettext(TEXTS["paused"])
    if alarm.state is AlarmState.EXPIRED:
        return gettext(TEXTS["gone"])
    if alarm.rearm_at is not None:
        return gettext(TEXTS["cooling"]).format(when=when_text(alarm.rearm_at, tz))
    return gettext(TEXTS["done"])


def alarm_line(alarm: Alarm, gettext: Callable[[str], str], *, tz: str | None, now: float) -> str:
    """``#12 BTCUSDT spot price rises to 70,000 or above — armed · note``."""
    line = f"#{alarm.id} {escape(describe(alarm.spec, gettext=gettext))} — "
    line += state_text(alarm, gettext, tz=tz, now=now)
    if alarm.spec.note:
        line += f" · {escape(alarm.spec.note)}"
    return line


def list_text(
    alarms: Sequence[Alarm],
    gettext: Callable[[str], str],
    *,
    tz: str | None,
    offset: int,
    total: int,
    now: float,
) -> str:
    if not alarms:
        return gettext(TEXTS["list_empty"])
    head = gettext(TEXTS["list"]).format(first=offset + 1, last=offset + len(alarms), total=total)
    return "\n".join([head, *(alarm_line(a, gettext, tz=tz, now=now) for a in alarms)])


def list_buttons(
    alarms: Sequence[Alarm], gettext: Callable[[str], str], *, page: int, pages: int
) -> Buttons:
    """Per alarm: pause or resume, delete; then the page buttons."""
    rows: Buttons = []
    for alarm in alarms:
        if alarm.state is AlarmState.PAUSED:
            toggle = (f"#{alarm.id} " + gettext(TEXTS["resume"]), pack("resume", alarm.id, page))
        elif alarm.state is AlarmState.EXPIRED or (
            alarm.state is AlarmState.FIRED and alarm.rearm_at is None
        ):
            toggle = (f"#{alarm.id} " + gettext(TEXTS["rearm"]), pack("resume", alarm.id, page))
        else:
            toggle = (f"#{alarm.id} " + gettext(TEXTS["pause"]), pack("pause", alarm.id, page))
        rows.append([toggle, (gettext(TEXTS["delete"]), pack("drop", alarm.id, page))])
    paging = []
    if page > 0:
        paging.append((gettext(TEXTS["prev"]), pack("page", 0, page - 1)))
    if page + 1 < pages:
        paging.append((gettext(TEXTS["next"]), pack("page", 0, page + 1)))
    if paging:
        rows.append(paging)
    return rows


def history_text(
    firings: Sequence[Firing],
    alarms: Mapping[int, Alarm],
    gettext: Callable[[str], str],
    *,
    tz: str | None,
) -> str:
    if not firings:
        return gettext(TEXTS["history_empty"])
    lines = [gettext(TEXTS["history"])]
    for f in firings:
        alarm = alarms.get(f.alarm_id)
        condition = (
            escape(describe(alarm.spec, gettext=gettext))
            if alarm is not None
            else gettext(TEXTS["history_gone"])
        )
        line = gettext(TEXTS["history_line"]).format(
            when=when_text(f.touched_at, tz),
            id=f.alarm_id,
            condition=condition,
            touched=price_text(f.touched_price),
        )
        if f.late:
            line += " " + gettext(TEXTS["history_late"])
        lines.append(line)
    return "\n".join(lines)


def _indicator_line(
    prefix: str,
    spec: AlarmSpec,
    gettext: Callable[[str], str],
    value: Decimal,
    price: Decimal | None,
    fired: tuple[Firing, str | None] | None,
) -> str:
    """An indicator's value at a close: ``now_*`` (confirmation) or ``fired_*`` (firing)."""
    name = {AlarmKind.MACD_CROSS: "macd", AlarmKind.EMA_CROSS: "ema"}.get(spec.kind, "rsi")
    # RSI to 2 decimals; MACD and EMA to 6 significant digits
    step = (
        Decimal("0.01") if name == "rsi" or not value else Decimal(1).scaleb(value.adjusted() - 5)
    )
    shown = format(value.quantize(step), ",f")
    when = when_text(fired[0].touched_at, fired[1]) if fired else ""
    return gettext(TEXTS[f"{prefix}_{name}"]).format(
        interval=interval_of(spec),
        value=shown,
        price=price_text(price),
        period=number_text(spec.level),
        when=when,
    )
