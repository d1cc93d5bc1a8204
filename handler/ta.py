"""``/ta SYMBOL [INTERVAL | all] [futures] [live]``: the technical-analysis read-out of
``analysis.readout`` for one timeframe (1h unless named), or with ``all`` one row of votes per
timeframe (``analysis.overview``). Values are those of the last closed candle; ``live`` uses
the forming one and says so. Times are in the chat's ``/tz`` zone (UTC until set).

Arguments are checked before anything is sent; an unknown symbol is answered as ``/price``
answers it (the closest symbols), an unknown interval with the valid ones, a new listing with
how many candles exist. The indicator arithmetic runs off the event loop.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiogram import Router
from aiogram.utils.i18n import gettext as _

from analysis.candles import fetch_candles, valid_intervals
from analysis.errors import NotEnoughHistoryError, UnknownIntervalError
from analysis.overview import TIMEFRAMES, Row, overview_text
from analysis.readout import MIN_CANDLES, compute_readout, readout_text
from analysis.scoring import RULES
from analysis.words import N_
from handler.commands import CommandSpec
from handler.errors import user_text
from utils.binance.binance_a import BinanceError, BinanceUnknownSymbolError, Market
from utils.text import escape

if TYPE_CHECKING:
    from aiogram.filters import CommandObject
    from aiogram.types import Message

    from analysis.readout import Readout
    from utils.alarms.alarm_service import AlarmService
    from utils.binance.binance_a import BinanceClient

__all__ = ("COMMANDS", "DEFAULT_INTERVAL", "READOUT_CANDLES", "TA", "TaArgs", "get_router")

#: Closed candles a read-out is computed from: with the forming one, one klines call of
#: 1,000 rows (spot's maximum), enough for EMA200's seed to fade to ~3e-4 of its start.
READOUT_CANDLES: Final = 999
DEFAULT_INTERVAL: Final = "1h"
_INDICATORS: Final = N_(
    "Indicators (TA-Lib, on up to 999 closed candles, the last one shown): RSI(14) and "
    "ATR(14) Wilder-smoothed, ATR shown as % of the close; MACD(12,26,9) line, signal and "
    "histogram; EMA 20/50/200 and the close against each; Bollinger(20, 2 standard "
    "deviations): %B = (close - lower) / (upper - lower), 0 on the lower band, 1 on the "
    "upper; slow Stochastic(14,3,3) %K/%D; volume over its 20-candle average. Scoring of "
    "/ta SYMBOL all:"
)
TA = CommandSpec(
    name="ta",
    args="BTCUSDT [1h | all] [futures] [live]",
    menu=N_("Technical analysis: /ta btc 4h"),
    help=N_(
        "RSI, MACD, EMAs, Bollinger, ATR, Stochastic on the last closed candle;\n"
        "  all: a vote per timeframe; futures; live: the forming candle (more: /help ta)"
    ),
    detail=(_INDICATORS, *RULES),
)
COMMANDS = (TA,)

_INTERVAL_LIKE: Final = re.compile(r"\d+[a-zA-Z]{1,3}")
_FUTURES: Final = frozenset({"futures", "future", "perp", "perpetual", "f"})


class TaArgsError(ValueError):
    """The arguments are not a /ta request; the message is for the user."""


class TaArgs:
    """A parsed ``/ta``: symbol as typed (upper-cased), interval, market, ``all``, ``live``."""

    __slots__ = ("every", "interval", "live", "market", "symbol")

    def __init__(self, text: str | None) -> None:
        words = (text or "").split()
        if not words:
            raise TaArgsError(usage())
        self.symbol = words[0].replace("/", "").upper()
        self.interval, self.market = DEFAULT_INTERVAL, Market.SPOT
        self.every = self.live = False
        named: str | None = None
        for word in words[1:]:
            low = word.lower()
            if low == "all":
                self.every = True
            elif low == "live":
                self.live = True
            elif low in _FUTURES:
                self.market = Market.FUTURES
            elif _INTERVAL_LIKE.fullmatch(word):
                named = word
            else:
                raise TaArgsError(
                    _("“{word}” is not an interval or option of /ta.").format(
                        word=escape(word[:40])
                    )
                    + "\n"
                    + usage()
                )
        if named is not None:
            self.interval = _interval(named, self.market)


def usage() -> str:
    return _(
        "Usage: /ta SYMBOL [INTERVAL | all] [futures] [live] — for example /ta btc (1h), "
        "/ta ETHUSDT 4h, /ta btc all, /ta sol 15m futures live."
    )


async def cmd_ta(
    message: Message,
    command: CommandObject,
    binance: BinanceClient,
    alarms: AlarmService | None = None,
) -> None:
    try:
        args = TaArgs(command.args)
    except UnknownIntervalError as e:
        await message.answer(_interval_text(e))
        return
    except TaArgsError as e:
        await message.answer(str(e))
        return
    try:
        if args.every:
            text = await _overview(binance, args)
        else:
            readout = await _readout(binance, args.symbol, args.interval, args.market, args.live)
            zone = await _zone(alarms, message.chat.id)
            text = readout_text(readout, _, zone)
    except BinanceUnknownSymbolError as e:
        text = _unknown_symbol_text(e)
    except NotEnoughHistoryError as e:
        text = _history_text(args.symbol, args.interval, e)
    await message.answer(text)


async def _readout(
    binance: BinanceClient, symbol: str, interval: str, market: Market, live: bool
) -> Readout:
    candles = await fetch_candles(
        binance, symbol, interval, limit=READOUT_CANDLES, market=market, live=live
    )
    if len(candles.frame) < MIN_CANDLES:
        raise NotEnoughHistoryError(candles.available, MIN_CANDLES)
    return await asyncio.to_thread(compute_readout, candles)


async def _overview(binance: BinanceClient, args: TaArgs) -> str:
    results = await asyncio.gather(
        *(_readout(binance, args.symbol, i, args.market, args.live) for i in TIMEFRAMES),
        return_exceptions=True,
    )
    rows: list[Row] = []
    symbol = args.symbol
    for interval, result in zip(TIMEFRAMES, results, strict=True):
        if isinstance(result, BinanceUnknownSymbolError):
            raise result
        if isinstance(result, NotEnoughHistoryError):
            rows.append(Row(interval, None, _("only {have} candles").format(have=result.have)))
        elif isinstance(result, BinanceError):
            rows.append(Row(interval, None, user_text(result)))
        elif isinstance(result, BaseException):
            raise result
        else:
            rows.append(Row(interval, result))
            symbol = result.symbol
    if all(row.readout is None for row in rows) and isinstance(results[0], BinanceError):
        raise results[0]  # nothing read at all: the error router says why
    return overview_text(symbol, args.market, rows, _)


async def _zone(alarms: AlarmService | None, chat_id: int) -> ZoneInfo:
    name = await alarms.get_tz(chat_id) if alarms is not None else None
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _interval(word: str, market: Market) -> str:
    """``1h``, ``1H`` -> ``1h``; ``1M`` is a month, ``1m`` a minute."""
    valid = valid_intervals(market)
    if word in valid:
        return word
    if word.lower() in valid:
        return word.lower()
    raise UnknownIntervalError(word, valid)


def _interval_text(e: UnknownIntervalError) -> str:
    return _("“{interval}” is not a Binance interval. Valid ones: {valid}.").format(
        interval=escape(e.interval[:20]), valid=", ".join(e.valid)
    )


def _unknown_symbol_text(e: BinanceUnknownSymbolError) -> str:
    if e.suggestions:
        return _("unknown symbol {symbol} — did you mean {suggestions}?").format(
            symbol=escape(e.symbol), suggestions=escape(", ".join(e.suggestions))
        )
    return _("unknown symbol {symbol} — pairs are written like BTCUSDT").format(
        symbol=escape(e.symbol)
    )


def _history_text(symbol: str, interval: str, e: NotEnoughHistoryError) -> str:
    return _(
        "{symbol} has only {have} closed {interval} candles so far (a new listing?); "
        "/ta needs at least {need}. Try a shorter interval."
    ).format(symbol=escape(symbol), have=e.have, interval=escape(interval), need=e.need)


def get_router() -> Router:
    router = Router(name="ta")
    TA.register(router, cmd_ta)
    return router
