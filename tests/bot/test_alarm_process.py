"""Alarms survive a killed process, with ``python -m bot`` as real processes: killed between
the firing and its delivery, or between the delivery and its record, the firing arrives once
after a restart (SQLite and Redis); with Redis, when the process holding the alarm engine's
lease is killed, another takes over and nothing fires twice.

To hold a process in the window to be tested, the test blocks one store with a lock of its
own: an exclusive SQLite transaction on the outbox (or on the alarms file), or Redis paused
for writes; the bot logs ``alarm_firing`` once it has the firing in hand."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import TYPE_CHECKING, Final

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.bot.conftest import ALLOWED
from tests.bot.test_intake_process import bot_env, bot_process, http_url, kill, stop
from tests.fakes import fake_ws_wire as wire
from tests.fakes.fake_ws import FakeBinanceWS
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage

WAIT_S: Final = 30.0
SECRET: Final = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}


@pytest.fixture
async def spot(binance: FakeBinance) -> AsyncIterator[FakeBinanceWS]:
    async with FakeBinanceWS(Market.SPOT, candles=binance.market.candles, kline_update_s=0.2) as s:
        yield s


def alarm_env(
    telegram: FakeTelegram,
    binance: FakeBinance,
    spot: FakeBinanceWS,
    tmp_path: Path,
    redis_url: str | None,
    **more: str,
) -> dict[str, str]:
    return bot_env(
        telegram,
        binance,
        tmp_path,
        redis_url,
        BINANCE_WS_URL=spot.url,
        BINANCE_FUTURES_WS_URL="ws://127.0.0.1:9",  # no futures alarms here
        BINANCE_WS_BACKOFF_BASE_S="0.05",
        BINANCE_WS_BACKOFF_MAX_S="0.2",
        ALARM_STORE_PATH=str(tmp_path / "data" / "alarms.sqlite3"),
        ALARM_LEASE_S="1",
        TELEGRAM_DELIVERY_LEASE_S="1",
        TELEGRAM_THROTTLE_RATE="100",
        TELEGRAM_THROTTLE_BURST="100",
        **more,
    )


async def logged(log: Path, event: str, count: int = 1) -> None:
    """Once ``log`` holds ``count`` lines of ``event``."""
    async with asyncio.timeout(WAIT_S):
        while True:
            text = await asyncio.to_thread(log.read_text)
            if text.count(f'"event":"{event}"') >= count:
                return
            await asyncio.sleep(0.05)  # nothing to await across processes but reading again


async def delivered(log: Path, count: int) -> None:
    """Once the bot logging to ``log`` has had ``count`` messages of its outbox accepted."""
    line = f'bot_delivery_total{{outcome="sent"}} {count}\n'
    async with aiohttp.ClientSession() as http, asyncio.timeout(WAIT_S):
        while True:
            async with http.get(f"{http_url(log)}/metrics") as response:
                if line in await response.text():
                    return
            await asyncio.sleep(0.05)  # nothing to await across processes but asking again


async def ask(telegram: FakeTelegram, text: str) -> SentMessage:
    before = len(telegram.sent_to(ALLOWED))
    telegram.inject_message(ALLOWED, text)
    sent = await telegram.wait_for_sent(
        lambda m: m.chat_id == ALLOWED, count=before + 1, timeout=WAIT_S
    )
    return sent[-1]


async def tick(binance: FakeBinance, spot: FakeBinanceWS, **prices: str) -> None:
    for symbol, price in prices.items():
        binance.set_price(symbol, price)
    await spot.push("!miniTicker@arr", wire.mini_ticker_array(prices))


def firings(telegram: FakeTelegram) -> list[str]:
    return [m.plain for m in telegram.sent_to(ALLOWED) if m.plain.startswith("🔔")]


async def fired(telegram: FakeTelegram, count: int) -> None:
    await telegram.wait_for_sent(
        lambda m: m.chat_id == ALLOWED and m.plain.startswith("🔔"), count=count, timeout=WAIT_S
    )


async def listening(spot: FakeBinanceWS, stream: str, since: int = 0) -> None:
    """Once a connection opened after the ``since``-th is subscribed to ``stream``."""
    await spot.wait_until(
        lambda: any(c.open and stream in c.streams for c in spot.connections[since:]),
        timeout_s=WAIT_S,
    )


@contextlib.contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    """No one else writes ``path`` while this holds its write lock (readers still read)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=WAIT_S)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("ROLLBACK")
    finally:
        db.close()


@contextlib.asynccontextmanager
async def redis_paused(url: str) -> AsyncIterator[None]:
    """Redis refuses nobody but makes every write wait."""
    redis = Redis.from_url(url)
    try:
        await redis.execute_command("CLIENT", "PAUSE", int(WAIT_S * 1000), "WRITE")
        yield
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
        await redis.aclose()


@contextlib.asynccontextmanager
async def outbox_blocked(redis_url: str | None, tmp_path: Path) -> AsyncIterator[None]:
    if redis_url is None:
        with sqlite_locked(tmp_path / "data" / "outbox.sqlite3"):
            yield
    else:
        async with redis_paused(redis_url):
            yield


async def then_a_sentinel_fires_and_nothing_else(
    telegram: FakeTelegram, binance: FakeBinance, spot: FakeBinanceWS, before: int
) -> None:
    """A later alarm of the same chat fires; messages to a chat leave in order, so a repeat
    of an earlier firing would have come before it."""
    await ask(telegram, "/alarm eth < 3400")
    await listening(spot, "ethusdt@kline_1m")
    await tick(binance, spot, ETHUSDT="3390")
    await fired(telegram, before + 1)


