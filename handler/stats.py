"""``/stats`` (admins): requests, weight per pool against its limit, cache hit rate, breaker and
stream state, delivery queue depth, uptime."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiogram import Router
from aiogram.filters import Command

from handler.format import format_stats

if TYPE_CHECKING:
    from aiogram.types import Message

    from handler.deps import Delivery
    from utils.binance.binance_a import BinanceClient

__all__ = ("get_router",)


async def cmd_stats(
    message: Message, binance: BinanceClient, notifier: Delivery, started_at: float
) -> None:
    delivery = await notifier.stats()
    await message.answer(
        format_stats(binance.get_metrics(), delivery, time.monotonic() - started_at)
    )


def get_router() -> Router:
    router = Router(name="stats")
    router.message.register(cmd_stats, Command("stats"), flags={"access": "admin"})
    return router
