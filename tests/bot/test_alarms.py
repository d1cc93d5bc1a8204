"""Price alarms end to end: the bot against the fake Bot API and the fake exchange's REST and
streams. ``/alarm`` confirms, the alarm fires at the frame that reaches it with its buttons,
once; the buttons (snooze, re-arm, delete under a firing; pause, resume, delete and paging
under ``/alarms``) change what the message says; bad input is answered specifically and
stores nothing (also for random text, with hypothesis); groups let only an alarm's creator or
an administrator delete it; a chat that blocks the bot has its alarms paused until /start.

Frames are pushed by the test; "nothing else fired" is proved by a later frame firing a
*sentinel* alarm in another chat: the bot handles a frame's rows in order and delivers its
firings in order, so once the sentinel's message is there the frame has been handled."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bot.conftest import ALLOWED, STRANGER, Harness, running
from tests.fakes import fake_ws_wire as wire
from utils.alarms.alarm_parser import parse_alarm, render

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage
    from tests.fakes.fake_ws import FakeBinanceWS
    from utils.config import Settings

WAIT_S: Final = 10.0
SENTINEL: Final = 800  # a private chat whose alarms mark that a frame was handled
GROUP: Final = -100_200
CREATOR, MEMBER, ADMIN_OF_GROUP = 2001, 2002, 2003


@dataclasses.dataclass
class Bot:
    """The running bot, the fakes around it, and the moves a test makes."""

    harness: Harness
    spot: FakeBinanceWS
    eth: Decimal = Decimal(3400)

    @property
    def telegram(self) -> FakeTelegram:
        return self.harness.telegram

    async def say(self, chat_id: int, text: str, **kw: Any) -> SentMessage:
        (reply,) = await self.harness.ask(chat_id, text, **kw)
        return reply

    async def tick(self, opens: dict[str, str] | None = None, **prices: str) -> None:
        rows = []
        for symbol, price in prices.items():
            self.harness.binance.set_price(symbol, price)
            open_price = (opens or {}).get(symbol)
            rows.append(wire.mini_ticker(symbol, price, open_price=open_price))
        await self.spot.wait_for_subscribed("!miniTicker@arr")
        await self.spot.push("!miniTicker@arr", rows)

    async def frame(self, **prices: str) -> None:
        """A frame with these prices, handled once the sentinel it also fires has spoken."""
        level, self.eth = self.eth, self.eth - 100
        await self.say(SENTINEL, f"/alarm eth < {level}")
        await self.spot.wait_for_subscribed("ethusdt@kline_1m")
        before = len(self.firings(SENTINEL))
        await self.tick(**prices, ETHUSDT=str(level - 10))
        await self.telegram.wait_for_sent(
            lambda m: m.chat_id == SENTINEL and "🔔" in m.text, count=before + 1, timeout=WAIT_S
        )

    def firings(self, chat_id: int) -> list[SentMessage]:
        return [
            m
            for m in self.telegram.sent_to(chat_id)
            if m.method == "sendMessage" and m.text.startswith("🔔")
        ]

    async def fired(self, chat_id: int, count: int = 1) -> list[SentMessage]:
        return await self.telegram.wait_for_sent(
            lambda m: m.chat_id == chat_id and m.method == "sendMessage" and "🔔" in m.text,
            count=count,
            timeout=WAIT_S,
        )

    async def press(self, chat_id: int, data: str, message_id: int, **kw: Any) -> str:
        """Press a button; the answer to the callback query."""
        answered = len(self.telegram.callback_answers)
        self.telegram.inject_callback(chat_id, data, message_id, **kw)
        await self.telegram.wait_for_call(
            "answerCallbackQuery", count=answered + 1, timeout=WAIT_S
        )
        return self.telegram.callback_answers[answered].get("text", "")

    async def edited(self, chat_id: int, message_id: int, count: int = 1) -> SentMessage:
        edits = await self.telegram.wait_for_sent(
            lambda m: (
                m.chat_id == chat_id and m.message_id == message_id and m.method.startswith("edit")
            ),
            count=count,
            timeout=WAIT_S,
        )
        return edits[-1]


@pytest.fixture
async def bot(
    telegram: FakeTelegram,
    binance: FakeBinance,
    alarm_settings: Callable[..., Settings],
    streams: tuple[FakeBinanceWS, FakeBinanceWS],
) -> AsyncIterator[Bot]:
    telegram.add_chat(SENTINEL)
    async with running(alarm_settings()) as app:
        await asyncio.wait_for(app.alarms.led.wait(), WAIT_S)
        yield Bot(Harness(telegram, binance, app), streams[0])


def buttons(message: SentMessage) -> list[list[tuple[str, str]]]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [[(b["text"], b["callback_data"]) for b in row] for row in rows]


# --- firing ---------------------------------------------------------------------------------


async def test_an_alarm_is_confirmed_then_fires_once_at_its_frame_with_buttons(bot: Bot) -> None:
    reply = await bot.say(ALLOWED, "/alarm btc > 66000 take profit")
    assert reply.plain.startswith("Alarm #1 is set: BTCUSDT spot price rises to 66,000 or above.")
    assert "Now: 65,000 (+1.54 % to the level)." in reply.plain
    assert "Note: take profit" in reply.plain
    await bot.frame(BTCUSDT="65900")
    assert bot.firings(ALLOWED) == []
    await bot.frame(BTCUSDT="66100")
    await bot.frame(BTCUSDT="66400")
    [message] = bot.firings(ALLOWED)
    assert "🔔 Alarm #1: BTCUSDT spot price rises to 66,000 or above" in message.plain
    assert "Touched 66,100" in message.plain
    assert "take profit" in message.plain
    assert [text for text, _data in buttons(message)[0]] == ["Snooze 1 h", "Re-arm", "Delete"]


async def test_a_turkish_chat_reads_its_alarm_in_turkish(bot: Bot) -> None:
    reply = await bot.say(ALLOWED, "/alarm btc < 64000", language_code="tr")
    assert reply.plain.startswith("Alarm #1 kuruldu: BTCUSDT spot fiyatı 64,000 veya altına")
    await bot.tick(BTCUSDT="63900")
    [message] = await bot.fired(ALLOWED)
    assert "63,900 seviyesine dokundu" in message.plain
    assert [text for text, _ in buttons(message)[0]] == ["1 saat ertele", "Yeniden kur", "Sil"]


async def test_snooze_rearm_and_delete_buttons_change_the_firing_message(bot: Bot) -> None:
    await bot.say(ALLOWED, "/alarm btc > 66000")
    await bot.tick(BTCUSDT="66100")
    [message] = await bot.fired(ALLOWED)
    snooze, rearm, delete = (data for _text, data in buttons(message)[0])
    said = await bot.press(ALLOWED, snooze, message.message_id)
    assert said.startswith("Alarm #1 snoozed until ")
    edit = await bot.edited(ALLOWED, message.message_id)
    assert "snoozed until" in edit.plain
    assert len(buttons(edit)[0]) == 3  # the buttons stay
    (listed,) = await bot.harness.ask(ALLOWED, "/alarms")
    assert "#1 BTCUSDT spot price rises to 66,000 or above — fired, re-arms after" in listed.plain
    said = await bot.press(ALLOWED, rearm, message.message_id)
    assert said.startswith("Alarm #1 re-armed")
    assert "re-armed" in (await bot.edited(ALLOWED, message.message_id, count=2)).plain
    said = await bot.press(ALLOWED, delete, message.message_id)
    assert said == "Alarm #1 deleted."
    edit = await bot.edited(ALLOWED, message.message_id, count=3)
    assert edit.plain.endswith("Alarm #1 deleted.")
    assert buttons(edit) == []
    said = await bot.press(ALLOWED, snooze, message.message_id)  # an old button
    assert said == "Alarm #1 no longer exists."


async def test_the_alarm_list_pages_and_pauses_resumes_and_deletes(bot: Bot) -> None:
    for level in range(70_000, 82_000, 1_000):
        await bot.say(ALLOWED, f"/alarm btc > {level}")
    listed = await bot.say(ALLOWED, "/alarms")
    assert listed.plain.startswith("Alarms of this chat (1 to 10 of 12):")
    rows = buttons(listed)
    assert len(rows) == 11
    assert [text for text, _ in rows[-1]] == ["More »"]
    await bot.press(ALLOWED, rows[-1][0][1], listed.message_id)
    page = await bot.edited(ALLOWED, listed.message_id)
    assert page.plain.startswith("Alarms of this chat (11 to 12 of 12):")
    assert "#11 BTCUSDT spot price rises to 80,000 or above — armed" in page.plain
    (pause, _drop), *_rest, back = buttons(page)
    assert pause[0] == "#11 Pause"
    assert [text for text, _ in back] == ["« Back"]
    assert await bot.press(ALLOWED, pause[1], listed.message_id) == "Alarm #11 paused."
    page = await bot.edited(ALLOWED, listed.message_id, count=2)
    assert "#11 BTCUSDT spot price rises to 80,000 or above — paused" in page.plain
    resume = buttons(page)[0][0]
    assert resume[0] == "#11 Resume"
    assert await bot.press(ALLOWED, resume[1], listed.message_id) == "Alarm #11 armed again."
    page = await bot.edited(ALLOWED, listed.message_id, count=3)
    assert "80,000 or above — armed" in page.plain
    drop = buttons(page)[0][1]
    assert await bot.press(ALLOWED, drop[1], listed.message_id) == "Alarm #11 deleted."
    page = await bot.edited(ALLOWED, listed.message_id, count=4)
    assert page.plain.startswith("Alarms of this chat (11 to 11 of 11):")


async def test_delalarm_deletes_one_or_all_after_a_confirmation(bot: Bot) -> None:
    await bot.say(ALLOWED, "/alarm btc > 70000")
    await bot.say(ALLOWED, "/alarm eth < 3000")
    assert (await bot.say(ALLOWED, "/delalarm 1")).plain == "Alarm #1 deleted."
    assert (await bot.say(ALLOWED, "/delalarm 1")).plain == "There is no alarm #1 in this chat."
    ask = await bot.say(ALLOWED, "/delalarm all")
    assert ask.plain == "Delete all 1 alarms of this chat?"
    [[(yes, all_data), (_no, _keep)]] = buttons(ask)
    assert yes == "Delete all 1"
    assert await bot.press(ALLOWED, all_data, ask.message_id) == "Deleted 1 alarms."
    assert (await bot.say(ALLOWED, "/alarms")).plain.startswith("This chat has no alarms.")


# --- refusals -------------------------------------------------------------------------------


async def test_bad_input_gets_a_specific_answer_and_stores_nothing(bot: Bot) -> None:
    assert (await bot.say(ALLOWED, "/alarm")).plain.startswith("Usage: /alarm SYMBOL CONDITION")
    answers = {
        "/alarm btc > lots": "“lots” is not a price level",
        "/alarm btcusdx > 70000": "BTCUSDX is not traded on Binance spot. Did you mean BTCUSDT",
        "/alarm btc > 60000": "that is already true (now 65,000), so it would fire at once",
        "/alarm btc +0% 1h": "out of range: a percent must be above 0",
        "/alarm btc +5% 9d": "is outside 1m to 7d",
        "/alarm btc > 70000 until 2001-01-01": "already past",
        f"/alarm btc > 70000 {'x' * 201}": "The note is 201 characters long; keep it to 200",
        "/delalarm twelve": "Usage: /delalarm 12",
        "/tz Mars/Olympus": "“Mars/Olympus” is no time zone",
    }
    for text, expected in answers.items():
        assert expected in (await bot.say(ALLOWED, text)).plain, text
    turkish = await bot.say(ALLOWED, "/alarm btc > lots", language_code="tr")
    assert "“lots” bir fiyat seviyesi değil" in turkish.plain
    assert (await bot.say(ALLOWED, "/alarms")).plain.startswith("This chat has no alarms.")
    await bot.say(ALLOWED, "/alarm btc > 70000")
    assert "already has alarm #1" in (await bot.say(ALLOWED, "/alarm btcusdt >= 70k")).plain


async def test_a_button_on_another_chats_alarm_is_refused(bot: Bot) -> None:
    await bot.say(ALLOWED, "/alarm btc > 70000")
    listed = await bot.say(STRANGER, "/alarms")
    said = await bot.press(STRANGER, "al:drop:1:0", listed.message_id)
    assert said == "Alarm #1 is not this chat's."
    assert "#1 BTCUSDT" in (await bot.say(ALLOWED, "/alarms")).plain


# --- groups, blocking, zones ----------------------------------------------------------------


async def test_in_a_group_only_the_creator_or_an_administrator_may_delete(bot: Bot) -> None:
    telegram = bot.telegram
    telegram.add_chat(GROUP, "group").admins.add(ADMIN_OF_GROUP)

    async def say(user_id: int, text: str) -> str:
        before = len(telegram.sent_to(GROUP))
        telegram.inject_message(GROUP, text, user_id=user_id)
        sent = await telegram.wait_for_sent(
            lambda m: m.chat_id == GROUP, count=before + 1, timeout=WAIT_S
        )
        return sent[-1].plain

    assert (await say(CREATOR, "/alarm btc > 70000")).startswith("Alarm #1 is set")
    assert (await say(CREATOR, "/alarm btc > 71000")).startswith("Alarm #2 is set")
    refused = await say(MEMBER, "/delalarm 1")
    assert refused == "Only its creator or a group administrator may change alarm #1."
    assert await say(CREATOR, "/delalarm 1") == "Alarm #1 deleted."
    assert await say(MEMBER, "/delalarm all") == (
        "Only a group administrator may delete all its alarms."
    )
    assert await say(ADMIN_OF_GROUP, "/delalarm 2") == "Alarm #2 deleted."


async def test_a_chat_that_blocks_the_bot_has_its_alarms_paused_until_start(bot: Bot) -> None:
    await bot.say(ALLOWED, "/alarm btc > 70000")
    user = {"id": ALLOWED, "is_bot": False, "first_name": "Test"}
    me = {"id": 42, "is_bot": True, "first_name": "Bot"}
    bot.telegram.inject_update(
        {
            "my_chat_member": {
                "chat": {"id": ALLOWED, "type": "private", "first_name": "Test"},
                "from": user,
                "date": 0,
                "old_chat_member": {"status": "member", "user": me},
                "new_chat_member": {"status": "kicked", "user": me, "until_date": 0},
            }
        }
    )
    # A chat's updates are handled in order: /alarms comes after the block.
    assert "— paused" in (await bot.say(ALLOWED, "/alarms")).plain
    await bot.harness.ask(ALLOWED, "/start")
    assert "— armed" in (await bot.say(ALLOWED, "/alarms")).plain


async def test_times_follow_the_chats_zone_and_history_lists_firings(bot: Bot) -> None:
    assert (await bot.say(ALLOWED, "/tz")).plain.startswith("Alarm times are shown in UTC")
    set_tz = await bot.say(ALLOWED, "/tz Europe/Istanbul")
    assert set_tz.plain.startswith("Alarm times are now shown in Europe/Istanbul")
    assert (await bot.say(ALLOWED, "/history")).plain == "No alarm has fired in this chat yet."
    await bot.say(ALLOWED, "/alarm btc > 66000")
    await bot.tick(BTCUSDT="66100")
    [message] = await bot.fired(ALLOWED)
    assert re.search(
        r"Touched 66,100 at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d Europe/Istanbul", message.plain
    )
    history = await bot.say(ALLOWED, "/history")
    assert history.plain.startswith("Last firings in this chat:")
    assert "#1 BTCUSDT spot price rises to 66,000 or above: touched 66,100" in history.plain


# --- random input ---------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        *("btc", "ETHUSDT", "eth/btc", "sol", "xyz", "bt", ">", "<", ">=", "above", "below"),
        *("cross", "cross up", "cross down", "+5%", "-3%", "±2%", "+0%", "24h", "1h", "15m"),
        *("7d", "70000", "70k", "1.2m", "0", "-5", "futures", "spot", "repeat", "repeat 30m"),
        *("for 7d", "for 0m", "until 2030-01-31", "until 2001-01-01", "now", "note:"),
        *("take profit", "“quoted”", "<b>", "&amp;", "\n", "🚀"),
    ]
)
_OPTIONS = st.lists(
    st.sampled_from(["futures", "repeat", "repeat 30m", "for 7d", "until 2030-01-31", "now"]),
    unique_by=lambda option: option.split()[0],
    max_size=3,
).map(" ".join)
_VALID = st.tuples(
    st.sampled_from(["btc", "ETHUSDT", "sol/usdt"]),
    st.one_of(
        st.tuples(
            st.sampled_from([">", "<", "cross", "cross up", "cross down"]),
            st.decimals(min_value="0.01", max_value=10**6, places=2, allow_nan=False),
        ).map(lambda c: f"{c[0]} {c[1]}"),
        st.tuples(
            st.sampled_from(["+", "-", "±"]),
            st.integers(1, 90),
            st.sampled_from(["1m", "15m", "4h", "7d"]),
        ).map(lambda c: f"{c[0]}{c[1]}% {c[2]}"),
        st.integers(11, 500).map(lambda p: f"24h +{p}%"),
    ),
    _OPTIONS,
    st.sampled_from(["", "take profit", "note: now what", "<b>bold</b> & co"]),
).map(lambda t: " ".join(part for part in t if part))
_TEXT = st.one_of(st.text(max_size=80), st.lists(_WORDS, max_size=8).map(" ".join), _VALID)


async def test_random_alarm_text_never_breaks_the_bot_nor_stores_what_does_not_parse_back(
    bot: Bot,
) -> None:
    loop = asyncio.get_running_loop()
    sorry = "Sorry, something went wrong"

    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(text=_TEXT)
    def ask(text: str) -> None:
        coro = bot.harness.ask(ALLOWED, f"/alarm {text}")
        [reply] = asyncio.run_coroutine_threadsafe(coro, loop).result(WAIT_S * 2)
        assert sorry not in reply.plain, text

    await asyncio.to_thread(ask)
    store = bot.harness.app.alarms.store
    alarms = await store.chat_alarms(ALLOWED, offset=0, limit=1000)
    for alarm in alarms:
        text = render(alarm.spec)
        assert parse_alarm(text, now=alarm.created_at) == alarm.spec, text
