"""The ``/alarm`` command's text: ``parse_alarm`` reads it into an ``AlarmSpec``, ``render``
writes a spec back as command text that parses to the same spec, ``describe`` says the
condition in words.

Grammar (words are separated by spaces; keywords and symbols in any case)::

    SYMBOL CONDITION [OPTION ...] [NOTE]

- SYMBOL: 2 to 20 letters or digits (``BTCUSDT``, ``btc``) or ``base/quote`` (``eth/btc``),
  upper-cased. A bare asset (``ETH``) is kept as typed: the service resolves it to its USDT
  pair against exchangeInfo, as ``/price`` does.
- CONDITION: ``> L`` / ``>= L`` / ``above L`` (ABOVE), ``< L`` / ``<= L`` / ``below L``
  (BELOW), ``cross [up|down] L`` (CROSS), ``+P% W`` / ``-P% W`` / ``±P% W`` / ``+-P% W``
  (CHANGE within the rolling window W, 1m to 7d in m, h or d), ``24h +P%`` (DAY_CHANGE:
  Binance's 24 h change); on candle closes (``alarm_indicator_words``): ``rsi > L I``,
  ``rsi < L I``, ``macd cross [up|down] I``, ``ema N cross [up|down] I`` (I a kline interval,
  required). A level L is ``70000``, ``70,000``, ``70000.5``, ``70k`` or
  ``1.2m``.
- OPTION: ``futures`` / ``spot``, ``repeat [W]`` (default ``DEFAULT_REPEAT_S``), ``for W``
  or ``until DATE[THH:MM[:SS]]`` (a date alone means the end of that day), ``now``.
- NOTE: the rest of the text, verbatim. ``note:`` starts it explicitly, for a note whose first
  word would otherwise read as an option (``render`` writes it then).

Times without an offset are in ``tz`` (an IANA name; UTC when None). An expiry is a whole
second (``for`` counts from ``now`` rounded), so ``render`` writes it exactly. Anything else
raises ``AlarmSyntaxError`` with a message from ``alarm_errors.MESSAGES``; descriptions come
from ``DESCRIPTIONS``: both are format strings a handler can translate.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Final

from utils.alarms.alarm_errors import N_, AlarmSyntaxError
from utils.alarms.alarm_indicator_words import (
    INDICATORS,
    KNOWN_ELSEWHERE,
    describe_indicator,
    read_indicator,
    render_indicator,
)
from utils.alarms.alarm_model import (
    DEFAULT_REPEAT_S,
    INDICATOR_KINDS,
    MAX_NOTE,
    MAX_WINDOW_S,
    MIN_WINDOW_S,
    AlarmKind,
    AlarmSpec,
    Direction,
)
from utils.alarms.alarm_words import (
    CLOCK,
    DATE,
    DATE_LEN,
    DURATION,
    MAX_LEVEL,
    SIGN_TEXT,
    SIGNED,
    SIGNS,
    UNITS,
    duration_text,
    grouped_text,
    number_text,
    read_duration,
    read_level,
    read_percent,
    when_text,
    zone_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = (
    "DAY_WINDOW",
    "DESCRIPTIONS",
    "MAX_EXPIRY_S",
    "MAX_LEVEL",
    "NOTE_MARK",
    "AlarmSyntaxError",
    "describe",
    "parse_alarm",
    "render",
)

MAX_EXPIRY_S: Final = 730 * 86_400  # `for` / `until` at most two years ahead
DAY_WINDOW: Final = "24h"  # before a percent: Binance's 24 h change
NOTE_MARK: Final = "note:"

#: ``describe``'s texts: one per kind and direction, and the market's words.
DESCRIPTIONS: Final[Mapping[str, str]] = {
    "above": N_("{symbol} {market} rises to {level} or above"),
    "below": N_("{symbol} {market} falls to {level} or below"),
    "cross_both": N_("{symbol} {market} crosses {level} either way"),
    "cross_up": N_("{symbol} {market} crosses {level} upwards"),
    "cross_down": N_("{symbol} {market} crosses {level} downwards"),
    "change_up": N_("{symbol} {market} rises by {percent} % or more within {window}"),
    "change_down": N_("{symbol} {market} falls by {percent} % or more within {window}"),
    "change_both": N_("{symbol} {market} rises or falls by {percent} % or more within {window}"),
    "day_change_up": N_("{symbol} {market} 24 h change reaches +{percent} % or more"),
    "day_change_down": N_("{symbol} {market} 24 h change reaches -{percent} % or less"),
    "day_change_both": N_("{symbol} {market} 24 h change reaches ±{percent} % or beyond"),
    "spot": N_("spot price"),
    "futures": N_("futures mark price"),
    "day_spot": N_("spot"),
    "day_futures": N_("futures"),
}

_WORD: Final = re.compile(r"\S+")
_HEAD_PAIR: Final = re.compile(r"^\s*([A-Za-z0-9]+)\s*/\s*([A-Za-z0-9]+)")
_HEAD_OP: Final = re.compile(r"^(\s*[^\s<>=≥≤]+)\s*(>=|<=|≥|≤|>|<)\s*")
_SYMBOL: Final = re.compile(r"[A-Za-z0-9]{2,20}")
_OPS: Final[Mapping[str, AlarmKind]] = {
    **dict.fromkeys((">", ">=", "≥", "above"), AlarmKind.ABOVE),
    **dict.fromkeys(("<", "<=", "≤", "below"), AlarmKind.BELOW),
}
_CROSS: Final = frozenset({"cross", "crosses"})
_OPTIONS: Final = ("futures", "spot", "repeat", "for", "until", "now")
_KEYWORDS: Final = frozenset({*_OPTIONS, NOTE_MARK})
_LONG_OPTIONS: Final = ("futures", "spot", "repeat", "until")  # misspellings worth a warning


class _Words:
    """The words of the text with their offsets, read front to back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._words = [(m.group(), m.start()) for m in _WORD.finditer(text)]
        self.i = 0

    def peek(self, ahead: int = 0) -> str | None:
        j = self.i + ahead
        return self._words[j][0] if j < len(self._words) else None

    def take(self) -> str | None:
        word = self.peek()
        if word is not None:
            self.i += 1
        return word

    def rest(self) -> str:
        """The text from the next word on, verbatim (stripped)."""
        if self.i >= len(self._words):
            return ""
        return self.text[self._words[self.i][1] :].strip()


