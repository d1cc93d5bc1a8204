"""``make demo``: the bot against the local fake exchange and fake Bot API, with a small chat in
the terminal. No credentials, no network: type ``/price btc`` and read the answer.

The fakes run in this process (``tests/fakes``): the exchange's REST, its spot and futures
stream servers with the all-market streams ticking every second, and the Bot API. The bot
runs as it does in production, as ``python -m bot`` in its own process, pointed at them
through its settings. Its log goes to a file (the path is printed) so the chat stays readable.

Demo-only commands move the fake world instead of talking to the bot: ``:move btc 71500``
sets a price on the fake exchange (REST, klines and streams), so that an alarm set with
``/alarm btc > 71000`` fires; ``:press 1`` presses the first button of the last message that
has buttons (numbered left to right, top to bottom), as a callback query through the fake
Bot API. The bot's messages print as they arrive, firings included, with their buttons
under them as ``[1 Snooze 1 h] [2 Re-arm] [3 Delete]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from tests.fakes.bot_env import fake_bot_env
from tests.fakes.fake_all_market import AllMarketStreams, parse_price
from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.fake_ws import FakeBinanceWS
from utils.binance.binance_types import Market

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.fakes.fake_telegram_wire import SentMessage

__all__ = ("BANNER", "DemoChat", "main")

TOKEN: Final = "4242:DEMO"  # noqa: S105 - the fake Bot API's token, not a credential
USER_ID: Final = 1001
ANSWER_S: Final = 15.0  # how long a command waits for the bot before the prompt returns
PROMPT: Final = "you> "
BANNER: Final = """\
Demo chat with the bot (fake Binance and fake Telegram on this machine; nothing leaves it).
Try: /price btc eth   /balance   /stats   /help        (Ctrl-D or /quit to leave)
Alarms: /alarm btc > 71000   /alarm eth < 3000 repeat   /alarm sol +5% 1h   /alarms
        /delalarm 1   /history   /tz Europe/Istanbul
Demo only: :move btc 71500   the fake exchange's BTCUSDT trades at 71,500 (REST and streams)
           :press 1          press button 1 of the last message with buttons
