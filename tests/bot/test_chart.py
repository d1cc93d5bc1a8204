"""``/chart`` end to end: a real aiogram ``Bot`` against the fake Bot API, a real
``BinanceClient`` against the fake exchange, charts drawn in real render processes.

The photo arrives as a PNG of the configured size with its caption and interval buttons; the
same chart in the same candle is neither drawn nor uploaded again (Telegram gets the
``file_id``); a button redraws the same message; bad input is answered in words; and the bot
keeps answering while charts are being drawn (renders held in their processes until the test
lets them go: an ordering, not a timing).
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import pytest
from PIL import Image

from analysis.chart import Charts
from analysis.chart_pool import ChartPool
from bot.app import build_app
from tests.bot.conftest import ALLOWED, STRANGER, Harness, running

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram, SentMessage
    from utils.config import Settings

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
SIZE: Final = (1200, 800)  # the chart's configured size in pixels
KLINES: Final = "GET /api/v3/klines"


def decoded_size(png: bytes) -> tuple[int, int]:
    """Width and height after decoding every pixel (a truncated PNG fails here)."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


def buttons(message: SentMessage) -> list[list[str]]:
    assert message.reply_markup is not None
    return [[b["text"] for b in row] for row in message.reply_markup["inline_keyboard"]]


def button_data(message: SentMessage, text: str) -> str:
    assert message.reply_markup is not None
    row = message.reply_markup["inline_keyboard"][0]
    return str(next(b["callback_data"] for b in row if b["text"] == text))


def largest_file_id(telegram: FakeTelegram, message: SentMessage) -> str:
    stored = telegram.chats[message.chat_id].messages[message.message_id]
    return str(stored["photo"][-1]["file_id"])


def closed_rows(binance: FakeBinance, symbol: str, interval: str, count: int) -> list[list[Any]]:
    """The last ``count`` closed candles, read from the fake exchange itself."""
    now_ms = binance.market.candles.now_ms()
    rows = binance.market.candles.rows("spot", symbol, interval, count + 1, (None, None), now_ms)
    return rows[:-1][-count:] if rows[-1][6] >= now_ms else rows[-count:]


async def press(
    telegram: FakeTelegram, message: SentMessage, text: str, *, edits: int = 1
) -> tuple[list[SentMessage], str]:
    """Press the button ``text`` under ``message``: the edits that follow and the answer."""

    def edited() -> list[SentMessage]:
        return [
            m
            for m in telegram.sent_to(message.chat_id)
            if m.method == "editMessageMedia" and m.message_id == message.message_id
        ]

    before, answered = len(edited()), len(telegram.calls_of("answerCallbackQuery"))
    telegram.inject_callback(message.chat_id, button_data(message, text), message.message_id)
    call = await telegram.wait_for_call("answerCallbackQuery", count=answered + 1, timeout=20)
    await telegram.wait_until_idle()
    changed = edited()[before:]
    assert len(changed) == edits
    return changed, call.params.get("text", "")


async def test_chart_arrives_as_a_png_of_the_configured_size_with_caption_and_buttons(
    harness: Harness,
) -> None:
    (photo,) = await harness.ask(ALLOWED, "/chart btc 4h 50", timeout=30)
    rows = closed_rows(harness.binance, "BTCUSDT", "4h", 50)

    assert photo.method == "sendPhoto"
    assert isinstance(photo.photo, bytes)
    assert photo.photo.startswith(PNG_MAGIC)
    assert decoded_size(photo.photo) == SIZE
    last_close, first_open = Decimal(rows[-1][4]), Decimal(rows[0][1])
    closed_at = datetime.fromtimestamp((rows[-1][6] + 1) / 1000, UTC)  # closeTime is inclusive
    lines = photo.plain.splitlines()
    assert lines[0] == "BTCUSDT · 4h · spot"
    assert lines[1] == f"Last close: {last_close:.2f} ({closed_at:%Y-%m-%d %H:%M} UTC)"
    change = (last_close / first_open - 1) * 100
    assert lines[2] == f"Change over 50 candles: {change:+.2f}%"
    assert buttons(photo) == [["15m", "1h", "• 4h", "1d"]]


