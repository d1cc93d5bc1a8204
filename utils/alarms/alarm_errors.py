"""The errors of the alarm domain, and the user-facing texts of the command parser.

``AlarmSyntaxError`` (a ``ValueError``) is raised by ``alarm_parser.parse_alarm``; its text is
one of ``MESSAGES``, a format string with named fields, so a handler shows it translated:
``e.translate(gettext)`` looks the template up in the catalogue and fills it in. The
templates are marked with ``N_`` for ``pybabel extract -k N_`` (babel.cfg must list
``utils/alarms/**.py`` for them to be extracted).

The store refuses an ``add`` with ``AlarmExistsError`` (the same condition is already set in
the chat) or ``AlarmLimitError`` (the chat's or the store's cap); both store nothing.
``AlarmChangesLostError`` says a change-log cursor is older than the log still kept, so the
reader must load every alarm again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "MESSAGES",
    "N_",
    "USAGE",
    "AlarmChangesLostError",
    "AlarmError",
    "AlarmExistsError",
    "AlarmLimitError",
    "AlarmSyntaxError",
)


def N_(text: str) -> str:  # gettext's marker: extracted here, translated where shown
    return text


#: The whole syntax in one line, for a reply to a bare ``/alarm``.
USAGE: Final = N_(
    "Usage: /alarm SYMBOL CONDITION [options] [note]. Conditions: > 70000, < 2500, "
    "cross 150, cross up 150, +5% 1h, -5% 1h, ±5% 1h (windows 1m to 7d), 24h +10%; "
    "on candle closes: rsi > 70 1h, rsi < 30 4h, macd cross up 4h, ema 50 cross 1d. "
    "Options: futures, repeat [30m], for 7d, until 2027-01-31, now. "
    "Example: /alarm btc > 70000 repeat take profit"
)

#: Every parser error: code -> format string. Fields are filled by ``str.format``.
MESSAGES: Final[Mapping[str, str]] = {
    "empty": USAGE,
    "symbol": N_(
        "“{word}” is not a symbol: use 2 to 20 letters or digits, like BTCUSDT, btc "
        "(its USDT pair) or eth/btc. Example: /alarm btc > 70000"
    ),
    "no_condition": N_(
        "What should {symbol} do? Add a condition: /alarm {symbol} > 70000, "
        "/alarm {symbol} cross 150, /alarm {symbol} +5% 1h or /alarm {symbol} 24h +10%"
    ),
    "condition": N_(
        "“{word}” is not a condition: use > or < with a level (/alarm btc > 70000), "
        "cross [up|down] with a level (/alarm btc cross 150), a percent change with a window "
        "(/alarm btc +5% 1h) or 24h with a percent (/alarm btc 24h +10%)."
    ),
    "indicator_unknown": N_(
        "Alarms do not watch “{word}”. Indicator alarms take rsi, macd or ema on a candle "
        "interval: /alarm {symbol} rsi > 70 1h, /alarm {symbol} macd cross up 4h, "
        "/alarm {symbol} ema 50 cross 1d"
    ),
    "rsi_op": N_(
        "RSI takes > or < and a level between 0 and 100, then a candle interval: "
        "/alarm {symbol} rsi > 70 1h or /alarm {symbol} rsi < 30 4h"
    ),
    "rsi_level": N_(
        "“{word}” is not an RSI level: use a number between 0 and 100 (not 0 or 100 "
        "themselves), like /alarm {symbol} rsi > 70 1h"
    ),
    "macd_cross": N_(
        "A MACD alarm fires when the MACD line crosses its signal line: "
        "/alarm {symbol} macd cross 4h (or cross up, cross down)"
    ),
    "ema_period": N_(
        "“{word}” is not an EMA period: use a whole number from {low} to {high}, like "
        "/alarm {symbol} ema 50 cross 1d"
    ),
    "ema_cross": N_(
        "An EMA alarm fires when the close crosses the EMA: /alarm {symbol} ema {period} "
        "cross 1d (or cross up, cross down)"
    ),
    "no_interval": N_(
        "Indicator alarms are checked when a candle closes: add its interval, one of {valid}. "
        "Example: /alarm {symbol} {example} 1h"
    ),
    "interval": N_(
        "“{word}” is not a candle interval: use one of {valid}, like /alarm btc rsi > 70 1h"
    ),
    "no_level": N_("A price level is missing after “{word}”: /alarm {symbol} {word} 70000"),
    "level": N_(
        "“{word}” is not a price level: write a positive number such as 70000, 70,000, "
        "70000.5, 70k or 1.2m. Example: /alarm btc > 70000"
    ),
    "level_range": N_(
        "“{word}” is out of range for a price level: it must be above 0 and below "
        "1,000,000,000,000,000, with at most 18 decimals. Example: /alarm btc > 70000"
    ),
    "percent": N_(
        "“{word}” is not a percent change: write +5% (a rise), -5% (a fall) or ±5% "
        "(either), then a window. Example: /alarm btc +5% 1h"
    ),
    "percent_sign": N_(
        "Say which way {word} should go: +{value}% for a rise, -{value}% for a fall, "
        "±{value}% for either. Example: /alarm btc +{value}% 1h"
    ),
    "percent_range": N_(
        "A change of {word} is out of range: a percent must be above 0 and at most "
        "{limit} %. Example: /alarm btc +5% 1h"
    ),
    "percent_fall": N_(
        "A fall of {value} % can never happen: a price cannot fall by 100 % or more. "
        "Example: /alarm btc -20% 1d"
    ),
    "no_percent": N_("A percent change is missing after 24h: /alarm {symbol} 24h +10%"),
    "no_window": N_(
        "A percent alarm needs a window from 1m to 7d after the percent: "
        "/alarm {symbol} {word} 1h (or /alarm {symbol} 24h {word} for Binance's 24 h change)"
    ),
    "window": N_(
        "“{word}” is not a window: write minutes, hours or days from 1m to 7d, like 15m, "
        "4h or 2d. Example: /alarm btc +5% 4h"
    ),
    "window_range": N_(
        "A window of {word} is outside 1m to 7d: write one like 15m, 4h or 2d. "
        "Example: /alarm btc +5% 4h"
    ),
    "window_first": N_(
        "Put the window after the percent: /alarm {symbol} {percent} {word}. Only 24h comes "
        "first, and means Binance's 24 h change: /alarm {symbol} 24h {percent}"
    ),
    "option": N_(
        "“{word}” is not an option. After the condition you may add futures, spot, "
        "repeat [30m], for 7d, until 2027-01-31 and now, then a note (start it with “note:” "
        "when its first word is one of these). "
        "Example: /alarm btc > 70000 futures repeat 30m take profit"
    ),
    "option_close": N_(
        "“{word}” is not an option: did you mean {suggestion}? "
        "Example: /alarm btc > 70000 {suggestion}"
    ),
    "option_duration": N_(
        "“{word}” alone is not an option: write for {word} (expires after {word}) or "
        "repeat {word} (fires again after a {word} cooldown)."
    ),
    "option_date": N_("“{word}” alone is not an option: write until {word}."),
    "option_twice": N_(
        "“{word}” is given twice: give each option once, like /alarm btc > 70000 repeat 30m"
    ),
    "market_both": N_(
        "Choose one market: spot (the last price) or futures (the mark price), like "
        "/alarm btc > 70000 futures"
    ),
    "repeat": N_(
        "“{word}” is not a repeat cooldown: write repeat alone (15m) or with a time from "
        "1m to 7d, like repeat 30m."
    ),
    "repeat_range": N_(
        "A repeat cooldown of {word} is outside 1m to 7d: write one like repeat 30m."
    ),
    "for": N_(
        "Write how long the alarm should live after “for”, from 1m to {days}d, like for 7d "
        "or for 12h."
    ),
    "until": N_(
        "Write a date after “until”: until 2027-01-31 (the end of that day) or "
        "until 2027-01-31T18:00 ({zone})."
    ),
    "until_bad": N_(
        "“{word}” is not a date: write until 2027-01-31 (the end of that day) or "
        "until 2027-01-31T18:00 ({zone})."
    ),
    "expiry_past": N_(
        "That expiry ({when}) is already past: give a later date, or a duration like for 7d."
    ),
    "expiry_far": N_(
        "That expiry is too far away: at most {days} days ahead, like for 90d or until {example}."
    ),
    "expiry_both": N_(
        "Give one expiry, not both: /alarm btc > 70000 for 7d or /alarm btc > 70000 "
        "until 2027-01-31"
    ),
    "note_empty": N_("Write the note after “note:”: /alarm btc > 70000 note: take profit"),
    "note_long": N_(
        "The note is {length} characters long; keep it to {limit}. "
        "Example: /alarm btc > 70000 take profit"
    ),
}


class AlarmError(Exception):
    """Base of the alarm domain's errors."""


