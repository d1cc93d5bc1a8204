"""``/price BTCUSDT [ETHUSDT …]``: spot price, futures mark, funding and 24 h change per symbol,
fetched together in one fan-out (``BinanceClient.get_prices``), as one aligned table.

The arguments are checked before anything is sent (``btc`` is BTCUSDT, ``eth/btc`` is
ETHBTC). When Binance does not answer, the user reads when the bot will retry; a background
task (``tasks``) retries with backoff for up to ``price_retry_s`` (``TELEGRAM_PRICE_RETRY_S``)
and edits the answer, or a last word, into that apology."""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import TYPE_CHECKING, Final

import structlog
from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import gettext as _

from handler.commands import N_, CommandSpec
from handler.errors import retry_in_s, user_text
from handler.format import format_prices
from utils.binance.binance_a import BinanceError
from utils.text import escape

if TYPE_CHECKING:
    from aiogram.filters import CommandObject
    from aiogram.types import Message

    from utils.binance.binance_a import BinanceClient
    from utils.tasks import BackgroundTasks

__all__ = (
    "COMMANDS",
    "DEFAULT_RETRY_BOUND_S",
    "MAX_SYMBOLS",
    "PRICE",
    "get_router",
    "parse_symbols",
)

MAX_SYMBOLS: Final = 10
PRICE = CommandSpec(
    name="price",
    args="BTCUSDT [ETHUSDT …]",
    menu=N_("Prices: /price btc eth"),
    help=N_(
        "spot and futures prices, funding, 24 h change\n"
        "  (a bare asset means its USDT pair: /price btc eth; a slash makes a pair:\n"
        "  /price eth/btc; up to 10 symbols)"
    ),
)
COMMANDS = (PRICE,)

#: How long a /price that met an outage keeps retrying (TELEGRAM_PRICE_RETRY_S).
DEFAULT_RETRY_BOUND_S: Final = 300.0
_MAX_WAIT_S: Final = 60.0  # the backoff doubles up to this, or to what the error says
_PARTIAL_WAIT_S: Final = 1.0  # first wait after a table with a part missing

_NAME: Final = re.compile(r"[A-Za-z0-9]{2,20}")
_PAIR: Final = re.compile(r"([A-Za-z0-9]{2,10})/([A-Za-z0-9]{2,10})")
_WORDS: Final = re.compile(r"[\s,;]+")
_SLASH: Final = re.compile(r"\s*/\s*")  # "eth / btc" is "eth/btc"
_log = structlog.get_logger(__name__)


class SymbolArgsError(ValueError):
    """The arguments are not symbol names; the message is for the user."""


def _symbol(word: str) -> str:
    """One symbol from one word: ``btc``, ``ETHBTC``, or base/quote joined (``eth/btc``)."""
    if "/" in word:
        pair = _PAIR.fullmatch(word)
        if pair is None:
            raise SymbolArgsError(
                _("“{word}” is not a pair: write base/quote, like ETH/BTC.").format(
                    word=escape(word[:40])
                )
            )
        return (pair[1] + pair[2]).upper()
    if not _NAME.fullmatch(word):
        raise SymbolArgsError(
            _("“{word}” is not a symbol name: use letters and digits, like BTCUSDT.").format(
                word=escape(word[:40])
            )
        )
    return word.upper()


def parse_symbols(args: str | None) -> list[str]:
    """Symbol names from the command's arguments, upper-cased, duplicates dropped. Spaces and
    commas separate symbols; a slash joins a base and a quote into one (``eth/btc``)."""
    names: list[str] = []
    for word in _WORDS.split(_SLASH.sub("/", args or "")):
        if word and (name := _symbol(word)) not in names:
            names.append(name)
    if len(names) > MAX_SYMBOLS:
        raise SymbolArgsError(
            _("Up to {limit} symbols at a time, please (you asked for {count}).").format(
                limit=MAX_SYMBOLS, count=len(names)
            )
        )
    return names


def usage() -> str:
    return _(
        "Usage: /price BTCUSDT [ETHUSDT …] — up to {limit} symbols; "
        "a bare asset means its USDT pair (/price btc), a slash makes a pair (/price eth/btc)."
    ).format(limit=MAX_SYMBOLS)


