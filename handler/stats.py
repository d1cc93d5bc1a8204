"""``/stats`` (admins, in a private chat only): requests, weight per pool against its limit,
cache hit rate, breaker and stream state, delivery queue depth, uptime."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiogram import Router

from handler.commands import N_, CommandSpec
from handler.format import format_stats

if TYPE_CHECKING:
    from aiogram.types import Message

    from handler.deps import Delivery
    from utils.binance.binance_a import BinanceClient

__all__ = ("COMMANDS", "STATS", "get_router")

STATS = CommandSpec(
    name="stats",
    menu=N_("Bot statistics (admins)"),
    help=N_("requests, rate limits, cache and delivery queue"),
    access="admin",
    private_only=True,  # operational figures are not for every member of a group
    private_reason=N_("Statistics are shown only in a private chat with me."),
)
COMMANDS = (STATS,)


async def cmd_stats(
    message: Message, binance: BinanceClient, notifier: Delivery, started_at: float
) -> None:
    delivery = await notifier.stats()
    await message.answer(
        format_stats(binance.get_metrics(), delivery, time.monotonic() - started_at)
    )


def get_router() -> Router:
    router = Router(name="stats")
    STATS.register(router, cmd_stats)
    return router
