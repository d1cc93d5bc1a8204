"""Many processes, one bot, over the wire: real ``python -m bot`` processes sharing one real
Redis, the fake Bot API and the fake exchange. Three webhook workers fed round-robin, each
update delivered twice (to two workers at once, and again later), answer every update once and
every chat in order, with one alarm engine and one delivery leader among them; two polling
processes on one token elect one poller, and when it is SIGKILLed mid-command the standby
takes over within ``TELEGRAM_POLL_LEASE_S`` (the measured takeover is printed), with no 409
and every update answered once, in order."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from tests.bot.test_intake_process import bot_env, bot_process, http_url, intake_emptied, stop

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

WAIT_S: Final = 30.0  # upper bound on a process starting or an answer arriving
HELP: Final = "I show Binance prices"
#: Each Binance answer while commands flow: a /price takes at least this, a /help nothing, so
#: a chat's /help handled beside its /price (not after it) is answered first.
SLOW_BINANCE_S: Final = 1.0
#: Chats and the symbol each asks for: one symbol per chat, so that no /price is a cache hit.
CHATS: Final = {3400: "BTCUSDT", 3401: "ETHUSDT", 3402: "BNBUSDT", 3403: "SOLUSDT"}
#: The updates in the order Telegram sends them: each chat's /price, then its /help, with the
#: chats interleaved.
SCRIPT: Final = (
    (3400, 0),
    (3401, 0),
    (3400, 1),
    (3402, 0),
    (3401, 1),
    (3403, 0),
    (3402, 1),
    (3403, 1),
)
POLL_LEASE_S: Final = 2.0  # TELEGRAM_POLL_LEASE_S of the polling processes
#: Safety net on the measured takeover: the claim is POLL_LEASE_S; a loaded machine adds to it.
TAKEOVER_MARGIN_S: Final = 10.0
SECRET: Final = "s3cret-Token_1"


async def test_three_webhook_workers_answer_each_update_once_and_each_chat_in_order(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path, redis_server: RedisServer
) -> None:
    webhook = {"WEBHOOK_URL": "https://bot.example.org/telegram/webhook", "WEBHOOK_SECRET": SECRET}
    env = workers_env(telegram, binance, tmp_path, redis_server.url, **webhook)
    dirs = worker_dirs(tmp_path, 3)
    async with (
        bot_process(env, dirs[0]),
        bot_process(env, dirs[1]),
        bot_process(env, dirs[2]),
        aiohttp.ClientSession() as http,
    ):
        await telegram.wait_for_call("setWebhook", count=3, timeout=WAIT_S)  # all three up
        workers = [f"{http_url(d / 'bot.log')}/telegram/webhook" for d in dirs]
        binance.latency_s = SLOW_BINANCE_S
        updates = [command(telegram, chat, step) for chat, step in SCRIPT]
        for k, update in enumerate(updates):  # round-robin; each to two workers at once
            pair = (workers[k % 3], workers[(k + 1) % 3])
            assert await asyncio.gather(*(post(http, url, update) for url in pair)) == [200, 200]
        await telegram.wait_for_sent(lambda m: m.chat_id in CHATS, count=8, timeout=WAIT_S)
        for d in dirs:
            await intake_emptied(d / "bot.log")  # every update handled to the end
        for k, update in enumerate(updates):  # Telegram delivers every update once more
            assert await post(http, workers[(k + 2) % 3], update) == 200
        for d in dirs:
            await intake_emptied(d / "bot.log")
        leaders = [await gauges(http, http_url(d / "bot.log")) for d in dirs]
    for chat in CHATS:  # each update answered once, the /price first as it came first
        assert answers(telegram, chat) == ["price", "help"], telegram.sent_to(chat)
    assert sum(g["bot_updates_repeated_total"] for g in leaders) == 8 + 8
    assert [g["bot_poller_leading"] for g in leaders] == [0, 0, 0]  # webhooks: nobody polls
    assert sum(g["bot_alarm_engine_leading"] for g in leaders) == 1
    assert sum(g["bot_delivery_leading"] for g in leaders) == 1


async def test_two_pollers_on_one_token_poll_one_at_a_time_and_the_standby_takes_over(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path, redis_server: RedisServer
) -> None:
    env = workers_env(
        telegram, binance, tmp_path, redis_server.url, TELEGRAM_POLL_LEASE_S=str(POLL_LEASE_S)
    )
    dirs = worker_dirs(tmp_path, 2)
    async with (
        bot_process(env, dirs[0]) as first,
        bot_process(env, dirs[1]) as second,
        aiohttp.ClientSession() as http,
    ):
        procs = {dirs[0]: first, dirs[1]: second}
        bases = [await started(d / "bot.log") for d in dirs]
        leading = await until_gauges(http, bases, lambda g: g["bot_poller_leading"] == 1)
        poller, standby = (0, 1) if leading[0]["bot_poller_leading"] else (1, 0)
        await logged(dirs[standby] / "bot.log", "poller_standby")
        polls = len(telegram.calls_of("getUpdates"))
        await telegram.wait_for_call("getUpdates", count=polls + 2, timeout=WAIT_S)
        assert (await gauges(http, bases[standby]))["bot_poller_leading"] == 0

        binance.latency_s = SLOW_BINANCE_S
        asked = binance.count()
        prices = [command(telegram, chat, 0) for chat in CHATS]
        await confirmed(telegram, prices[-1]["update_id"])  # every /price stored
        await binance.wait_for_requests(asked + len(CHATS), timeout=WAIT_S)  # handlers waiting
        victim = procs[dirs[poller]]
        victim.kill()
        killed_at = time.monotonic()
        await victim.wait()
        for chat in CHATS:  # updates keep coming while nobody polls
            command(telegram, chat, 1)
        takeover = await telegram.wait_for_call(
            "getUpdates", count=len(telegram.calls_of("getUpdates")) + 1, timeout=WAIT_S
        )
        takeover_s = takeover.t - killed_at
        print(f"standby took over polling {takeover_s:.2f} s after the SIGKILL")  # noqa: T201
        await telegram.wait_for_sent(lambda m: m.chat_id in CHATS, count=8, timeout=WAIT_S)
        await intake_emptied(dirs[standby] / "bot.log")
        assert (await gauges(http, bases[standby]))["bot_poller_leading"] == 1
        await stop(procs[dirs[standby]])
    assert takeover_s < POLL_LEASE_S + TAKEOVER_MARGIN_S
    for chat in CHATS:  # each answered once, in order, none lost with the poller
        assert answers(telegram, chat) == ["price", "help"], telegram.sent_to(chat)
    conflicts = [c for c in telegram.calls_of("getUpdates") if c.status == 409]
    assert conflicts == []  # never two polls at once
    standby_log = (dirs[standby] / "bot.log").read_text()
    assert standby_log.count('"event":"poller_leading"') == 1  # only after the kill
    assert '"event":"intake_recovered"' in standby_log  # the poller's unfinished /prices


def workers_env(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path, redis_url: str, **more: str
) -> dict[str, str]:
    env = bot_env(telegram, binance, tmp_path, redis_url, **more)
    env["ALLOWED_USER_IDS"] = ",".join(str(chat) for chat in CHATS)
    return env


def worker_dirs(tmp_path: Path, count: int) -> list[Path]:
    dirs = [tmp_path / f"worker{i}" for i in range(count)]
    for d in dirs:
        d.mkdir()
    return dirs


def command(telegram: FakeTelegram, chat: int, step: int) -> dict[str, Any]:
    """The chat's ``step``-th command (0: /price of its symbol, 1: /help), as Telegram has it."""
    text = f"/price {CHATS[chat].removesuffix('USDT').lower()}" if step == 0 else "/help"
    return telegram.inject_message(chat, text)


