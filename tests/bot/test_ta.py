"""/ta end to end: a real aiogram Bot against the fake Bot API, a real BinanceClient against
the fake exchange serving the shipped fixture. The read-out's numbers are talipp's on the
fixture, its candle is the last closed one (or the forming one, said so, with ``live``), and
bad input is answered in words: valid intervals, closest symbols, how many candles exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from talipp.indicators import RSI

from analysis.scoring import RULES
from tests.analysis.conftest import load, series
from tests.bot.conftest import ALLOWED

if TYPE_CHECKING:
    import pandas as pd

    from tests.bot.conftest import Harness


@pytest.fixture
def walk() -> pd.DataFrame:
    return load("ohlcv_walk.csv")


@pytest.fixture
def served(harness: Harness, walk: pd.DataFrame) -> Harness:
    harness.binance.market.candles.serve_series("spot", "BTCUSDT", "1h", series(walk))
    return harness


async def test_ta_reads_out_the_last_closed_candle_with_talipps_numbers(
    served: Harness, walk: pd.DataFrame
) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta BTCUSDT 1h")
    rsi = RSI(14, walk["close"].tail(999).tolist())[-1]  # the 999 closed candles it reads
    assert reply.text.startswith("<b>BTCUSDT 1h</b> · spot")
    assert "Close <b>91,397.10</b> · candle closed" in reply.text  # not 65,000 (forming)
    assert f"RSI(14)        {rsi:.1f}" in reply.text
    assert "Candle: the last closed 1h one, opened" in reply.text
    assert "999 candles of history" in reply.text
    assert "25 candles missing in 2 gaps, bridged" in reply.text  # the 999 hold two of three
    assert "RSI and ATR are Wilder-smoothed" in reply.text
    assert "next candle closes" in reply.text
    assert "UTC" in reply.text  # no /tz set


async def test_a_bare_asset_means_usdt_and_1h(served: Harness) -> None:
    (long,) = await served.ask(ALLOWED, "/ta BTCUSDT 1h")
    (short,) = await served.ask(ALLOWED, "/ta btc")
    assert short.text == long.text


async def test_live_uses_the_forming_candle_and_says_so(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta btc live")
    assert "Price now <b>65,000.00</b> · forming candle, closes" in reply.text  # fake's price
    assert "live: it moves until it closes" in reply.text


async def test_times_are_in_the_chats_time_zone(served: Harness) -> None:
    await served.ask(ALLOWED, "/tz Europe/Istanbul")
    (reply,) = await served.ask(ALLOWED, "/ta btc")
    assert "Europe/Istanbul" in reply.text
    assert "UTC" not in reply.text


async def test_futures_reads_the_perpetual(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta eth 4h futures")
    assert reply.text.startswith("<b>ETHUSDT 4h</b> · futures")


async def test_all_is_one_message_with_a_row_per_timeframe(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta btc all")
    table = reply.text.split("<pre>")[1].split("</pre>")[0].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["15m", "1h", "4h", "1d"]
    assert table[0].split()[:7] == ["RSI", "MACD", "E20", "E50", "E200", "%B", "Sto"]
    assert "the rules: /help ta" in reply.text
    assert served.telegram.sent_to(ALLOWED)[-1].text == reply.text  # one message


async def test_help_ta_documents_the_scoring_rules(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/help ta")
    for rule in RULES:
        assert rule in reply.text
    assert "Wilder-smoothed" in reply.text


async def test_an_unknown_interval_lists_the_valid_ones(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta btc 7x")
    assert reply.text == (
        "“7x” is not a Binance interval. Valid ones: 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, "
        "6h, 8h, 12h, 1d, 3d, 1w, 1M."
    )
    assert served.binance.count("GET /api/v3/klines") == 0


async def test_an_unknown_symbol_is_answered_as_price_answers_it(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta BTCUSDX")
    assert reply.text.startswith("unknown symbol BTCUSDX — did you mean BTCUSDT")


async def test_a_new_listing_says_how_many_candles_exist(served: Harness) -> None:
    listing = load("ohlcv_listing.csv")
    served.binance.market.candles.serve_series("spot", "APTUSDT", "1h", series(listing))
    (reply,) = await served.ask(ALLOWED, "/ta apt")
    assert reply.text == (
        "APT has only 30 closed 1h candles so far (a new listing?); /ta needs at least 35. "
        "Try a shorter interval."
    )


async def test_without_arguments_the_usage(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta")
    assert reply.text.startswith("Usage: /ta SYMBOL [INTERVAL | all] [futures] [live]")


async def test_in_turkish(served: Harness) -> None:
    (reply,) = await served.ask(ALLOWED, "/ta btc", language_code="tr")
    assert "RSI ve ATR Wilder yöntemiyle yumuşatılır" in reply.text
    (bad,) = await served.ask(ALLOWED, "/ta btc 7x", language_code="tr")
    assert "geçerli bir Binance aralığı değil" in bad.text
