"""Binance market streams over combined-stream WebSocket connections (BINANCE.md §8).

``WebSocketManager`` multiplexes streams onto connections (spot ``/stream``; futures one
connection per route ``/public`` or ``/market``), at most 1024 streams each and
``max_connections`` per market, and routes each message to its subscribers. A connection's
life (pacing, reconnects, stalls, rotation) is ``binance_ws_connection``; delivery to
callbacks is ``binance_ws_dispatch``. It is not a policy: no limiter, breaker or cache here.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from utils.binance.binance_exceptions import BinanceWebSocketError
from utils.binance.binance_types import BinanceEvent, Market
from utils.binance.binance_ws_connection import ConnectGate, StreamConnection
from utils.binance.binance_ws_dispatch import DispatchStats, Subscriber
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

__all__ = ("StreamSubscription", "WSSettings", "WebSocketManager", "futures_route")

_log = get_logger(__name__)
MAX_STREAMS = 1024
_COUNTERS = (
    *("reconnects", "reconnect_attempts", "stalls", "rotations", "server_shutdowns"),
    *("messages", "control_messages", "errors", "snapshots"),
)
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
    """Streams for one client; ``emit`` receives ``ws.*`` events."""

    def __init__(
        self,
        settings: WSSettings,
        *,
        emit: Callable[[BinanceEvent], None],
        snapshot: Callable[[Market, str], Awaitable[Any] | None] | None = None,
    ) -> None:
        """``snapshot(market, stream)``: after a reconnect, an awaitable of a REST snapshot in
        the stream's shape, delivered before the stream's live messages; None for no snapshot."""
        self.settings, self.emit, self._snapshot = settings, emit, snapshot
        self.stats = DispatchStats()
        self.counters: Counter[str] = Counter()
        self.connect_gate = ConnectGate(settings.connect_limit, settings.connect_window_s)
        self._conns: list[StreamConnection] = []
        self._subs: dict[tuple[Market, str], list[Subscriber]] = {}
        self._held: dict[tuple[Market, str], list[Any]] = {}  # live messages awaiting a snapshot
        self._tasks: set[asyncio.Task[None]] = set()

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
                gone.append(name)
        await sub.subscriber.aclose()
        for conn in [c for c in self._conns if c.market is sub.market]:
            conn.unwant(gone)
            if not conn.wanted:
                self._conns.remove(conn)
                await conn.aclose()

    def deliver(self, market: Market, stream: str, data: Any) -> None:
        self.counters["messages"] += 1
        held = self._held.get((market, stream))
        if held is not None:
            held.append(data)
            return
        self._fan_out(market, stream, data)

    def resync(self, market: Market, streams: Iterable[str]) -> None:
        """After a reconnect: fetch a snapshot of each price stream, held live messages after."""
        if self._snapshot is None:
            return
        for stream in streams:
            pending = self._snapshot(market, stream)
            if pending is not None and (market, stream) not in self._held:
                self._held[market, stream] = []
                task = asyncio.get_running_loop().create_task(self._fill(market, stream, pending))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def snapshot(self) -> dict[str, Any]:
        """``connections``, the counters (``reconnects``, ``reconnect_attempts``, ``stalls``,
        ``rotations``, ``server_shutdowns``, ``messages``…) and delivery numbers."""
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

    def event(self, kind: str, market: Market, message: str, **data: Any) -> None:
        self.emit(BinanceEvent(kind, market, message, data))

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

    async def _fill(self, market: Market, stream: str, pending: Awaitable[Any]) -> None:
        snapshot = None
        try:
            snapshot = await pending
        except Exception as e:  # noqa: BLE001 - a failed snapshot must not hold the stream
            _log.warning("ws_snapshot_failed", stream=stream, error=str(e))
        finally:
            held = self._held.pop((market, stream), [])
        if snapshot is not None:
            self.counters["snapshots"] += 1
            self._fan_out(market, stream, snapshot)
        for data in held:
            self._fan_out(market, stream, data)

    def _fan_out(self, market: Market, stream: str, data: Any) -> None:
        for subscriber in self._subs.get((market, stream), ()):
            subscriber.put(stream, data)

    def _overflow(self, market: Market, stream: str) -> None:
        self.event(
            "ws.overflow", market, f"a subscriber of {stream} is too slow; a message was dropped",
            stream=stream,
        )  # fmt: skip


def _stream_name(stream: str) -> str:
    """Binance wants lower-case symbols; ``!`` streams keep their camelCase."""
    symbol, sep, rest = stream.partition("@")
    return stream if stream.startswith("!") else f"{symbol.lower()}{sep}{rest}"
