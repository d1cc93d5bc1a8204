"""A command is declared once, beside its router: the tree refuses a declaration without its
handler (or a handler without its declaration), a name declared twice, and a name Telegram
would refuse."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Router
from aiogram.filters import Command

from handler import FEATURES, build_router, declared_commands
from handler.commands import CommandSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from handler.commands import Feature

PING = CommandSpec(name="ping", menu="Check that I answer", help="answers pong")


async def cmd_ping(_message: object) -> None:
    return None


def feature(commands: tuple[CommandSpec, ...], register: Callable[[Router], Any]) -> Feature:
    def get_router() -> Router:
        router = Router(name="ping")
        register(router)
        return router

    return SimpleNamespace(COMMANDS=commands, get_router=get_router)  # type: ignore[return-value]


def test_the_shipped_features_build_and_declare_each_command_once() -> None:
    build_router()
    names = [spec.name for spec in declared_commands()]
    assert names == [
        *("price", "alarm", "alarms", "delalarm", "history", "tz", "ta", "chart"),
        *("balance", "stats", "start", "help"),
    ]
    assert FEATURES[-1].COMMANDS == ()  # the error router last, answering no command


def test_a_declared_command_without_its_handler_is_refused() -> None:
    lonely = feature((PING,), lambda router: None)
    with pytest.raises(ValueError, match=r"registers \[\] but its module declares \['ping'\]"):
        build_router([lonely])


def test_a_command_handler_registered_without_its_declaration_is_refused() -> None:
    stray = CommandSpec(name="pong")

    def register(router: Router) -> None:
        PING.register(router, cmd_ping)
        stray.register(router, cmd_ping)

    with pytest.raises(ValueError, match=r"registers \['ping', 'pong'\] but its module declares"):
        build_router([feature((PING,), register)])


def test_a_command_registered_by_hand_with_its_declaration_builds() -> None:
    good = feature((PING,), lambda router: PING.register(router, cmd_ping))
    root = build_router([good])
    child, fallback = root.sub_routers
    (handler,) = child.message.handlers
    assert handler.flags["command"] is PING  # what the access middleware reads
    (command,) = [f.callback for f in handler.filters or () if isinstance(f.callback, Command)]
    assert command.commands == ("ping",)
    assert command.ignore_case  # /PING is /ping
    assert fallback.name == "fallback"  # the pointer to /help comes after every feature


def test_a_name_declared_twice_is_refused() -> None:
    twice = feature((PING,), lambda router: PING.register(router, cmd_ping))
    with pytest.raises(ValueError, match=r"more than once: \['ping'\]"):
        declared_commands([twice, twice])


@pytest.mark.parametrize("name", ["/ping", "Ping", "", "a" * 33, "pi ng"])
def test_a_name_telegram_would_refuse_is_refused_at_declaration(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        CommandSpec(name=name)
