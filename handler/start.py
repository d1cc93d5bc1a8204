"""``/start`` and ``/help``: what the bot does, listing every declared command (injected as
``commands``); a user blocking or unblocking the bot (their alarms paused, and given back by
``/start`` or by unblocking)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram import F, Router
from aiogram.filters import JOIN_TRANSITION, LEAVE_TRANSITION, ChatMemberUpdatedFilter
from aiogram.utils.i18n import gettext as _

from handler.commands import N_, CommandSpec, help_lines

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiogram.filters import CommandObject
    from aiogram.types import ChatMemberUpdated, Message

    from handler.deps import Delivery
    from utils.alarms.alarm_service import AlarmService

__all__ = ("COMMANDS", "HELP", "START", "get_router", "help_text")

START = CommandSpec(name="start")  # Telegram's own button; not in the menu or in /help
HELP = CommandSpec(name="help", menu=N_("What this bot does"), help=N_("this text"))
COMMANDS = (START, HELP)


def help_text(commands: Sequence[CommandSpec]) -> str:
    return "\n".join((_("I show Binance prices and your balances."), "", *help_lines(commands)))


async def cmd_start(
    message: Message,
    notifier: Delivery,
    commands: Sequence[CommandSpec],
    alarms: AlarmService | None = None,
) -> None:
    await notifier.chat_back(message.chat.id)  # a user who blocked us and came back
    if alarms is not None:  # with the alarms their block paused
        await alarms.resume_chat(message.chat.id)
    await message.answer(_("Hello! ") + help_text(commands))


async def cmd_help(
    message: Message, commands: Sequence[CommandSpec], command: CommandObject | None = None
) -> None:
    """``/help``, or ``/help ta``: one command's help with its detail (when it has one)."""
    name = (command.args or "").strip().lstrip("/").lower() if command else ""
    spec = next((s for s in commands if s.name == name and s.detail), None)
    await message.answer(spec.detail_text() if spec else help_text(commands))


async def on_blocked(
    event: ChatMemberUpdated, notifier: Delivery, alarms: AlarmService | None = None
) -> None:
    await notifier.chat_blocked(event.chat.id)
    if alarms is not None:  # paused, not deleted: /start gives them back
        await alarms.pause_chat(event.chat.id)


async def on_unblocked(
    event: ChatMemberUpdated, notifier: Delivery, alarms: AlarmService | None = None
) -> None:
    await notifier.chat_back(event.chat.id)
    if alarms is not None:
        await alarms.resume_chat(event.chat.id)


def get_router() -> Router:
    router = Router(name="start")
    START.register(router, cmd_start)
    HELP.register(router, cmd_help)
    private = F.chat.type == "private"
    router.my_chat_member.register(on_blocked, ChatMemberUpdatedFilter(LEAVE_TRANSITION), private)
    router.my_chat_member.register(on_unblocked, ChatMemberUpdatedFilter(JOIN_TRANSITION), private)
    return router