"""
_INDENT: Final = "\n     "


class DemoChat:
    """The terminal side of the chat with user ``USER_ID``: what the user types goes to the
    fake Bot API (or moves the fake exchange), what the bot sends is printed as it comes."""

    def __init__(self, telegram: FakeTelegram, market: AllMarketStreams, out: TextIO) -> None:
        self._telegram, self._market, self._out = telegram, market, out
        self._printed = 0  # messages to the user printed so far
        self._shown = asyncio.Condition()
        self._buttons: list[tuple[str, str]] = []  # (text, callback data) of the last keyboard
        self._buttons_of = 0  # the message they are under
        self._at_prompt = False

    async def run(
        self, readline: Callable[[], Awaitable[str]], bot_running: Callable[[], bool]
    ) -> None:
        """Read lines until end of input, ``/quit`` or the bot's exit, answering each."""
        self._write(BANNER)
        printer = asyncio.create_task(self._print_forever())
        try:
            while bot_running():
                self._prompt()
                raw = await readline()
                self._at_prompt = False
                line = raw.strip()
                if not raw or line in {"/quit", "/exit"}:  # "" is the end of input
                    break
                if line:
                    await self.handle(line)
        finally:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer
        self._write("\n")

    async def handle(self, line: str) -> None:
        """One line the user typed: a demo command, or a message to the bot (then wait for
        the bot's next message, ``ANSWER_S`` at most)."""
        if line.startswith(":"):
            await self._demo_command(line)
            return
        before = len(self._telegram.sent_to(USER_ID))
        self._telegram.inject_message(
            USER_ID, line, language_code=os.environ.get("DEMO_LANG") or None
        )
        if not await self._shown_past(before):
            self._write(f"bot> (no answer within {ANSWER_S:.0f} s; see the log)\n")

    # --- demo-only commands --------------------------------------------------------------
    async def _demo_command(self, line: str) -> None:
        name, *args = line.split()
        if name == ":move" and len(args) == 2:  # noqa: PLR2004 - symbol and price
            await self._move(*args)
        elif name == ":press" and len(args) == 1:
            await self._press(args[0])
        else:
            self._write("demo> :move SYMBOL PRICE (e.g. :move btc 71500) or :press N\n")

    async def _move(self, symbol_text: str, price_text: str) -> None:
        try:
            symbol, price = self._market.symbol(symbol_text), parse_price(price_text)
        except (KeyError, ValueError) as e:
            self._write(f"demo> {e.args[0]}\n")
            return
        was = self._market.price(symbol)
        await self._market.move(symbol, price)
        self._write(f"demo> {symbol} {was.normalize():f} -> {price.normalize():f}\n")

    async def _press(self, number_text: str) -> None:
        if not self._buttons:
            self._write("demo> no message with buttons to press\n")
            return
        if not number_text.isdigit() or not 1 <= int(number_text) <= len(self._buttons):
            self._write(f"demo> press a button from 1 to {len(self._buttons)}\n")
            return
        text, data = self._buttons[int(number_text) - 1]
        self._write(f"demo> pressed [{text}]\n")
        answered = len(self._telegram.callback_answers)
        self._telegram.inject_callback(USER_ID, data, self._buttons_of)
        try:
            await self._telegram.wait_for_call(
                "answerCallbackQuery", count=answered + 1, timeout=ANSWER_S
            )
        except TimeoutError:
            self._write(f"bot> (no answer within {ANSWER_S:.0f} s; see the log)\n")
            return
        said = self._telegram.callback_answers[answered].get("text")
        if said:
            self._write(f"bot (pop-up)> {said}\n")

    # --- printing ------------------------------------------------------------------------
    async def _print_forever(self) -> None:
        while True:
            try:
                sent = await self._telegram.wait_for_sent(
                    lambda m: m.chat_id == USER_ID, count=self._printed + 1, timeout=3600.0
                )
            except TimeoutError:
                continue
            interrupted = self._at_prompt
            if interrupted:
                self._write("\r")
            for message in sent[self._printed :]:
                self._write(self._render(message))
            async with self._shown:
                self._printed = len(sent)
                self._shown.notify_all()
            if interrupted:
                self._prompt()

    async def _shown_past(self, count: int) -> bool:
        """Whether the user's ``count + 1``-th message got printed within ``ANSWER_S``."""
        try:
            async with asyncio.timeout(ANSWER_S), self._shown:
                await self._shown.wait_for(lambda: self._printed > count)
        except TimeoutError:
            return False
        return True

    def _render(self, message: SentMessage) -> str:
        who = "bot (edited)> " if message.method.startswith("edit") else "bot> "
        text = who + (message.plain or "").replace("\n", _INDENT)
        rows = _keyboard(message.reply_markup)
        if rows or message.message_id == self._buttons_of:  # an edit may take them away
            self._buttons = [button for row in rows for button in row]
            self._buttons_of = message.message_id
        number = 0
        for row in rows:
            shown = []
            for label, _data in row:
                number += 1
                shown.append(f"[{number} {label}]")
            text += _INDENT + " ".join(shown)
        return text + "\n"

    def _prompt(self) -> None:
        self._at_prompt = True
        self._write(PROMPT)

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


def _keyboard(markup: dict[str, Any] | None) -> list[list[tuple[str, str]]]:
    """An inline keyboard's callback buttons, as (label, data) rows."""
    rows = (markup or {}).get("inline_keyboard") or []
    return [[(b["text"], b["callback_data"]) for b in row if "callback_data" in b] for row in rows]


async def main() -> int:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="bot-demo-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "bot.log"
        async with FakeBinance() as binance, FakeTelegram(token=TOKEN) as telegram:
            candles = binance.market.candles
            async with (
                FakeBinanceWS(Market.SPOT, candles=candles, kline_update_s=1.0) as spot,
                FakeBinanceWS(Market.FUTURES, candles=candles, kline_update_s=1.0) as futures,
            ):
                market = AllMarketStreams(binance, spot, futures)
                market.start()
                telegram.add_chat(USER_ID, type="private")
                with log_path.open("wb") as log:
                    bot = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        cwd=workdir,  # no .env from the checkout: only the demo's settings
                        env=fake_bot_env(  # the embedded defaults: SQLite files in workdir
                            telegram.url,
                            binance.url,
                            TOKEN,
                            BINANCE_WS_URL=spot.url,
                            BINANCE_FUTURES_WS_URL=futures.url,
                            ALLOWED_USER_IDS=str(USER_ID),
                            ADMIN_USER_IDS=str(USER_ID),
                        ),
                        stdout=log,
                        stderr=log,
                    )
                    try:
                        await telegram.wait_for_call("setMyCommands", timeout=30.0)
                        sys.stdout.write(f"(bot log: {log_path})\n")
                        chat = DemoChat(telegram, market, sys.stdout)

                        async def readline() -> str:
                            return await loop.run_in_executor(None, sys.stdin.readline)

                        await chat.run(readline, lambda: bot.returncode is None)
                    finally:
                        market.stop()
                        if bot.returncode is None:
                            bot.terminate()
                        await bot.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
