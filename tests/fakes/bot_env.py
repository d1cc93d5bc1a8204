"""The environment of a ``python -m bot`` process pointed at the fakes, as production configures
it (environment only; run it in a directory without a ``.env``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET

__all__ = ("ROOT", "fake_bot_env")

ROOT: Final = Path(__file__).resolve().parents[2]
_OURS: Final = (
    *("BINANCE_", "TELEGRAM_", "REDIS_", "BOT_", "ADMIN_", "WEBHOOK_", "ALLOWED_", "ALARM"),
)


def fake_bot_env(
    telegram_url: str, binance_url: str, token: str, **settings: str
) -> dict[str, str]:
    """This process's environment without any setting of ours, then the fakes' URLs, the
    test key pair the fake exchange knows, a free HTTP port, short polls, and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(
        PYTHONPATH=str(ROOT),
        BOT_TOKEN=token,
        TELEGRAM_API_URL=telegram_url,
        BINANCE_BASE_URL=binance_url,
        BINANCE_FUTURES_BASE_URL=binance_url,
        BINANCE_API_KEY=TEST_API_KEY,
        BINANCE_API_SECRET=TEST_API_SECRET,
        TELEGRAM_HTTP_PORT="0",
        TELEGRAM_POLLING_TIMEOUT_S="1",
    )
    env.update(settings)
    return env
