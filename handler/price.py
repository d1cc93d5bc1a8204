"""``/price BTCUSDT [ETHUSDT …]``: spot price, futures mark, funding and 24 h change per symbol,
fetched together in one fan-out (``BinanceClient.get_prices``), as one aligned table."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Final

from aiogram import Router
from aiogram.filters import Command
from aiogram.utils.i18n import gettext as _

from handler.errors import retry_in_s, user_text
from handler.format import format_prices
from handler.text import escape
from utils.binance.binance_a import BinanceError

if TYPE_CHECKING:
    from aiogram.filters import CommandObject
    from aiogram.types import Message

    from handler.deps import BackgroundTasks
    from utils.binance.binance_a import BinanceClient

__all__ = ("MAX_SYMBOLS", "get_router", "parse_symbols")

MAX_SYMBOLS: Final = 10
_NAME: Final = re.compile(r"[A-Za-z0-9]{2,20}")
_SPLIT: Final = re.compile(r"[\s,;/]+")


class SymbolArgsError(ValueError):
    """The arguments are not symbol names; the message is for the user."""


def parse_symbols(args: str | None) -> list[str]:
    """Symbol names from the command's arguments, upper-cased, duplicates dropped."""
    names: list[str] = []
    for word in _SPLIT.split(args or ""):
        if not word:
            continue
        if not _NAME.fullmatch(word):
            raise SymbolArgsError(
                _("“{word}” is not a symbol name: use letters and digits, like BTCUSDT.").format(
                    word=escape(word[:40])
                )
            )
        if word.upper() not in names:
            names.append(word.upper())
    if len(names) > MAX_SYMBOLS:
        raise SymbolArgsError(
            _("Up to {limit} symbols at a time, please (you asked for {count}).").format(
                limit=MAX_SYMBOLS, count=len(names)
            )
        )
    return names


def usage() -> str:
    return _(
        "Usage: /price BTCUSDT [ETHUSDT …] — up to {limit} symbols; "
        "a bare asset means its USDT pair (/price btc)."
    ).format(limit=MAX_SYMBOLS)


async def cmd_price(
    message: Message, command: CommandObject, binance: BinanceClient, tasks: BackgroundTasks
) -> None:
    try:
        symbols = parse_symbols(command.args)
    except SymbolArgsError as e:
        await message.answer(str(e))
        return
    if not symbols:
        await message.answer(usage())
        return
    try:
        await message.answer(format_prices(await binance.get_prices(symbols)))
    except BinanceError as e:
        seconds = retry_in_s(e)
        if seconds is None:
            raise
        reply = await message.answer(user_text(e))
        tasks.spawn(_retry(reply, binance, symbols, seconds))


async def _retry(reply: Message, binance: BinanceClient, symbols: list[str], delay_s: int) -> None:
    """Ask once more after ``delay_s`` and put the answer in place of the apology."""
    await asyncio.sleep(delay_s)
    try:
        text = format_prices(await binance.get_prices(symbols))
    except BinanceError as e:
        text = _("Binance is still not answering ({reason}). Try /price again later.").format(
            reason=escape(str(e))
        )
    await reply.edit_text(text)


def get_router() -> Router:
    router = Router(name="price")
    router.message.register(cmd_price, Command("price"))
    return router
