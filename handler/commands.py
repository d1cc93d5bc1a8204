"""The command menu (``setMyCommands``), in each language the bot speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram.types import BotCommand

if TYPE_CHECKING:
    from aiogram.utils.i18n import I18n

__all__ = ("bot_commands",)

_COMMANDS = (
    ("price", "Prices: /price btc eth"),
    ("balance", "Your spot and futures balances"),
    ("stats", "Bot statistics (admins)"),
    ("help", "What this bot does"),
)


def bot_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=i18n.gettext(text, locale=locale))
        for name, text in _COMMANDS
    ]
