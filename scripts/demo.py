"""``make demo``: the bot against the local fake exchange and fake Bot API, with a small chat in
the terminal. No credentials, no network: type ``/price btc`` and read the answer.

The fakes run in this process (``tests/fakes``); the bot runs as it does in production, as
``python -m bot`` in its own process, pointed at them through its settings. Its log goes to a
file (the path is printed) so the chat stays readable.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Final

from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_telegram import FakeTelegram

ROOT: Final = Path(__file__).resolve().parents[1]
TOKEN: Final = "4242:DEMO"  # noqa: S105 - the fake Bot API's token, not a credential
USER_ID: Final = 1001
_TAG: Final = re.compile(r"<[^>]+>")
BANNER: Final = """\
Demo chat with the bot (fake Binance and fake Telegram on this machine; nothing leaves it).
Try: /price btc eth   /balance   /stats   /help        (Ctrl-D or /quit to leave)
"""


def plain(text: str) -> str:
    """The bot's HTML as a terminal shows it."""
    return html.unescape(_TAG.sub("", text))


def bot_env(telegram: FakeTelegram, binance: FakeBinance, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "TELEGRAM_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.url,
        BINANCE_BASE_URL=binance.url,
        BINANCE_FUTURES_BASE_URL=binance.url,
        BINANCE_API_KEY=TEST_API_KEY,
        BINANCE_API_SECRET=TEST_API_SECRET,
        ALLOWED_USER_IDS=str(USER_ID),
        ADMIN_USER_IDS=str(USER_ID),
        TELEGRAM_HTTP_PORT="0",
        TELEGRAM_POLLING_TIMEOUT_S="1",
        LOG_LEVEL="INFO",
        REDIS_URL="",
    )
    env.pop("REDIS_URL")  # the embedded defaults: in-memory cache, SQLite outbox in workdir
    return env


async def chat(telegram: FakeTelegram, bot: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    sys.stdout.write(BANNER)
    seen = 0
    while bot.returncode is None:
        sys.stdout.write("you> ")
        sys.stdout.flush()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() in {"/quit", "/exit"}:
            sys.stdout.write("\n")
            return
        if not line.strip():
            continue
        telegram.inject_message(USER_ID, line.strip(), language_code=os.environ.get("DEMO_LANG"))
        try:
            replies = await telegram.wait_for_sent(
                lambda m: m.chat_id == USER_ID, count=seen + 1, timeout=15.0
            )
        except TimeoutError:
            sys.stdout.write("bot> (no answer within 15 s; see the log)\n")
            continue
        for reply in replies[seen:]:
            sys.stdout.write("bot> " + plain(reply.text or "").replace("\n", "\n     ") + "\n")
        seen = len(replies)
        sys.stdout.flush()


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bot-demo-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "bot.log"
        async with FakeBinance() as binance, FakeTelegram(token=TOKEN) as telegram:
            telegram.add_chat(USER_ID, type="private")
            with log_path.open("wb") as log:
                bot = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    cwd=workdir,  # no .env from the checkout: only the demo's settings
                    env=bot_env(telegram, binance, workdir),
                    stdout=log,
                    stderr=log,
                )
                try:
                    await telegram.wait_for_call("setMyCommands", timeout=30.0)
                    sys.stdout.write(f"(bot log: {log_path})\n")
                    await chat(telegram, bot)
                finally:
                    if bot.returncode is None:
                        bot.terminate()
                    await bot.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
