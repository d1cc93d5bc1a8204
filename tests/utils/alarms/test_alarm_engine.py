"""The alarm engine fires each alarm at the update that reaches it, once: levels, crossings,
rolling-window changes, the 24 h change, wicks, repeats with cooldown and hysteresis, and
gaps replayed from candles. An engine loaded from the stores' rows (the start-up load) fires
exactly what one loaded from ``Alarm`` objects fires. The last tests compare it with a plain
loop over every alarm on random price paths."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils.alarms.alarm_codec import spec_data
from utils.alarms.alarm_engine import AlarmEngine
from utils.alarms.alarm_model import Alarm, AlarmKind, AlarmSpec, AlarmState, Direction

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from utils.alarms.alarm_model import Firing

T0 = 1_699_999_980  # a whole minute
UP, DOWN, BOTH = Direction.UP, Direction.DOWN, Direction.BOTH


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def make(  # noqa: PLR0913 - an alarm's fields, all defaulted
    alarm_id: int,
    kind: AlarmKind,
    *,
    level: float | None = None,
    percent: float | None = None,
    window_s: int | None = None,
    direction: Direction = BOTH,
    repeat_s: int | None = None,
    hysteresis: str = "0.002",
    market: str = "spot",
    symbol: str = "BTCUSDT",
    seq: int = 0,
    state: AlarmState = AlarmState.ARMED,
    rearm_at: float | None = None,
) -> Alarm:
    spec = AlarmSpec(
        symbol=symbol,
        market=market,
        kind=kind,
        direction=direction,
        level=None if level is None else Decimal(str(level)),
        percent=None if percent is None else Decimal(str(percent)),
        window_s=window_s,
        repeat_s=repeat_s,
        hysteresis=Decimal(hysteresis),
    )
    return Alarm(
        id=alarm_id,
        chat_id=1000 + alarm_id,
        user_id=1,
        spec=spec,
        state=state,
        seq=seq,
        rearm_at=rearm_at,
    )


class Feed:
    """An engine with a clock that follows the updates' time."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.engine = AlarmEngine(clock=self.clock)
        self.t = float(T0)

    def price(self, price: float, *, dt: float = 1, **kw: float) -> list[Firing]:
        self.t += dt
        self.clock.now = self.t
        return self.engine.on_price("spot", "BTCUSDT", price, self.t, **kw)

    def path(self, prices: list[float]) -> list[list[int]]:
        """The ids fired at each update."""
        return [[f.alarm_id for f in self.price(p)] for p in prices]


# Levels and crossings


def test_above_fires_at_the_update_that_reaches_the_level_and_only_once() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100), price=Decimal(95))
    assert feed.path([96, 99.99, 100, 101, 99, 102]) == [[], [], [1], [], [], []]
    assert len(feed.engine) == 0


def test_below_fires_at_or_under_its_level_once() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.BELOW, level=100), price=Decimal(105))
    assert feed.path([101, 99.5, 98, 100]) == [[], [1], [], []]


def test_cross_up_from_below_fires_on_reaching_the_level() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100, direction=UP), price=Decimal(95))
    assert feed.path([99, 100, 101]) == [[], [1], []]


def test_cross_up_set_above_the_level_first_needs_the_price_below_it() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100, direction=UP), price=Decimal(105))
    assert feed.path([104, 100, 101, 99.9, 99, 100.5]) == [[], [], [], [], [], [1]]


def test_cross_down_ignores_rises_and_fires_on_the_fall_through_the_level() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100, direction=DOWN), price=Decimal(95))
    assert feed.path([101, 105, 100.1, 100, 99]) == [[], [], [], [1], []]


def test_cross_both_fires_on_the_first_crossing_whichever_way() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100), price=Decimal(105))
    feed.engine.add(make(2, AlarmKind.CROSS, level=100, symbol="ETHUSDT"), price=Decimal(95))
    assert feed.path([103, 99]) == [[], [1]]
    fired = feed.engine.on_price("spot", "ETHUSDT", 100.5, feed.t + 1)
    assert [f.alarm_id for f in fired] == [2]


def test_cross_loaded_without_a_price_takes_its_side_from_the_first_update() -> None:
    feed = Feed()
    feed.engine.load([make(1, AlarmKind.CROSS, level=100, direction=UP)])
    assert feed.path([105, 103, 98, 100]) == [[], [], [], [1]]


def test_alarms_of_another_symbol_or_market_are_untouched() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100, market="futures"))
    feed.engine.add(make(2, AlarmKind.ABOVE, level=100, symbol="ETHUSDT"))
    assert feed.path([150]) == [[]]
    fired = feed.engine.on_price("futures", "BTCUSDT", 150, feed.t)
    assert [f.alarm_id for f in fired] == [1]


def test_a_firing_names_the_chat_the_next_sequence_and_both_prices() -> None:
    feed = Feed()
    feed.engine.add(make(7, AlarmKind.ABOVE, level=100, seq=3))
    (firing,) = feed.price(100.25)
    assert (firing.alarm_id, firing.chat_id, firing.seq) == (7, 1007, 4)
    assert firing.touched_price == firing.price == Decimal("100.25")
    assert firing.touched_at == firing.fired_at == feed.t
    assert firing.late is False
    assert firing.job_id == "alarm:7:4"


