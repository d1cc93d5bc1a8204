"""One connection of the fake Binance WebSocket server, and the records tests assert on.

``WSConnection`` holds a connection's state (route, streams, frames received, pings, timers)
and its mechanics: counting incoming frames in a sliding second, sending, pinging and
watching for the pong, closing with a code or aborting the TCP connection. Policy (limits,
routes, who gets which event) stays in ``fake_ws.FakeBinanceWS``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from tests.fakes.fake_ws_wire import futures_route, now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiohttp import web

    from tests.fakes.fake_ws_wire import ApiSession

__all__ = (
    "Frame",
    "Misrouted",
    "RateViolation",
    "Refusal",
    "SentEvent",
    "Target",
    "WSConnection",
    "parse_target",
    "serves",
    "stream_route",
)

ROUTES = ("public", "market", "private")
_CLOSE_TEXT = {
    "rate_limit": b"Too many messages",
    "lifetime": b"Connection lifetime reached",
    "server_shutdown": b"Server shutdown",
    "server_closed": b"Fake server closed",
}


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame a client sent (``kind``: text, binary, ping or pong); ``t`` is monotonic."""

    t: float
    kind: str
    data: str


@dataclass(frozen=True, slots=True)
class Misrouted:
    """A stream asked for on a connection whose route does not carry it: ACKed, then silent."""

    conn_id: int
    route: str
    stream: str
    stream_route: str


@dataclass(frozen=True, slots=True)
class RateViolation:
    conn_id: int
    t: float
    count: int  # frames in the last second, this one included
    limit: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """A handshake answered without 101: ``reason`` names the rule that refused it."""

    t: float
    ip: str
    path: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class SentEvent:
    """One pushed event and the connections it reached (``delivered``)."""

    t: float
    stream: str
    seq: int
    payload: Any
    delivered: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Target:
    """What a handshake's URL asks for."""

    route: str  # spot, ws-api, public, market, private or unrouted
    combined: bool
    streams: list[str]
    events: frozenset[str] | None = None  # a futures /private ``events=`` filter


def parse_target(path: str, query: dict[str, str], *, futures: bool) -> Target | None:
    """The route, framing and streams of ``/ws/<s1>/<s2>``, ``/stream?streams=<s1>/<s2>``,
    ``/ws-api/v3`` (spot) or ``/<route>/…`` and ``/private/ws?listenKey=…&events=…``."""
    parts = [p for p in path.split("/") if p]
    route = "spot"
    if not futures and parts == ["ws-api", "v3"]:
        return Target("ws-api", False, [])
    if futures:
        route = parts.pop(0) if parts and parts[0] in ROUTES else "unrouted"
    if parts[:1] == ["ws"]:
        streams, combined = parts[1:], False
    elif parts == ["stream"]:
        streams, combined = [s for s in query.get("streams", "").split("/") if s], True
    else:
        return None
    if route != "private":
        return Target(route, combined, streams)
    key, events = query.get("listenKey"), query.get("events")
    return Target(
        route,
        combined,
        [*streams, key] if key else streams,
        frozenset(events.split("/")) if events else None,
    )


def stream_route(stream: str, *, futures: bool, key: Callable[[str], bool]) -> str | None:
    """The futures route that carries ``stream`` (listenKeys: ``private``); None on spot and
    for streams outside the mapping."""
    if not futures:
        return None
    route = futures_route(stream)
    if route is None and "@" not in stream and not stream.startswith("!"):
        return "private" if key(stream) else None
    return route


def serves(conn_route: str, wanted: str | None, *, strict: bool) -> bool:
    """Whether a connection on ``conn_route`` sends a stream of route ``wanted``: routed URLs
    only their own; unrouted ones everything, or in the real 2026 behaviour only ``public``."""
    if wanted is None or conn_route == "spot":
        return True
    if conn_route == "unrouted":
        return wanted == "public" or not strict
    return wanted == conn_route


