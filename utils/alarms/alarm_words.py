"""The words of the ``/alarm`` command, read and written: levels, percents, durations and
times, with the limits each must keep. ``alarm_parser`` puts them together; a word that is
not what its place needs raises ``AlarmSyntaxError`` naming it.

Numbers are exact ``Decimal``s (``70,000``, ``70k``, ``1.2m``; never an exponent), durations
whole minutes, hours or days (``15m``, ``4h``, ``2d``), times ISO 8601 (``2027-01-31``,
``2027-01-31T18:00``, with an optional offset) in a given zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from utils.alarms.alarm_errors import AlarmSyntaxError
from utils.alarms.alarm_model import MAX_PERCENT, Direction

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "CLOCK",
    "DATE",
    "DATE_LEN",
    "DURATION",
    "MAX_LEVEL",
    "MAX_LEVEL_DECIMALS",
    "PERCENT",
    "SIGNED",
    "SIGNS",
    "SIGN_TEXT",
    "UNITS",
    "duration_text",
    "grouped_text",
    "number_text",
    "read_duration",
    "read_level",
    "read_number",
    "read_percent",
    "to_plain",
    "when_text",
    "zone_of",
)

MAX_LEVEL: Final = Decimal(10) ** 15  # exclusive
MAX_LEVEL_DECIMALS: Final = 18
_CTX: Final = Context(prec=80)  # exact for every number short enough to be accepted
_MAX_NUMBER_CHARS: Final = 40
NUMBER: Final = re.compile(r"((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)([km]?)")
PERCENT: Final = re.compile(r"(\+-|-\+|\+/-|±|\+|-)?([0-9.,]+)%")
SIGNED: Final = re.compile(r"(\+-|-\+|\+/-|±|\+|-)[0-9.]")
DURATION: Final = re.compile(r"([0-9]+)([a-z]+)")
UNITS: Final[Mapping[str, int]] = {"m": 60, "min": 60, "h": 3_600, "d": 86_400}
DATE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.IGNORECASE,
)
DATE_LEN: Final = len("2027-01-31")
CLOCK: Final = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?")
SIGNS: Final[Mapping[str, Direction]] = {
    "+": Direction.UP,
    "-": Direction.DOWN,
    **dict.fromkeys(("±", "+-", "-+", "+/-"), Direction.BOTH),
}
SIGN_TEXT: Final[Mapping[Direction, str]] = {
    Direction.UP: "+",
    Direction.DOWN: "-",
    Direction.BOTH: "±",
}


def zone_of(tz: str | None) -> tzinfo:
    return UTC if tz is None else ZoneInfo(tz)


def read_number(word: str) -> Decimal | None:
    match = NUMBER.fullmatch(word.lower())
    if match is None or len(word) > _MAX_NUMBER_CHARS:
        return None
    value = Decimal(match[1].replace(",", ""))
    scale = {"": 0, "k": 3, "m": 6}[match[2]]
    return value.scaleb(scale, _CTX).normalize(_CTX) if scale else value.normalize(_CTX)


def to_plain(value: Decimal) -> Decimal:
    """The same number without an exponent (``7E+4`` is ``70000``)."""
    return Decimal(format(value, "f"))


def read_level(word: str | None, after: str, symbol: str) -> Decimal:
    if word is None:
        raise AlarmSyntaxError("no_level", word=after, symbol=symbol)
    value = read_number(word)
    if value is None:
        raise AlarmSyntaxError("level", word=word[:40])
    exponent = value.as_tuple().exponent
    if not 0 < value < MAX_LEVEL or (isinstance(exponent, int) and exponent < -MAX_LEVEL_DECIMALS):
        raise AlarmSyntaxError("level_range", word=word[:40])
    return to_plain(value)


def read_percent(word: str) -> tuple[Direction, Decimal]:
    match = PERCENT.fullmatch(word)
    value = read_number(match[2]) if match else None
    if match is None or value is None:
        raise AlarmSyntaxError("percent", word=word[:40])
    if match[1] is None:
        raise AlarmSyntaxError("percent_sign", word=word, value=format(value, "f"))
    direction = SIGNS[match[1]]
    if not 0 < value <= MAX_PERCENT:
        raise AlarmSyntaxError("percent_range", word=word[:40], limit=f"{MAX_PERCENT:,}")
    if direction is Direction.DOWN and value >= 100:  # noqa: PLR2004 (a fall of 100 % is zero)
        raise AlarmSyntaxError("percent_fall", value=format(value, "f"))
    return direction, to_plain(value)


def read_duration(word: str | None, bad: str, out_of_range: str, low: int, high: int) -> int:
    match = DURATION.fullmatch((word or "").lower())
    if word is None or match is None or match[2] not in UNITS:
        raise AlarmSyntaxError(bad, word=(word or "")[:40], days=high // 86_400)
    seconds = int(match[1]) * UNITS[match[2]] if len(match[1]) <= 9 else high + 1  # noqa: PLR2004
    if not low <= seconds <= high:
        raise AlarmSyntaxError(out_of_range, word=word[:40], days=high // 86_400)
    return seconds


def number_text(value: Decimal | None) -> str:
    return format((value or Decimal(0)).normalize(_CTX), "f")


def grouped_text(value: Decimal | None) -> str:
    return format((value or Decimal(0)).normalize(_CTX), ",f")


def duration_text(seconds: int) -> str:
    """``90`` minutes as ``90m``, ``86400`` as ``1d``: the largest unit that divides it."""
    for unit, size in (("d", 86_400), ("h", 3_600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def when_text(expires_at: float, zone: tzinfo) -> str:
    """An expiry as ``until`` reads it: a date alone for the end of a day, else a time."""
    when = datetime.fromtimestamp(expires_at, zone)
    offset = ""
    if when.fold:  # an hour that happens twice: say which
        offset = when.strftime("%z")
    if (when.hour, when.minute, when.second) == (0, 0, 0) and not offset:
        return (when - timedelta(days=1)).date().isoformat()
    text = when.strftime("%Y-%m-%dT%H:%M:%S" if when.second else "%Y-%m-%dT%H:%M")
    return text + offset