# Wicks: a new high or low of the current 1-minute candle


def test_a_wick_over_the_level_fires_with_the_high_as_touched_price() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100), price=Decimal(95))
    assert feed.price(98, high=99, low=97, candle_t=T0) == []
    (firing,) = feed.price(98.5, high=100.7, low=97, candle_t=T0)  # the close never reached it
    assert firing.touched_price == Decimal("100.7")
    assert firing.price == Decimal("98.5")


def test_a_low_wick_fires_a_below_alarm_with_the_low() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.BELOW, level=90), price=Decimal(95))
    (firing,) = feed.price(95, high=96, low=89.5, candle_t=T0)
    assert firing.touched_price == Decimal("89.5")


def test_a_candle_high_already_seen_is_not_a_new_touch() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100), price=Decimal(95))
    feed.price(97, high=99, low=96, candle_t=T0)
    feed.engine.add(make(2, AlarmKind.ABOVE, level=98.5), price=Decimal(97))
    assert feed.price(97.5, high=99, low=96, candle_t=T0) == []  # 99 traded before alarm 2
    assert [f.alarm_id for f in feed.price(97.5, high=99, low=96, candle_t=T0 + 60)] == [2]


# Percent change within a rolling window


def test_a_rise_within_the_window_fires_when_the_price_is_p_percent_over_its_low() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=5, window_s=60, direction=UP))
    assert feed.path([100, 98, 100, 102, 102.89, 102.9, 104]) == [[], [], [], [], [], [1], []]


def test_a_rise_slower_than_the_window_does_not_fire() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=5, window_s=60, direction=UP))
    fired = [feed.price(100 + i * 0.05, dt=1) for i in range(200)]  # +10 % over 200 s
    assert not any(fired)


def test_the_window_rolls_so_an_old_low_stops_counting() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=5, window_s=60, direction=UP))
    assert feed.path([95, 99]) == [[], []]
    assert feed.price(99, dt=59) == []  # 95 is now 60 s old: outside (t - 60, t)
    assert feed.price(100.5) == []  # +5.8 % from 95, but +1.5 % within the window
    assert [f.alarm_id for f in feed.price(104)] == [1]  # +5.05 % from the low of 99


def test_a_fall_and_either_way_fire_from_the_window_high() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=3, window_s=300, direction=DOWN))
    feed.engine.add(make(2, AlarmKind.CHANGE, percent=4, window_s=300, direction=BOTH))
    feed.engine.add(make(3, AlarmKind.CHANGE, percent=3, window_s=300, direction=UP))
    assert feed.path([100, 101, 98, 97.96, 96.9]) == [[], [], [], [1], [2]]


def test_a_long_window_reads_the_minute_history() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=10, window_s=3600, direction=UP))
    feed.engine.add(make(2, AlarmKind.CHANGE, percent=10, window_s=600, direction=UP))
    feed.price(100)
    fired = [  # one update a minute, +0.27 % each: +10 % after 37.1 minutes
        (i, f.alarm_id) for i in range(1, 40) for f in feed.price(100 + i * 10.5 / 39, dt=60)
    ]
    assert fired == [(38, 1)]


def test_a_window_longer_than_a_day_reads_the_hourly_history() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=20, window_s=7 * 86_400, direction=DOWN))
    feed.price(100)
    fired = [f.alarm_id for _ in range(5 * 24) for f in feed.price(95, dt=3600)]
    assert fired == []
    assert [f.alarm_id for f in feed.price(79.9, dt=3600)] == [1]


# The 24 h change


def test_day_change_fires_from_the_24h_open_given_with_the_price() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.DAY_CHANGE, percent=10, direction=UP))
    feed.engine.add(make(2, AlarmKind.DAY_CHANGE, percent=5, direction=DOWN))
    feed.engine.add(make(3, AlarmKind.DAY_CHANGE, percent=8, direction=BOTH))
    opens = {"open_24h": 100.0}
    assert [f.alarm_id for f in feed.price(109, **opens)] == [3]
    assert [f.alarm_id for f in feed.price(110, **opens)] == [1]
    assert [f.alarm_id for f in feed.price(95, **opens)] == [2]
    assert feed.price(80, **opens) == []


def test_day_change_fires_from_the_change_a_ticker_reports() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.DAY_CHANGE, percent=10, direction=UP, market="futures"))
    assert feed.engine.on_day_change("futures", "BTCUSDT", 9.9, 109.9, feed.t) == []
    (firing,) = feed.engine.on_day_change("futures", "BTCUSDT", 10.2, 110.2, feed.t)
    assert firing.price == Decimal("110.2")


# Repeating alarms: cooldown and hysteresis