def answers(telegram: FakeTelegram, chat: int) -> list[str]:
    """What the chat was sent, in order: "price" (a table of its symbol), "help" or "other"."""
    return [
        "help" if HELP in m.text else "price" if CHATS[chat] in m.text else "other"
        for m in telegram.sent_to(chat)
    ]


async def post(http: aiohttp.ClientSession, url: str, update: dict[str, Any]) -> int:
    """Telegram's webhook POST of ``update``; the status it got."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with http.post(url, json=update, headers=headers) as response:
        return response.status


async def confirmed(telegram: FakeTelegram, update_id: int) -> None:
    """Once a getUpdates confirms ``update_id`` (its offset is past it): the bot stored it."""
    count = 1
    while True:
        call = await telegram.wait_for_call("getUpdates", count=count, timeout=WAIT_S)
        if int(call.params.get("offset", 0)) > update_id:
            return
        count += 1


async def gauges(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The unlabelled lines of a process's /metrics, by name."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    return {
        name: float(value)
        for name, value in (
            line.split()
            for line in text.splitlines()
            if line and line[0] != "#" and "{" not in line
        )
    }


async def until_gauges(
    http: aiohttp.ClientSession, bases: list[str], ready: Callable[[dict[str, float]], bool]
) -> list[dict[str, float]]:
    """Every process's gauges, once ``ready`` holds for one of them."""
    async with asyncio.timeout(WAIT_S):
        while True:
            found = [await gauges(http, base) for base in bases]
            if sum(1 for g in found if ready(g)) == 1:
                return found
            await asyncio.sleep(0.05)  # nothing to await across processes but asking again


async def logged(log: Path, event: str) -> None:
    """Once the process logging to ``log`` has logged ``event``."""
    async with asyncio.timeout(WAIT_S):
        while not has_logged(log, event):  # noqa: ASYNC110 - a file: nothing else to await
            await asyncio.sleep(0.05)


def has_logged(log: Path, event: str) -> bool:
    return log.exists() and f'"event":"{event}"' in log.read_text()


async def started(log: Path) -> str:
    """The HTTP server of the process logging to ``log``, once it has started."""
    await logged(log, "bot_started")
    return http_url(log)
