"""``/balance``: non-zero spot balances and the futures wallet valued in USDT, fetched together
(``BinanceClient.get_portfolio``). Authorised users only, in a private chat only (balances are
nobody else's business). A part that could not be read is named in words, and no total then
pretends to be complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from aiogram import Router
from aiogram.utils.i18n import gettext as _

from handler.commands import N_, CommandSpec
from handler.format import format_portfolio
from utils.text import split_html

if TYPE_CHECKING:
    from aiogram.types import Message

    from utils.binance.binance_a import BinanceClient

__all__ = ("BALANCE", "COMMANDS", "get_router")

BALANCE = CommandSpec(
    name="balance",
    menu=N_("Your spot and futures balances"),
    help=N_("your spot and futures balances in USDT"),
    access="user",
    private_only=True,
    private_reason=N_("Balances are shown only in a private chat with me."),
)
COMMANDS = (BALANCE,)

_log = structlog.get_logger(__name__)


async def cmd_balance(message: Message, binance: BinanceClient) -> None:
    if not binance.config.has_credentials:  # every part would fail, and waiting won't help
        await message.answer(
            _("This bot has no Binance API key configured, so it cannot read balances.")
        )
        return
    portfolio = await binance.get_portfolio()
    if portfolio.errors:  # the user reads which part is missing; the reason is for the log
        _log.warning("balance_incomplete", errors=dict(portfolio.errors))
    for part in split_html(format_portfolio(portfolio)):
        await message.answer(part)


def get_router() -> Router:
    router = Router(name="balance")
    BALANCE.register(router, cmd_balance)
    return router
