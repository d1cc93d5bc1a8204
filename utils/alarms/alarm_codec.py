"""How both alarm stores encode an alarm and a firing: compact orjson arrays, decoded fast.

An alarm is stored as its immutable part (``spec_data``: format version, user, creation time
and the spec) beside its mutable fields (state, seq, fired_at, rearm_at, expires_at), which
the stores change in place. Decimals are stored as their exact text, enums as their values.

The engine loads every armed alarm at start, so ``decode`` builds ``AlarmSpec`` and ``Alarm``
without their generated ``__init__`` (a frozen dataclass sets each field through
``object.__setattr__``, three times slower than the slot's own setter); when the model has
fields this module does not know, it falls back to the plain constructors.

A ``LiveRow`` is an alarm as the stores keep it, read but not built: ``[id, chat_id, state,
seq, fired_at, rearm_at, expires_at, spec]`` with ``spec`` the ``spec_data`` array (fields
named by ``SPEC_FIELDS``). ``armed_rows`` yields them, the engine's start-up load reads them
without making an ``Alarm`` (or a ``Decimal``); ``decode_row`` makes one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import orjson

from utils.alarms.alarm_model import (
    DEFAULT_HYSTERESIS,
    Alarm,
    AlarmKind,
    AlarmSpec,
    AlarmState,
    Direction,
    Firing,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "FORMAT",
    "SPEC_FIELDS",
    "LiveRow",
    "condition_key",
    "decode",
    "decode_firing",
    "decode_row",
    "encode_firing",
    "finite",
    "is_live",
    "is_open",
    "spec_data",
)

FORMAT: Final = 1  # the first element of every stored spec_data
#: What each element of a stored ``spec_data`` array is, in order.
SPEC_FIELDS: Final = (
    *("format", "user_id", "created_at", "symbol", "market", "kind", "direction", "level"),
    *("percent", "window_s", "repeat_s", "hysteresis", "expires_at", "note", "now"),
)
#: ``[id, chat_id, state, seq, fired_at, rearm_at, expires_at, spec]``: a tuple from SQLite,
#: a list from Redis's JSON; ``spec`` is the ``spec_data`` array, decoded.
LiveRow: TypeAlias = Sequence[Any]
_CTX: Final = Context(prec=100)
_KINDS: Final = {kind.value: kind for kind in AlarmKind}
_DIRECTIONS: Final = {direction.value: direction for direction in Direction}
_STATES: Final = {state.value: state for state in AlarmState}
_DEFAULT_HYSTERESIS: Final = str(DEFAULT_HYSTERESIS)
_SPEC_FIELDS: Final = (
    *("symbol", "market", "kind", "direction", "level", "percent", "window_s", "repeat_s"),
    *("hysteresis", "expires_at", "note", "now"),
)
_ALARM_FIELDS: Final = (
    *("id", "chat_id", "user_id", "spec", "state", "created_at", "expires_at", "seq"),
    *("fired_at", "rearm_at"),
)
_FAST: Final = (
    tuple(f.name for f in fields(AlarmSpec)) == _SPEC_FIELDS
    and tuple(f.name for f in fields(Alarm)) == _ALARM_FIELDS
)
_new = object.__new__
_symbols: dict[str, str] = {}  # one str per symbol however many alarms name it
_MARKETS: Final = {"spot": "spot", "futures": "futures"}


def _setter(cls: type, name: str) -> Callable[[object, object], None]:
    setter: Callable[[object, object], None] = cls.__dict__[name].__set__
    return setter


if _FAST:
    (_s_symbol, _s_market, _s_kind, _s_direction, _s_level, _s_percent, _s_window) = (
        _setter(AlarmSpec, name) for name in _SPEC_FIELDS[:7]
    )
    (_s_repeat, _s_hysteresis, _s_expires, _s_note, _s_now) = (
        _setter(AlarmSpec, name) for name in _SPEC_FIELDS[7:]
    )
    (_a_id, _a_chat, _a_user, _a_spec, _a_state, _a_created, _a_expires, _a_seq) = (
        _setter(Alarm, name) for name in _ALARM_FIELDS[:8]
    )
    (_a_fired, _a_rearm) = (_setter(Alarm, name) for name in _ALARM_FIELDS[8:])


def finite(value: float) -> float:
    """``value`` as a float, refusing NaN and infinities (they have no stored form)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite unix time")
    return number


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _canonical(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(_CTX), "f")


def condition_key(spec: AlarmSpec) -> str:
    """What makes two alarms of one chat the same: the trigger, not the options or note."""
    return "|".join(
        (
            spec.symbol,
            spec.market,
            spec.kind.value,
            spec.direction.value,
            _canonical(spec.level),
            _canonical(spec.percent),
            str(spec.window_s or ""),
        )
    )


def spec_data(user_id: int, created_at: float, spec: AlarmSpec) -> bytes:
    """The immutable part of an alarm, as stored."""
    return orjson.dumps(
        [
            FORMAT,
            user_id,
            finite(created_at),
            spec.symbol,
            spec.market,
            spec.kind.value,
            spec.direction.value,
            _text(spec.level),
            _text(spec.percent),
            spec.window_s,
            spec.repeat_s,
            str(spec.hysteresis),
            None if spec.expires_at is None else finite(spec.expires_at),
            spec.note,
            spec.now,
        ]
    )


