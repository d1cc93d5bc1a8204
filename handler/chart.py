"""``/chart BTCUSDT [interval] [candles] [futures]``: a candlestick picture (volume, EMA 20/50,
Bollinger(20, 2), RSI(14)) of the last closed candles, as a photo with a caption and buttons
(15m 1h 4h 1d) that redraw it at another interval in the same message (editMessageMedia).

Defaults: ``1h`` and 100 candles (as ``/ta``, whose default interval is 1h); 20 to 1,000
candles. The words after the symbol may come in any order. Drawing happens off the event loop
(``analysis.chart_pool``) and at most once per closed candle (``analysis.chart.Charts``, injected
as ``charts``); once Telegram has a chart, it is sent again by its ``file_id``, not uploaded.
Photos are direct replies, paced like every reply by the bot's session middlewares.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import structlog
from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.i18n import gettext as _

from analysis.candles import valid_intervals
from analysis.chart import DEFAULT_CANDLES, DEFAULT_INTERVAL, MAX_SHOWN, MIN_SHOWN
from analysis.chart_pool import ChartRenderError
from analysis.errors import (
    AnalysisInputError,
    LimitOutOfRangeError,
    NotEnoughHistoryError,
    UnknownIntervalError,
)
from handler.commands import N_, CommandSpec
from handler.errors import user_text
from handler.format import fmt_price
from handler.price import SymbolArgsError, parse_symbols
from utils.binance.binance_a import BinanceError, BinanceUnknownSymbolError, Market
from utils.text import escape

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.filters import CommandObject
    from aiogram.types import CallbackQuery

    from analysis.chart import ChartImage, Charts
    from utils.binance.binance_a import BinanceClient

__all__ = ("BUTTON_INTERVALS", "CHART", "COMMANDS", "ChartButton", "ChartRequest", "get_router")

CHART = CommandSpec(
    name="chart",
    args="SYMBOL [interval] [candles] [futures]",
    menu=N_("Candlestick chart: /chart btc 4h"),
    help=N_(
        "a candlestick chart with volume, EMA 20/50, Bollinger bands (20, 2) and RSI(14)\n"
        "  of the last closed candles: /chart btc 4h 200 (1h and 100 candles unless given,\n"
        "  20 to 1000); buttons switch between 15m, 1h, 4h and 1d"
    ),
)
COMMANDS = (CHART,)

#: The intervals the buttons under a chart switch between.
BUTTON_INTERVALS: Final = ("15m", "1h", "4h", "1d")
_CURRENT: Final = "• "  # marks the button of the interval shown
_FILE_NAME: Final = "chart.png"
_ANSWER_LIMIT: Final = 200  # answerCallbackQuery's text
_INTERVAL_LIKE: Final = re.compile(r"\d+[a-zA-Z]")
_log = structlog.get_logger(__name__)


class ChartButton(CallbackData, prefix="chart"):
    """A button under a chart: draw ``symbol`` at ``interval`` (``chart:BTCUSDT:4h:100:0``)."""

    symbol: str
    interval: str
    limit: int
    futures: bool


@dataclass(frozen=True, slots=True)
class ChartRequest:
    """What ``/chart`` or a button asked for, checked (no request made yet)."""

    symbol: str
    interval: str
    limit: int
    market: Market

    @classmethod
    def of(cls, button: ChartButton) -> ChartRequest:
        market = Market.FUTURES if button.futures else Market.SPOT
        return cls(button.symbol, button.interval, button.limit, market)


class _ArgsError(ValueError):
    """The arguments cannot be a chart request; the message is for the user."""


def parse_args(args: str | None) -> ChartRequest | None:
    """The request in ``/chart``'s arguments; None when there are none (show the usage)."""
    words = (args or "").split()
    if not words:
        return None
    try:
        names = parse_symbols(words[0])
    except SymbolArgsError as e:
        raise _ArgsError(str(e)) from None
    interval, limit, futures = DEFAULT_INTERVAL, DEFAULT_CANDLES, False
    for word in words[1:]:
        lower = word.lower()
        if lower in ("futures", "perp", "spot"):
            futures = lower != "spot"
        elif word.isdigit():
            limit = int(word)
        elif _INTERVAL_LIKE.fullmatch(word):
            interval = word if word in valid_intervals(Market.SPOT) else lower
        else:
            raise _ArgsError(
                _("“{word}” is neither an interval nor a candle count.").format(
                    word=escape(word[:40])
                )
                + "\n"
                + usage()
            )
    market = Market.FUTURES if futures else Market.SPOT
    if interval not in valid_intervals(market):
        raise UnknownIntervalError(interval, valid_intervals(market))
    if not MIN_SHOWN <= limit <= MAX_SHOWN:
        raise LimitOutOfRangeError(limit, MIN_SHOWN, MAX_SHOWN)
    return ChartRequest(names[0], interval, limit, market)


