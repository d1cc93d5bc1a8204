"""How the stores encode alarms: every field of every alarm comes back equal (from its parts
or from a stored row), the fast decoder agrees with the constructors, and the codec knows
every field the model has (a field added to the model must be stored too, or it would
silently come back as its default)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.utils.alarms.test_alarm_parser import NOW, specs
from utils.alarms import alarm_codec
from utils.alarms.alarm_codec import (
    SPEC_FIELDS,
    condition_key,
    decode,
    decode_firing,
    decode_row,
    encode_firing,
    is_live,
    is_open,
    spec_data,
)
from utils.alarms.alarm_model import Alarm, AlarmSpec, AlarmState, Firing
from utils.alarms.alarm_parser import parse_alarm

times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


@st.composite
def alarms(draw: st.DrawFn) -> Alarm:
    spec = draw(specs())
    spec = dataclasses.replace(
        spec,
        hysteresis=draw(st.decimals(min_value=0, max_value=1, places=6, allow_nan=False)),
        expires_at=draw(st.none() | times),
    )
    return Alarm(
        id=draw(st.integers(1, 2**53)),
        chat_id=draw(st.integers(-(2**52), 2**52)),
        user_id=draw(st.integers(1, 2**52)),
        spec=spec,
        state=draw(st.sampled_from(AlarmState)),
        created_at=draw(times),
        expires_at=draw(times),
        seq=draw(st.integers(0, 2**31)),
        fired_at=draw(st.none() | times),
        rearm_at=draw(st.none() | times),
    )


def data(alarm: Alarm) -> bytes:
    return spec_data(alarm.user_id, alarm.created_at, alarm.spec)


def mutable(alarm: Alarm) -> tuple[str, int, float | None, float | None, float]:
    return alarm.state.value, alarm.seq, alarm.fired_at, alarm.rearm_at, alarm.expires_at


@settings(max_examples=500)
@given(alarm=alarms())
def test_every_field_of_an_alarm_comes_back_equal(alarm: Alarm) -> None:
    back = decode(alarm.id, alarm.chat_id, data(alarm), *mutable(alarm))
    assert back == alarm
    assert type(back.spec.level) is type(alarm.spec.level)


@settings(max_examples=200)
@given(alarm=alarms())
def test_the_fast_decoder_agrees_with_the_constructors(alarm: Alarm) -> None:
    row = orjson.loads(data(alarm))
    slow = alarm_codec._decode_slowly(alarm.id, alarm.chat_id, row, *mutable(alarm))
    assert slow == decode(alarm.id, alarm.chat_id, row, *mutable(alarm)) == alarm


def test_the_codec_stores_every_field_the_model_has() -> None:
    spec_fields = tuple(f.name for f in dataclasses.fields(AlarmSpec))
    alarm_fields = tuple(f.name for f in dataclasses.fields(Alarm))
    assert spec_fields == alarm_codec._SPEC_FIELDS, "store the new AlarmSpec field in alarm_codec"
    assert alarm_fields == alarm_codec._ALARM_FIELDS, "store the new Alarm field in alarm_codec"


@settings(max_examples=200)
@given(alarm=alarms())
def test_a_stored_row_comes_back_as_the_alarm(alarm: Alarm) -> None:
    state, seq, fired_at, rearm_at, expires_at = mutable(alarm)
    row = [alarm.id, alarm.chat_id, state, seq, fired_at, rearm_at, expires_at]
    assert decode_row((*row, orjson.loads(data(alarm)))) == alarm  # SQLite's: a tuple
    assert decode_row(orjson.loads(orjson.dumps([*row, orjson.loads(data(alarm))]))) == alarm


def test_the_stored_spec_is_named_field_by_field() -> None:
    """What the engine's start-up load reads from a row by position."""
    spec = parse_alarm("eth cross down 2,500.5 futures repeat 30m until 2027-01-31 tp", now=NOW)
    named = dict(zip(SPEC_FIELDS, orjson.loads(spec_data(7, NOW, spec)), strict=True))
    assert named == {
        "format": 1, "user_id": 7, "created_at": NOW, "symbol": spec.symbol,
        "market": "futures", "kind": "cross", "direction": "down", "level": "2500.5",
        "percent": None, "window_s": None, "repeat_s": 1800, "hysteresis": "0.002",
        "expires_at": spec.expires_at, "note": "tp", "now": False,
    }  # fmt: skip


def test_a_firing_comes_back_equal() -> None:
    firing = Firing(
        alarm_id=12,
        chat_id=-1001,
        seq=3,
        touched_price=Decimal("0.000012340"),
        price=Decimal(70000),
        touched_at=1_800_000_000.25,
        fired_at=1_800_000_001.5,
        late=True,
    )
    assert decode_firing(encode_firing(firing)) == firing


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("btc > 70000", "BTC >= 70,000.00 now for 7d repeat note", True),
        ("btc > 70000", "btc > 70k futures", False),
        ("btc > 70000", "btc < 70000", False),
        ("btc cross 5", "btc cross up 5", False),
        ("btc +5% 1h", "btc +5.0% 60m", True),
        ("btc +5% 1h", "btc +5% 2h", False),
        ("btc 24h +5%", "btc +5% 1d", False),
        ("btc +5% 1h", "eth +5% 1h", False),
    ],
)
def test_the_condition_key_is_the_trigger_not_the_options(
    one: str, other: str, same: bool
) -> None:
    keys = condition_key(parse_alarm(one, now=NOW)), condition_key(parse_alarm(other, now=NOW))
    assert (keys[0] == keys[1]) is same


@pytest.mark.parametrize(
    ("state", "rearm_at", "live", "open_"),
    [
        (AlarmState.ARMED, None, True, True),
        (AlarmState.FIRED, NOW, True, True),
        (AlarmState.FIRED, None, False, False),
        (AlarmState.PAUSED, None, False, True),
        (AlarmState.EXPIRED, None, False, False),
    ],
)
def test_live_and_open_alarms(
    state: AlarmState, rearm_at: float | None, live: bool, open_: bool
) -> None:
    assert (is_live(state, rearm_at), is_open(state, rearm_at)) == (live, open_)


def test_a_time_that_is_not_finite_is_refused() -> None:
    spec = parse_alarm("btc > 1", now=NOW)
    with pytest.raises(ValueError, match="not a finite unix time"):
        spec_data(1, float("nan"), spec)


def test_an_indicator_firing_after_an_unrecorded_one_gets_its_own_job_id() -> None:
    """A firing delivered but not recorded before a crash leaves the alarm's sequence where it
    was; the next candle close that fires it must not be taken for that delivered one."""

    def firing(candle_ms: int | None) -> Firing:
        return Firing(
            alarm_id=7,
            chat_id=1,
            seq=3,
            touched_price=Decimal(71),
            price=Decimal(100),
            touched_at=1.0,
            fired_at=1.0,
            candle_ms=candle_ms,
        )

    assert firing(None).job_id == "alarm:7:3"
    assert firing(3_600_000).job_id == "alarm:7:3:3600000"
    assert firing(7_200_000).job_id == "alarm:7:3:7200000"
