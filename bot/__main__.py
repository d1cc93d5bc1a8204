"""``python -m bot``: load and check the settings, set up logging, then start the bot.

The Telegram bot itself arrives in a later issue; for now this proves the configuration loads.
"""

from __future__ import annotations

import sys

import structlog

from utils.config import Settings
from utils.logging_setup import configure_logging, register_secret


def main() -> int:
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # SettingsError or BinanceConfigError, naming the variable
        sys.stderr.write(f"{exc}\n")
        return 2
    for secret in settings.secret_values():
        register_secret(secret)
    configure_logging(settings.logging)
    structlog.get_logger(__name__).info(
        "bot_not_implemented",
        detail="settings loaded; the Telegram bot arrives in a later issue",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
