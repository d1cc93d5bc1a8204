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

from tests.fakes.bot_env import fake_bot_env
from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_telegram import FakeTelegram

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
                    env=fake_bot_env(  # the embedded defaults: SQLite outbox in workdir
                        telegram.url,
                        binance.url,
                        TOKEN,
                        ALLOWED_USER_IDS=str(USER_ID),
                        ADMIN_USER_IDS=str(USER_ID),
                    ),
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
