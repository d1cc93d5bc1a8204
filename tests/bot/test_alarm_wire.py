"""Alarms against what goes wrong around them, over the wire (the fake exchange's streams and
REST -> the bot -> the fake Bot API; real SQLite and Redis): a chat that blocked the bot,
found out by the 403 "Forbidden: bot was blocked by the user" its firing meets, has its
alarms paused at once, nothing deleted and nothing more sent to it until ``/start`` gives
them back; Redis killed and restarted while prices cross alarms and commands come in loses
nothing and fires each alarm once.

"Nothing else fired" is proved as in ``test_alarms``: a later frame fires a sentinel alarm in
another chat, and the bot handles a frame's rows and delivers their firings in order."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Final

from tests.bot.conftest import ALLOWED, Harness, running
from tests.bot.test_alarms import SENTINEL, WAIT_S, Bot, buttons

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.app import BotApp
    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import Call
    from tests.fakes.fake_ws import FakeBinanceWS
    from utils.config import Settings

_ALARM_NUMBERS: Final = re.compile(r"🔔 Alarm #(\d+)")


async def started(
    app: BotApp, telegram: FakeTelegram, binance: FakeBinance, spot: FakeBinanceWS
) -> Bot:
    await asyncio.wait_for(app.alarms.led.wait(), WAIT_S)
    return Bot(Harness(telegram, binance, app), spot)


def sends_to(telegram: FakeTelegram, chat_id: int) -> list[Call]:
    """Every sendMessage the bot attempted to ``chat_id``, refused ones included."""
    return [c for c in telegram.calls_of("sendMessage") if c.params.get("chat_id") == str(chat_id)]


def fired_alarms(bot: Bot, chat_id: int) -> list[int]:
    """The alarm numbers in the firing messages the chat received, in order."""
    return [int(n) for m in bot.firings(chat_id) for n in _ALARM_NUMBERS.findall(m.plain)]


# --- a chat that blocked the bot ------------------------------------------------------------


async def test_a_403_on_a_firing_pauses_the_chats_alarms_until_start_and_sends_nothing_more(
    outbox_backend: str | None,
    telegram: FakeTelegram,
    binance: FakeBinance,
    alarm_settings: Callable[..., Settings],
    streams: tuple[FakeBinanceWS, FakeBinanceWS],
) -> None:
    telegram.add_chat(SENTINEL)
    async with running(alarm_settings(redis_url=outbox_backend)) as app:
        bot = await started(app, telegram, binance, streams[0])
        await bot.say(ALLOWED, "/alarm btc > 66000")
        await bot.say(ALLOWED, "/alarm btc > 67000 second")
        await bot.say(ALLOWED, "/alarm btc < 60000 third")
        await bot.spot.wait_for_subscribed("btcusdt@kline_1m")
        telegram.block(ALLOWED)  # no my_chat_member update: the 403 is how the bot learns it
        attempts = len(sends_to(telegram, ALLOWED))

        await bot.tick(BTCUSDT="66100")  # alarm #1 fires into the blocked chat
        await app.notifier.wait_until(lambda: app.notifier.counters["chat_blocked"] >= 1, WAIT_S)
        await bot.frame(BTCUSDT="67100")  # crosses #2 while the chat is away
        await bot.frame(BTCUSDT="66500")
        [refused] = sends_to(telegram, ALLOWED)[attempts:]  # one attempt, no more
        assert refused.status == 403
        assert bot.firings(ALLOWED) == []

        telegram.unblock(ALLOWED)  # the user is back, and looks first
        listed = (await bot.say(ALLOWED, "/alarms")).plain
        assert "#1 BTCUSDT spot price rises to 66,000 or above — fired" in listed
        assert "#2 BTCUSDT spot price rises to 67,000 or above — paused · second" in listed
        assert "#3 BTCUSDT spot price falls to 60,000 or below — paused · third" in listed

        answers = await bot.harness.ask(ALLOWED, "/start", replies=2)
        assert any(m.plain.startswith("Hello!") for m in answers)
        [late] = bot.firings(ALLOWED)  # the other: the refused firing, which waited for them
        assert late.plain.startswith("🔔 Alarm #1: BTCUSDT spot price rises to 66,000 or above")
        assert [text for text, _ in buttons(late)[0]] == ["Snooze 1 h", "Re-arm", "Delete"]
        listed = (await bot.say(ALLOWED, "/alarms")).plain
        assert "#2 BTCUSDT spot price rises to 67,000 or above — armed" in listed
        assert "#3 BTCUSDT spot price falls to 60,000 or below — armed" in listed
        await bot.frame(BTCUSDT="67200")  # the next crossing
        await bot.fired(ALLOWED, count=2)
    assert fired_alarms(bot, ALLOWED) == [1, 2]


# --- Redis killed mid-run -------------------------------------------------------------------


async def test_redis_killed_and_restarted_mid_run_loses_no_alarm_and_fires_each_once(
    redis_server: RedisServer,
    telegram: FakeTelegram,
    binance: FakeBinance,
    alarm_settings: Callable[..., Settings],
    streams: tuple[FakeBinanceWS, FakeBinanceWS],
) -> None:
    redis_server.appendonly = True  # as docker-compose runs it: AOF, fsync before each reply
    await redis_server.restart()
    telegram.add_chat(SENTINEL)
    settings = alarm_settings(redis_url=redis_server.url, alarm_overrides={"lease_s": 1.0})
    async with running(settings) as app:
        bot = await started(app, telegram, binance, streams[0])
        spot = bot.spot
        await bot.say(ALLOWED, "/alarm btc > 66000")
        await bot.say(ALLOWED, "/alarm btc > 67000")
        await bot.say(ALLOWED, "/alarm sol < 140")
        await spot.wait_for_subscribed("solusdt@kline_1m")
        await bot.say(ALLOWED, "/alarm btc > 68000 set just before")  # the last write
        await spot.wait_for_subscribed("btcusdt@kline_1m")

        await redis_server.kill()
        await bot.tick(BTCUSDT="67100")  # #1 and #2 fire; their delivery waits for Redis
        # The lease cannot be renewed: the engine steps down and closes its streams.
        await spot.wait_until(lambda: not spot.open_connections, timeout_s=WAIT_S)
        binance.set_price("SOLUSDT", "139")  # #3 is touched while no one listens: only the
        binance.set_price("SOLUSDT", "145")  # klines will tell
        telegram.inject_message(ALLOWED, "/alarm btc < 60000 sent while away")
        await redis_server.start()

        await telegram.wait_for_sent(
            lambda m: m.chat_id == ALLOWED and m.plain.startswith("Alarm #5 is set"),
            timeout=WAIT_S * 3,
        )
        await telegram.wait_for_sent(
            lambda m: m.chat_id == ALLOWED and "🔔 Alarm #3" in m.plain, timeout=WAIT_S * 3
        )
        await bot.frame(BTCUSDT="68100")  # #4, set just before the kill, is there to cross
        await bot.frame(BTCUSDT="68200")  # and nothing fires twice
        listed = (await bot.say(ALLOWED, "/alarms")).plain
    assert sorted(fired_alarms(bot, ALLOWED)) == [1, 2, 3, 4]
    answers = [m.plain for m in telegram.sent_to(ALLOWED) if not m.plain.startswith("🔔")]
    confirmed = [int(n) for a in answers for n in re.findall(r"^Alarm #(\d+) is set", a)]
    assert confirmed == [1, 2, 3, 4, 5]  # each command answered once, none lost
    assert not [a for a in answers if "Sorry" in a or "already has" in a]
    assert "#4 BTCUSDT spot price rises to 68,000 or above — fired · set just before" in listed
    assert "#5 BTCUSDT spot price falls to 60,000 or below — armed · sent while away" in listed