class _Options:
    def __init__(self) -> None:
        self.market = "spot"
        self.repeat_s: int | None = None
        self.expires_at: float | None = None
        self.now = False
        self.seen: set[str] = set()


def parse_alarm(text: str, *, now: float, tz: str | None = None) -> AlarmSpec:
    """The spec in ``text`` (the arguments after ``/alarm``); ``now`` is unix time, ``tz``
    the chat's IANA zone for times written without an offset (UTC when None).

    Raises:
        AlarmSyntaxError: the text is no alarm; the message says why and shows the syntax.
        zoneinfo.ZoneInfoNotFoundError: ``tz`` is no zone (check it when it is set).
    """
    zone = zone_of(tz)
    text = _HEAD_PAIR.sub(r"\1/\2", text, count=1)
    text = _HEAD_OP.sub(r"\1 \2 ", text, count=1)
    words = _Words(text)
    first = words.take()
    if first is None:
        raise AlarmSyntaxError("empty")
    symbol = _symbol(first)
    spec = _condition(symbol, words)
    options = _Options()
    note = _options(words, options, now, zone)
    if len(note) > MAX_NOTE:
        raise AlarmSyntaxError("note_long", length=len(note), limit=MAX_NOTE)
    return AlarmSpec(
        symbol=spec.symbol,
        market=options.market,
        kind=spec.kind,
        direction=spec.direction,
        level=spec.level,
        percent=spec.percent,
        window_s=spec.window_s,
        repeat_s=options.repeat_s,
        expires_at=options.expires_at,
        note=note,
        now=options.now,
    )


def render(spec: AlarmSpec, *, tz: str | None = None) -> str:
    """Command text (without ``/alarm``) that ``parse_alarm`` reads back as ``spec``, given
    the same ``tz``; ``hysteresis`` is not written (the parser gives the default)."""
    parts = [spec.symbol, *_render_condition(spec)]
    if spec.market != "spot":
        parts.append(spec.market)
    if spec.repeat_s is not None:
        parts += ["repeat", duration_text(spec.repeat_s)]
    if spec.expires_at is not None:
        parts += ["until", when_text(spec.expires_at, zone_of(tz))]
    if spec.now:
        parts.append("now")
    if spec.note:
        head = spec.note.split(maxsplit=1)[0]
        if head.lower() in _KEYWORDS or CLOCK.fullmatch(head) or _suspicious(head) is not None:
            parts.append(NOTE_MARK)
        parts.append(spec.note)
    return " ".join(parts)