async def cmd_price(
    message: Message,
    command: CommandObject,
    binance: BinanceClient,
    tasks: BackgroundTasks,
    price_retry_s: float = DEFAULT_RETRY_BOUND_S,
) -> None:
    try:
        symbols = parse_symbols(command.args)
    except SymbolArgsError as e:
        await message.answer(str(e))
        return
    if not symbols:
        await message.answer(usage())
        return
    try:
        table, _whole = await _price_table(binance, symbols)
    except BinanceError as e:
        seconds = retry_in_s(e)
        if seconds is None:
            raise
        apology = user_text(e)
        reply = await message.answer(apology)
        retry = _Retry(reply, binance, symbols, shown=apology, bound_s=price_retry_s)
        tasks.spawn(retry.run(first_wait_s=seconds))
        return
    await message.answer(table)


async def _price_table(binance: BinanceClient, symbols: list[str]) -> tuple[str, bool]:
    """The table, and whether every part of it was read; a part that failed is named in the
    table in words, its reason logged here."""
    snapshots = await binance.get_prices(symbols)
    if errors := {name: snap.error for name, snap in snapshots.items() if snap.error}:
        _log.warning("price_incomplete", errors=errors)
    return format_prices(snapshots), not errors


class _Retry:
    """A /price that met an outage: asked again with backoff (never sooner than the error
    says: an open breaker's time, a Retry-After) until Binance answers or ``bound_s`` has
    passed. The apology says when the next try is; the answer, or a last word, replaces it.
    A table with a part missing (Binance coming back, or one market still down) is shown at
    once and asked for again, from a short wait up, until it is whole or time is up."""

    def __init__(
        self,
        reply: Message,
        binance: BinanceClient,
        symbols: list[str],
        *,
        shown: str,
        bound_s: float,
    ) -> None:
        self._reply, self._binance, self._symbols = reply, binance, symbols
        self._shown, self._bound_s = shown, bound_s
        self._deadline = time.monotonic() + bound_s

    async def run(self, *, first_wait_s: float) -> None:
        try:
            text = await self._answer(first_wait_s)
        except Exception as e:  # noqa: BLE001 - a background task: logged, the user told
            _log.error("price_retry_failed", error=repr(e), exc_info=e)
            text = _(
                "Sorry, something went wrong on my side. It has been logged; please try again."
            )
        await self._edit(text)

    def _remaining_s(self) -> float:
        return self._deadline - time.monotonic()

    async def _answer(self, wait_s: float) -> str:
        """The whole table once Binance answers; otherwise what the user should read last."""
        partial: str | None = None  # a table with a part missing, already shown
        partial_wait_s = _PARTIAL_WAIT_S / 2
        attempt = 0
        while True:
            await asyncio.sleep(max(0.0, min(wait_s, self._remaining_s())))
            attempt += 1
            try:
                table, whole = await _price_table(self._binance, self._symbols)
            except BinanceError as e:
                hint = retry_in_s(e)
                if hint is None:
                    return partial or user_text(e)
                if self._remaining_s() <= 0:
                    _log.info("price_retry_gave_up", attempts=attempt, error=str(e))
                    return partial or _(
                        "Binance did not answer for {seconds} s; please try /price again later."
                    ).format(seconds=round(self._bound_s))
                wait_s = min(max(float(hint), wait_s * 2), _MAX_WAIT_S, self._remaining_s())
                _log.debug("price_retry_waits", attempt=attempt, wait_s=round(wait_s, 1))
                if partial is None:
                    await self._edit(user_text(e, retry_s=max(1, math.ceil(wait_s))))
                continue
            if whole or self._remaining_s() <= 0:
                return table
            partial, partial_wait_s = table, min(partial_wait_s * 2, _MAX_WAIT_S)
            wait_s = partial_wait_s
            await self._edit(table)

    async def _edit(self, text: str) -> None:
        if text == self._shown:  # Telegram refuses an edit that changes nothing
            return
        try:
            await self._reply.edit_text(text)
        except TelegramAPIError as e:  # the apology deleted, the chat gone: nothing to fix
            _log.warning("price_retry_edit_failed", chat_id=self._reply.chat.id, error=str(e))
        else:
            self._shown = text


def get_router() -> Router:
    router = Router(name="price")
    PRICE.register(router, cmd_price)
    return router
