"""Errors as users read them: a ``BinanceError`` becomes one specific sentence, anything else
is logged with the update id and answered with a short apology. Never a stack trace.

A store that is briefly away (Redis restarting, a cluster failover: ``STORE_UNAVAILABLE``) is
no error to apologise for: while the receiver says it will try the update again
(``store_retry=True``), the error goes back to it, and the user gets the answer a moment later."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import structlog
from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.utils.i18n import gettext as _

from utils.binance.binance_a import (
    BinanceAPIError,
    BinanceCircuitOpenError,
    BinanceCredentialsError,
    BinanceError,
    BinanceInputError,
    BinanceRateLimitError,
    BinanceTransportError,
)
from utils.redis_conn import STORE_UNAVAILABLE
from utils.text import escape

if TYPE_CHECKING:
    from aiogram.types import ErrorEvent

    from handler.commands import CommandSpec

__all__ = ("COMMANDS", "get_router", "retry_in_s", "user_text")

COMMANDS: Final[tuple[CommandSpec, ...]] = ()  # the error router answers no command

#: When Binance does not answer and no breaker says when it will be tried again.
DEFAULT_RETRY_S: Final = 5
_SERVER_ERROR: Final = 500
_log = structlog.get_logger(__name__)


def retry_in_s(error: BaseException) -> int | None:
    """Seconds until Binance is worth asking again, or None when waiting will not help."""
    if isinstance(error, BinanceCircuitOpenError):
        return max(1, math.ceil(error.retry_in_s))
    if isinstance(error, BinanceRateLimitError):
        return max(1, math.ceil(error.retry_after_s))
    if isinstance(error, BinanceTransportError) or (
        isinstance(error, BinanceAPIError) and error.http_status >= _SERVER_ERROR
    ):
        return DEFAULT_RETRY_S
    return None


def user_text(error: BinanceError, *, retry_s: int | None = None) -> str:
    """One sentence that names what went wrong and what happens next; ``retry_s`` is when
    the caller will retry, when it knows better than the error (a backoff)."""
    seconds = retry_in_s(error)
    if seconds is not None and retry_s is not None:
        seconds = retry_s
    if isinstance(error, BinanceRateLimitError):
        return _("Binance's rate limit is used up; I will retry in {seconds} s.").format(
            seconds=seconds
        )
    if seconds is not None:
        return _("Binance is not answering, I will retry in {seconds} s.").format(seconds=seconds)
    if isinstance(error, BinanceCredentialsError):
        return _("This bot has no Binance API key configured, so it cannot read balances.")
    if isinstance(error, BinanceInputError):
        return escape(str(error))
    return _("Binance refused the request: {reason}").format(reason=escape(str(error)))


async def on_binance_error(event: ErrorEvent) -> None:
    error = event.exception
    assert isinstance(error, BinanceError)  # noqa: S101 - guaranteed by the filter
    _log.warning("handler_binance_error", update_id=event.update.update_id, error=str(error))
    if event.update.message is not None:
        await event.update.message.answer(user_text(error))


async def on_error(event: ErrorEvent) -> None:
    _log.error(
        "handler_failed",
        update_id=event.update.update_id,
        error=repr(event.exception),
        exc_info=event.exception,
    )
    if event.update.message is not None:
        await event.update.message.answer(
            _("Sorry, something went wrong on my side. It has been logged; please try again.")
        )


async def on_store_unavailable(event: ErrorEvent, store_retry: bool = False) -> None:
    """Back to the receiver, which tries the update again; on its last try, as any error."""
    if store_retry:
        _log.warning(
            "handler_store_unavailable",
            update_id=event.update.update_id,
            error=repr(event.exception),
        )
        raise event.exception
    await on_error(event)


def get_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_binance_error, ExceptionTypeFilter(BinanceError))
    router.errors.register(on_store_unavailable, ExceptionTypeFilter(*STORE_UNAVAILABLE))
    router.errors.register(on_error)
    return router