async def test_a_second_chart_in_the_same_candle_is_neither_drawn_nor_uploaded(
    harness: Harness,
) -> None:
    (first,) = await harness.ask(ALLOWED, "/chart eth 1d 30", timeout=30)
    klines = harness.binance.count(KLINES)
    (second,) = await harness.ask(STRANGER, "/chart ETHUSDT 1d 30", timeout=30)

    assert isinstance(first.photo, bytes)
    assert second.photo == largest_file_id(harness.telegram, first)  # a file_id, not a file
    assert harness.telegram.photos.uploads == 1
    assert harness.app.charts.renders == 1
    assert harness.binance.count(KLINES) == klines  # not even fetched again
    assert second.plain == first.plain


async def test_the_same_chart_asked_by_two_chats_at_once_is_drawn_once(harness: Harness) -> None:
    for chat_id in (ALLOWED, STRANGER):
        harness.telegram.inject_message(chat_id, "/chart sol 1h 40")
    photos = await harness.telegram.wait_for_sent(
        lambda m: m.method == "sendPhoto", count=2, timeout=30
    )
    assert {m.chat_id for m in photos} == {ALLOWED, STRANGER}
    assert harness.app.charts.renders == 1
    assert harness.app.charts.pool.submitted == 1


async def test_an_interval_button_redraws_the_same_message(harness: Harness) -> None:
    telegram = harness.telegram
    (photo,) = await harness.ask(ALLOWED, "/chart btc 4h 50", timeout=30)
    four_hours = largest_file_id(telegram, photo)

    (hourly,), answer = await press(telegram, photo, "1h")
    assert answer == ""
    assert hourly.message_id == photo.message_id
    assert isinstance(hourly.photo, bytes)  # 1h was never drawn: uploaded
    assert decoded_size(hourly.photo) == SIZE
    assert hourly.plain.splitlines()[0] == "BTCUSDT · 1h · spot"
    assert buttons(hourly) == [["15m", "• 1h", "4h", "1d"]]

    (back,), _ = await press(telegram, hourly, "4h")
    assert back.photo == four_hours  # sent again by its file_id: nothing uploaded
    assert back.plain == photo.plain
    assert buttons(back) == buttons(photo)
    assert harness.app.charts.renders == 2  # 4h came from the cache, by its file_id
    assert [m.method for m in telegram.sent_to(ALLOWED)].count("sendPhoto") == 1


async def test_pressing_the_interval_shown_changes_nothing(harness: Harness) -> None:
    (photo,) = await harness.ask(ALLOWED, "/chart btc 4h 50", timeout=30)
    changed, answer = await press(harness.telegram, photo, "• 4h", edits=0)
    assert changed == []
    assert answer == "Already showing 4h."


async def test_a_photo_or_an_edit_that_meets_a_429_waits_it_out_like_any_reply(
    harness: Harness,
) -> None:
    telegram = harness.telegram
    telegram.fail_next("sendPhoto", chat_id=ALLOWED, status=429, retry_after=1)
    (photo,) = await harness.ask(ALLOWED, "/chart btc 4h 50", timeout=30)
    assert [c.status for c in telegram.calls_of("sendPhoto")] == [429, 200]
    assert telegram.sent_to(ALLOWED) == [photo]  # once

    telegram.fail_next("editMessageMedia", chat_id=ALLOWED, status=429, retry_after=1)
    await press(telegram, photo, "1h")
    statuses = [c.status for c in telegram.calls_of("editMessageMedia")]
    assert statuses == [429, 200]
    retry = telegram.calls_of("editMessageMedia")
    assert retry[1].t - retry[0].t >= 1.0  # not before Telegram's retry_after


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (
            "/chart btc 7h",
            "“7h” is not an interval. Valid intervals: 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, "
            "8h, 12h, 1d, 3d, 1w, 1M.",
        ),
        ("/chart btc 4h 19", "A chart shows from 20 to 1000 candles; you asked for 19."),
        ("/chart btc 4h 1001", "A chart shows from 20 to 1000 candles; you asked for 1001."),
        ("/chart btc 1s futures", "“1s” is not an interval. Valid intervals: 1m, 3m, 5m, "),
        ("/chart btc banana", "“banana” is neither an interval nor a candle count."),
        ("/chart", "Usage: /chart SYMBOL [interval] [candles] [futures]"),
    ],
)
async def test_bad_input_is_answered_in_words_before_anything_is_fetched(
    harness: Harness, text: str, answer: str
) -> None:
    klines = harness.binance.count(KLINES)
    (reply,) = await harness.ask(ALLOWED, text)
    assert reply.method == "sendMessage"
    assert reply.plain.startswith(answer)
    assert harness.binance.count(KLINES) == klines
    assert harness.app.charts.renders == 0