def test_repeat_rearms_only_after_the_cooldown_and_the_hysteresis_band() -> None:
    feed = Feed()
    alarm = make(1, AlarmKind.ABOVE, level=100, repeat_s=60, hysteresis="0.01")
    feed.engine.add(alarm, price=Decimal(95))
    assert [f.seq for f in feed.price(100)] == [1]
    sitting = [feed.price(p) for p in (100, 100.2, 99.9, 100)]  # on the level: no spam
    sitting += [feed.price(100.1, dt=60)]  # cooldown over, never went back below 99
    assert sitting == [[], [], [], [], []]
    assert feed.price(99.2) == []  # not past the band yet
    assert feed.price(99) == []  # re-armed at 99 = 100 * (1 - 0.01)
    assert [f.seq for f in feed.price(100)] == [2]


def test_a_dip_past_the_band_during_the_cooldown_does_not_rearm() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.BELOW, level=50, repeat_s=30), price=Decimal(55))
    assert len(feed.price(49)) == 1
    feed.price(60)
    assert feed.price(49, dt=5) == []
    feed.engine.tick(feed.t + 30)
    assert feed.price(49.9, dt=30) == []  # cooldown over, but still under the band
    feed.price(50.2)
    assert [f.seq for f in feed.price(50)] == [2]


def test_a_repeating_cross_both_rearms_on_whichever_side_it_leaves_to() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100, repeat_s=10), price=Decimal(95))
    assert [f.seq for f in feed.price(100)] == [1]
    assert feed.price(101, dt=10) == []  # cooldown over; 101 is past 100 * 1.002: armed down
    assert [f.seq for f in feed.price(99.5)] == [2]


def test_a_repeating_change_alarm_rearms_once_the_change_falls_back() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CHANGE, percent=5, window_s=60, direction=UP, repeat_s=5))
    assert feed.path([100, 106]) == [[], [1]]
    assert feed.path([107, 107, 107, 107, 107, 107]) == [[]] * 6  # cooldown over, still +7 %
    assert feed.path([104.5, 110]) == [[], [1]]  # back under 105 * 0.998, then +5.3 %


def test_a_repeating_day_change_alarm_waits_for_the_change_to_fall_back() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.DAY_CHANGE, percent=5, direction=UP, repeat_s=5))
    opens = {"open_24h": 100.0}
    assert len(feed.price(106, **opens)) == 1
    assert [feed.price(106, dt=5, **opens), feed.price(107, **opens)] == [[], []]
    feed.price(104, **opens)
    assert [f.seq for f in feed.price(105, **opens)] == [2]


def test_a_fired_repeating_alarm_loaded_after_a_restart_cools_down_until_rearm_at() -> None:
    feed = Feed()
    alarm = make(1, AlarmKind.ABOVE, level=100, repeat_s=600, seq=4, state=AlarmState.FIRED)
    feed.engine.load([make(2, AlarmKind.ABOVE, level=200)])
    feed.engine.add(dataclasses.replace(alarm, rearm_at=T0 + 100.0))
    assert feed.path([99, 101]) == [[], []]
    feed.price(99, dt=100)  # cooldown over, price under the band: re-armed
    assert [f.seq for f in feed.price(101)] == [5]


def test_a_snoozed_alarm_sleeps_until_its_rearm_at_and_a_fired_one_shot_is_dropped() -> None:
    feed = Feed()
    fired_once = make(1, AlarmKind.ABOVE, level=100, seq=1, state=AlarmState.FIRED)
    assert feed.engine.add(fired_once) is False
    feed.engine.add(dataclasses.replace(fired_once, rearm_at=T0 + 30.0))
    assert feed.path([101, 98]) == [[], []]
    feed.price(98, dt=30)
    assert [f.seq for f in feed.price(101)] == [2]
    assert len(feed.engine) == 0


def test_a_removed_cooling_alarm_never_comes_back() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100, repeat_s=5), price=Decimal(95))
    feed.engine.add(make(2, AlarmKind.ABOVE, level=100, repeat_s=5), price=Decimal(95))
    assert feed.path([100]) == [[1, 2]]
    feed.engine.remove(1)
    feed.engine.add(make(3, AlarmKind.BELOW, level=50))  # takes the freed slot
    feed.price(99, dt=5)  # cooldown over, below the band: 2 re-arms at once
    assert feed.engine.remove(2)
    assert feed.path([101, 49]) == [[], [3]]


# Gaps, removal, pause


def test_candles_of_a_gap_fire_each_touched_alarm_once_late() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100, repeat_s=60), price=Decimal(95))
    feed.engine.add(make(2, AlarmKind.BELOW, level=90), price=Decimal(95))
    feed.engine.add(make(3, AlarmKind.ABOVE, level=120), price=Decimal(95))
    feed.price(95)
    candles = [(T0 + 60.0, 99, 94, 98), (T0 + 120.0, 100.4, 97, 99), (T0 + 180.0, 101, 89, 95)]
    feed.clock.now = T0 + 300.0
    fired = feed.engine.gap("spot", "BTCUSDT", candles)
    got = [(f.alarm_id, f.touched_price, f.touched_at, f.late) for f in fired]
    assert got == [
        (1, Decimal("100.4"), T0 + 120.0, True),
        (2, Decimal("89"), T0 + 180.0, True),
    ]
    assert all(f.fired_at == T0 + 300.0 for f in fired)
    assert feed.price(95, high=101, low=94, candle_t=T0 + 180.0) == []  # that candle was seen


