"""The bot on a Redis Cluster with one replica per master, over the wire (the fake exchange's
streams and REST -> the bot -> the fake Bot API), while each master in turn is SIGKILLed
mid-run: prices cross alarms and commands arrive during every failover. Nothing is lost or
doubled once the replicas are promoted, and the weight limiter never earns a 429 or a 418.

Every master is killed (one after the other, each once its replica has taken over), so each
store — limiter, cache, outbox, intake, alarms, whichever master its slot is on — goes
through one failover. The pause is measured from the kill to the answer of the command sent
right after it, and printed.

And on one Redis: a command whose handler meets Redis gone (killed while the handler waited
for Binance) is tried again and answered once Redis is back, not apologised for."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Final

from tests.bot.conftest import ALLOWED, running
from tests.bot.test_alarm_wire import fired_alarms, started
from tests.bot.test_alarms import SENTINEL

if TYPE_CHECKING:
    import io
    from collections.abc import Callable

    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_ws import FakeBinanceWS
    from tests.redis_cluster import LocalCluster
    from utils.config import Settings

#: A failover takes the node timeout (1 s) plus an election; this is a safety net only.
FAILOVER_S: Final = 60.0
_SET: Final = re.compile(r"^Alarm #(\d+) is set", re.MULTILINE)


async def test_each_master_killed_in_turn_loses_no_alarm_or_message_and_costs_no_429(
    redis_cluster_replicas: LocalCluster,
    telegram: FakeTelegram,
    binance: FakeBinance,
    alarm_settings: Callable[..., Settings],
    streams: tuple[FakeBinanceWS, FakeBinanceWS],
) -> None:
    cluster = redis_cluster_replicas
    telegram.add_chat(SENTINEL)
    settings = alarm_settings(redis_url=cluster.url, alarm_overrides={"lease_s": 1.0})
    pauses: list[float] = []
    async with running(settings) as app:
        bot = await started(app, telegram, binance, streams[0])
        spot = bot.spot
        for level in (66000, 67000, 68000):  # #1, #2, #3: one crossed in each failover
            await bot.say(ALLOWED, f"/alarm btc > {level}")
        await bot.say(ALLOWED, "/alarm btc > 90000 set just before")  # #4: the last write
        await spot.wait_for_subscribed("btcusdt@kline_1m")

        for turn, victim in enumerate(cluster.masters()):
            began = time.monotonic()
            victim.kill()
            await bot.tick(BTCUSDT=str(66100 + turn * 1000))  # crosses #1, then #2, then #3
            telegram.inject_message(ALLOWED, "/price btc")  # through the limiter and cache
            telegram.inject_message(ALLOWED, f"/alarm sol < {100 - turn} failover {turn}")
            await telegram.wait_for_sent(
                lambda m, n=5 + turn: m.chat_id == ALLOWED and m.plain.startswith(f"Alarm #{n} "),
                timeout=FAILOVER_S,
            )
            pauses.append(time.monotonic() - began)
            await telegram.wait_for_sent(
                lambda m, n=turn + 1: m.chat_id == ALLOWED and f"🔔 Alarm #{n}" in m.plain,
                timeout=FAILOVER_S,
            )
            await telegram.wait_for_sent(
                lambda m: m.chat_id == ALLOWED and _is_price(m.plain),
                count=turn + 1,
                timeout=FAILOVER_S,
            )
            await asyncio.to_thread(cluster.wait_healthy, replicas=False)

        await bot.frame(BTCUSDT="68200")  # handled after everything before it: nothing more
        listed = (await bot.say(ALLOWED, "/alarms")).plain
    print(f"failover pauses, kill -> next answer: {[round(p, 2) for p in pauses]} s")  # noqa: T201
    assert sorted(fired_alarms(bot, ALLOWED)) == [1, 2, 3]  # each crossed alarm once
    answers = [m.plain for m in telegram.sent_to(ALLOWED) if not m.plain.startswith("🔔")]
    confirmed = [int(n) for a in answers for n in _SET.findall(a)]
    assert confirmed == [1, 2, 3, 4, 5, 6, 7]  # every command answered once, none lost
    assert not [a for a in answers if "Sorry" in a or "already has" in a]
    assert "#4 BTCUSDT spot price rises to 90,000 or above — armed · set just before" in listed
    for turn, number in enumerate((5, 6, 7)):
        assert f"#{number} SOLUSDT spot price falls to {100 - turn}" in listed
    assert len([a for a in answers if _is_price(a)]) == 3  # one /price answer a failover
    assert binance.count(status=429) == 0
    assert binance.count(status=418) == 0


def _is_price(text: str) -> bool:
    return "BTCUSDT" in text and "Alarm" not in text


async def test_a_command_meeting_redis_gone_mid_handler_is_answered_once_redis_is_back(
    redis_server: RedisServer,
    telegram: FakeTelegram,
    binance: FakeBinance,
    alarm_settings: Callable[..., Settings],
    streams: tuple[FakeBinanceWS, FakeBinanceWS],
    log_to: Callable[..., io.StringIO],
) -> None:
    log = log_to()
    redis_server.appendonly = True  # as docker-compose runs it: what was stored survives
    await redis_server.restart()
    settings = alarm_settings(redis_url=redis_server.url)
    async with running(settings) as app:
        bot = await started(app, telegram, binance, streams[0])
        await bot.say(ALLOWED, "/alarm btc > 66000")  # exchangeInfo known from here on
        binance.hold_until(binance.now() + 1.0, key="GET /api/v3/ticker/24hr")
        telegram.inject_message(ALLOWED, "/alarm eth > 9000")  # stored, then handled:
        await asyncio.wait_for(binance.hold_reached.wait(), FAILOVER_S)  # waiting for a price
        await redis_server.kill()  # the handler stores the alarm next: Redis is gone
        async with asyncio.timeout(FAILOVER_S):
            while "update_retry" not in log.getvalue():  # noqa: ASYNC110 - a log line, no event
                await asyncio.sleep(0.05)  # it met Redis gone, and waits
        await redis_server.start()
        await telegram.wait_for_sent(
            lambda m: m.chat_id == ALLOWED and m.plain.startswith("Alarm #2 is set"),
            timeout=FAILOVER_S,
        )
    answers = [m.plain for m in telegram.sent_to(ALLOWED)]
    assert [a for a in answers if a.startswith("Alarm #")][1:] == [answers[-1]]  # once
    assert not [a for a in answers if "Sorry" in a]
