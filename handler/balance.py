"""``/balance``: non-zero spot balances and the futures wallet valued in USDT, fetched together
(``BinanceClient.get_portfolio``). Authorised users only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.utils.i18n import gettext as _

from handler.format import format_portfolio
from handler.text import split_html

if TYPE_CHECKING:
    from aiogram.types import Message

    from utils.binance.binance_a import BinanceClient

__all__ = ("get_router",)


async def cmd_balance(message: Message, binance: BinanceClient) -> None:
    if message.chat.type != ChatType.PRIVATE:  # balances are nobody else's business
        await message.answer(_("Balances are shown only in a private chat with me."))
        return
    for part in split_html(format_portfolio(await binance.get_portfolio())):
        await message.answer(part)


def get_router() -> Router:
    router = Router(name="balance")
    router.message.register(cmd_balance, Command("balance"), flags={"access": "user"})
    return router