def test_a_gap_replays_crossings_and_changes_from_the_candles() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.CROSS, level=100, direction=DOWN), price=Decimal(99))
    feed.engine.add(make(2, AlarmKind.CHANGE, percent=10, window_s=600, direction=UP))
    feed.price(99)
    candles = [(T0 + 60.0 * i, 101 + i, 99.5 + i, 100 + i) for i in range(1, 12)]
    fired = feed.engine.gap("spot", "BTCUSDT", candles)
    # The cross went up (armed), never back down; 109 in the 8th candle is +10.1 % from 99.
    assert [(f.alarm_id, f.touched_at, f.touched_price) for f in fired] == [
        (2, T0 + 480.0, Decimal(109))
    ]


def test_a_removed_alarm_no_longer_fires_and_a_paused_one_is_removed() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100))
    feed.engine.add(make(2, AlarmKind.CROSS, level=100, direction=UP), price=Decimal(105))
    feed.engine.add(make(3, AlarmKind.CHANGE, percent=1, window_s=60))
    feed.engine.add(make(4, AlarmKind.ABOVE, level=100))
    assert [feed.engine.remove(i) for i in (1, 2, 3)] == [True, True, True]
    assert not feed.engine.remove(1)
    assert feed.engine.add(make(4, AlarmKind.ABOVE, level=100, state=AlarmState.PAUSED)) is False
    assert len(feed.engine) == 0
    assert feed.path([98, 110, 90, 110]) == [[], [], [], []]
    feed.engine.add(make(4, AlarmKind.ABOVE, level=100))  # resume
    assert feed.path([111]) == [[4]]


_BELOW_1 = make(3, AlarmKind.BELOW, level=1)
_CHANGE_50 = make(3, AlarmKind.CHANGE, percent=50, window_s=60, direction=UP)
_DAY_50 = make(3, AlarmKind.DAY_CHANGE, percent=50, direction=UP)


@pytest.mark.parametrize(
    ("alarm", "before", "after", "taker"),
    [
        (make(1, AlarmKind.ABOVE, level=100), [95], [101], _BELOW_1),
        (make(1, AlarmKind.CROSS, level=100, direction=UP), [101], [99, 101], _BELOW_1),
        (make(1, AlarmKind.CROSS, level=100), [100], [101, 99], _BELOW_1),
        (make(1, AlarmKind.ABOVE, level=100, repeat_s=1), [101, 101], [99, 101], _BELOW_1),
        (make(1, AlarmKind.ABOVE, level=100, repeat_s=99), [101], [99, 101], _BELOW_1),
        (make(1, AlarmKind.CHANGE, percent=1, window_s=60), [100], [102], _CHANGE_50),
        (
            make(1, AlarmKind.CHANGE, percent=1, window_s=60, direction=UP, repeat_s=1),
            [100, 102, 103],
            [99, 102],
            _CHANGE_50,
        ),
        (make(1, AlarmKind.DAY_CHANGE, percent=1, direction=UP), [100], [102], _DAY_50),
        (
            make(1, AlarmKind.DAY_CHANGE, percent=1, direction=UP, repeat_s=1),
            [102, 102],
            [99, 102],
            _DAY_50,
        ),
    ],
    ids=["list", "arm", "two arms", "band", "cooling", "group", "pending", "day", "day pending"],
)
def test_an_alarm_removed_in_any_state_fires_no_more(
    alarm: Alarm, before: list[float], after: list[float], taker: Alarm
) -> None:
    feed = Feed()
    feed.engine.add(alarm, price=Decimal(before[0]))
    neighbours = [  # never fire; they keep the symbol's lists, history and groups alive
        make(2, AlarmKind.ABOVE, level=1000),
        make(4, AlarmKind.CHANGE, percent=900, window_s=60, direction=UP),
        make(5, AlarmKind.DAY_CHANGE, percent=900, direction=UP),
    ]
    feed.engine.load(neighbours)
    for price in before:
        feed.price(price, open_24h=100.0)
    assert feed.engine.remove(1)
    feed.engine.add(taker, price=Decimal(after[0]))  # takes the freed slot
    fired = [f.alarm_id for p in after for f in feed.price(p, dt=100, open_24h=100.0)]
    assert fired == []
    last = 0.5 if taker is _BELOW_1 else 200.0  # fires the taker, once
    assert [(f.alarm_id, f.seq) for f in feed.price(last, open_24h=100.0)] == [(3, 1)]
    assert len(feed.engine) == 3


def test_a_cooldown_of_a_removed_alarm_does_not_cut_short_its_slots_next_one() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100, repeat_s=10), price=Decimal(95))
    assert feed.path([101]) == [[1]]
    feed.engine.remove(1)
    feed.engine.add(make(3, AlarmKind.ABOVE, level=100, repeat_s=1000), price=Decimal(101))
    assert feed.path([101]) == [[3]]
    fired = [feed.price(p, dt=10) for p in (99, 101, 95, 101)]
    assert fired == [[], [], [], []]  # the first cooldown is over, not the second