@dataclass(slots=True, eq=False)
class WSConnection:
    """One accepted connection as the fake saw it. ``close_reason``: client, rate_limit,
    pong_timeout, drop, lifetime, server_shutdown or server_closed."""

    id: int
    path: str
    route: str
    combined: bool
    ip: str
    ws: web.WebSocketResponse = field(repr=False)
    request: web.Request = field(repr=False)
    opened_at: float = field(default_factory=time.monotonic)
    streams: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    events: frozenset[str] | None = None
    api: ApiSession | None = None  # set on WS-API connections
    frames: list[Frame] = field(default_factory=list)
    pings_sent: int = 0
    stalled_until: float = 0.0
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    _window: deque[float] = field(default_factory=deque, repr=False)
    _pings: dict[bytes, asyncio.TimerHandle] = field(default_factory=dict, repr=False)
    _timers: list[asyncio.TimerHandle] = field(default_factory=list, repr=False)

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self.stalled_until

    @property
    def pongs(self) -> list[Frame]:
        return [f for f in self.frames if f.kind == "pong"]

    def max_rate(self, window_s: float = 1.0) -> int:
        """The most frames this client sent within any ``window_s``."""
        times, best, lo = [f.t for f in self.frames], 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # --- mechanics used by the server ------------------------------------------------------
    def count(self, kind: str, data: str) -> int:
        """Record an incoming frame; how many arrived within the last second."""
        now = time.monotonic()
        self.frames.append(Frame(now, kind, data))
        self._window.append(now)
        while self._window[0] <= now - 1.0:
            self._window.popleft()
        return len(self._window)

    async def send(self, message: Any) -> bool:
        """One text frame of JSON; False when the connection is already going away."""
        if not self.open or self.ws.closed:
            return False
        try:
            await self.ws.send_str(orjson.dumps(message).decode())
        except ConnectionError:
            return False
        return True

    async def close(self, code: int, reason: str) -> None:
        """A close frame with ``code``; the handler's read loop then ends."""
        if not self.open or self.ws.closed:
            return
        self.close_reason, self.close_code = self.close_reason or reason, code
        await self.ws.close(code=code, message=_CLOSE_TEXT[reason])

    def abort(self, reason: str) -> None:
        """Drop the TCP connection without a close frame (the client sees 1006)."""
        if self.open and not self.close_reason:
            self.close_reason, self.close_code = reason, 1006
        if self.request.transport is not None:
            self.request.transport.abort()

    def later(self, delay_s: float, callback: Callable[..., None], *args: Any) -> None:
        """A timer that ends with the connection."""
        self._timers.append(asyncio.get_running_loop().call_later(delay_s, callback, *args))

    async def ping_every(self, interval_s: float, pong_timeout_s: float) -> None:
        """Ping every ``interval_s``; abort when a ping's pong is ``pong_timeout_s`` late."""
        loop = asyncio.get_running_loop()
        try:
            while self.open and not self.ws.closed:
                await asyncio.sleep(interval_s)
                payload = str(now_ms()).encode()
                self._pings[payload] = loop.call_later(pong_timeout_s, self._pong_missed)
                self.pings_sent += 1
                await self.ws.ping(payload)
        except ConnectionError:  # going away; the handler records why
            return

    def pong(self, payload: bytes, *, unsolicited_counts: bool) -> None:
        """A pong echoing a ping clears the deadline; an unsolicited one only if allowed."""
        if payload in self._pings or unsolicited_counts:
            for handle in self._pings.values():
                handle.cancel()
            self._pings.clear()

    def finish(self) -> None:
        """The handler ended: stamp the close, stop every timer."""
        self.closed_at = time.monotonic()
        self.close_code = self.ws.close_code if self.close_code is None else self.close_code
        self.close_reason = self.close_reason or "client"
        for handle in [*self._timers, *self._pings.values()]:
            handle.cancel()

    def _pong_missed(self) -> None:
        if self.open:
            self.abort("pong_timeout")