class AlarmSyntaxError(AlarmError, ValueError):
    """The command text is not an alarm; ``str(e)`` says why and how to write it.

    ``code`` names the template in ``MESSAGES``, ``params`` fill it in.
    """

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        self.template = MESSAGES[code]
        super().__init__(self.template.format(**params))

    def translate(self, gettext: Callable[[str], str]) -> str:
        """The message in the reader's language: ``e.translate(_)``."""
        return gettext(self.template).format(**self.params)


class AlarmExistsError(AlarmError):
    """The chat already has an alarm with the same condition; nothing was stored."""

    def __init__(self, existing_id: int) -> None:
        super().__init__(f"this chat already has alarm #{existing_id} with the same condition")
        self.existing_id = existing_id


class AlarmLimitError(AlarmError):
    """The chat (``scope="chat"``) or the whole store (``scope="global"``) holds ``count``
    open alarms, its ``limit``; nothing was stored."""

    def __init__(self, count: int, limit: int, *, scope: Literal["chat", "global"]) -> None:
        where = "this chat has" if scope == "chat" else "the bot holds"
        super().__init__(
            f"{where} {count} open alarms, the limit is {limit}: nothing was stored; "
            "delete some first"
        )
        self.count, self.limit, self.scope = count, limit, scope


class AlarmChangesLostError(AlarmError):
    """Changes after the cursor were trimmed from the change log: load every alarm again
    (``armed()``) and continue from ``cursor``."""

    def __init__(self, cursor: int) -> None:
        super().__init__(
            "the change log no longer holds every change since this cursor: reload all "
            f"alarms and continue from cursor {cursor}"
        )
        self.cursor = cursor