def test_adding_an_alarm_again_replaces_it() -> None:
    feed = Feed()
    feed.engine.add(make(1, AlarmKind.ABOVE, level=100))
    feed.engine.add(make(1, AlarmKind.ABOVE, level=120))
    assert len(feed.engine) == 1
    assert feed.path([110, 121]) == [[], [1]]


def test_loading_the_same_alarms_again_holds_each_once() -> None:
    feed = Feed()
    alarms = [make(i, AlarmKind.ABOVE, level=100 + i) for i in range(1, 6)]
    feed.engine.load(alarms)
    feed.engine.load(alarms[::-1])
    feed.engine.load([make(9, AlarmKind.ABOVE, level=1), make(9, AlarmKind.ABOVE, level=500)])
    assert len(feed.engine) == 6
    assert sorted(i for ids in feed.path([103.5, 110]) for i in ids) == [1, 2, 3, 4, 5]
    assert feed.engine.last_price("spot", "BTCUSDT") == 110


def test_the_spot_symbols_needing_klines_are_those_with_level_or_change_alarms() -> None:
    engine = AlarmEngine()
    engine.add(make(1, AlarmKind.ABOVE, level=1, symbol="AUSDT"))
    engine.add(make(2, AlarmKind.CHANGE, percent=1, window_s=60, symbol="BUSDT"))
    engine.add(make(3, AlarmKind.DAY_CHANGE, percent=1, symbol="CUSDT"))
    engine.add(make(4, AlarmKind.ABOVE, level=1, symbol="DUSDT", market="futures"))
    engine.add(make(5, AlarmKind.ABOVE, level=1, symbol="EUSDT"))
    engine.remove(5)
    assert engine.symbols_with_spot_alarms() == {"AUSDT", "BUSDT"}


def test_memory_stats_count_the_alarms_held() -> None:
    engine = AlarmEngine()
    engine.load(make(i, AlarmKind.ABOVE, level=100 + i) for i in range(1, 1001))
    stats = engine.memory_stats()
    assert stats["alarms"] == 1000
    assert 0 < stats["bytes_per_alarm"] < 400


# The start-up load from the stores' rows


def row(alarm: Alarm) -> tuple[Any, ...]:
    """The alarm as a store's ``armed_rows`` gives it: its stored fields, the spec decoded."""
    spec = orjson.loads(spec_data(alarm.user_id, alarm.created_at, alarm.spec))
    return (alarm.id, alarm.chat_id, alarm.state.value, alarm.seq, alarm.fired_at,
            alarm.rearm_at, alarm.expires_at, spec)  # fmt: skip


BOOKS = [(m, s) for m in ("spot", "futures") for s in ("BTCUSDT", "ETHUSDT")]
PRICE_KINDS = (AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS, AlarmKind.CHANGE,
               AlarmKind.DAY_CHANGE)  # fmt: skip


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a reproducible market, no secret


def mixed_alarms(rng: random.Random, count: int) -> list[Alarm]:
    """Every kind and direction on two symbols of both markets, a third repeating, some
    cooling down or snoozed (their rearm_at before or after the start), some paused or
    expired, and a few ids given twice (the second replaces the first)."""
    out = []
    for i in range(1, count + 1):
        kind = rng.choice(PRICE_KINDS)
        priced = kind in {AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS}
        market, symbol = rng.choice(BOOKS)
        alarm = make(
            i,
            kind,
            level=round(rng.uniform(90, 110), 1) if priced else None,
            percent=None if priced else rng.choice([0.5, 1.0, 2.0, 4.0]),
            window_s=rng.choice([60, 300, 3600]) if kind == AlarmKind.CHANGE else None,
            direction=(rng.choice(list(Direction))
                       if kind not in {AlarmKind.ABOVE, AlarmKind.BELOW} else BOTH),
            repeat_s=rng.choice([None, None, 30, 120]),
            hysteresis=rng.choice(["0.002", "0.002", "0.01", "0"]),
            market=market,
            symbol=symbol,
        )  # fmt: skip
        state = rng.random()
        if state < 0.1 and alarm.spec.repeat_s is not None:  # cooling down after a firing
            alarm = dataclasses.replace(
                alarm,
                state=AlarmState.FIRED,
                seq=3,
                fired_at=T0 - 20.0,
                rearm_at=T0 + rng.choice([-5, 40]),
            )
        elif state < 0.15:  # snoozed (a one-shot too)
            alarm = dataclasses.replace(alarm, state=AlarmState.FIRED, seq=1, rearm_at=T0 + 90)
        elif state < 0.2 and alarm.spec.repeat_s is not None:  # fired, rearm_at not stored
            alarm = dataclasses.replace(alarm, state=AlarmState.FIRED, seq=1, fired_at=T0 - 10.0)
        elif state < 0.25:
            alarm = dataclasses.replace(
                alarm, state=rng.choice([AlarmState.PAUSED, AlarmState.EXPIRED])
            )  # fmt: skip
        out.append(alarm)
    for i in rng.sample(range(1, count + 1), 5):  # given again, with another level
        again = out[i - 1]
        spec = again.spec
        spec = dataclasses.replace(
            spec, level=spec.level and Decimal(100), percent=spec.percent and Decimal(1)
        )
        out.append(dataclasses.replace(again, spec=spec))
    return out


