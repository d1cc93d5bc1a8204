"""README promises about ``python -m bot`` processes: SIGTERM stops taking updates (one that
arrives meanwhile stays with Telegram and is answered by the next start); with Redis a second
process takes over delivery when the one delivering dies; a start that fails at
``LOG_LEVEL=DEBUG`` adds the redacted traceback to its one line. Real processes, configured
only by their environment, against the fake Bot API and the fake exchange."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import TYPE_CHECKING, Final

from bot.outbox import Job
from bot.outbox_redis import RedisOutbox
from tests.bot.conftest import ALLOWED, STRANGER
from tests.bot.test_process import bot_env, start_bot
from tests.bot.test_startup import SECRETS, env_for, start_up

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

WAIT_S: Final = 30.0
HELP: Final = "I show Binance prices"
#: Longer than any test here runs: a request held this long is one nobody will see answered.
HELD_S: Final = 120.0


async def stop(proc: asyncio.subprocess.Process) -> int:
    """SIGTERM, then the exit status (a process still running after WAIT_S is killed)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), WAIT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sigterm_stops_taking_updates_and_the_next_start_answers_the_rest(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = bot_env(telegram, binance, tmp_path)
    telegram.inject_message(ALLOWED, "/help")
    telegram.delay("sendMessage", 1.0)  # the reply is still on its way at SIGTERM
    proc = await start_bot(env, tmp_path)
    try:
        await telegram.wait_for_call("sendMessage", timeout=WAIT_S)
        # From here Telegram holds every new poll; wait for the one the bot makes next.
        telegram.delay("getUpdates", HELD_S)
        polls = len(telegram.calls_of("getUpdates"))
        await telegram.wait_for_call("getUpdates", count=polls + 1, timeout=WAIT_S)
        late = telegram.inject_message(STRANGER, "/help")
        assert await stop(proc) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    (reply,) = telegram.sent_to(ALLOWED)  # the handler in flight finished
    assert HELP in reply.text
    assert telegram.sent_to(STRANGER) == []  # not taken after the signal
    assert late["update_id"] in [u["update_id"] for u in telegram.updates]  # still Telegram's
    telegram.delay("getUpdates", 0)
    telegram.delay("sendMessage", 0)
    proc = await start_bot(env, tmp_path)
    try:
        (answer,) = await telegram.wait_for_sent(lambda m: m.chat_id == STRANGER, timeout=WAIT_S)
        assert await stop(proc) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert HELP in answer.text
    assert len(telegram.sent_to(ALLOWED)) == 1  # the first update was not handled again


async def test_with_redis_a_second_process_takes_over_delivery_when_the_first_dies(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path, redis_server: RedisServer
) -> None:
    chats = [3200 + i for i in range(4)]
    for chat in chats:
        telegram.add_chat(chat)
    outbox = RedisOutbox.from_url(redis_server.url, prefix="test:")
    await outbox.open()
    await outbox.put_many(
        [Job(id=f"w{i}", chat_id=chats[i % 4], text=f"waiting {i}") for i in range(12)]
    )
    await outbox.close()
    env = bot_env(telegram, binance, tmp_path, redis_server.url)
    env.update(
        WEBHOOK_URL="https://bot.example.org/telegram/webhook",  # two processes, no poll fight
        WEBHOOK_SECRET="s3cret-Token_1",
        TELEGRAM_DELIVERY_CONCURRENCY="1",
        TELEGRAM_DELIVERY_LEASE_S="1",
    )
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    telegram.delay("sendMessage", HELD_S)  # the first process's first send never comes back
    first = await start_bot(env, first_dir)
    second: asyncio.subprocess.Process | None = None
    try:
        await telegram.wait_for_call("sendMessage", timeout=WAIT_S)  # the first one delivers
        second = await start_bot(env, second_dir)
        await telegram.wait_for_call("setWebhook", count=2, timeout=WAIT_S)  # the second is up
        assert len(telegram.calls_of("sendMessage")) == 1  # one process delivers at a time
        first.kill()
        await first.wait()
        telegram.delay("sendMessage", 0)
        await telegram.wait_for_sent(
            lambda m: m.text.startswith("waiting"), count=12, timeout=WAIT_S
        )
        assert await stop(second) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
    counts = Counter(m.text for m in telegram.sent if m.text.startswith("waiting"))
    assert counts == Counter(f"waiting {i}" for i in range(12))  # each once, by the second


async def test_a_failed_start_at_debug_adds_the_traceback_with_no_secret_in_it(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = env_for(telegram.url, binance, tmp_path, LOG_LEVEL="DEBUG")  # a token Telegram refuses
    outcome = await start_up(env, tmp_path)
    assert outcome.status == 1
    (line,) = outcome.verdict
    assert line.startswith("Telegram refused BOT_TOKEN (Unauthorized)")
    assert '"event":"bot_failed"' in outcome.output
    assert "Traceback (most recent call last)" in outcome.output
    assert "TelegramUnauthorizedError" in outcome.output
    for secret in SECRETS:
        assert secret not in outcome.output
