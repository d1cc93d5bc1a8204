"""aiogram routers, one per feature module, each declaring its commands beside its router.

``FEATURES`` is the one list of feature modules: the router tree (``build_router``), the
command menu in each language and ``/help`` (``declared_commands``) are built from it, in its
order. To add a command, declare a ``CommandSpec`` in the feature module's ``COMMANDS``,
register its handler with ``spec.register(router, callback)`` and, for a new module, add the
module here (then translate its texts: ``make locales-update``).

Handlers receive their services by name from the dispatcher's workflow data: ``binance``
(the ``BinanceClient``), ``notifier`` (``handler.deps.Delivery``), ``tasks``
(``utils.tasks.BackgroundTasks``), ``started_at``, ``commands`` (the declared commands),
``access`` (``handler.commands.AccessPolicy``), ``price_retry_s`` (how long ``/price``
retries during an outage), ``alarms`` (``utils.alarms.alarm_service.AlarmService``) and
``charts`` (``analysis.chart.Charts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiogram import Router
from aiogram.dispatcher.flags import get_flag

from handler import alarm, balance, chart, errors, fallback, price, start, stats, ta
from handler.commands import COMMAND_FLAG

if TYPE_CHECKING:
    from collections.abc import Sequence

    from handler.commands import CommandSpec, Feature

__all__ = ("FEATURES", "build_router", "declared_commands")

#: Every feature module, in the order of the menu and of /help; the error router last.
FEATURES: Final[tuple[Feature, ...]] = (price, alarm, ta, chart, balance, stats, start, errors)


def build_router(features: Sequence[Feature] = FEATURES) -> Router:
    """A fresh tree of routers (a router attaches to one parent only): the features' routers,
    then ``handler.fallback`` (a pointer to /help for what none of them took). Fails when a
    feature module's router does not register exactly the commands its module declares."""
    root = Router(name="handlers")
    for feature in features:
        router = feature.get_router()
        registered = {get_flag(handler, COMMAND_FLAG) for handler in router.message.handlers}
        registered.discard(None)
        if registered != set(feature.COMMANDS):
            raise ValueError(
                f"router {router.name!r} registers {sorted(s.name for s in registered)} but "
                f"its module declares {sorted(s.name for s in feature.COMMANDS)}: register "
                "every declared CommandSpec with spec.register(router, callback)"
            )
        root.include_router(router)
    root.include_router(fallback.get_router())  # last, whatever the features' order
    return root


def declared_commands(features: Sequence[Feature] = FEATURES) -> tuple[CommandSpec, ...]:
    """Every declared command, in ``features`` order; a name declared twice is refused."""
    commands = tuple(spec for feature in features for spec in feature.COMMANDS)
    names = [spec.name for spec in commands]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"commands declared more than once: {duplicates}")
    return commands
