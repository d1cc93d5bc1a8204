"""Binance's streams into one ``AlarmEngine``, never a poll: ``!miniTicker@arr`` (spot last
price and 24 h open), ``!markPrice@arr@1s`` (futures mark price), the futures
``!miniTicker@arr`` (futures 24 h change) and ``<symbol>@kline_1m`` for every symbol holding
spot level or change alarms (a new high or low of the current candle counts as traded: wicks
fire). Streams are opened while the engine holds alarms of their market, kline streams added
and dropped as alarms come and go (``sync``).

One consumer feeds the engine, in arrival order; stream callbacks only queue. A kline
stream's first update after it opens counts its close only: its earlier high and low were
traded before anyone watched (an alarm set now must not fire on a wick from a minute ago).

Gaps. After a reconnect, a stall or a dropped message (``ws.reconnect``, ``ws.stall``,
``ws.overflow``) the market's next step is a gap fill, queued behind what came before: the
1-minute klines from the last event seen to now (REST through the client's limiter, one
request per symbol holding alarms, spot ``/api/v3/klines``, futures ``markPriceKlines``),
replayed with ``engine.gap``: every alarm touched meanwhile fires once, ``late``. The
candle already partly seen counts only beyond what was seen. Kline closes the client fills
after its own reconnects (``source="rest"``) are left out: this fill covers them.
``fill`` does the same at start-up from a checkpoint (the service's), taking in the alarms
created since then as the replay reaches the minute each was created in. A gap longer than
``MAX_GAP_MINUTES`` is read for its last ``MAX_GAP_MINUTES`` minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import structlog

from utils.binance.binance_a import KlineInterval, Market

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from utils.alarms.alarm_engine import AlarmEngine
    from utils.alarms.alarm_model import Alarm, Firing
    from utils.binance.binance_a import (
        BinanceClient,
        BinanceEvent,
        EventArray,
        KlineEvent,
        StreamMessage,
        StreamSubscription,
    )

__all__ = ("MARKETS", "MAX_GAP_MINUTES", "AlarmFeed")

_log = structlog.get_logger(__name__)

MARKETS: Final = ("spot", "futures")
MAX_GAP_MINUTES: Final = 1000  # one REST page of 1-minute candles
MARK_STREAM: Final = "!markPrice@arr@1s"
_QUEUE_MAX: Final = 10_000  # stream messages waiting for the consumer; beyond: a gap fill
_GAP_EVENTS: Final = frozenset({"ws.reconnect", "ws.stall", "ws.overflow"})
_MINUTE_MS: Final = 60_000
_KLINE_1M: Final = str(KlineInterval.M1)

# A queued item: ("rows", market, kind, rows) | ("kline", event) | ("gap", market, since_ms)
_Item = tuple[Any, ...]


class AlarmFeed:
    """Streams -> engine -> ``on_firings``. ``start``, ``sync`` after alarms change, ``stop``."""

    def __init__(
        self,
        binance: BinanceClient,
        engine: AlarmEngine,
        *,
        on_firings: Callable[[list[Firing]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._binance, self._engine = binance, engine
        self._on_firings, self._clock = on_firings, clock
        self._items: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._subs: dict[str, StreamSubscription] = {}
        self._klines: dict[str, StreamSubscription] = {}
        self._sync_lock = asyncio.Lock()
        #: Per market, Binance's time (ms) of the newest event fed: where a gap starts.
        self.seen_ms: dict[str, int] = {}
        self._base: dict[str, tuple[int, float, float]] = {}  # symbol -> candle seen (t, h, l)
        #: Symbols that have held alarms, per market (a superset: gap fills ask for these).
        self.symbols: dict[str, set[str]] = {market: set() for market in MARKETS}
        self._gap_queued: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.gaps_filled = 0

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._unsubscribe = self._binance.events.subscribe(self._on_event)
            self._task = asyncio.create_task(self._consume(), name="alarm-feed")
        await self.sync()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._sync_lock:
            subs = [*self._subs.values(), *self._klines.values()]
            self._subs.clear()
            self._klines.clear()
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def track(self, market: str, symbol: str) -> None:
        """An alarm of ``symbol`` on ``market`` is held: watch that market, fill its gaps."""
        self.symbols[market].add(symbol)

    async def sync(self) -> None:
        """Open the streams the engine's alarms need, close the others."""
        async with self._sync_lock:
            live = len(self._engine) > 0
            want = {
                "spot": live and bool(self.symbols["spot"]),
                "mark": live and bool(self.symbols["futures"]),
                "futures_day": live and bool(self.symbols["futures"]),
            }
            for name, wanted in want.items():
                if wanted and name not in self._subs:
                    self._subs[name] = await self._open(name)
                elif not wanted and name in self._subs:
                    await self._subs.pop(name).unsubscribe()
            klines = self._engine.symbols_with_spot_alarms() if live else frozenset()
            for symbol in klines - self._klines.keys():
                self._klines[symbol] = await self._binance.ws_klines(
                    symbol, _KLINE_1M, self._on_kline
                )
            for symbol in self._klines.keys() - klines:
                self._base.pop(symbol, None)
                await self._klines.pop(symbol).unsubscribe()

    @property
    def streams(self) -> int:
        return len(self._subs) + len(self._klines)

    # --- gap fills ---------------------------------------------------------------------
    async def fill(
        self,
        market: str,
        since_ms: int,
        *,
        joining: Mapping[str, Sequence[Alarm]] | None = None,
        admit: Callable[[Alarm], object] | None = None,
    ) -> int:
        """Replay the 1-minute candles from ``since_ms`` to now for every symbol of
        ``market`` that held alarms; how many alarms fired. ``joining``: per symbol, alarms
        created after ``since_ms``, each handed to ``admit`` (into the engine) before the
        candle of its creation, so that it sees what was traded from then on only."""
        joining = joining or {}
        names = sorted(self.symbols[market] | joining.keys())
        now_ms = self._binance.now_ms()
        if not names:
            self.seen_ms[market] = max(self.seen_ms.get(market, 0), now_ms)
            return 0
        start = max(since_ms, now_ms - (MAX_GAP_MINUTES - 1) * _MINUTE_MS)
        start = start // _MINUTE_MS * _MINUTE_MS
        limit = min(MAX_GAP_MINUTES, (now_ms - start) // _MINUTE_MS + 2)
        answers = await asyncio.gather(
            *(self._candles(market, name, start, now_ms, limit) for name in names),
            return_exceptions=True,
        )
        self.seen_ms[market] = max(self.seen_ms.get(market, 0), now_ms)  # read up to here
        fired: list[Firing] = []
        for name, answer in zip(names, answers, strict=True):
            waiting = sorted(joining.get(name, ()), key=lambda a: a.created_at)
            rows: Sequence[Sequence[Any]] = ()
            if isinstance(answer, asyncio.CancelledError):
                raise answer
            if isinstance(answer, BaseException):  # its alarms still join, unreplayed
                _log.warning("alarm_gap_unfilled", market=market, symbol=name, error=repr(answer))
            else:
                rows = answer
            fired += self._replay(market, name, rows, waiting, admit)
        self.gaps_filled += 1
        _log.info(
            "alarm_gap_filled",
            market=market,
            since_ms=since_ms,
            symbols=len(names),
            fired=len(fired),
        )
        if fired:
            self._on_firings(fired)
        return len(fired)

    def _replay(
        self,
        market: str,
        symbol: str,
        rows: Sequence[Sequence[Any]],
        waiting: list[Alarm],
        admit: Callable[[Alarm], object] | None,
    ) -> list[Firing]:
        def admit_until(open_ms: int) -> None:
            while waiting and (open_ms < 0 or waiting[0].created_at * 1000 < open_ms + _MINUTE_MS):
                alarm = waiting.pop(0)
                if admit is not None:
                    admit(alarm)

        candles = [(int(r[0]), float(r[2]), float(r[3]), float(r[4])) for r in rows]
        fired: list[Firing] = []
        base = self._base.get(symbol) if market == "spot" else None
        for i, (t, high, low, close) in enumerate(candles):
            admit_until(t)
            if i == 0 and base is not None and base[0] == t:  # partly seen live: what is new
                first = self._engine.on_price(
                    market,
                    symbol,
                    close,
                    t / 1000,
                    high=high if high > base[1] else None,
                    low=low if low < base[2] else None,
                    candle_t=t / 1000,
                )
                fired += [dataclasses.replace(f, late=True, touched_at=t / 1000) for f in first]
            else:
                fired += self._engine.gap(market, symbol, [(t / 1000, high, low, close)])
        admit_until(-1)  # the rest, created after the last candle opened
        if market == "spot" and candles:  # the live klines go on from the candle read last
            t, high, low, _close = candles[-1]
            if base is not None and base[0] == t:
                high, low = max(high, base[1]), min(low, base[2])
            self._base[symbol] = (t, high, low)
        return fired

    async def _candles(
        self, market: str, symbol: str, start: int, end: int, limit: int
    ) -> list[list[Any]]:
        if market == "spot":
            return await self._binance.get_klines(
                symbol, _KLINE_1M, limit=limit, start_time=start, end_time=end
            )
        rows: list[list[Any]] = await self._binance.call(
            "GET /fapi/v1/markPriceKlines",
            symbol=symbol,
            interval=_KLINE_1M,
            startTime=start,
            endTime=end,
            limit=limit,
        )
        return rows

    # --- stream callbacks: queue only ----------------------------------------------------
    async def _open(self, name: str) -> StreamSubscription:
        if name == "spot":
            return await self._binance.ws_all_mini_tickers(self._on_spot)
        if name == "mark":
            return await self._binance.ws_subscribe(
                [MARK_STREAM], self._on_mark, market=Market.FUTURES
            )
        return await self._binance.ws_all_mini_tickers(self._on_futures_day, market=Market.FUTURES)

    def _on_spot(self, rows: EventArray[Any]) -> None:
        self._put(("rows", "spot", "mini", rows.rows))

    def _on_mark(self, _stream: str, rows: StreamMessage) -> None:
        self._put(("rows", "futures", "mark", getattr(rows, "rows", ())))

    def _on_futures_day(self, rows: EventArray[Any]) -> None:
        self._put(("rows", "futures", "day", rows.rows))

    def _on_kline(self, event: KlineEvent) -> None:
        if event.source == "live":  # closes filled over REST are this feed's gap fill's
            self._put(("kline", event))

    def _on_event(self, event: BinanceEvent) -> None:
        if event.kind in _GAP_EVENTS and event.market is not None:
            self._gap(str(event.market))

    def _gap(self, market: str) -> None:
        since = self.seen_ms.get(market)
        if since is None or market in self._gap_queued or not self.symbols[market]:
            return
        self._gap_queued.add(market)
        self._items.append(("gap", market, since))
        self._wake.set()

    def _put(self, item: _Item) -> None:
        if len(self._items) >= _QUEUE_MAX:
            market = item[1] if item[0] == "rows" else "spot"
            self._gap(market)  # dropped: what it carried comes back from the klines
            return
        self._items.append(item)
        self._wake.set()

    # --- the consumer ------------------------------------------------------------------
    async def _consume(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._items:
                item = self._items.popleft()
                try:
                    if item[0] == "gap":
                        self._gap_queued.discard(item[1])
                        await self.fill(item[1], item[2])
                    elif item[0] == "rows":
                        self._rows(item[1], item[2], item[3])
                    else:
                        self._kline(item[1])
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one bad message must not stop the alarms
                    _log.exception("alarm_feed_failed", item=item[0])

    def _rows(self, market: str, kind: str, rows: Sequence[Any]) -> None:
        symbols, engine, now = self.symbols[market], self._engine, self._clock()
        fired: list[Firing] = []
        newest = self.seen_ms.get(market, 0)
        for row in rows:
            symbol = row["s"]
            if symbol not in symbols:
                continue
            newest = max(newest, int(row.get("E") or 0))
            if kind == "mini":
                fired += engine.on_price(
                    market, symbol, float(row["c"]), now, open_24h=float(row["o"])
                )
            elif kind == "mark":
                fired += engine.on_price(market, symbol, float(row["p"]), now)
            else:
                last, opened = float(row["c"]), float(row["o"])
                if opened > 0:
                    pct = (last - opened) / opened * 100
                    fired += engine.on_day_change(market, symbol, pct, last, now)
        if newest:
            self.seen_ms[market] = newest
        if fired:
            self._on_firings(fired)

    def _kline(self, k: KlineEvent) -> None:
        symbol, t = k.symbol, k.open_time
        high, low, close = float(k.high), float(k.low), float(k.close)
        base = self._base.get(symbol)
        hi: float | None
        lo: float | None
        if base is None:  # the stream's first update: its past is not ours to count
            hi = lo = None
            self._base[symbol] = (t, high, low)
        elif base[0] != t:  # a new candle: all of it was traded since the last update
            hi, lo = high, low
            self._base[symbol] = (t, high, low)
        else:
            hi = high if high > base[1] else None
            lo = low if low < base[2] else None
            self._base[symbol] = (t, max(high, base[1]), min(low, base[2]))
        if k.event_time:
            self.seen_ms["spot"] = max(self.seen_ms.get("spot", 0), k.event_time)
        fired = self._engine.on_price(
            "spot", symbol, close, self._clock(), high=hi, low=lo, candle_t=t / 1000
        )
        if fired:
            self._on_firings(fired)
