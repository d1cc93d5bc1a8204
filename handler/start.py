"""``/start`` and ``/help``: what the bot does; a user blocking or unblocking the bot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import F, Router
from aiogram.filters import (
    JOIN_TRANSITION,
    LEAVE_TRANSITION,
    ChatMemberUpdatedFilter,
    Command,
    CommandStart,
)
from aiogram.utils.i18n import gettext as _

if TYPE_CHECKING:
    from aiogram.types import ChatMemberUpdated, Message

    from handler.deps import Delivery

__all__ = ("get_router", "help_text")


def help_text() -> str:
    return "\n".join(
        (
            _("I show Binance prices and your balances."),
            "",
            _("/price BTCUSDT [ETHUSDT …] — spot and futures prices, funding, 24 h change"),
            _("  (a bare asset means its USDT pair: /price btc eth; up to 10 symbols)"),
            _("/balance — your spot and futures balances in USDT (authorised users)"),
            _("/stats — requests, rate limits, cache and delivery queue (admins)"),
            _("/help — this text"),
        )
    )


async def cmd_start(message: Message, notifier: Delivery) -> None:
    await notifier.chat_back(message.chat.id)  # a user who blocked us and came back
    await message.answer(_("Hello! ") + help_text())


async def cmd_help(message: Message) -> None:
    await message.answer(help_text())


async def on_blocked(event: ChatMemberUpdated, notifier: Delivery) -> None:
    await notifier.chat_blocked(event.chat.id)


async def on_unblocked(event: ChatMemberUpdated, notifier: Delivery) -> None:
    await notifier.chat_back(event.chat.id)


def get_router() -> Router:
    router = Router(name="start")
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_help, Command("help"))
    private = F.chat.type == "private"
    router.my_chat_member.register(on_blocked, ChatMemberUpdatedFilter(LEAVE_TRANSITION), private)
    router.my_chat_member.register(on_unblocked, ChatMemberUpdatedFilter(JOIN_TRANSITION), private)
    return router