def usage() -> str:
    return _(
        "Usage: /chart SYMBOL [interval] [candles] [futures], for example /chart btc 4h 200. "
        "The interval is {interval} and the candle count {count} unless given ({low} to {high})."
    ).format(interval=DEFAULT_INTERVAL, count=DEFAULT_CANDLES, low=MIN_SHOWN, high=MAX_SHOWN)


async def cmd_chart(
    message: Message, command: CommandObject, bot: Bot, binance: BinanceClient, charts: Charts
) -> None:
    try:
        request = parse_args(command.args)
    except (_ArgsError, AnalysisInputError) as e:
        await message.answer(_refusal(e))
        return
    if request is None:
        await message.answer(usage())
        return
    try:
        request = await _resolved(binance, request)
        image = charts.cached(
            binance, request.symbol, request.interval, request.limit, request.market
        )
        if image is None:  # drawn now: the user sees "sending a photo…" meanwhile
            async with ChatActionSender.upload_photo(chat_id=message.chat.id, bot=bot):
                image = await _chart(binance, charts, request)
    except (AnalysisInputError, BinanceUnknownSymbolError, ChartRenderError) as e:
        await message.answer(_refusal(e, request))
        return
    await _send(message, charts, image)


async def on_interval(
    query: CallbackQuery, callback_data: ChartButton, binance: BinanceClient, charts: Charts
) -> None:
    """A button under a chart: the same message shows the chart at the button's interval."""
    message = query.message
    if not isinstance(message, Message):  # too old for Telegram to hand over
        await query.answer(_("This chart is too old to change; send /chart again."))
        return
    if callback_data.interval == _shown_interval(message):
        await query.answer(
            _("Already showing {interval}.").format(interval=callback_data.interval)
        )
        return
    request = ChartRequest.of(callback_data)
    try:
        image = await _chart(binance, charts, request)
    except (AnalysisInputError, BinanceError, ChartRenderError) as e:
        text = user_text(e) if isinstance(e, BinanceError) else _refusal(e, request)
        await query.answer(_plain(text)[:_ANSWER_LIMIT], show_alert=True)
        return
    await _edit(message, charts, image)
    await query.answer()


# --- the work ---------------------------------------------------------------------------
async def _resolved(binance: BinanceClient, request: ChartRequest) -> ChartRequest:
    """The request with Binance's symbol (``btc`` is ``BTCUSDT`` when ``BTC`` is none);
    ``BinanceUnknownSymbolError`` with suggestions when there is none such."""
    rules = await binance.symbol_rules(request.market)
    name = request.symbol
    if rules.get(name) is None and rules.get(f"{name}USDT") is not None:
        name = f"{name}USDT"
    rules.require(name)
    return replace(request, symbol=name)


async def _chart(binance: BinanceClient, charts: Charts, request: ChartRequest) -> ChartImage:
    return await charts.get(
        binance, request.symbol, request.interval, request.limit, request.market
    )


async def _send(message: Message, charts: Charts, image: ChartImage) -> None:
    caption, markup = _caption(image), _keyboard(image)
    if image.file_id is not None:
        try:
            await message.answer_photo(image.file_id, caption=caption, reply_markup=markup)
        except TelegramBadRequest as e:  # Telegram no longer knows it: upload the bytes
            _log.warning("chart_file_id_refused", file_id=image.file_id, error=str(e))
            image.file_id = None
        else:
            return
    sent = await message.answer_photo(
        BufferedInputFile(image.png, _FILE_NAME), caption=caption, reply_markup=markup
    )
    _remember(charts, image, sent)


