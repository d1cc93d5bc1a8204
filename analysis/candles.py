"""Candles for analysis: the one module of ``analysis/`` that fetches klines (through
``utils.binance.binance_a`` only).

``fetch_candles`` answers the last ``limit`` CLOSED candles of a symbol, oldest first, and
says which candle is forming and when it closes. It asks Binance for one row more than
``limit`` (the forming candle comes last in Binance's answer) and pages backwards with
``endTime`` when that is more than one call's maximum (1,000 spot, 1,500 futures). The frame
never holds the forming candle unless ``live=True``, never a NaN row (one NaN would poison
every later TA-Lib value), and its missing spans are listed in ``gaps``: the rows on each side
of a gap stay consecutive bars, as on Binance's and TradingView's charts (see
``analysis.indicators`` for why).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from analysis.errors import LimitOutOfRangeError, UnknownIntervalError
from utils.binance.binance_a import KlineInterval, Market

if TYPE_CHECKING:
    from utils.binance.binance_a import BinanceClient

__all__ = (
    "MAX_CANDLES",
    "Candles",
    "Gap",
    "fetch_candles",
    "find_gaps",
    "frame_from_rows",
    "interval_step",
    "resolve_symbol",
    "valid_intervals",
)

#: Most closed candles one ``fetch_candles`` may ask for (two spot calls at most).
MAX_CANDLES: Final = 1500
#: Most rows one klines call answers, per market (Binance's documented maxima).
_PAGE: Final = {Market.SPOT: 1000, Market.FUTURES: 1500}
_COLUMNS: Final = ("open", "high", "low", "close", "volume")
_CLOSE_TIME: Final = 6  # index of closeTime in a Binance kline row
_MONTH: Final = "1M"


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles Binance did not list (an outage, a halted market): ``missing`` candles whose
    open times run from ``start`` (the first missing one) to ``end`` (the last one)."""

    start: datetime
    end: datetime
    missing: int


@dataclass(frozen=True, slots=True)
class Candles:
    """Klines ready for TA-Lib.

    ``frame``: index ``open_time`` (UTC ``DatetimeIndex``), float columns ``open``, ``high``,
    ``low``, ``close``, ``volume``, oldest first, closed candles only unless ``live`` (then
    the last row is the forming candle), no NaN. ``available`` is how many closed candles
    Binance had, at most the ``limit`` asked (fewer: a new listing). ``next_close`` is when
    the forming candle closes (aware UTC).
    """

    symbol: str
    interval: str
    market: Market
    frame: pd.DataFrame
    live: bool
    next_close: datetime
    available: int
    gaps: tuple[Gap, ...]

    @property
    def last_open_time(self) -> datetime:
        """Open time of the last row (the forming candle's when ``live``): a chart's cache key."""
        stamp: pd.Timestamp = self.frame.index[-1]
        return stamp.to_pydatetime()

    @property
    def closed(self) -> pd.DataFrame:
        """The closed candles only (``frame`` without the forming row when ``live``)."""
        return self.frame.iloc[:-1] if self.live else self.frame

    @property
    def missing(self) -> int:
        """Candles missing inside the series, all gaps together."""
        return sum(gap.missing for gap in self.gaps)


def valid_intervals(market: Market) -> tuple[str, ...]:
    """The market's kline intervals, shortest first (``1s`` is spot only)."""
    return tuple(
        str(i) for i in KlineInterval if market is Market.SPOT or i is not KlineInterval.S1
    )


def interval_step(interval: str) -> pd.DateOffset | timedelta:
    """One candle's length: a calendar month for ``1M``, a fixed span otherwise."""
    if interval == _MONTH:
        return pd.DateOffset(months=1)
    value, unit = int(interval[:-1]), interval[-1]
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]
    return timedelta(seconds=value * seconds)


async def fetch_candles(
    client: BinanceClient,
    symbol: str,
    interval: str,
    *,
    limit: int = 500,
    market: Market = Market.SPOT,
    live: bool = False,
) -> Candles:
    """The last ``limit`` closed candles of ``symbol`` (plus the forming one when ``live``);
    ``symbol`` as ``resolve_symbol`` reads it (``btc`` is BTCUSDT).

    Raises:
        UnknownIntervalError: ``interval`` is not one of ``valid_intervals(market)``.
        LimitOutOfRangeError: ``limit`` is outside ``[1, MAX_CANDLES]``.
        BinanceUnknownSymbolError: and every other error of ``BinanceClient.get_klines``.
    """
    valid = valid_intervals(market)
    if interval not in valid:
        raise UnknownIntervalError(interval, valid)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_CANDLES:
        raise LimitOutOfRangeError(limit, 1, MAX_CANDLES)
    symbol = await resolve_symbol(client, symbol, market)
    rows = await _fetch_rows(client, symbol, interval, limit + 1, market)
    now_ms = client.now_ms()
    return await asyncio.to_thread(
        _build, symbol, interval, market, rows, now_ms=now_ms, limit=limit, live=live
    )


