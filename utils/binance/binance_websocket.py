"""Binance market streams over combined-stream WebSocket connections (BINANCE.md §8).

``WebSocketManager`` multiplexes streams onto connections (spot ``/stream``; futures one
connection per route ``/public`` or ``/market``), at most 1024 streams each and
``max_connections`` per market, and routes each message to its subscribers, parsed once into
its typed event (``binance_ws_events``). After a reconnect a price stream's subscribers get a
REST snapshot first and a kline stream's the candles that closed meanwhile
(``binance_ws_klines``); the stream's live messages wait meanwhile. A connection's life
(pacing, reconnects, stalls, rotation) is ``binance_ws_connection``, which sees the manager
only as its ``StreamHost``; delivery to callbacks is ``binance_ws_dispatch``. It is not a
policy: no limiter, breaker or cache here (the REST fetches come in as functions).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from utils.binance.binance_exceptions import BinanceWebSocketError
from utils.binance.binance_types import BinanceEvent, Market
from utils.binance.binance_ws_connection import ConnectGate, StreamConnection
from utils.binance.binance_ws_dispatch import DispatchStats, Subscriber
from utils.binance.binance_ws_klines import KlineGaps, Verdict, is_kline_stream
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from utils.binance.binance_ws_events import KlineEvent, Source, StreamMessage
    from utils.binance.binance_ws_klines import KlineFetch

__all__ = ("StreamSubscription", "WSSettings", "WebSocketManager", "futures_route")

_log = get_logger(__name__)
MAX_STREAMS = 1024
_COUNTERS = (
    *("reconnects", "reconnect_attempts", "stalls", "rotations", "server_shutdowns"),
    *("messages", "control_messages", "errors", "bad_messages", "snapshots"),
    *("kline_fills", "klines_filled"),
)
_BAD_PAYLOAD = (KeyError, TypeError, ValueError, ArithmeticError)  # Decimal's InvalidOperation
_PUBLIC_KINDS = frozenset({"bookTicker", "rpiDepth", "trade"})


@dataclass(frozen=True, slots=True, kw_only=True)
class WSSettings:
    spot_url: str
    futures_url: str
    max_connections: int = 5
    stall_s: float = 60.0
    rotate_s: float = 23 * 3600.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    queue_size: int = 1000
    open_timeout_s: float = 10.0
    connect_limit: int = 300  # connection attempts per IP ...
    connect_window_s: float = 300.0  # ... per this many seconds (BINANCE.md §8)


def futures_route(stream: str) -> str:
    """``public`` for book tickers, depth and trades, ``market`` for the rest (BINANCE.md §1)."""
    parts = stream.split("@")
    kind = parts[0][1:] if stream.startswith("!") else (parts[1] if len(parts) > 1 else "")
    return "public" if kind in _PUBLIC_KINDS or kind.startswith("depth") else "market"


class StreamSubscription:
    """A handle on some streams and one callback; ``await sub.unsubscribe()`` ends it."""

    def __init__(self, manager: WebSocketManager, market: Market, streams: tuple[str, ...],
                 subscriber: Subscriber) -> None:  # fmt: skip
        self.market, self.streams, self._manager = market, streams, manager
        self.subscriber = subscriber
        self.active = True

    async def unsubscribe(self) -> None:
        if self.active:
            self.active = False
            await self._manager.release(self)


class WebSocketManager:
    """Streams for one client; ``emit`` receives ``ws.*`` events. It is the ``StreamHost``
    of its connections (``admit``, ``count``, ``deliver``, ``reconnected``, ``event``)."""

    # From binance_ws_events, loaded with the first subscription, not with the client: its
    # dataclasses take ~5 ms to create, which a client that never streams need not pay.
    _parse: Callable[[str, Any, Source], StreamMessage]
    _kline_type: type[KlineEvent]

    def __init__(
        self,
        settings: WSSettings,
        *,
        emit: Callable[[BinanceEvent], None],
        snapshot: Callable[[Market, str], Awaitable[Any] | None] | None = None,
        klines: KlineFetch | None = None,
    ) -> None:
        """``snapshot(market, stream)``: after a reconnect, an awaitable of a REST snapshot in
        the stream's shape, delivered before the stream's live messages; None for no snapshot.
        ``klines(market, symbol, interval, start_ms)``: the candles from ``start_ms`` on over
        REST, for the closes a kline stream missed; None for no fill."""
        self.settings, self.emit, self._snapshot = settings, emit, snapshot
        self.stats = DispatchStats()
        self.counters: Counter[str] = Counter()
        self.connect_gate = ConnectGate(settings.connect_limit, settings.connect_window_s)
        self.kline_gaps = KlineGaps(klines)
        self._conns: list[StreamConnection] = []
        self._subs: dict[tuple[Market, str], list[Subscriber]] = {}
        # Parsed live messages waiting for a stream's snapshot or kline fill.
        self._held: dict[tuple[Market, str], list[StreamMessage]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events_loaded = False

    async def subscribe(
        self,
        streams: Iterable[str],
        callback: Callable[..., Any],
        *,
        market: Market = Market.SPOT,
        with_stream: bool = True,
    ) -> StreamSubscription:
        """Deliver every message of ``streams`` to ``callback``; raises
        ``BinanceWebSocketError`` when the connections allowed cannot hold them."""
        names = tuple(dict.fromkeys(_stream_name(s) for s in streams))
        if not names:
            raise BinanceWebSocketError("no stream given; name one, e.g. 'btcusdt@ticker'")
        if not self._events_loaded:
            from utils.binance import binance_ws_events  # noqa: PLC0415 - see _parse

            self._parse, self._kline_type = (
                binance_ws_events.parse_message,
                binance_ws_events.KlineEvent,
            )
            self._events_loaded = True
        placement = self._place([s for s in names if (market, s) not in self._subs], market)
        subscriber = Subscriber(
            callback,
            queue_size=self.settings.queue_size,
            stats=self.stats,
            on_overflow=lambda stream: self._overflow(market, stream),
            with_stream=with_stream,
        )
        for name in names:
            self._subs.setdefault((market, name), []).append(subscriber)
        for conn, added in placement:
            if conn not in self._conns:
                self._conns.append(conn)
                conn.start()
            conn.want(added)
        return StreamSubscription(self, market, names, subscriber)

    async def release(self, sub: StreamSubscription) -> None:
        gone: list[str] = []
        for name in sub.streams:
            subscribers = self._subs.get((sub.market, name), [])
            if sub.subscriber in subscribers:
                subscribers.remove(sub.subscriber)
            if not subscribers:
                self._subs.pop((sub.market, name), None)
                self.kline_gaps.forget(sub.market, name)
                gone.append(name)
        await sub.subscriber.aclose()
        for conn in [c for c in self._conns if c.market is sub.market]:
            conn.unwant(gone)
            if not conn.wanted:
                self._conns.remove(conn)
                await conn.aclose()

    # --- StreamHost: what a connection may ask ------------------------------------------
    async def admit(self) -> None:
        await self.connect_gate.admit()

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def deliver(self, market: Market, stream: str, data: Any) -> None:
        """One live payload: parsed once into its typed event, then routed."""
        self.counters["messages"] += 1
        try:
            event = self._parse(stream, data, "live")
        except _BAD_PAYLOAD as e:
            self.counters["bad_messages"] += 1
            _log.warning("ws_bad_message", stream=stream, error=repr(e))
            return
        self._route(market, stream, event)

    def reconnected(self, market: Market, streams: Iterable[str]) -> None:
        """After a reconnect: a snapshot of each price stream and the missed closes of each
        kline stream, each stream's live messages held until its own fill is delivered."""
        for stream in streams:
            if (market, stream) not in self._held:
                fill = self._fill_for(market, stream)
                if fill is not None:
                    self._hold(market, stream, fill, [])

    def event(self, kind: str, market: Market, message: str, **data: Any) -> None:
        self.emit(BinanceEvent(kind, market, message, data))

    def snapshot(self) -> dict[str, Any]:
        """``connections``, the counters (``reconnects``, ``reconnect_attempts``, ``stalls``,
        ``rotations``, ``server_shutdowns``, ``messages``, ``bad_messages``, ``snapshots``,
        ``kline_fills``, ``klines_filled``…) and delivery numbers."""
        out: dict[str, Any] = {
            "connections": sum(c.socket is not None for c in self._conns),
            "streams": sum(len(c.wanted) for c in self._conns),
        }
        for key in _COUNTERS:
            out[key] = self.counters[key]
        out.update(
            delivered=self.stats.delivered,
            conflated=self.stats.conflated,
            overflows=self.stats.overflows,
            callback_errors=self.stats.callback_errors,
        )
        return out

    async def aclose(self) -> None:
        """Close every connection and stop every subscriber task."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        conns, self._conns = self._conns, []
        await asyncio.gather(*(c.aclose() for c in conns))
        subscribers = {id(s): s for subs in self._subs.values() for s in subs}
        self._subs.clear()
        await asyncio.gather(*(s.aclose() for s in subscribers.values()))

    def _place(self, names: list[str], market: Market) -> list[tuple[StreamConnection, list[str]]]:
        """Which connection takes which new stream; raises before changing anything."""
        room = {c: MAX_STREAMS - len(c.wanted) for c in self._conns if c.market is market}
        count = len(room)
        placed: dict[StreamConnection, list[str]] = {}
        for name in names:
            route = futures_route(name) if market is Market.FUTURES else None
            conn = next((c for c, r in room.items() if c.route == route and r > 0), None)
            if conn is None:
                if count >= self.settings.max_connections:
                    raise BinanceWebSocketError(
                        f"{market} streams are at capacity ({self.settings.max_connections} "
                        f"connections x {MAX_STREAMS} streams); unsubscribe some streams or "
                        "raise MAX_WEBSOCKET_CONNECTIONS"
                    )
                conn = StreamConnection(self, market, route)
                room[conn], count = MAX_STREAMS, count + 1
            room[conn] -= 1
            placed.setdefault(conn, []).append(name)
        return list(placed.items())

    # --- routing ------------------------------------------------------------------------
    def _route(self, market: Market, stream: str, event: StreamMessage) -> bool:
        """Deliver, hold or drop ``event``; True when it went to the subscribers."""
        key = (market, stream)
        subscribers = self._subs.get(key)
        if not subscribers:  # unsubscribed: no kline state may start again
            return False
        held = self._held.get(key)
        if held is not None:
            held.append(event)
            return False
        if type(event) is self._kline_type:
            verdict = self.kline_gaps.offer(market, stream, event)
            if verdict is Verdict.DROP:
                return False
            if verdict is Verdict.GAP:
                fill = self.kline_gaps.fill(market, stream)
                if fill is not None:
                    self._hold(market, stream, fill, [event])
                    return False
        for subscriber in subscribers:
            subscriber.put(stream, event)
        return True

    def _fill_for(self, market: Market, stream: str) -> Awaitable[Sequence[StreamMessage]] | None:
        if is_kline_stream(stream):
            return self.kline_gaps.fill(market, stream)
        pending = self._snapshot(market, stream) if self._snapshot is not None else None
        return None if pending is None else self._snapshot_events(stream, pending)

    async def _snapshot_events(self, stream: str, pending: Awaitable[Any]) -> list[StreamMessage]:
        snapshot = await pending
        return [] if snapshot is None else [self._parse(stream, snapshot, "rest")]

    def _hold(
        self,
        market: Market,
        stream: str,
        fill: Awaitable[Sequence[StreamMessage]],
        held: list[StreamMessage],
    ) -> None:
        """Hold ``stream``'s live messages until ``fill`` is delivered ahead of them."""
        self._held[market, stream] = held
        task = asyncio.get_running_loop().create_task(self._fill(market, stream, fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(
        self, market: Market, stream: str, pending: Awaitable[Sequence[StreamMessage]]
    ) -> None:
        kline = is_kline_stream(stream)
        events: Sequence[StreamMessage] = ()
        try:
            events = await pending
        except Exception as e:  # noqa: BLE001 - a failed fill must not hold the stream
            _log.warning("ws_fill_failed", stream=stream, error=str(e))
            if kline:
                self._fill_failed(market, stream, e)
        finally:
            held = self._held.pop((market, stream), [])
        if kline:
            self.counters["kline_fills"] += 1
        elif events:
            self.counters["snapshots"] += 1
        for event in events:  # klines: only the closes still owed go out
            if self._route(market, stream, event) and kline:
                self.counters["klines_filled"] += 1
        for event in held:
            self._route(market, stream, event)

    def _fill_failed(self, market: Market, stream: str, error: Exception) -> None:
        owed = self.kline_gaps.failed(market, stream)
        since = "" if owed is None else f" since {datetime.fromtimestamp(owed / 1000, UTC):%c} UTC"
        self.event(
            "ws.kline_gap", market,
            f"{stream}: the candles closed{since} could not be fetched ({error}); live "
            "updates resume without them", stream=stream, owed=owed,
        )  # fmt: skip

    def _overflow(self, market: Market, stream: str) -> None:
        self.event(
            "ws.overflow", market, f"a subscriber of {stream} is too slow; a message was dropped",
            stream=stream,
        )  # fmt: skip


def _stream_name(stream: str) -> str:
    """Binance wants lower-case symbols; ``!`` streams keep their camelCase."""
    symbol, sep, rest = stream.partition("@")
    return stream if stream.startswith("!") else f"{symbol.lower()}{sep}{rest}"