async def test_an_unknown_symbol_is_answered_as_price_answers_it(harness: Harness) -> None:
    (price,) = await harness.ask(ALLOWED, "/price BTCUSDX")
    (chart,) = await harness.ask(ALLOWED, "/chart BTCUSDX 4h")
    assert chart.plain == price.plain
    assert chart.plain.startswith("unknown symbol BTCUSDX — did you mean BTCUSDT")
    assert harness.binance.count(KLINES) == 0


async def test_a_new_listing_says_how_many_candles_exist(harness: Harness) -> None:
    harness.binance.market.candles.serve_series(
        "spot", "ETHUSDT", "4h", [(10.0, 11.0, 9.0, 10.5, 100.0)] * 12
    )
    (reply,) = await harness.ask(ALLOWED, "/chart eth 4h")
    assert reply.plain == "ETHUSDT has only 12 closed 4h candles; a chart needs at least 20."


async def test_a_short_history_is_drawn_whole_and_the_caption_says_so(harness: Harness) -> None:
    series = [(10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100.0) for i in range(30)]
    harness.binance.market.candles.serve_series("spot", "ETHUSDT", "1d", series)
    (photo,) = await harness.ask(ALLOWED, "/chart eth 1d 100", timeout=30)
    assert isinstance(photo.photo, bytes)
    assert decoded_size(photo.photo) == SIZE
    lines = photo.plain.splitlines()
    assert lines[1].startswith("Last close: 39.5000 (")
    assert lines[2] == f"Change over 30 candles: {(39.5 / 10.0 - 1) * 100:+.2f}%"
    assert lines[3] == "Only 30 closed candles exist; all are shown."


async def test_the_caption_and_refusals_speak_turkish(harness: Harness) -> None:
    (photo,) = await harness.ask(ALLOWED, "/chart btc 4h 50", language_code="tr", timeout=30)
    (refusal,) = await harness.ask(ALLOWED, "/chart btc 4h 5", language_code="tr")
    assert photo.plain.splitlines()[0] == "BTCUSDT · 4h · spot"
    assert photo.plain.splitlines()[1].startswith("Son kapanış: ")
    assert refusal.plain == "Bir grafik 20 ile 1000 mum arası gösterir; 5 istediniz."


async def test_the_bot_answers_price_while_five_charts_are_being_drawn(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    pool = ChartPool(held=True)  # renders wait in their processes until released
    app = build_app(settings, charts=Charts(pool))
    async with running(settings, app=app):
        harness = Harness(telegram, binance, app)
        # Five chats: the bot handles one chat's messages in order, different chats at once.
        for chat_id, symbol in enumerate(("btc", "eth", "bnb", "sol", "xrp"), start=801):
            telegram.inject_message(chat_id, f"/chart {symbol} 1h 30")
        await asyncio.wait_for(pool.wait_busy(5), timeout=30)

        (price,) = await harness.ask(ALLOWED, "/price btc")
        assert "BTCUSDT" in price.plain
        assert pool.submitted == 5
        assert pool.completed == 0
        assert [m for m in telegram.sent if m.method == "sendPhoto"] == []

        pool.release()
        photos = await telegram.wait_for_sent(
            lambda m: m.method == "sendPhoto", count=5, timeout=60
        )
    assert all(p.t > price.t for p in photos)
    assert {p.plain.split(" ·")[0] for p in photos} == {
        "BTCUSDT",
        "ETHUSDT",
        "BNBUSDT",
        "SOLUSDT",
        "XRPUSDT",
    }
