"""Command declarations: what a feature module says about its commands, beside its router.

A feature module (``handler/<feature>.py``, listed once in ``handler.FEATURES``) declares
``COMMANDS``, a tuple of ``CommandSpec``, and registers each one's handler with
``spec.register(router, callback)``. From those declarations come the router tree
(``handler.build_router``), the command menu in each language (``menu_commands``, sent with
``setMyCommands``), ``/help`` (``help_lines``) and who may run the command (the access
middleware reads the spec the handler was registered with). The filter, the flag, the menu
and the help line are one object, so they cannot disagree.

Texts are gettext message ids marked with ``N_`` and translated where they are shown: the
menu once per language, ``/help`` in the reader's language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

from aiogram.filters import Command
from aiogram.types import BotCommand
from aiogram.utils.i18n import gettext as _

from utils.text import escape

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from aiogram import Router
    from aiogram.dispatcher.event.handler import CallbackType
    from aiogram.utils.i18n import I18n

__all__ = (
    "COMMAND_FLAG",
    "N_",
    "AccessPolicy",
    "CommandSpec",
    "Feature",
    "Level",
    "help_lines",
    "menu_commands",
)

#: Who may run a command besides everyone: authorised users (admins included) or admins.
Level = Literal["user", "admin"]

#: The handler flag that carries a command's ``CommandSpec`` to the middlewares.
COMMAND_FLAG: Final = "command"

_NAME: Final = re.compile(r"[a-z0-9_]{1,32}")  # Telegram's rule for BotCommand.command


def N_(text: str) -> str:  # gettext's marker: extracted here, translated where shown
    return text


_AUDIENCE: Final[Mapping[Level, str]] = {"user": N_("authorised users"), "admin": N_("admins")}


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    """One command as users meet it: its name, its menu line, its ``/help`` line and who may
    run it. ``menu`` and ``help`` are ``N_``-marked message ids; None keeps the command out of
    the menu or out of ``/help`` (``/start``)."""

    name: str  # without the slash: "price"
    menu: str | None = None
    help: str | None = None
    args: str = ""  # the usage shown after the name in /help, never translated
    access: Level | None = None  # None: everyone may run it
    private_only: bool = False  # answered only in a private chat; elsewhere, private_reason
    private_reason: str = N_("This command works only in a private chat with me.")
    detail: tuple[str, ...] = ()  # ``N_`` message ids: what ``/help <name>`` adds, a line each

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"command name {self.name!r}: Telegram takes 1-32 lowercase letters, digits "
                "and underscores, without the slash"
            )

    def register(self, router: Router, callback: CallbackType) -> None:
        """Register ``callback`` for this command, carrying this declaration as its flag.
        The command matches in any case (``/PRICE`` is ``/price``), as users type it."""
        router.message.register(
            callback, Command(self.name, ignore_case=True), flags={COMMAND_FLAG: self}
        )

    def help_line(self) -> str:
        """``/name args — help (who)``, in the current locale; "" when not in ``/help``."""
        if self.help is None:
            return ""
        usage = f"/{self.name} {self.args}" if self.args else f"/{self.name}"
        line = f"{usage} — {_(self.help)}"
        return f"{line} ({_(_AUDIENCE[self.access])})" if self.access else line

    def detail_text(self) -> str:
        """``/help <name>``: the help line, then the detail lines, in the current locale."""
        return "\n".join((self.help_line(), *(escape(_(line)) for line in self.detail)))


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Authorised users (``ALLOWED_USER_IDS``) and admins; admins are authorised too."""

    allowed: frozenset[int]
    admins: frozenset[int]

    def permits(self, user_id: int, level: Level) -> bool:
        if level == "admin":
            return user_id in self.admins
        return user_id in self.allowed or user_id in self.admins


class Feature(Protocol):
    """A feature module: its declared commands and a factory of its router (a fresh router
    per call, since a router attaches to one parent only)."""

    @property
    def COMMANDS(self) -> Sequence[CommandSpec]: ...  # a module constant

    def get_router(self) -> Router: ...


def menu_commands(commands: Iterable[CommandSpec], i18n: I18n, locale: str) -> list[BotCommand]:
    """The command menu (``setMyCommands``) in ``locale``, in declaration order."""
    return [
        BotCommand(command=spec.name, description=i18n.gettext(spec.menu, locale=locale))
        for spec in commands
        if spec.menu is not None
    ]


def help_lines(commands: Iterable[CommandSpec]) -> list[str]:
    """One ``/help`` line per command that has help text, in the current locale."""
    return [line for spec in commands if (line := spec.help_line())]
