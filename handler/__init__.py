"""aiogram routers, one per feature, gathered by ``build_router``.

Handlers receive their services by name from the dispatcher's workflow data: ``binance``
(the ``BinanceClient``), ``notifier`` (``handler.deps.Delivery``), ``tasks``
(``handler.deps.BackgroundTasks``), ``started_at`` and ``access`` (``AccessPolicy``).
"""

from __future__ import annotations

from aiogram import Router

from handler import balance, errors, price, start, stats

__all__ = ("build_router",)


def build_router() -> Router:
    """A fresh tree of routers (a router attaches to one parent only)."""
    root = Router(name="handlers")
    root.include_routers(
        start.get_router(),
        price.get_router(),
        balance.get_router(),
        stats.get_router(),
        errors.get_router(),
    )
    return root