def describe(spec: AlarmSpec, *, gettext: Callable[[str], str] = str) -> str:
    """The condition in words: "BTCUSDT spot price rises to 70,000 or above"."""
    if spec.kind in INDICATOR_KINDS:
        return describe_indicator(spec, gettext)
    kind = spec.kind
    key = kind.value
    if kind in (AlarmKind.CROSS, AlarmKind.CHANGE, AlarmKind.DAY_CHANGE):
        key = f"{key}_{spec.direction.value}"
    market = spec.market if kind is not AlarmKind.DAY_CHANGE else f"day_{spec.market}"
    return gettext(DESCRIPTIONS[key]).format(
        symbol=spec.symbol,
        market=gettext(DESCRIPTIONS[market]) if market in DESCRIPTIONS else spec.market,
        level=grouped_text(spec.level),
        percent=grouped_text(spec.percent),
        window=duration_text(spec.window_s) if spec.window_s else "",
    )


def _symbol(word: str) -> str:
    name = word.replace("/", "", 1) if word.count("/") == 1 else word
    if not word.startswith("/") and not word.endswith("/") and _SYMBOL.fullmatch(name):
        return name.upper()
    raise AlarmSyntaxError("symbol", word=word[:40])


def _condition(symbol: str, words: _Words) -> AlarmSpec:
    """The condition's fields (in a spec with defaults elsewhere)."""
    word = words.take()
    if word is None:
        raise AlarmSyntaxError("no_condition", symbol=symbol)
    low = word.lower()
    if low in INDICATORS:
        return read_indicator(symbol, low, words)
    if low in KNOWN_ELSEWHERE or (
        low.isalpha() and low not in _OPS and (words.peek() or "").lower() in (*_OPS, *_CROSS)
    ):
        raise AlarmSyntaxError("indicator_unknown", word=word[:40], symbol=symbol)
    if low in _OPS:
        level = read_level(words.take(), word, symbol)
        return AlarmSpec(symbol=symbol, kind=_OPS[low], level=level)
    if low in _CROSS:
        direction = Direction.BOTH
        if (turn := (words.peek() or "").lower()) in ("up", "down"):
            words.take()
            direction = Direction(turn)
            word = f"{word} {turn}"
        level = read_level(words.take(), word, symbol)
        return AlarmSpec(symbol=symbol, kind=AlarmKind.CROSS, direction=direction, level=level)
    if low == DAY_WINDOW:
        pct = _percent_word(words)
        if pct is None:
            raise AlarmSyntaxError("no_percent", symbol=symbol)
        direction, percent = read_percent(pct)
        return AlarmSpec(
            symbol=symbol, kind=AlarmKind.DAY_CHANGE, direction=direction, percent=percent
        )
    words.i -= 1
    if (pct := _percent_word(words)) is not None:
        direction, percent = read_percent(pct)
        window = words.take()
        if window is None:
            raise AlarmSyntaxError("no_window", symbol=symbol, word=pct)
        window_s = read_duration(window, "window", "window_range", MIN_WINDOW_S, MAX_WINDOW_S)
        return AlarmSpec(
            symbol=symbol,
            kind=AlarmKind.CHANGE,
            direction=direction,
            percent=percent,
            window_s=window_s,
        )
    if DURATION.fullmatch(low) and (after := _percent_word(_ahead(words, 1))) is not None:
        raise AlarmSyntaxError("window_first", symbol=symbol, percent=after, word=word)
    raise AlarmSyntaxError("condition", word=word[:40])


def _ahead(words: _Words, n: int) -> _Words:
    view = _Words(words.text)
    view.i = words.i + n
    return view


def _percent_word(words: _Words) -> str | None:
    """The next word if it is (an attempt at) a percent, with a detached "%" joined."""
    word = words.peek()
    if word is None:
        return None
    if word in SIGNS and (number := words.peek(1)) is not None and number[:1].isdigit():
        words.i += 1  # "+ 5%": a detached sign
        word += number
    if words.peek(1) == "%" and not word.endswith("%"):
        words.i += 2
        return word + "%"
    if word.endswith("%") or SIGNED.match(word):
        words.i += 1
        return word
    return None


def _options(words: _Words, options: _Options, now: float, zone: tzinfo) -> str:
    """Read options into ``options``; return the note (the rest of the text)."""
    while (word := words.peek()) is not None:
        low = word.lower()
        if low == NOTE_MARK:
            words.take()
            if not (note := words.rest()):
                raise AlarmSyntaxError("note_empty")
            return note
        if low not in _OPTIONS:
            if (error := _suspicious(word)) is not None:
                raise error
            return words.rest()
        words.take()
        if low in options.seen:
            raise AlarmSyntaxError("option_twice", word=low)
        options.seen.add(low)
        _option(low, words, options, now, zone)
    return ""


