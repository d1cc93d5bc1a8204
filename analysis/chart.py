"""Candlestick charts as a service: ``Charts.get`` answers a chart's PNG (or the Telegram
``file_id`` it was uploaded as) for a symbol, interval and candle count, drawing it at most
once per closed candle.

- **What is drawn**: the last ``limit`` closed candles (20 to 1,000; the forming candle never,
  so the picture cannot change within a candle), volume, EMA 20/50, Bollinger(20, 2) and
  RSI(14). The indicators are computed here (TA-Lib, ``analysis.indicators``) over up to 500
  closed candles more than are shown, so their seeding never shows; the render process gets
  plain arrays (``ChartFrame``) and draws them (``analysis.chart_pool``).
- **Cached** per ``ChartKey`` (symbol, interval, limit, market, open time of the last closed
  candle) in memory, least recently used first out, bounded in entries and bytes. Before
  asking Binance, the key is worked out from Binance's clock: a chart already drawn for this
  candle is answered without a klines request. After the first upload the handler records
  Telegram's ``file_id`` (``uploaded``), and later answers carry it, so the photo is not
  uploaded again either.
- **Single flight**: concurrent requests for the same key share one fetch and one render.

Errors: ``UnknownIntervalError`` and ``LimitOutOfRangeError`` before anything is fetched,
``NotEnoughHistoryError`` when fewer than 20 closed candles exist, ``ChartRenderError`` when a
render process died; Binance's errors pass through.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from analysis import indicators
from analysis.candles import MAX_CANDLES, fetch_candles, interval_step, valid_intervals
from analysis.chart_frame import DPI, HEIGHT_PX, WIDTH_PX, ChartFrame
from analysis.errors import LimitOutOfRangeError, NotEnoughHistoryError, UnknownIntervalError
from utils.binance.binance_a import Market

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from analysis.candles import Candles
    from analysis.chart_pool import ChartPool
    from utils.binance.binance_a import BinanceClient

__all__ = (
    "DEFAULT_CANDLES",
    "DEFAULT_INTERVAL",
    "MAX_SHOWN",
    "MIN_SHOWN",
    "WARMUP",
    "ChartCache",
    "ChartImage",
    "ChartKey",
    "ChartSummary",
    "Charts",
    "build_frame",
    "last_closed_open_ms",
)

MIN_SHOWN: Final = 20
MAX_SHOWN: Final = 1000
DEFAULT_CANDLES: Final = 100
DEFAULT_INTERVAL: Final = "1h"  # as /ta: a day of hours at the default 100 candles is 4 days
#: Closed candles fetched before the first one shown: EMA(50)'s seed weighs (49/51)^450 by
#: the first shown candle, about 1e-8 of the value, RSI(14)'s (13/14)^486 less still.
WARMUP: Final = 500
_CACHE_ENTRIES: Final = 256
_CACHE_BYTES: Final = 48 * 1024 * 1024  # about 300 charts of 1,000 candles
_MONDAY_MS: Final = 4 * 86_400_000  # the epoch was a Thursday; Binance's weeks open Monday
_UNKNOWN: Final = -1  # a flight's last open time before the candles say (1M)


@dataclass(frozen=True, slots=True)
class ChartKey:
    """One picture: the same key is the same PNG."""

    symbol: str
    interval: str
    limit: int
    market: Market
    last_open_ms: int  # open time of the last closed candle drawn


@dataclass(frozen=True, slots=True)
class ChartSummary:
    """What the caption says: the last closed candle and the change over the candles shown
    (from the first one's open to the last one's close)."""

    symbol: str
    interval: str
    market: Market
    shown: int  # candles drawn: ``limit``, or fewer when fewer exist
    limit: int
    last_open: datetime
    last_close: float
    change_pct: float

    @property
    def closed_at(self) -> datetime:
        """When the last candle drawn closed (its open plus one interval)."""
        step = interval_step(self.interval)
        if isinstance(step, timedelta):
            return self.last_open + step
        closed: datetime = (pd.Timestamp(self.last_open) + step).to_pydatetime()
        return closed


@dataclass(slots=True)
class ChartImage:
    """A drawn chart; ``file_id`` once Telegram has it (then send that, not ``png``)."""

    key: ChartKey
    png: bytes
    summary: ChartSummary
    file_id: str | None = None


@dataclass(slots=True)
class ChartCache:
    """Drawn charts by key, least recently used evicted first, bounded in count and bytes."""

    max_entries: int = _CACHE_ENTRIES
    max_bytes: int = _CACHE_BYTES
    _items: OrderedDict[ChartKey, ChartImage] = field(default_factory=OrderedDict)
    _bytes: int = 0

    def get(self, key: ChartKey) -> ChartImage | None:
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
        return image

    def put(self, image: ChartImage) -> None:
        old = self._items.pop(image.key, None)
        if old is not None:
            self._bytes -= len(old.png)
        self._items[image.key] = image
        self._bytes += len(image.png)
        while len(self._items) > 1 and (
            len(self._items) > self.max_entries or self._bytes > self.max_bytes
        ):
            _, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted.png)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes


class Charts:
    """Fetch, draw and cache charts; one per process, injected into handlers as ``charts``."""

    def __init__(
        self,
        pool: ChartPool,
        *,
        cache: ChartCache | None = None,
        width_px: int = WIDTH_PX,
        height_px: int = HEIGHT_PX,
    ) -> None:
        self.pool = pool
        self.cache = ChartCache() if cache is None else cache
        self._size = (width_px, height_px)
        self._flights: dict[ChartKey, asyncio.Task[ChartImage]] = {}
        self.renders = 0  # charts drawn
        self.hits = 0  # answered from the cache

    async def get(
        self,
        client: BinanceClient,
        symbol: str,
        interval: str = DEFAULT_INTERVAL,
        limit: int = DEFAULT_CANDLES,
        market: Market = Market.SPOT,
    ) -> ChartImage:
        """The chart of the last ``limit`` closed candles; drawn only if not cached."""
        valid = valid_intervals(market)
        if interval not in valid:
            raise UnknownIntervalError(interval, valid)
        if isinstance(limit, bool) or not MIN_SHOWN <= limit <= MAX_SHOWN:
            raise LimitOutOfRangeError(limit, MIN_SHOWN, MAX_SHOWN)
        last_open = last_closed_open_ms(interval, client.now_ms())
        flight = ChartKey(
            symbol, interval, limit, market, _UNKNOWN if last_open is None else last_open
        )
        if last_open is not None and (cached := self.cache.get(flight)) is not None:
            self.hits += 1
            return cached
        return await self._join(flight, lambda: self._fetch_and_draw(client, flight))

    def cached(
        self,
        client: BinanceClient,
        symbol: str,
        interval: str = DEFAULT_INTERVAL,
        limit: int = DEFAULT_CANDLES,
        market: Market = Market.SPOT,
    ) -> ChartImage | None:
        """The chart ``get`` would answer without fetching or drawing, if there is one."""
        last_open = last_closed_open_ms(interval, client.now_ms())
        if last_open is None:
            return None
        image = self.cache.get(ChartKey(symbol, interval, limit, market, last_open))
        self.hits += image is not None
        return image

    def uploaded(self, key: ChartKey, file_id: str) -> None:
        """Telegram stored the chart as ``file_id``: later answers send that instead."""
        image = self.cache.get(key)
        if image is not None:
            image.file_id = file_id

    async def aclose(self) -> None:
        for task in list(self._flights.values()):
            task.cancel()
        await self.pool.aclose()

    async def _join(
        self, key: ChartKey, make: Callable[[], Coroutine[Any, Any, ChartImage]]
    ) -> ChartImage:
        """Run ``make()`` once per key at a time; every concurrent caller gets its result.
        A caller that is cancelled leaves the work running for the others."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(make())
            self._flights[key] = task
            task.add_done_callback(lambda t: self._landed(key, t))
        return await asyncio.shield(task)

    def _landed(self, key: ChartKey, task: asyncio.Task[ChartImage]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: a flight whose callers all left logs nothing

    async def _fetch_and_draw(self, client: BinanceClient, flight: ChartKey) -> ChartImage:
        want = min(flight.limit + WARMUP, MAX_CANDLES)
        candles = await fetch_candles(
            client, flight.symbol, flight.interval, limit=want, market=flight.market
        )
        if candles.available < MIN_SHOWN:
            raise NotEnoughHistoryError(candles.available, MIN_SHOWN, "a chart")
        key = replace(flight, last_open_ms=_ms(candles.last_open_time))
        if (cached := self.cache.get(key)) is not None:  # Binance's last candle is older
            self.hits += 1
            return cached
        if key != flight:
            return await self._join(key, lambda: self._draw(key, candles))
        return await self._draw(key, candles)

    async def _draw(self, key: ChartKey, candles: Candles) -> ChartImage:
        # pandas and TA-Lib over up to 1,500 rows: a few milliseconds, off the loop too
        frame, summary = await asyncio.to_thread(build_frame, candles, key.limit, size=self._size)
        png = await self.pool.render(frame)
        self.renders += 1
        image = ChartImage(key, png, summary)
        self.cache.put(image)
        return image


def build_frame(
    candles: Candles, limit: int, *, size: tuple[int, int] = (WIDTH_PX, HEIGHT_PX)
) -> tuple[ChartFrame, ChartSummary]:
    """The last ``limit`` closed candles and their indicators, computed over every candle
    fetched (the warm-up before the first one shown included)."""
    data = candles.closed
    shown = data.iloc[-limit:]
    if len(shown) < MIN_SHOWN:
        raise NotEnoughHistoryError(len(shown), MIN_SHOWN, "a chart")
    try:
        bands = indicators.bollinger(data, 20, 2.0)
    except NotEnoughHistoryError:
        bands = pd.DataFrame(np.nan, index=data.index, columns=["upper", "middle", "lower"])
    columns = {
        "ema_fast": _or_nan(lambda: indicators.ema(data, 20), data),
        "ema_slow": _or_nan(lambda: indicators.ema(data, 50), data),
        "bb_upper": bands["upper"],
        "bb_middle": bands["middle"],
        "bb_lower": bands["lower"],
        "rsi": _or_nan(lambda: indicators.rsi(data, 14), data),
    }
    tail = {name: _floats(values.iloc[-len(shown) :]) for name, values in columns.items()}
    index = pd.DatetimeIndex(shown.index)
    frame = ChartFrame(
        title=f"{candles.symbol} · {candles.interval} · {candles.market}",
        open_ms=(index.as_unit("ms").asi8).astype(np.int64),
        open=_floats(shown["open"]),
        high=_floats(shown["high"]),
        low=_floats(shown["low"]),
        close=_floats(shown["close"]),
        volume=_floats(shown["volume"]),
        width_px=size[0],
        height_px=size[1],
        dpi=DPI,
        **tail,
    )
    first_open, last_close = float(frame.open[0]), float(frame.close[-1])
    summary = ChartSummary(
        symbol=candles.symbol,
        interval=candles.interval,
        market=candles.market,
        shown=len(shown),
        limit=limit,
        last_open=index[-1].to_pydatetime(),
        last_close=last_close,
        change_pct=(last_close / first_open - 1.0) * 100.0 if first_open else 0.0,
    )
    return frame, summary


def last_closed_open_ms(interval: str, now_ms: int) -> int | None:
    """Open time of the last candle closed at ``now_ms``, from the clock alone; None for
    ``1M`` (calendar months: the fetched candles say)."""
    step = interval_step(interval)
    if not isinstance(step, timedelta):
        return None
    step_ms = step // timedelta(milliseconds=1)
    shift = _MONDAY_MS if interval == "1w" else 0
    forming = (now_ms - shift) // step_ms * step_ms + shift
    return forming - step_ms


def _or_nan(compute: Callable[[], pd.Series], data: pd.DataFrame) -> pd.Series:
    """An indicator, or NaN on every row when the history is shorter than its period (the
    chart then has no such line)."""
    try:
        return compute()
    except NotEnoughHistoryError:
        return pd.Series(np.nan, index=data.index, dtype="float64")


def _floats(values: pd.Series) -> np.ndarray:
    return np.ascontiguousarray(values.to_numpy(dtype=np.float64))


def _ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)