def drive(engine: AlarmEngine, clock: Clock, seed: int, steps: int = 400) -> list[Firing]:
    """Random walks on every book (wicks and the 24 h open on spot, the futures 24 h change),
    a gap replayed half-way and cooldowns ticked: every firing, in order."""
    rng = seeded(seed)
    prices = dict.fromkeys(BOOKS, 100.0)
    t, out = float(T0), []
    for step in range(steps):
        t += rng.choice([1, 1, 1, 2, 7, 45])
        clock.now = t
        for book in BOOKS:
            market, symbol = book
            price = prices[book] = round(min(max(prices[book] * rng.uniform(0.985, 1.015),
                                                 80.0), 120.0), 2)  # fmt: skip
            if market == "spot":
                wick = rng.choice([0.0, 0.0, 0.4, 1.5])
                out += engine.on_price(market, symbol, price, t, high=price + wick,
                                       low=price - wick, candle_t=t // 60 * 60,
                                       open_24h=100.0)  # fmt: skip
            else:
                out += engine.on_price(market, symbol, price, t)
                if step % 5 == 0:
                    out += engine.on_day_change(market, symbol, price - 100.0, price, t)
        if step == steps // 2:
            candles = [(t + 60 * k, 100.0 + k, 99.0 - k, 100.0 + k / 2) for k in range(4)]
            out += engine.gap("spot", "BTCUSDT", candles)
            t += 300
        if step % 50 == 0:
            engine.tick(t)
    return out


def pages(rows: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(rows[i : i + size]) for i in range(0, len(rows), size)]


def two_engines(
    alarms: list[Alarm], load_rows: Callable[[AlarmEngine, list[Any]], None]
) -> tuple[list[Firing], list[Firing], int]:
    """What an engine loaded with ``load`` fires, what one loaded by ``load_rows`` fires on
    the same path, and how many alarms the first held."""
    clock = Clock()
    objects, rows = AlarmEngine(clock=clock), AlarmEngine(clock=clock)
    objects.load(alarms)
    load_rows(rows, [row(a) for a in alarms])
    assert len(rows) == len(objects)
    return drive(objects, clock, seed=7), drive(rows, clock, seed=7), len(objects)


def test_an_engine_loaded_from_rows_fires_exactly_what_one_loaded_from_alarms_fires() -> None:
    alarms = mixed_alarms(seeded(3), 600)
    expected, fired, held = two_engines(alarms, lambda engine, rows: engine.load_rows(rows))
    assert fired == expected
    assert held < 600  # paused, expired and fired one-shots are not held
    assert len(expected) > 300
    kinds = {a.id: a.spec.kind for a in alarms}
    assert {kinds[f.alarm_id] for f in expected} == set(PRICE_KINDS)
    assert any(f.seq > 1 for f in expected)  # repeats fired again after their cooldown
    assert any(f.late for f in expected)  # and the gap fired some


def test_rows_loaded_a_page_at_a_time_over_held_alarms_fire_as_the_alarms_would() -> None:
    alarms = mixed_alarms(seeded(5), 400)
    alarms += [  # crosses exactly at the price last seen: they wait for the other side
        make(1000 + 3 * n + k, AlarmKind.CROSS, level=96.0 + 3 * n, direction=d, market=m,
             symbol=s)
        for n, (m, s) in enumerate(BOOKS)
        for k, d in enumerate(Direction)
    ]  # fmt: skip

    def by_pages(engine: AlarmEngine, rows: list[Any]) -> None:
        with engine.loading() as load:
            for page in pages(rows, 37):
                load(page)

    def held_first(load: Callable[[AlarmEngine, list[Any]], None]) -> Callable[..., None]:
        def run(engine: AlarmEngine, rows: list[Any]) -> None:
            for alarm in alarms[:50:3]:  # held already: the load replaces them
                engine.add(dataclasses.replace(alarm, state=AlarmState.ARMED), price=100.0)
            for n, (market, symbol) in enumerate(BOOKS):  # prices known: crosses take a side
                engine.on_price(market, symbol, 96.0 + 3 * n, T0 - 1.0)
                assert engine.last_price(market, symbol) == 96.0 + 3 * n
            load(engine, rows)

        return run

    clock = Clock()
    objects = AlarmEngine(clock=clock)
    held_first(lambda engine, _rows: engine.load(alarms))(objects, [])
    paged = AlarmEngine(clock=clock)
    held_first(by_pages)(paged, [row(a) for a in alarms])
    expected = drive(objects, clock, seed=11)
    assert drive(paged, clock, seed=11) == expected
    assert len(expected) > 200