def _option(low: str, words: _Words, options: _Options, now: float, zone: tzinfo) -> None:
    if low in ("spot", "futures"):
        if {"spot", "futures"} <= options.seen:
            raise AlarmSyntaxError("market_both")
        options.market = low
    elif low == "now":
        options.now = True
    elif low == "repeat":
        options.repeat_s = DEFAULT_REPEAT_S
        if DURATION.fullmatch((words.peek() or "").lower()):
            options.repeat_s = read_duration(
                words.take(), "repeat", "repeat_range", MIN_WINDOW_S, MAX_WINDOW_S
            )
    else:
        if {"for", "until"} <= options.seen:
            raise AlarmSyntaxError("expiry_both")
        if low == "for":
            seconds = read_duration(words.take(), "for", "for", MIN_WINDOW_S, MAX_EXPIRY_S)
            options.expires_at = float(round(now) + seconds)
        else:
            options.expires_at = _until(words, now, zone)


def _until(words: _Words, now: float, zone: tzinfo) -> float:
    word = words.take()
    zone_name = str(zone)
    if word is None:
        raise AlarmSyntaxError("until", zone=zone_name)
    if len(word) == DATE_LEN and (clock := words.peek()) is not None and CLOCK.fullmatch(clock):
        words.take()
        word = f"{word}T{clock}"
    if not DATE.fullmatch(word):
        raise AlarmSyntaxError("until_bad", word=word[:40], zone=zone_name)
    try:
        when = datetime.fromisoformat(word.upper())
        if len(word) == DATE_LEN:  # a date alone: the end of that day
            when += timedelta(days=1)
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        expires_at = when.timestamp()
    except ValueError:
        raise AlarmSyntaxError("until_bad", word=word[:40], zone=zone_name) from None
    except OverflowError:  # the end of 9999-12-31
        expires_at = float("inf")
    if expires_at <= now:
        raise AlarmSyntaxError("expiry_past", when=word)
    if expires_at - now > MAX_EXPIRY_S:
        latest = datetime.fromtimestamp(now + MAX_EXPIRY_S, zone) - timedelta(days=1)
        example = latest.date().isoformat()
        raise AlarmSyntaxError("expiry_far", days=MAX_EXPIRY_S // 86_400, example=example)
    return expires_at


def _suspicious(word: str) -> AlarmSyntaxError | None:
    """The error for a word that starts the note but reads like a mistyped option."""
    low = word.lower()
    bare = low.lstrip("-")
    close = [
        option
        for option in difflib.get_close_matches(bare, _LONG_OPTIONS, n=1, cutoff=0.8)
        if abs(len(option) - len(bare)) <= 1  # "repeated" is a word, "repaet" a typo
    ]
    if low.startswith("-") and bare in _OPTIONS:
        return AlarmSyntaxError("option_close", word=word[:40], suggestion=bare)
    if len(bare) >= 4 and close:  # noqa: PLR2004 (shorter words are too often plain words)
        return AlarmSyntaxError("option_close", word=word[:40], suggestion=close[0])
    if low.startswith("--"):
        return AlarmSyntaxError("option", word=word[:40])
    if (match := DURATION.fullmatch(low)) and match[2] in UNITS:
        return AlarmSyntaxError("option_duration", word=word[:40])
    if DATE.fullmatch(word):
        return AlarmSyntaxError("option_date", word=word[:40])
    return None


def _render_condition(spec: AlarmSpec) -> list[str]:
    kind = spec.kind
    if kind in INDICATOR_KINDS:
        return render_indicator(spec)
    if kind in (AlarmKind.ABOVE, AlarmKind.BELOW):
        return [">=" if kind is AlarmKind.ABOVE else "<=", number_text(spec.level)]
    if kind is AlarmKind.CROSS:
        turn = [] if spec.direction is Direction.BOTH else [spec.direction.value]
        return ["cross", *turn, number_text(spec.level)]
    percent = f"{SIGN_TEXT[spec.direction]}{number_text(spec.percent)}%"
    if kind is AlarmKind.DAY_CHANGE:
        return [DAY_WINDOW, percent]
    return [percent, duration_text(spec.window_s or 0)]
