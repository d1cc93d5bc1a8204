"""``python -m bot`` (``make run``): load and check the settings, set up logging, run the bot.

Whatever stops the bot (at start-up: a malformed setting, a key file that is missing or no
key, a token Telegram refuses, Telegram or Redis out of reach) ends in one line on stderr
saying what to fix, naming the variable, and a non-zero exit: 2 for a setting, 1 otherwise.
Never a traceback, never a secret: the token, keys and passwords are registered with the
log redactor before anything can print them, and that line, every log line and anything
Python itself would print pass through it. ``LOG_LEVEL=DEBUG`` adds the redacted traceback.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import sys
from typing import TYPE_CHECKING, Final

import structlog

from utils.config import Settings, SettingsError
from utils.logging_setup import configure_logging, redact_stderr, redact_text, register_secret

if TYPE_CHECKING:
    from utils.config import TelegramConfig

__all__ = ("SETUP_HINT", "explain", "main")

SETUP_HINT: Final = (
    "BOT_TOKEN is not set: put the token @BotFather gave you in .env "
    "(cp .env.example .env, then BOT_TOKEN=123456:ABC...) or in the environment.\n"
)
EXIT_SETTING: Final = 2
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130
_BIND_ERRORS: Final = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})

_log = structlog.get_logger(__name__)


def main() -> int:
    redact_stderr()
    try:
        settings = Settings.from_env()
    except Exception as exc:  # noqa: BLE001 - a SettingsError names the variable, hides secrets
        return _say(*explain(exc, None))
    if settings.telegram.bot_token is None:
        sys.stderr.write(SETUP_HINT)
        return EXIT_SETTING
    for secret in settings.secret_values():
        register_secret(secret)
    configure_logging(settings.logging)
    try:
        from bot.app import run  # noqa: PLC0415 - aiogram loads only once the settings are sound

        asyncio.run(run(settings))
    except KeyboardInterrupt:  # Ctrl-C before the bot's own signal handlers were set
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the process's last word: one line, no traceback
        _log.debug("bot_failed", exc_info=exc)  # redacted like every log line
        return _say(*explain(exc, settings.telegram))
    return 0


def explain(exc: BaseException, telegram: TelegramConfig | None) -> tuple[str, int]:
    """What stopped the bot, as one line saying what to fix, and the exit status."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, SettingsError):
        text = str(exc)
        if exc.variable and exc.variable not in text:
            text = f"{exc.variable}: {text}"
        return text, EXIT_SETTING
    if telegram is not None:
        if (line := _telegram_failure(exc, telegram)) is not None:
            return line, EXIT_FAILED
        if (line := _local_failure(exc, telegram)) is not None:
            return line, EXIT_FAILED
    if (line := _redis_failure(exc)) is not None:
        return line, EXIT_FAILED
    return (
        f"the bot stopped: {type(exc).__name__}: {exc} (LOG_LEVEL=DEBUG logs where)",
        EXIT_FAILED,
    )


def _telegram_failure(exc: BaseException, telegram: TelegramConfig) -> str | None:
    from aiogram.exceptions import (  # noqa: PLC0415 - loaded by bot.app already
        TelegramAPIError,
        TelegramNetworkError,
        TelegramNotFound,
        TelegramUnauthorizedError,
    )

    server = telegram.api_url or "https://api.telegram.org"
    if isinstance(exc, TelegramUnauthorizedError):
        return (
            f"Telegram refused BOT_TOKEN ({exc.message}): it is wrong or was revoked; set "
            "BOT_TOKEN to the token @BotFather shows for your bot (/mybots, API Token)"
        )
    if isinstance(exc, TelegramNotFound):
        return (
            f"{server} does not know this bot ({exc.message}): check BOT_TOKEN, and "
            "TELEGRAM_API_URL if you run your own Bot API server"
        )
    if isinstance(exc, TelegramNetworkError):
        return (
            f"Telegram is unreachable at {server} ({exc.message}): check the network, or "
            "TELEGRAM_API_URL if you run your own Bot API server"
        )
    if isinstance(exc, TelegramAPIError):
        return f"Telegram refused to start the bot ({exc.message}): check BOT_TOKEN"
    return None


def _local_failure(exc: BaseException, telegram: TelegramConfig) -> str | None:
    if isinstance(exc, OSError) and exc.errno in _BIND_ERRORS:
        return (
            f"cannot serve HTTP on {telegram.http_host}:{telegram.http_port} "
            f"({exc.strerror}): change TELEGRAM_HTTP_HOST or TELEGRAM_HTTP_PORT "
            "(0 picks a free port)"
        )
    if isinstance(exc, sqlite3.Error):
        return (
            f"a SQLite file of the bot is not usable ({exc}): check TELEGRAM_OUTBOX_PATH "
            f"({telegram.outbox_path}) and TELEGRAM_INTAKE_PATH ({telegram.intake_file}) and "
            "their directories' permissions, or set REDIS_URL"
        )
    return None


def _redis_failure(exc: BaseException) -> str | None:
    from redis import exceptions as redis_errors  # noqa: PLC0415 - light; redis is a dependency

    if isinstance(exc, redis_errors.AuthenticationError):
        return f"Redis refused the credentials in REDIS_URL ({exc}): fix REDIS_URL"
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return (
            f"Redis is unreachable ({exc}): start it or fix REDIS_URL (an empty REDIS_URL "
            "keeps the queue and the rate limiter in this process)"
        )
    if isinstance(exc, redis_errors.RedisError):
        return f"Redis failed ({type(exc).__name__}: {exc}): check REDIS_URL and the server"
    return None


def _say(line: str, status: int) -> int:
    """Write ``line`` to stderr as exactly one line, secrets masked; returns ``status``."""
    sys.stderr.write(redact_text(" ".join(line.split())) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