def test_a_row_without_its_level_is_refused_as_the_alarm_would_be() -> None:
    broken = dataclasses.replace(make(4, AlarmKind.ABOVE, level=100), spec=AlarmSpec(
        symbol="BTCUSDT", kind=AlarmKind.ABOVE))  # fmt: skip
    with pytest.raises(ValueError, match="alarm 4: a above alarm needs a level"):
        AlarmEngine().load([broken])
    with pytest.raises(ValueError, match="alarm 4: a above alarm needs a level"):
        AlarmEngine().load_rows([row(broken)])


# The engine against a plain loop over every alarm


@dataclass
class Ref:
    """One alarm in the reference: its state written out, checked on every update."""

    alarm: Alarm
    state: str  # up, dn, arm_up, arm_dn, arm_both, grp, cool, pend, gone
    points: tuple[float, float] = (math.inf, -math.inf)  # re-arming points (up, down)
    seq: int = 0
    rearm_at: float = 0.0
    kind: AlarmKind = field(init=False)
    value: float = field(init=False)

    def __post_init__(self) -> None:
        spec = self.alarm.spec
        self.kind = spec.kind
        value = spec.level if spec.level is not None else spec.percent
        self.value = float(value or 0)


Path = list[tuple[int, float, float, float, tuple[int, ...]]]  # time, prices, ids removed


def reference(  # noqa: C901, PLR0912, PLR0915 - one loop, every rule spelled out
    alarms: list[Alarm],
    start: float | None,
    updates: Path,
    open_24h: float,
) -> list[tuple[int, int, Decimal, float]]:
    """Every alarm checked against every update: (alarm id, seq, touched price, time)."""
    refs = [Ref(a, _start_state(a, start)) for a in alarms]
    for r in refs:
        if r.state in {"arm_up", "arm_dn", "arm_both"}:
            level = r.value
            r.points = (math.nextafter(level, math.inf), math.nextafter(level, -math.inf))
    seen: dict[int, tuple[float, float, float]] = {}  # second -> (low, high, close)
    last = math.nan
    out = []

    def window(t: int, w: int) -> tuple[float, float]:
        lows, highs, close = [], [], math.nan
        for s in sorted(seen):
            if s <= t - w:
                close = seen[s][2]
        for s in range(t - w + 1, t):
            if s in seen:
                low, high, close = seen[s]
                lows.append(low)
                highs.append(high)
            elif close == close:  # noqa: PLR0124 - NaN before the first price
                lows.append(close)
                highs.append(close)
        return min(lows, default=math.inf), max(highs, default=-math.inf)

    for t, price, high, low, removed in updates:
        for r in refs:
            if r.alarm.id in removed:
                r.state = "gone"
        hi, lo = max(price, high), min(price, low)
        pct = (price - open_24h) / open_24h * 100
        for r in refs:
            spec = r.alarm.spec
            h, level, d = float(spec.hysteresis), r.value, spec.direction
            if r.state == "cool" and r.rearm_at <= t:
                if r.kind in {AlarmKind.CHANGE, AlarmKind.DAY_CHANGE}:
                    r.state = "pend"
                else:
                    rises = r.kind == AlarmKind.ABOVE or (r.kind == AlarmKind.CROSS and d != DOWN)
                    falls = r.kind == AlarmKind.BELOW or (r.kind == AlarmKind.CROSS and d != UP)
                    r.points = (level * (1 + h), level * (1 - h))
                    if rises and last <= r.points[1]:
                        r.state = "up"
                    elif falls and last >= r.points[0]:
                        r.state = "dn"
                    else:
                        r.state = (
                            "arm_both" if rises and falls else "arm_dn" if rises else "arm_up"
                        )
            touched = None
            if r.state == "up" and hi >= level:
                touched = hi
            elif r.state == "dn" and lo <= level:
                touched = lo
            elif r.state in {"arm_up", "arm_both"} and hi >= r.points[0]:
                r.state = "dn"
                if price <= level:
                    touched = price
            elif r.state in {"arm_dn", "arm_both"} and lo <= r.points[1]:
                r.state = "up"
                if price >= level:
                    touched = price
            elif r.kind == AlarmKind.CHANGE and r.state in {"grp", "pend"}:
                mn, mx = window(t, spec.window_s or 0)
                p = level
                if r.state == "pend":
                    calm_up = d == DOWN or price <= mn * (1 + p / 100) * (1 - h)
                    calm_dn = d == UP or mx == -math.inf or price >= mx * (1 - p / 100) * (1 + h)
                    if calm_up and calm_dn:
                        r.state = "grp"
                f, g = 1 + p / 100, 1 - p / 100
                rise = mn * f <= hi or min(mn, lo) * f <= price
                fall = g > 0 and (lo <= mx * g or price <= max(mx, hi) * g)
                if r.state == "grp" and d != DOWN and rise:
                    touched = hi if mn * f <= hi else price
                elif r.state == "grp" and d != UP and fall:
                    touched = lo if lo <= mx * g else price
            elif r.kind == AlarmKind.DAY_CHANGE and r.state in {"grp", "pend"}:
                p = level
                if r.state == "pend":
                    ratio = 1 + pct / 100
                    if (d == DOWN or ratio <= (1 + p / 100) * (1 - h)) and (
                        d == UP or ratio >= (1 - p / 100) * (1 + h)
                    ):
                        r.state = "grp"
                moved = {UP: pct, DOWN: -pct, BOTH: abs(pct)}[d]
                if r.state == "grp" and moved >= p:
                    touched = price
            if touched is not None:
                r.seq += 1
                out.append((r.alarm.id, r.seq, Decimal(repr(touched)), float(t)))
                if spec.repeat_s is None:
                    r.state = "gone"
                else:
                    r.state, r.rearm_at = "cool", t + spec.repeat_s
        seen[t] = (lo, hi, price)
        last = price
    return out


