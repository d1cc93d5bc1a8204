"""The bot as ``make run`` starts it: ``python -m bot`` in its own process, configured only by
its environment, stopped by SIGTERM or killed by SIGKILL; and ``make demo``'s terminal chat."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from typing import TYPE_CHECKING, Final

from bot.outbox import Job, SqliteOutbox
from bot.outbox_redis import RedisOutbox
from tests.bot.conftest import ALLOWED, TOKEN
from tests.fakes.bot_env import ROOT, fake_bot_env

if TYPE_CHECKING:
    from pathlib import Path

    from bot.outbox import Outbox
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

PENDING: Final = 24


def bot_env(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path, redis_url: str | None = None
) -> dict[str, str]:
    """Everything through the environment, as in production (the cwd has no .env)."""
    redis = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": "test"} if redis_url else {}
    return fake_bot_env(
        telegram.url,
        binance.url,
        TOKEN,
        ALLOWED_USER_IDS=str(ALLOWED),
        TELEGRAM_OUTBOX_PATH=str(tmp_path / "outbox.sqlite3"),
        TELEGRAM_CHAT_INTERVAL_S="0.05",
        TELEGRAM_GLOBAL_RATE="150",
        LOG_FORMAT="json",
        **redis,
    )


async def start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    log = (cwd / "bot.log").open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=log, stderr=log
        )
    finally:
        log.close()


def open_outbox(tmp_path: Path, redis_url: str | None) -> Outbox:
    if redis_url:
        return RedisOutbox.from_url(redis_url, prefix="test:")
    return SqliteOutbox(tmp_path / "outbox.sqlite3")


async def test_without_a_token_it_says_what_to_set_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"} | {"PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("BOT_TOKEN is not set: put the token @BotFather gave you in .env")


async def test_sigterm_lets_the_reply_in_flight_finish_then_exits_cleanly(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    proc = await start_bot(bot_env(telegram, binance, tmp_path), tmp_path)
    try:
        await telegram.wait_for_call("getUpdates", timeout=30)
        telegram.delay("sendMessage", 0.5)
        telegram.inject_message(ALLOWED, "/help")
        await telegram.wait_for_call("sendMessage", timeout=10)  # the reply is on its way
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    (reply,) = telegram.sent_to(ALLOWED)
    assert "I show Binance prices" in reply.text
    log = (tmp_path / "bot.log").read_text()
    assert '"event":"bot_stopped"' in log
    assert TOKEN not in log  # the token never reaches the log


async def test_killed_mid_delivery_and_restarted_every_pending_message_arrives_once(
    outbox_backend: str | None, telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    chats = [3000 + i for i in range(8)]
    for chat in chats:
        telegram.add_chat(chat)
    outbox = open_outbox(tmp_path, outbox_backend)
    await outbox.open()
    await outbox.put_many(
        [
            Job(id=f"m{i}", chat_id=chats[i % len(chats)], text=f"pending {i}")
            for i in range(PENDING)
        ]
    )
    await outbox.close()

    telegram.delay("sendMessage", 0.1)
    # One send at a time, so that the kill lands while a send is in flight and every earlier
    # answer has been recorded: an answer the bot got but had not yet recorded is the one case
    # the Bot API (no idempotency key) cannot make exactly-once, and it is not what this tests.
    env = bot_env(telegram, binance, tmp_path, outbox_backend)
    env["TELEGRAM_DELIVERY_CONCURRENCY"] = "1"
    env["TELEGRAM_DELIVERY_LEASE_S"] = "1"  # the killed process's Redis lease runs out soon
    proc = await start_bot(env, tmp_path)
    killed = asyncio.Event()

    def kill_mid_delivery(method: str, _params: dict[str, str]) -> None:
        delivered = sum(m.text.startswith("pending") for m in telegram.sent)
        if method.lower() == "sendmessage" and delivered >= 8 and telegram.on_request:
            telegram.on_request = None
            # Killed on receipt of this send: the fake holds it 0.1 s and then drops it, its
            # client gone (a send whose answer never came back, without a race on the clock).
            proc.kill()
            killed.set()

    telegram.on_request = kill_mid_delivery
    try:
        await asyncio.wait_for(killed.wait(), 60)
        await proc.wait()
        await telegram.wait_until_idle()
        before_restart = [m.text for m in telegram.sent if m.text.startswith("pending")]
        assert len(before_restart) == 8  # the ninth was in flight, never processed
        proc = await start_bot(env, tmp_path)
        await telegram.wait_for_sent(
            lambda m: m.text.startswith("pending"), count=PENDING, timeout=60
        )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    counts = Counter(m.text for m in telegram.sent if m.text.startswith("pending"))
    assert counts == Counter(f"pending {i}" for i in range(PENDING))  # each exactly once


async def test_make_demo_answers_price_btc_in_the_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "TELEGRAM_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.demo",
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(b"/price btc\n"), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "Try: /price btc" in text
    # The answer's table row: the fake exchange's BTCUSDT spot price (not the banner's hints).
    assert any(line.split()[:2] == ["BTCUSDT", "65000.00"] for line in text.splitlines()), text
