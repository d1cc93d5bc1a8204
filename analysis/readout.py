"""The ``/ta`` read-out: every indicator's value on one candle, the crosses of the last few
candles, a one-line summary in words and a footer that says how it was computed.

``compute_readout`` (pure, CPU: run it off the event loop) turns ``Candles`` into a
``Readout`` of plain numbers; ``readout_text`` words it in the reader's language and time zone
(Telegram HTML, every value escaped or numeric). The values are those of the last closed
candle, or of the forming one when the candles are ``live``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from analysis import indicators as ind
from analysis.candles import interval_step
from analysis.errors import NotEnoughHistoryError
from analysis.signals import (
    VOLUME_SPIKE,
    Cross,
    Direction,
    Level,
    last_cross,
    rsi_level,
    stoch_level,
)
from analysis.words import ago_text, number_text, price_text, time_text
from utils.binance.binance_a import Market
from utils.text import escape

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import pandas as pd

    from analysis.candles import Candles, Gap
    from analysis.words import Gettext

__all__ = (
    "CROSS_WINDOW",
    "EMA_PERIODS",
    "MIN_CANDLES",
    "SEEDED_BELOW",
    "Readout",
    "compute_readout",
    "readout_text",
    "summary_text",
)

EMA_PERIODS: Final = (20, 50, 200)
#: Crosses older than this many candles are not news.
CROSS_WINDOW: Final = 10
#: The fewest candles a read-out needs: MACD(12,26,9)'s first value and one before it.
MIN_CANDLES: Final = ind.needed("MACD", fastperiod=12, slowperiod=26, signalperiod=9) + 1
#: Below this many candles the smoothing's seed may still show in the last value.
SEEDED_BELOW: Final = 500


@dataclass(frozen=True, slots=True)
class Readout:
    """The indicators on one candle; ``None`` where the history is too short (EMA200 of a
    new listing), ``volume_ratio`` None when nothing traded over its window."""

    symbol: str
    interval: str
    market: Market
    live: bool  # the candle is still forming
    candle_open: datetime
    candle_close: datetime
    next_close: datetime
    bars: int  # candles the values were computed from
    gaps: tuple[Gap, ...]
    close: float
    rsi: float
    macd: float
    macd_signal: float
    macd_hist: float
    emas: tuple[tuple[int, float | None], ...]
    percent_b: float
    atr_pct: float
    stoch_k: float
    stoch_d: float
    volume_ratio: float | None
    macd_cross: Cross | None
    ema_crosses: tuple[tuple[int, Cross], ...]  # close over an EMA, within CROSS_WINDOW
    trend_cross: Cross | None  # EMA50 over EMA200 (golden: up, death: down)

    @property
    def ema(self) -> dict[int, float | None]:
        return dict(self.emas)


def compute_readout(candles: Candles) -> Readout:
    """The read-out of ``candles``' last row. Raises ``NotEnoughHistoryError`` below
    ``MIN_CANDLES``."""
    frame = candles.frame
    if len(frame) < MIN_CANDLES:
        raise NotEnoughHistoryError(len(frame), MIN_CANDLES)
    close = frame["close"]
    mac = ind.macd(frame)
    bands = ind.bollinger(frame)
    stoch = ind.stochastic(frame)
    ema_series = {p: ind.ema(frame, p) for p in EMA_PERIODS if len(frame) >= p}
    ratio = _last(ind.volume_ratio(frame))
    last_open: pd.Timestamp = frame.index[-1]
    opened = last_open.to_pydatetime()
    return Readout(
        symbol=candles.symbol,
        interval=candles.interval,
        market=candles.market,
        live=candles.live,
        candle_open=opened,
        candle_close=(last_open + interval_step(candles.interval)).to_pydatetime(),
        next_close=candles.next_close,
        bars=len(frame),
        gaps=candles.gaps,
        close=float(close.iloc[-1]),
        rsi=_value(ind.rsi(frame)),
        macd=_value(mac["macd"]),
        macd_signal=_value(mac["signal"]),
        macd_hist=_value(mac["hist"]),
        emas=tuple((p, _last(ema_series[p]) if p in ema_series else None) for p in EMA_PERIODS),
        percent_b=_value(bands["percent_b"]),
        atr_pct=_value(ind.atr_percent(frame)),
        stoch_k=_value(stoch["k"]),
        stoch_d=_value(stoch["d"]),
        volume_ratio=ratio,
        macd_cross=last_cross(mac["macd"], mac["signal"], within=CROSS_WINDOW),
        ema_crosses=tuple(
            (p, cross)
            for p, series in ema_series.items()
            if (cross := last_cross(close, series, within=CROSS_WINDOW)) is not None
        ),
        trend_cross=(
            last_cross(ema_series[50], ema_series[200], within=CROSS_WINDOW)
            if 200 in ema_series  # noqa: PLR2004 - the EMA200 of EMA_PERIODS
            else None
        ),
    )


def readout_text(r: Readout, _: Gettext, zone: ZoneInfo) -> str:
    """The whole ``/ta`` answer: head, table, summary, footer."""
    market = _("futures") if r.market is Market.FUTURES else _("spot")
    if r.live:
        head = _("Price now {price} · forming candle, closes {time}").format(
            price=f"<b>{price_text(r.close)}</b>", time=time_text(r.next_close, zone)
        )
    else:
        head = _("Close {price} · candle closed {time}").format(
            price=f"<b>{price_text(r.close)}</b>", time=time_text(r.candle_close, zone)
        )
    lines = [f"<b>{escape(r.symbol)} {escape(r.interval)}</b> · {market}", head, ""]
    lines.append(f"<pre>{escape(_table(r, _))}</pre>")
    lines.append(f"<i>{escape(summary_text(r, _))}</i>")
    lines.append("")
    lines.append(escape(_footer(r, _, zone)))
    return "\n".join(lines)


def summary_text(r: Readout, _: Gettext) -> str:
    """One line: ``RSI 74 overbought · above EMA200 · MACD crossed down 3 bars ago``."""
    parts = [_rsi_words(r, _)]
    trend = next(((p, v) for p, v in reversed(r.emas) if v is not None), None)
    if trend is not None and r.close != trend[1]:
        side = _("above EMA{period}") if r.close > (trend[1] or 0) else _("below EMA{period}")
        parts.append(side.format(period=trend[0]))
    if r.macd_cross is not None:
        crossed = (
            _("MACD crossed up {ago}")
            if r.macd_cross.direction is Direction.UP
            else _("MACD crossed down {ago}")
        )
        parts.append(crossed.format(ago=ago_text(r.macd_cross.bars_ago, _)))
    for period, cross in r.ema_crosses:
        words = (
            _("crossed above EMA{period} {ago}")
            if cross.direction is Direction.UP
            else _("crossed below EMA{period} {ago}")
        )
        parts.append(words.format(period=period, ago=ago_text(cross.bars_ago, _)))
    if r.trend_cross is not None:
        words = (
            _("golden cross (EMA50 over EMA200) {ago}")
            if r.trend_cross.direction is Direction.UP
            else _("death cross (EMA50 under EMA200) {ago}")
        )
        parts.append(words.format(ago=ago_text(r.trend_cross.bars_ago, _)))
    if r.percent_b > 1:
        parts.append(_("above the upper Bollinger band"))
    elif r.percent_b < 0:
        parts.append(_("below the lower Bollinger band"))
    level = stoch_level(r.stoch_k)
    if level is Level.OVERBOUGHT:
        parts.append(_("Stochastic overbought"))
    elif level is Level.OVERSOLD:
        parts.append(_("Stochastic oversold"))
    if r.volume_ratio is not None and r.volume_ratio >= VOLUME_SPIKE:
        parts.append(_("volume {ratio}x its average").format(ratio=number_text(r.volume_ratio, 1)))
    return " · ".join(parts)


# --- private helpers ---------------------------------------------------------------------
def _rsi_words(r: Readout, _: Gettext) -> str:
    value = number_text(r.rsi, 0)
    level = rsi_level(r.rsi)
    if level is Level.OVERBOUGHT:
        return _("RSI {value} overbought").format(value=value)
    if level is Level.OVERSOLD:
        return _("RSI {value} oversold").format(value=value)
    return f"RSI {value}"


def _table(r: Readout, _: Gettext) -> str:
    rows: list[tuple[str, str]] = [
        ("RSI(14)", number_text(r.rsi, 1)),
        (
            "MACD(12,26,9)",
            " / ".join(
                (price_text(r.macd), price_text(r.macd_signal), _signed_price(r.macd_hist))
            ),
        ),
    ]
    for period, value in r.emas:
        if value is None:
            shown = _("needs {need} candles").format(need=period)
        else:
            shown = (
                f"{price_text(value)}  {number_text((r.close / value - 1) * 100, 2, signed=True)}%"
            )
        rows.append((f"EMA{period}", shown))
    rows += [
        ("Bollinger %B", number_text(r.percent_b, 2)),
        ("ATR(14)", _("{pct}% of price").format(pct=number_text(r.atr_pct, 2))),
        ("Stoch(14,3,3)", f"{number_text(r.stoch_k, 1)} / {number_text(r.stoch_d, 1)}"),
        (_("Volume"), _volume(r, _)),
    ]
    width = max(len(label) for label, _value in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def _volume(r: Readout, _: Gettext) -> str:
    if r.volume_ratio is None:
        return _("nothing traded over 20 candles")
    return _("{ratio}x its 20-candle average").format(ratio=number_text(r.volume_ratio, 2))


def _signed_price(value: float) -> str:
    text = price_text(value)
    return text if text.startswith("-") or value == 0 else f"+{text}"


def _footer(r: Readout, _: Gettext, zone: ZoneInfo) -> str:
    if r.live:
        candle = _(
            "Candle: the forming {interval} one opened {time} (live: it moves until it closes)"
        )
    else:
        candle = _("Candle: the last closed {interval} one, opened {time}")
    parts = [candle.format(interval=r.interval, time=time_text(r.candle_open, zone))]
    parts.append(_("{bars} candles of history").format(bars=r.bars))
    if r.bars < SEEDED_BELOW:
        parts.append(
            _("fewer than {seeded}: early smoothing may still show").format(seeded=SEEDED_BELOW)
        )
    if r.gaps:
        missing = sum(g.missing for g in r.gaps)
        parts.append(
            _("{missing} candles missing in {gaps} gaps, bridged").format(
                missing=missing, gaps=len(r.gaps)
            )
        )
    parts.append(_("RSI and ATR are Wilder-smoothed"))
    if not r.live:
        parts.append(_("next candle closes {time}").format(time=time_text(r.next_close, zone)))
    return " · ".join(parts) + "."


def _last(series: pd.Series) -> float | None:
    value = float(series.iloc[-1]) if len(series) else math.nan
    return value if math.isfinite(value) else None


def _value(series: pd.Series) -> float:
    """The last value; NaN can only come from a NaN row, which ``Candles`` never holds."""
    value = _last(series)
    return math.nan if value is None else value