async def _edit(message: Message, charts: Charts, image: ChartImage) -> None:
    def media(photo: str | BufferedInputFile) -> InputMediaPhoto:
        return InputMediaPhoto(media=photo, caption=_caption(image))

    markup = _keyboard(image)
    if image.file_id is not None:
        try:
            await message.edit_media(media(image.file_id), reply_markup=markup)
        except TelegramBadRequest as e:
            _log.warning("chart_file_id_refused", file_id=image.file_id, error=str(e))
            image.file_id = None
        else:
            return
    edited = await message.edit_media(
        media(BufferedInputFile(image.png, _FILE_NAME)), reply_markup=markup
    )
    if isinstance(edited, Message):
        _remember(charts, image, edited)


def _remember(charts: Charts, image: ChartImage, sent: Message) -> None:
    if sent.photo:  # the largest size comes last; its file_id sends the picture as drawn
        charts.uploaded(image.key, sent.photo[-1].file_id)


# --- texts ------------------------------------------------------------------------------
def _caption(image: ChartImage) -> str:
    s = image.summary
    lines = [
        f"<b>{escape(s.symbol)}</b> · {escape(s.interval)} · {_market(s.market)}",
        _("Last close: {price} ({time} UTC)").format(
            price=fmt_price(Decimal(repr(s.last_close))),
            time=s.closed_at.strftime("%Y-%m-%d %H:%M"),
        ),
        _("Change over {count} candles: {change}").format(
            count=s.shown, change=f"{s.change_pct:+.2f}%"
        ),
    ]
    if s.shown < s.limit:
        lines.append(_("Only {count} closed candles exist; all are shown.").format(count=s.shown))
    return "\n".join(lines)


def _market(market: Market) -> str:
    return _("futures") if market is Market.FUTURES else _("spot")


def _keyboard(image: ChartImage) -> InlineKeyboardMarkup:
    key = image.key
    futures = key.market is Market.FUTURES
    row = [
        InlineKeyboardButton(
            text=f"{_CURRENT}{interval}" if interval == key.interval else interval,
            callback_data=ChartButton(
                symbol=key.symbol, interval=interval, limit=key.limit, futures=futures
            ).pack(),
        )
        for interval in BUTTON_INTERVALS
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


def _shown_interval(message: Message) -> str | None:
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.text.startswith(_CURRENT):
                return button.text.removeprefix(_CURRENT)
    return None


def _refusal(error: Exception, request: ChartRequest | None = None) -> str:
    """The sentence a user reads for a request that cannot be drawn as asked."""
    if isinstance(error, UnknownIntervalError):
        return _("“{interval}” is not an interval. Valid intervals: {valid}.").format(
            interval=escape(error.interval[:20]), valid=", ".join(error.valid)
        )
    if isinstance(error, LimitOutOfRangeError):
        return _("A chart shows from {low} to {high} candles; you asked for {count}.").format(
            low=error.lo, high=error.hi, count=error.limit
        )
    if isinstance(error, NotEnoughHistoryError) and request is not None:
        return _(
            "{symbol} has only {count} closed {interval} candles; a chart needs at least {need}."
        ).format(
            symbol=escape(request.symbol),
            count=error.have,
            interval=request.interval,
            need=error.need,
        )
    if isinstance(error, BinanceUnknownSymbolError):  # worded as /price words it
        if error.suggestions:
            return _("unknown symbol {symbol} — did you mean {suggestions}?").format(
                symbol=escape(error.symbol), suggestions=escape(", ".join(error.suggestions))
            )
        return _("unknown symbol {symbol} — pairs are written like BTCUSDT").format(
            symbol=escape(error.symbol)
        )
    if isinstance(error, ChartRenderError):
        return _("The chart could not be drawn; please try again.")
    return escape(str(error))


def _plain(html_text: str) -> str:
    """A callback answer is plain text: no tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def get_router() -> Router:
    router = Router(name="chart")
    CHART.register(router, cmd_chart)
    router.callback_query.register(on_interval, ChartButton.filter())
    return router
