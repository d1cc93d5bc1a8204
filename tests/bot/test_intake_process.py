"""Nothing lost on the way in, with ``python -m bot`` as a real process: a command whose handler
is killed mid-way is answered once after a restart, an update Telegram delivers again after
a crash is handled once (SQLite and Redis), and an idle bot at DEBUG writes (almost) nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Final

import aiohttp
import orjson

from tests.bot.conftest import ALLOWED, TOKEN
from tests.fakes.bot_env import fake_bot_env

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

WAIT_S: Final = 30.0  # upper bound on a process starting, stopping or answering
SLOW_BINANCE_S: Final = 3.0  # each Binance answer, while the handler is to be killed


def bot_env(
    telegram: FakeTelegram,
    binance: FakeBinance,
    tmp_path: Path,
    redis_url: str | None,
    **more: str,
) -> dict[str, str]:
    redis = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": "test"} if redis_url else {}
    return fake_bot_env(
        telegram.url,
        binance.url,
        TOKEN,
        ALLOWED_USER_IDS=str(ALLOWED),
        TELEGRAM_OUTBOX_PATH=str(tmp_path / "data" / "outbox.sqlite3"),
        TELEGRAM_CHAT_INTERVAL_S="0.05",
        TELEGRAM_INTAKE_LEASE_S="1",  # a killed process's updates are adopted 1 s later
        LOG_FORMAT="json",
        **redis,
        **more,
    )


@contextlib.asynccontextmanager
async def bot_process(env: dict[str, str], cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot``, logging to ``cwd/bot.log``; killed at the end if still running."""
    with (cwd / "bot.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=log, stderr=log
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), WAIT_S) == -signal.SIGKILL


async def polls(telegram: FakeTelegram, count: int) -> dict[str, str]:
    """The parameters of the ``count``-th getUpdates, once it has arrived."""
    return (await telegram.wait_for_call("getUpdates", count=count, timeout=WAIT_S)).params


def http_url(log: Path) -> str:
    """The HTTP server of the last bot started with ``log``."""
    started = [
        orjson.loads(line)
        for line in log.read_text().splitlines()
        if '"event":"bot_started"' in line
    ]
    return str(started[-1]["http"])


async def intake_emptied(log: Path) -> None:
    """Once the bot logging to ``log`` has no update left in its intake (read on /metrics)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(WAIT_S):
        while True:
            async with http.get(f"{http_url(log)}/metrics") as response:
                if "\nbot_intake_updates 0\n" in await response.text():
                    return
            await asyncio.sleep(0.05)  # nothing to await across processes but asking again


async def test_a_command_killed_mid_handler_is_answered_once_after_a_restart(
    outbox_backend: str | None, telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = bot_env(telegram, binance, tmp_path, outbox_backend)
    async with bot_process(env, tmp_path) as proc:
        await polls(telegram, 1)
        binance.latency_s = SLOW_BINANCE_S
        seen = len(telegram.calls_of("getUpdates"))
        asked = binance.count()
        update = telegram.inject_message(ALLOWED, "/price btc")
        confirm = await polls(telegram, seen + 1)  # stored, so the offset moved past it
        assert confirm["offset"] == str(update["update_id"] + 1)
        assert telegram.updates == []  # Telegram will not deliver it again
        await binance.wait_for_requests(asked + 1, timeout=WAIT_S)  # the handler waits on it
        await kill(proc)
    assert telegram.sent_to(ALLOWED) == []  # the answer was lost with the process

    binance.latency_s = 0.0
    async with bot_process(env, tmp_path) as proc:
        (answer,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED, timeout=WAIT_S)
        await stop(proc)  # lets anything else in flight finish
    assert "BTCUSDT" in answer.text
    assert "65000.00" in answer.text
    assert telegram.sent_to(ALLOWED) == [answer]  # exactly one answer
    log = (tmp_path / "bot.log").read_text()
    assert log.count('"event":"intake_recovered"') == 1


async def test_a_webhook_command_killed_mid_handler_is_answered_once_after_a_restart(
    outbox_backend: str | None, telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    webhook = {"WEBHOOK_URL": "https://bot.example.org/hook", "WEBHOOK_SECRET": "s3cret"}
    env = bot_env(telegram, binance, tmp_path, outbox_backend, **webhook)
    update = telegram.inject_message(ALLOWED, "/price btc")  # what Telegram will POST
    async with bot_process(env, tmp_path) as proc:
        await telegram.wait_for_call("setWebhook", timeout=WAIT_S)
        binance.latency_s = SLOW_BINANCE_S
        asked = binance.count()
        url = f"{http_url(tmp_path / 'bot.log')}/telegram/webhook"
        secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json=update, headers=secret) as r,
        ):
            assert r.status == 200  # stored: Telegram will not send it again
        await binance.wait_for_requests(asked + 1, timeout=WAIT_S)  # the handler waits on it
        await kill(proc)
    assert telegram.sent_to(ALLOWED) == []

    binance.latency_s = 0.0
    async with bot_process(env, tmp_path) as proc:
        (answer,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED, timeout=WAIT_S)
        await stop(proc)
    assert "BTCUSDT" in answer.text
    assert telegram.sent_to(ALLOWED) == [answer]


async def test_an_update_telegram_delivers_again_after_a_crash_is_handled_once(
    outbox_backend: str | None, telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = bot_env(telegram, binance, tmp_path, outbox_backend)
    async with bot_process(env, tmp_path) as proc:
        await polls(telegram, 1)
        telegram.delay("getUpdates", 5.0)  # the next poll, the one confirming, never lands
        update = telegram.inject_message(ALLOWED, "/help")
        (reply,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED, timeout=WAIT_S)
        await intake_emptied(tmp_path / "bot.log")  # handled to the end, and so marked
        await kill(proc)
    assert [u["update_id"] for u in telegram.updates] == [update["update_id"]]  # unconfirmed

    telegram.delay("getUpdates", 0)
    seen = len(telegram.calls_of("getUpdates"))
    async with bot_process(env, tmp_path) as proc:
        assert "offset" not in await polls(telegram, seen + 1)  # brings the update again
        confirm = await polls(telegram, seen + 2)
        assert confirm["offset"] == str(update["update_id"] + 1)
        await stop(proc)
    assert "I show Binance prices" in reply.text
    assert telegram.sent_to(ALLOWED) == [reply]  # handled once
    log = (tmp_path / "bot.log").read_text()
    assert log.count('"event":"update_duplicate"') == 1


async def test_an_idle_bot_at_debug_writes_next_to_nothing(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = bot_env(telegram, binance, tmp_path, None, LOG_LEVEL="DEBUG")
    log = tmp_path / "bot.log"
    async with bot_process(env, tmp_path) as proc:
        seen = len(telegram.calls_of("getUpdates"))
        await polls(telegram, seen + 2)  # started, and one poll (1 s) is over
        before = log.read_text().splitlines()
        await polls(telegram, seen + 4)  # two more polls: about 2 s of idling
        idle = log.read_text().splitlines()[len(before) :]
        await stop(proc)
    assert any('"event":"bot_started"' in line for line in before)
    assert len(idle) < 5, "\n".join(idle)
