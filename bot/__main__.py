"""``python -m bot`` (``make run``): load and check the settings, set up logging, run the bot.

With no ``BOT_TOKEN`` it stops with one line saying what to set and where.
"""

from __future__ import annotations

import asyncio
import sys

from utils.config import Settings
from utils.logging_setup import configure_logging, register_secret

SETUP_HINT = (
    "BOT_TOKEN is not set: put the token @BotFather gave you in .env "
    "(cp .env.example .env, then BOT_TOKEN=123456:ABC...) or in the environment.\n"
)


def main() -> int:
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # SettingsError or BinanceConfigError, naming the variable
        sys.stderr.write(f"{exc}\n")
        return 2
    if settings.telegram.bot_token is None:
        sys.stderr.write(SETUP_HINT)
        return 2
    for secret in settings.secret_values():
        register_secret(secret)
    configure_logging(settings.logging)
    from bot.app import run  # noqa: PLC0415 - aiogram loads only once the settings are sound

    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
