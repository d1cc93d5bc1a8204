"""The ``/alarm`` command text: every form a user may type reads into the spec they meant,
every mistake is refused with its own message and the right syntax, no text at all makes the
parser fail any other way, and ``render`` writes a spec back as text that parses to it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utils.alarms.alarm_errors import MESSAGES, AlarmSyntaxError
from utils.alarms.alarm_indicator_words import INTERVALS
from utils.alarms.alarm_model import (
    DEFAULT_REPEAT_S,
    INDICATOR_KINDS,
    MAX_NOTE,
    AlarmKind,
    AlarmSpec,
    Direction,
)
from utils.alarms.alarm_parser import MAX_EXPIRY_S, describe, parse_alarm, render

NOW: Final = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
DAY: Final = 86_400

UP, DOWN, BOTH = Direction.UP, Direction.DOWN, Direction.BOTH


def spec(symbol: str, kind: AlarmKind, **fields: object) -> AlarmSpec:
    return AlarmSpec(symbol=symbol, kind=kind, **fields)  # type: ignore[arg-type]


def above(symbol: str, level: str, **fields: object) -> AlarmSpec:
    return spec(symbol, AlarmKind.ABOVE, level=Decimal(level), **fields)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


FORMS: Final[list[tuple[str, AlarmSpec]]] = [
    ("BTCUSDT > 70000", above("BTCUSDT", "70000")),
    ("btcusdt >= 70000", above("BTCUSDT", "70000")),
    ("BTCUSDT>70000", above("BTCUSDT", "70000")),
    ("btc above 70000", above("BTC", "70000")),
    ("eth < 2500", spec("ETH", AlarmKind.BELOW, level=Decimal(2500))),
    ("eth <= 2,500", spec("ETH", AlarmKind.BELOW, level=Decimal(2500))),
    ("ETH ≤ 2500.5", spec("ETH", AlarmKind.BELOW, level=Decimal("2500.5"))),
    ("eth/btc below 0.05", spec("ETHBTC", AlarmKind.BELOW, level=Decimal("0.05"))),
    ("eth / btc < .05", spec("ETHBTC", AlarmKind.BELOW, level=Decimal("0.05"))),
    ("SOLUSDT cross 150", spec("SOLUSDT", AlarmKind.CROSS, level=Decimal(150))),
    ("sol cross up 150", spec("SOL", AlarmKind.CROSS, direction=UP, level=Decimal(150))),
    ("SOLUSDT cross up 150", spec("SOLUSDT", AlarmKind.CROSS, direction=UP, level=Decimal(150))),
    ("sol CROSS DOWN 150", spec("SOL", AlarmKind.CROSS, direction=DOWN, level=Decimal(150))),
    ("btc > 70k", above("BTC", "70000")),
    ("btc > 70K", above("BTC", "70000")),
    ("btc > 1.2m", above("BTC", "1200000")),
    ("btc > 70,000.25", above("BTC", "70000.25")),
    ("pepe > 0.00001234", above("PEPE", "0.00001234")),
    ("btc +5% 1h", spec("BTC", AlarmKind.CHANGE, direction=UP, percent=Decimal(5), window_s=3600)),
    (
        "btc -5% 15m",
        spec("BTC", AlarmKind.CHANGE, direction=DOWN, percent=Decimal(5), window_s=900),
    ),
    (
        "btc ±5% 4h",
        spec("BTC", AlarmKind.CHANGE, direction=BOTH, percent=Decimal(5), window_s=14400),
    ),
    ("btc +-2.5% 2d", spec("BTC", AlarmKind.CHANGE, percent=Decimal("2.5"), window_s=2 * DAY)),
    (
        "btc + 5 % 7d",
        spec("BTC", AlarmKind.CHANGE, direction=UP, percent=Decimal(5), window_s=7 * DAY),
    ),
    (
        "btc +1000% 1m",
        spec("BTC", AlarmKind.CHANGE, direction=UP, percent=Decimal(1000), window_s=60),
    ),
    ("btc 24h +10%", spec("BTC", AlarmKind.DAY_CHANGE, direction=UP, percent=Decimal(10))),
    ("btc 24H -10%", spec("BTC", AlarmKind.DAY_CHANGE, direction=DOWN, percent=Decimal(10))),
    ("btc 24h ±10%", spec("BTC", AlarmKind.DAY_CHANGE, direction=BOTH, percent=Decimal(10))),
    ("btc > 70000 futures", above("BTC", "70000", market="futures")),
    ("btc > 70000 spot", above("BTC", "70000")),
    ("btc > 70000 repeat", above("BTC", "70000", repeat_s=DEFAULT_REPEAT_S)),
    ("btc > 70000 repeat 30m", above("BTC", "70000", repeat_s=1800)),
    ("btc > 70000 for 7d", above("BTC", "70000", expires_at=NOW + 7 * DAY)),
    ("btc > 70000 until 2027-01-31", above("BTC", "70000", expires_at=at("2027-02-01T00:00"))),
    (
        "btc > 70000 until 2027-01-31T18:00",
        above("BTC", "70000", expires_at=at("2027-01-31T18:00")),
    ),
    (
        "btc > 70000 until 2027-01-31 18:00:30",
        above("BTC", "70000", expires_at=at("2027-01-31T18:00:30")),
    ),
    (
        "btc > 70000 until 2027-01-31T18:00+03:00",
        above("BTC", "70000", expires_at=at("2027-01-31T15:00")),
    ),
    ("btc > 70000 now", above("BTC", "70000", now=True)),
    ("btc > 70000 take profit", above("BTC", "70000", note="take profit")),
    (
        "btc > 70000 Sell  half,   then rest ",
        above("BTC", "70000", note="Sell  half,   then rest"),
    ),
    ("btc > 70000 note: now or never", above("BTC", "70000", note="now or never")),
    (
        "btc > 70000 now repeat 1h futures for 2d take profit",
        above(
            "BTC",
            "70000",
            market="futures",
            repeat_s=3600,
            expires_at=NOW + 2 * DAY,
            now=True,
            note="take profit",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[text for text, _ in FORMS])
def test_every_documented_form_reads_as_the_alarm_meant(text: str, expected: AlarmSpec) -> None:
    assert parse_alarm(text, now=NOW) == expected


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[text for text, _ in FORMS])
def test_every_documented_form_renders_back_to_itself(text: str, expected: AlarmSpec) -> None:
    assert parse_alarm(render(expected), now=NOW) == expected


def test_a_bare_asset_is_kept_upper_cased_for_the_service_to_resolve() -> None:
    assert parse_alarm("eth < 2500", now=NOW).symbol == "ETH"


def test_a_time_without_offset_is_in_the_chats_zone() -> None:
    istanbul = parse_alarm("btc > 1 until 2027-01-31T18:00", now=NOW, tz="Europe/Istanbul")
    assert istanbul.expires_at == at("2027-01-31T15:00")
    end_of_day = parse_alarm("btc > 1 until 2027-01-31", now=NOW, tz="Europe/Istanbul")
    assert end_of_day.expires_at == at("2027-01-31T21:00")
    assert render(end_of_day, tz="Europe/Istanbul").endswith("until 2027-01-31")


def test_for_counts_whole_seconds_from_now() -> None:
    assert parse_alarm("btc > 1 for 1h", now=NOW + 0.4).expires_at == NOW + 3600


def test_render_writes_the_canonical_command() -> None:
    parsed = parse_alarm("sol cross down 1.5k futures repeat 60m until 2027-01-31 tp", now=NOW)
    assert render(parsed) == "SOL cross down 1500 futures repeat 1h until 2027-01-31 tp"
    assert render(parse_alarm("btc +-5% 24h", now=NOW)) == "BTC ±5% 1d"


def test_render_marks_a_note_that_would_read_as_options() -> None:
    for note in ("now or never", "repeat after me", "futurs", "7d later", "18:00 call"):
        alarm = above("BTC", "1", expires_at=at("2027-02-01T00:00"), note=note)
        assert "note: " in render(alarm)
        assert parse_alarm(render(alarm), now=NOW) == alarm
    assert render(above("BTC", "1", note="take profit")) == "BTC >= 1 take profit"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("BTCUSDT > 70000", "BTCUSDT spot price rises to 70,000 or above"),
        ("eth < 2500.5 futures", "ETH futures mark price falls to 2,500.5 or below"),
        ("sol cross 150", "SOL spot price crosses 150 either way"),
        ("sol cross up 150", "SOL spot price crosses 150 upwards"),
        ("sol cross down 150", "SOL spot price crosses 150 downwards"),
        ("btc +5% 1h", "BTC spot price rises by 5 % or more within 1h"),
        ("btc -2.5% 15m", "BTC spot price falls by 2.5 % or more within 15m"),
        ("btc ±5% 2d", "BTC spot price rises or falls by 5 % or more within 2d"),
        ("btc 24h +10%", "BTC spot 24 h change reaches +10 % or more"),
        ("btc 24h -10% futures", "BTC futures 24 h change reaches -10 % or less"),
        ("btc 24h ±10%", "BTC spot 24 h change reaches ±10 % or beyond"),
    ],
)
def test_describe_says_the_condition_in_words(text: str, words: str) -> None:
    assert describe(parse_alarm(text, now=NOW)) == words


def test_describe_passes_its_texts_through_gettext() -> None:
    catalogue = {
        "{symbol} {market} rises to {level} or above": "{symbol} {market} ≥ {level}",
        "spot price": "spot fiyatı",
    }
    alarm = parse_alarm("btc > 5", now=NOW)
    assert describe(alarm, gettext=lambda t: catalogue.get(t, t)) == "BTC spot fiyatı ≥ 5"


ERRORS: Final[list[tuple[str, str, str]]] = [
    ("", "empty", "Usage: /alarm"),
    ("   ", "empty", "Usage: /alarm"),
    ("b > 5", "symbol", "“b” is not a symbol"),
    ("bitcoin-usd > 5", "symbol", "“bitcoin-usd” is not a symbol"),
    ("ABCDEFGHIJKLMNOPQRSTU > 5", "symbol", "2 to 20 letters or digits"),
    ("bıtcoin > 5", "symbol", "not a symbol"),
    ("btc", "no_condition", "What should BTC do?"),
    ("btc soon", "condition", "“soon” is not a condition"),
    ("btc 70000", "condition", "“70000” is not a condition"),
    ("btc >", "no_level", "A price level is missing after “>”: /alarm BTC > 70000"),
    ("btc cross up", "no_level", "missing after “cross up”"),
    ("btc > lots", "level", "“lots” is not a price level: write a positive number"),
    ("btc > -5", "level", "“-5” is not a price level"),
    ("btc > 70,00", "level", "“70,00” is not a price level"),
    ("btc > 0", "level_range", "“0” is out of range"),
    ("btc > 1000000000000000", "level_range", "below 1,000,000,000,000,000"),
    ("btc > 0.0000000000000000001", "level_range", "at most 18 decimals"),
    ("btc +five% 1h", "percent", "“+five%” is not a percent change"),
    ("btc +5 1h", "percent", "“+5” is not a percent change"),
    ("btc 5% 1h", "percent_sign", "+5% for a rise, -5% for a fall, ±5% for either"),
    ("btc +0% 1h", "percent_range", "above 0 and at most 1,000 %"),
    ("btc +1000.5% 1h", "percent_range", "A change of +1000.5% is out of range"),
    ("btc -100% 1d", "percent_fall", "A fall of 100 % can never happen"),
    ("btc 24h", "no_percent", "/alarm BTC 24h +10%"),
    ("btc +5%", "no_window", "/alarm BTC +5% 1h"),
    ("btc +5% 1w", "window", "“1w” is not a window"),
    ("btc +5% soon", "window", "“soon” is not a window"),
    ("btc +5% 0m", "window_range", "outside 1m to 7d"),
    ("btc +5% 8d", "window_range", "A window of 8d is outside 1m to 7d"),
    ("btc +5% 99999999999d", "window_range", "outside 1m to 7d"),
    ("btc 4h +5%", "window_first", "/alarm BTC +5% 4h"),
    ("btc > 5 --loud", "option", "“--loud” is not an option"),
    ("btc > 5 futurs", "option_close", "did you mean futures?"),
    ("btc > 5 -repeat", "option_close", "did you mean repeat?"),
    ("btc > 5 untill 2027-01-31", "option_close", "did you mean until?"),
    ("btc > 5 7d", "option_duration", "write for 7d"),
    ("btc > 5 2027-01-31", "option_date", "write until 2027-01-31"),
    ("btc > 5 now futures now", "option_twice", "“now” is given twice"),
    ("btc > 5 spot futures", "market_both", "Choose one market"),
    ("btc > 5 repeat 2x", "repeat", "“2x” is not a repeat cooldown"),
    ("btc > 5 repeat 30s", "repeat", "“30s” is not a repeat cooldown"),
    ("btc > 5 repeat 8d", "repeat_range", "outside 1m to 7d"),
    ("btc > 5 for", "for", "after “for”"),
    ("btc > 5 for ever", "for", "after “for”"),
    ("btc > 5 for 0m", "for", "from 1m to 730d"),
    ("btc > 5 until", "until", "Write a date after “until”"),
    ("btc > 5 until tomorrow", "until_bad", "“tomorrow” is not a date"),
    ("btc > 5 until 2027-02-30", "until_bad", "“2027-02-30” is not a date"),
    ("btc > 5 until 9999-12-31", "expiry_far", "at most 730 days ahead"),
    ("btc > 5 until 2026-12-05", "expiry_past", "(2026-12-05) is already past"),
    ("btc > 5 until 2026-12-06T11:59", "expiry_past", "already past"),
    ("btc > 5 for 731d", "for", "from 1m to 730d"),
    ("btc > 5 until 2029-01-01", "expiry_far", "until 2028-12-04"),
    ("btc > 5 for 7d until 2027-01-31", "expiry_both", "Give one expiry"),
    ("btc > 5 note:", "note_empty", "Write the note after “note:”"),
    ("btc > 5 " + "x" * (MAX_NOTE + 1), "note_long", "The note is 201 characters long; keep"),
    ("btc stoch > 80 1h", "indicator_unknown", "Alarms do not watch “stoch”"),
    ("btc sma 50 cross 1d", "indicator_unknown", "rsi, macd or ema"),
    ("btc rsi 70 1h", "rsi_op", "RSI takes > or <"),
    ("btc rsi > 100 1h", "rsi_level", "“100” is not an RSI level"),
    ("btc rsi < 0 1h", "rsi_level", "between 0 and 100"),
    ("btc rsi > 70", "no_interval", "one of 1m, 3m, 5m, 15m, 30m, 1h"),
    ("btc rsi > 70 2m", "interval", "“2m” is not a candle interval"),
    ("btc rsi > 70 1M", "interval", "“1M” is not a candle interval"),
    ("btc macd up 4h", "macd_cross", "/alarm BTC macd cross 4h"),
    ("btc ema 1 cross 1d", "ema_period", "from 2 to 500"),
    ("btc ema 501 cross 1d", "ema_period", "“501” is not an EMA period"),
    ("btc ema 50 1d", "ema_cross", "/alarm BTC ema 50 cross 1d"),
]


@pytest.mark.parametrize(("text", "code", "says"), ERRORS, ids=[e[0][:30] for e in ERRORS])
def test_each_mistake_gets_its_own_message(text: str, code: str, says: str) -> None:
    with pytest.raises(AlarmSyntaxError) as caught:
        parse_alarm(text, now=NOW)
    assert caught.value.code == code
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_message_is_exercised_and_shows_an_example_or_the_syntax() -> None:
    assert {code for _, code, _ in ERRORS} == set(MESSAGES)
    for text, _code, _ in ERRORS:
        with pytest.raises(AlarmSyntaxError) as caught:
            parse_alarm(text, now=NOW)
        message = str(caught.value)
        assert "{" not in message, message
        assert any(hint in message for hint in ("/alarm", "like ", "write ", "Write ")), message


def test_a_note_of_the_longest_length_is_kept() -> None:
    assert parse_alarm("btc > 5 " + "é" * MAX_NOTE, now=NOW).note == "é" * MAX_NOTE


def test_a_message_translates_its_template_then_fills_it() -> None:
    with pytest.raises(AlarmSyntaxError) as caught:
        parse_alarm("btc > 5 " + "x" * (MAX_NOTE + 1), now=NOW)
    catalogue = {caught.value.template: "Not {length} > {limit}"}
    assert caught.value.translate(lambda text: catalogue.get(text, text)) == "Not 201 > 200"


# -- properties ---------------------------------------------------------------------------

VOCABULARY: Final = [
    *("btc", "ETHUSDT", "eth/btc", "/", ">", ">=", "<", "<=", "≥", "above", "below"),
    *("cross", "up", "down", "24h", "+5%", "-5%", "±5%", "+-5%", "%", "+", "-", "5%"),
    *("70000", "70,000", "70k", "1.2m", "0", "-1", ".5", "1e5", "nan", "inf", "9" * 50),
    *("1m", "15m", "4h", "2d", "7d", "8d", "0m", "30s", "1w", "99999999999999d"),
    *("futures", "spot", "repeat", "for", "until", "now", "note:", "futurs", "--x"),
    *("2027-01-31", "2027-01-31T18:00", "18:00", "9999-12-31", "0001-01-01", "2027-13-01"),
    *("2027-01-31T18:00+03:00", "2027-01-31T18:00Z", "2027-W05-1", "take", "profit"),
    *("rsi", "macd", "ema", "stoch", "50", "70", "100", "1h", "1d", "3d", "1M", "12h", "crosses"),
]
words = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6))
command_text = st.one_of(st.text(max_size=80), st.lists(words, max_size=10).map(" ".join))


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(text=command_text)
def test_no_text_fails_but_with_a_syntax_error_and_what_parses_renders_back(text: str) -> None:
    try:
        parsed = parse_alarm(text, now=NOW)
    except AlarmSyntaxError:
        return
    assert parse_alarm(render(parsed), now=NOW) == parsed


def decimals(low: Decimal, high: Decimal, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=low, max_value=high, places=places, allow_nan=False).filter(
        lambda d: d > 0
    )


@st.composite
def specs(draw: st.DrawFn) -> AlarmSpec:
    symbol = draw(st.from_regex(r"[A-Z0-9]{2,20}", fullmatch=True))
    kind = draw(st.sampled_from(AlarmKind))
    fields: dict[str, object] = {}
    if kind in INDICATOR_KINDS:
        fields["window_s"] = draw(st.sampled_from(sorted(INTERVALS.values())))
        if kind in (AlarmKind.RSI_ABOVE, AlarmKind.RSI_BELOW):
            fields["level"] = draw(decimals(Decimal(0), Decimal("99.99"), draw(st.integers(0, 2))))
        else:
            fields["direction"] = draw(st.sampled_from(Direction))
        if kind is AlarmKind.EMA_CROSS:
            fields["level"] = Decimal(draw(st.integers(2, 500)))
    elif kind in (AlarmKind.ABOVE, AlarmKind.BELOW, AlarmKind.CROSS):
        places = draw(st.integers(0, 18))
        fields["level"] = draw(decimals(Decimal(0), Decimal(10**15 - 1), places))
        if kind is AlarmKind.CROSS:
            fields["direction"] = draw(st.sampled_from(Direction))
    else:
        direction = draw(st.sampled_from(Direction))
        top = Decimal("99.99") if direction is DOWN else Decimal(1000)
        fields["direction"] = direction
        fields["percent"] = draw(decimals(Decimal(0), top, draw(st.integers(0, 4))))
        if kind is AlarmKind.CHANGE:
            fields["window_s"] = 60 * draw(st.integers(1, 7 * 24 * 60))
    return AlarmSpec(
        symbol=symbol,
        kind=kind,
        market=draw(st.sampled_from(["spot", "futures"])),
        repeat_s=draw(st.none() | st.integers(1, 7 * 24 * 60).map(lambda m: 60 * m)),
        expires_at=draw(st.none() | st.integers(1, MAX_EXPIRY_S).map(lambda s: NOW + s)),
        note=draw(st.text(max_size=MAX_NOTE).map(str.strip)),
        now=draw(st.booleans()),
        **fields,  # type: ignore[arg-type]
    )


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(
    alarm=specs(),
    tz=st.sampled_from([None, "UTC", "Europe/Istanbul", "America/New_York", "Asia/Kolkata"]),
)
def test_every_valid_spec_renders_to_text_that_parses_back_to_it(
    alarm: AlarmSpec, tz: str | None
) -> None:
    text = render(alarm, tz=tz)
    assert parse_alarm(text, now=NOW, tz=tz) == alarm, text
    assert describe(alarm)