async def resolve_symbol(client: BinanceClient, symbol: str, market: Market) -> str:
    """The market's symbol for ``symbol``: upper-cased, a bare base asset meaning its USDT pair
    (``btc`` -> ``BTCUSDT``); an unknown one raises ``BinanceUnknownSymbolError`` naming the
    closest symbols (exchangeInfo, loaded once per client)."""
    rules = await client.symbol_rules(market)
    name = symbol.strip().upper()
    if rules.get(name) is None and rules.get(f"{name}USDT") is not None:
        name = f"{name}USDT"
    return rules.require(name).symbol


def frame_from_rows(rows: list[list[Any]]) -> pd.DataFrame:
    """Binance kline rows as the OHLCV frame ``Candles.frame`` holds: float columns, index
    ``open_time``, sorted, one row per open time, rows with a missing or non-finite value
    dropped (they become a gap)."""
    times = np.array([int(r[0]) for r in rows], dtype="int64")
    try:
        values = np.array([r[1:6] for r in rows], dtype="float64").reshape(len(rows), 5)
    except ValueError:  # a value that is no number: that row is dropped below
        values = np.array([[_number(v) for v in r[1:6]] for r in rows]).reshape(len(rows), 5)
    if len(times) > 1 and not (np.diff(times) > 0).all():
        last = len(times) - 1 - np.unique(times[::-1], return_index=True)[1]  # the last wins
        times, values = times[last], values[last]
    finite = np.isfinite(values).all(axis=1)
    index = pd.DatetimeIndex(pd.to_datetime(times[finite], unit="ms", utc=True), name="open_time")
    return pd.DataFrame(values[finite], index=index, columns=list(_COLUMNS))


def find_gaps(index: pd.DatetimeIndex, interval: str) -> tuple[Gap, ...]:
    """Spans where consecutive open times are more than one candle apart."""
    if len(index) < 2:  # noqa: PLR2004 - a gap lies between two rows
        return ()
    step = interval_step(interval)
    if isinstance(step, timedelta):
        step_ns = step // timedelta(microseconds=1) * 1000
        spans = np.diff(index.as_unit("ns").asi8)
        return tuple(
            Gap(
                (index[i] + step).to_pydatetime(),
                (index[i + 1] - step).to_pydatetime(),
                int(spans[i] // step_ns) - 1,
            )
            for i in np.flatnonzero(spans > step_ns).tolist()
        )
    gaps: list[Gap] = []
    for before, after in itertools.pairwise(index):
        missing, probe = 0, before + step
        while probe < after:
            missing, probe = missing + 1, probe + step
        if missing:
            gaps.append(
                Gap((before + step).to_pydatetime(), (probe - step).to_pydatetime(), missing)
            )
    return tuple(gaps)


# --- private helpers ---------------------------------------------------------------------
async def _fetch_rows(
    client: BinanceClient, symbol: str, interval: str, want: int, market: Market
) -> list[list[Any]]:
    """The last ``want`` rows, paging backwards; fewer when the history is shorter."""
    page = _PAGE[market]
    rows = await client.get_klines(symbol, interval, min(want, page), market)
    while len(rows) < want and rows:
        ask = min(want - len(rows), page)
        older = await client.get_klines(
            symbol, interval, ask, market, end_time=int(rows[0][0]) - 1
        )
        rows = older + rows
        if len(older) < ask:
            break
    return rows


def _build(
    symbol: str,
    interval: str,
    market: Market,
    rows: list[list[Any]],
    *,
    now_ms: int,
    limit: int,
    live: bool,
) -> Candles:
    forming = bool(rows) and int(rows[-1][_CLOSE_TIME]) >= now_ms
    closed_rows = rows[:-1] if forming else rows
    closed_rows = closed_rows[-limit:]
    step = interval_step(interval)
    if forming:
        next_close = _utc_ms(int(rows[-1][_CLOSE_TIME]) + 1)
    elif closed_rows:
        next_close = (pd.Timestamp(_utc_ms(int(closed_rows[-1][0]))) + step + step).to_pydatetime()
    else:
        next_close = _utc_ms(now_ms)
    frame = frame_from_rows(closed_rows)
    gaps = find_gaps(pd.DatetimeIndex(frame.index), interval)
    available = len(closed_rows)
    with_forming = live and forming and not (tail := frame_from_rows(rows[-1:])).empty
    if with_forming:
        frame = pd.concat([frame, tail])
    return Candles(
        symbol=symbol,
        interval=interval,
        market=market,
        frame=frame,
        live=with_forming,
        next_close=next_close,
        available=available,
        gaps=gaps,
    )


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