async def test_killed_between_firing_and_delivery_the_firing_arrives_once_after_a_restart(
    outbox_backend: str | None,
    telegram: FakeTelegram,
    binance: FakeBinance,
    spot: FakeBinanceWS,
    tmp_path: Path,
) -> None:
    env = alarm_env(telegram, binance, spot, tmp_path, outbox_backend)
    log = tmp_path / "bot.log"
    async with bot_process(env, tmp_path) as proc:
        assert (await ask(telegram, "/alarm btc > 66000")).plain.startswith("Alarm #1 is set")
        await listening(spot, "btcusdt@kline_1m")
        async with outbox_blocked(outbox_backend, tmp_path):
            await tick(binance, spot, BTCUSDT="66100")
            await logged(log, "alarm_firing")
            await kill(proc)
    assert firings(telegram) == []
    binance.set_price("BTCUSDT", "65000")  # back under the level: only a replay can fire it

    async with bot_process(env, tmp_path) as proc:
        await fired(telegram, 1)
        await then_a_sentinel_fires_and_nothing_else(telegram, binance, spot, 1)
        await stop(proc)
    first, sentinel = firings(telegram)
    assert first.startswith("🔔 Alarm #1: BTCUSDT spot price rises to 66,000 or above")
    assert "Fired late" in first
    assert sentinel.startswith("🔔 Alarm #2: ETHUSDT")


async def test_killed_between_delivery_and_record_the_replayed_firing_is_not_sent_again(
    telegram: FakeTelegram, binance: FakeBinance, spot: FakeBinanceWS, tmp_path: Path
) -> None:
    env = alarm_env(telegram, binance, spot, tmp_path, None)
    async with bot_process(env, tmp_path) as proc:
        await ask(telegram, "/alarm btc > 66000")
        await listening(spot, "btcusdt@kline_1m")
        with sqlite_locked(tmp_path / "data" / "alarms.sqlite3"):  # mark_fired must wait
            await tick(binance, spot, BTCUSDT="66100")
            await fired(telegram, 1)
            await delivered(tmp_path / "bot.log", 1)  # out of the outbox: not sent again
            await kill(proc)
    binance.set_price("BTCUSDT", "65000")

    async with bot_process(env, tmp_path) as proc:
        await then_a_sentinel_fires_and_nothing_else(telegram, binance, spot, 1)
        await stop(proc)
    first, sentinel = firings(telegram)
    assert first.startswith("🔔 Alarm #1")
    assert "Fired late" not in first  # the one live delivery, not its replay
    assert sentinel.startswith("🔔 Alarm #2")
    assert (tmp_path / "bot.log").read_text().count('"event":"alarm_gap_filled"') >= 1


async def test_with_redis_the_lease_holder_killed_another_process_takes_over_firing_once(
    redis_server: RedisServer,
    telegram: FakeTelegram,
    binance: FakeBinance,
    spot: FakeBinanceWS,
    tmp_path: Path,
) -> None:
    url = redis_server.url
    hook = {"WEBHOOK_URL": "https://bot.example.org/hook", "WEBHOOK_SECRET": "s3cret"}
    env = alarm_env(telegram, binance, spot, tmp_path, url, **hook)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()

    async def post(cwd: Path, text: str) -> SentMessage:
        """``text`` from the user, posted to the webhook of the process running in ``cwd``."""
        before = len(telegram.sent_to(ALLOWED))
        update = telegram.inject_message(ALLOWED, text)
        telegram.updates.clear()  # delivered by webhook, not by polling
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{http_url(cwd / 'bot.log')}/telegram/webhook", json=update, headers=SECRET
            ) as r,
        ):
            assert r.status == 200
        sent = await telegram.wait_for_sent(
            lambda m: m.chat_id == ALLOWED, count=before + 1, timeout=WAIT_S
        )
        return sent[-1]

    async with bot_process(env, first_dir) as first:
        await logged(first_dir / "bot.log", "alarm_engine_leading")
        async with bot_process(env, second_dir) as second:
            await logged(second_dir / "bot.log", "bot_started")
            reply = await post(second_dir, "/alarm btc > 66000")  # stored by the follower
            assert reply.plain.startswith("Alarm #1 is set")
            await listening(spot, "btcusdt@kline_1m")  # the leader picked it up
            await tick(binance, spot, BTCUSDT="66100")
            await fired(telegram, 1)
            await delivered(first_dir / "bot.log", 1)  # the outbox's own window is not ours
            connections = len(spot.connections)
            await kill(first)
            await logged(second_dir / "bot.log", "alarm_engine_leading")
            binance.set_price("BTCUSDT", "65000")
            assert (await post(second_dir, "/alarm btc < 64000")).plain.startswith("Alarm #2")
            await listening(spot, "!miniTicker@arr", since=connections)  # the new leader's
            await listening(spot, "btcusdt@kline_1m", since=connections)
            await tick(binance, spot, BTCUSDT="63900")
            await fired(telegram, 2)
            await stop(second)
    first_firing, second_firing = firings(telegram)
    assert first_firing.startswith("🔔 Alarm #1")
    assert second_firing.startswith("🔔 Alarm #2")
