"""The command menu (``setMyCommands``), in each language the bot speaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram.types import BotCommand

if TYPE_CHECKING:
    from aiogram.utils.i18n import I18n

__all__ = ("bot_commands",)


def N_(text: str) -> str:  # gettext's marker: translated where it is shown
    return text


_COMMANDS = (
    ("price", N_("Prices: /price btc eth")),
    ("balance", N_("Your spot and futures balances")),
    ("stats", N_("Bot statistics (admins)")),
    ("help", N_("What this bot does")),
)


def bot_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    return [
        BotCommand(command=name, description=i18n.gettext(text, locale=locale))
        for name, text in _COMMANDS
    ]