def is_live(state: AlarmState, rearm_at: float | None) -> bool:
    """Whether the engine watches it: armed, or fired and waiting to re-arm."""
    return state is AlarmState.ARMED or (state is AlarmState.FIRED and rearm_at is not None)


def is_open(state: AlarmState, rearm_at: float | None) -> bool:
    """Whether it may still fire (live or paused): it counts against the limits."""
    return state is AlarmState.PAUSED or is_live(state, rearm_at)


def decode(
    alarm_id: int,
    chat_id: int,
    data: Sequence[Any] | bytes | str,
    state: str,
    seq: int,
    fired_at: float | None,
    rearm_at: float | None,
    expires_at: float,
) -> Alarm:
    """An alarm from its stored parts (``data`` as ``spec_data`` wrote it, or its array).

    The numbers must have their types already (ints, floats; SQLite and orjson give them).
    """
    row: Sequence[Any] = orjson.loads(data) if isinstance(data, bytes | str) else data
    if not _FAST:
        return _decode_slowly(alarm_id, chat_id, row, state, seq, fired_at, rearm_at, expires_at)
    (_, user_id, created_at, symbol, market, kind, direction, level, percent) = row[:9]
    (window_s, repeat_s, hysteresis, spec_expires, note, now) = row[9:15]
    symbol = _symbols.setdefault(symbol, symbol)
    spec = _new(AlarmSpec)
    _s_symbol(spec, symbol)
    _s_market(spec, _MARKETS.get(market, market))
    _s_kind(spec, _KINDS[kind])
    _s_direction(spec, _DIRECTIONS[direction])
    _s_level(spec, None if level is None else Decimal(level))
    _s_percent(spec, None if percent is None else Decimal(percent))
    _s_window(spec, window_s)
    _s_repeat(spec, repeat_s)
    _s_hysteresis(
        spec, DEFAULT_HYSTERESIS if hysteresis == _DEFAULT_HYSTERESIS else Decimal(hysteresis)
    )
    _s_expires(spec, spec_expires)
    _s_note(spec, note)
    _s_now(spec, now)
    alarm = _new(Alarm)
    _a_id(alarm, alarm_id)
    _a_chat(alarm, chat_id)
    _a_user(alarm, user_id)
    _a_spec(alarm, spec)
    _a_state(alarm, _STATES[state])
    _a_created(alarm, created_at)
    _a_expires(alarm, expires_at)
    _a_seq(alarm, seq)
    _a_fired(alarm, fired_at)
    _a_rearm(alarm, rearm_at)
    return alarm


def decode_row(row: LiveRow) -> Alarm:
    """The alarm a ``LiveRow`` holds."""
    alarm_id, chat_id, state, seq, fired_at, rearm_at, expires_at, spec = row
    return decode(alarm_id, chat_id, spec, state, seq, fired_at, rearm_at, expires_at)


def _decode_slowly(
    alarm_id: int,
    chat_id: int,
    data: Sequence[Any],
    state: str,
    seq: int,
    fired_at: float | None,
    rearm_at: float | None,
    expires_at: float,
) -> Alarm:
    """``decode`` through the constructors, for a model with fields added since."""
    (_, user_id, created_at, symbol, market, kind, direction, level, percent) = data[:9]
    (window_s, repeat_s, hysteresis, spec_expires, note, now) = data[9:15]
    spec = AlarmSpec(
        symbol=symbol,
        market=market,
        kind=_KINDS[kind],
        direction=_DIRECTIONS[direction],
        level=None if level is None else Decimal(level),
        percent=None if percent is None else Decimal(percent),
        window_s=window_s,
        repeat_s=repeat_s,
        hysteresis=Decimal(hysteresis),
        expires_at=spec_expires,
        note=note,
        now=now,
    )
    return Alarm(
        id=int(alarm_id),
        chat_id=int(chat_id),
        user_id=user_id,
        spec=spec,
        state=_STATES[state],
        created_at=created_at,
        expires_at=float(expires_at),
        seq=int(seq),
        fired_at=None if fired_at is None else float(fired_at),
        rearm_at=None if rearm_at is None else float(rearm_at),
    )


def encode_firing(firing: Firing) -> bytes:
    return orjson.dumps(
        [
            firing.alarm_id,
            firing.chat_id,
            firing.seq,
            str(firing.touched_price),
            str(firing.price),
            finite(firing.touched_at),
            finite(firing.fired_at),
            firing.late,
        ]
    )


def decode_firing(data: bytes | str) -> Firing:
    alarm_id, chat_id, seq, touched_price, price, touched_at, fired_at, late = orjson.loads(data)
    return Firing(
        alarm_id=alarm_id,
        chat_id=chat_id,
        seq=seq,
        touched_price=Decimal(touched_price),
        price=Decimal(price),
        touched_at=touched_at,
        fired_at=fired_at,
        late=late,
    )