def _start_state(alarm: Alarm, start: float | None) -> str:
    spec = alarm.spec
    if spec.kind == AlarmKind.ABOVE:
        return "up"
    if spec.kind == AlarmKind.BELOW:
        return "dn"
    if spec.kind != AlarmKind.CROSS:
        return "grp"
    level, d = float(spec.level or 0), spec.direction
    if start is not None and d != DOWN and start < level:
        return "up"
    if start is not None and d != UP and start > level:
        return "dn"
    return {UP: "arm_dn", DOWN: "arm_up", BOTH: "arm_both"}[d]


_prices = st.integers(188, 212).map(lambda x: x / 2)  # the path's grid: ties happen
_alarm = st.one_of(
    st.tuples(st.sampled_from([AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS]), _prices),
    st.tuples(st.just(AlarmKind.CHANGE), st.sampled_from([0.5, 1.0, 3.0, 8.0])),
    st.tuples(st.just(AlarmKind.DAY_CHANGE), st.sampled_from([0.5, 2.0, 5.0, 12.0])),
)
_spec = st.tuples(
    _alarm,
    st.sampled_from([UP, DOWN, BOTH]),
    st.sampled_from([60, 120, 300]),
    st.sampled_from([None, None, 0, 3, 20]),
    st.sampled_from(["0", "0.002", "0.01"]),
)
_update = st.tuples(
    st.sampled_from([1, 1, 1, 2, 3, 59, 61, 250]),  # seconds since the previous update
    st.integers(-6, 6),  # the move, in steps of 0.5
    st.sampled_from([0, 0, 1, 4]),  # a wick above, in steps
    st.sampled_from([0, 0, 1, 4]),  # a wick below
)
_removals = st.lists(st.tuples(st.integers(0, 59), st.integers(1, 25)), max_size=12)


Spec = tuple[tuple[AlarmKind, float], Direction, int, int | None, str]


def _alarms(specs: list[Spec]) -> list[Alarm]:
    out = []
    for i, ((kind, value), d, window, repeat, h) in enumerate(specs, start=1):
        level = value if kind in {AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS} else None
        out.append(
            make(
                i,
                kind,
                level=level,
                percent=None if level is not None else value,
                window_s=window if kind == AlarmKind.CHANGE else None,
                direction=d,
                repeat_s=repeat,
                hysteresis=h,
            )
        )
    return out


def _path(moves: list[tuple[int, int, int, int]], removals: list[tuple[int, int]]) -> Path:
    t, price, out = T0, 100.0, []
    for n, (dt, move, up, down) in enumerate(moves):
        t += dt
        price = max(price + move / 2, 80.0)
        removed = tuple(alarm_id for i, alarm_id in removals if i == n)
        out.append((t, price, price + up / 2, price - down / 2, removed))
    return out


def _run(engine: AlarmEngine, clock: Clock, path: Path) -> list[tuple[int, int, Decimal, float]]:
    out = []
    for t, price, high, low, removed in path:
        for alarm_id in removed:
            engine.remove(alarm_id)
        clock.now = float(t)
        fired = engine.on_price(
            "spot", "BTCUSDT", price, float(t), high=high, low=low, candle_t=t, open_24h=100.0
        )
        out += [(f.alarm_id, f.seq, f.touched_price, f.touched_at) for f in fired]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_spec, min_size=1, max_size=25),
    st.lists(_update, min_size=1, max_size=60),
    _removals,
)
def test_engine_fires_what_a_plain_loop_over_every_alarm_fires(
    specs: list[Spec],
    moves: list[tuple[int, int, int, int]],
    removals: list[tuple[int, int]],
) -> None:
    alarms, path = _alarms(specs), _path(moves, removals)
    clock = Clock()
    added = AlarmEngine(clock=clock)
    for alarm in alarms:
        added.add(alarm, price=Decimal(100))
    assert sorted(_run(added, clock, path)) == sorted(reference(alarms, 100.0, path, 100.0))
    loaded = AlarmEngine(clock=clock)
    loaded.load(alarms)
    assert sorted(_run(loaded, clock, path)) == sorted(reference(alarms, None, path, 100.0))
    from_rows = AlarmEngine(clock=clock)
    from_rows.load_rows([row(a) for a in alarms])
    assert sorted(_run(from_rows, clock, path)) == sorted(reference(alarms, None, path, 100.0))
