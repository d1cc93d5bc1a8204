"""A fake Binance WebSocket server on 127.0.0.1 for tests: market streams (raw ``/ws``,
combined ``/stream``, futures routes ``/public`` ``/market`` ``/private``), the SUBSCRIBE /
UNSUBSCRIBE / LIST_SUBSCRIPTIONS protocol, Binance's limits (incoming messages per second,
streams per connection, connect attempts per IP, ping and pong deadlines, the 24 h cut), fault
knobs, user data (futures listenKey streams, the spot WS-API's signed subscription) and a
record of everything for assertions. Given the REST fake's candles (``candles=``), it runs
Binance's kline streams by itself: every subscribed ``<s>@kline_<i>`` gets the open candle's
update every ``kline_update_s`` and each candle's final update (``x`` true) when it closes,
all from the same candles the REST klines list.

One server speaks one market, like Binance's hosts: ``FakeBinanceWS(Market.SPOT)`` is
stream.binance.com plus ``/ws-api/v3``, ``FakeBinanceWS(Market.FUTURES)`` is fstream.
Close codes: 1008 for too many messages; 1001 at the lifetime cut, after ``serverShutdown``
and when the fake closes; a missed pong and ``drop()`` abort the TCP connection (1006).
Connections live in ``fake_ws_conn``; payload builders and wire rules in ``fake_ws_wire``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes import fake_ws_wire as wire
from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET
from tests.fakes.fake_market import Market
from tests.fakes.fake_signing import KeyRing
from tests.fakes.fake_ws_conn import (
    Frame,
    Misrouted,
    RateViolation,
    Refusal,
    SentEvent,
    WSConnection,
    parse_target,
    serves,
    stream_route,
)
from tests.fakes.local_server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Coroutine, Mapping

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_klines import FakeCandles
    from tests.fakes.fake_ws_conn import Target
    from tests.fakes.fake_ws_wire import Control

__all__ = (
    "FakeBinanceWS",
    "Frame",
    "Misrouted",
    "RateViolation",
    "Refusal",
    "SentEvent",
    "WSConnection",
    "rest_listen_keys",
)

_DEFAULTS = {Market.SPOT: (5, 20.0, 60.0), Market.FUTURES: (10, 180.0, 600.0)}  # msg/s, ping, pong
_KLINE_UPDATE_S = {Market.SPOT: 2.0, Market.FUTURES: 0.25}  # spot 1s candles: every 1.0 s
_KINDS = {WSMsgType.TEXT: "text", WSMsgType.BINARY: "binary"}
_KINDS.update({WSMsgType.PING: "ping", WSMsgType.PONG: "pong"})


def rest_listen_keys(rest: FakeBinance) -> Callable[[str], bool]:
    """A validator for ``listen_keys``: keys the REST fake issued that have not expired."""

    def valid(key: str) -> bool:
        now = rest.now() * 1000
        return any(lk == key and exp > now for lk, exp in rest.accounts.listen_keys.values())

    return valid


class FakeBinanceWS(LocalServer):
    """The fake stream server; ``async with FakeBinanceWS() as fake:`` serves at ``fake.url``.

    ``listen_keys``: a validator or a set of the valid futures listenKeys (default: any key);
    ``api_keys``: the WS-API's keys (default: the REST fake's test key); ``candles``: the REST
    fake's (``fake_binance.market.candles``) to serve kline streams from. Limits left None take
    the market's defaults (BINANCE.md §8); every knob is a public attribute, read when used.
    """

    def __init__(  # noqa: PLR0913 - a test fake's keyword-only knobs, each with a default
        self,
        market: Market = Market.SPOT,
        *,
        strict_routes: bool = False,
        ping_interval_s: float | None = None,
        pong_timeout_s: float | None = None,
        max_messages_per_s: int | None = None,
        max_streams: int = 1024,
        lifetime_s: float = 86_400.0,
        max_connects_per_window: int = 300,
        connect_window_s: float = 300.0,
        listen_keys: Callable[[str], bool] | Collection[str] | None = None,
        api_keys: Mapping[str, str | bytes] | None = None,
        seq_field: str | None = "_seq",
        candles: FakeCandles | None = None,
        kline_update_s: float | None = None,
    ) -> None:
        rate, ping, pong = _DEFAULTS[market]
        self.candles, self.kline_update_s = candles, kline_update_s
        self.market, self.strict_routes, self.seq_field = market, strict_routes, seq_field
        self.max_messages_per_s = rate if max_messages_per_s is None else max_messages_per_s
        self.ping_interval_s = ping if ping_interval_s is None else ping_interval_s
        self.pong_timeout_s = pong if pong_timeout_s is None else pong_timeout_s
        self.max_streams, self.lifetime_s = max_streams, lifetime_s
        self.max_connects_per_window = max_connects_per_window
        self.connect_window_s = connect_window_s
        if listen_keys is None:
            self._listen_key_ok: Callable[[str], bool] = bool
        elif callable(listen_keys):
            self._listen_key_ok = listen_keys
        else:
            self._listen_key_ok = frozenset(listen_keys).__contains__
        keys = {TEST_API_KEY: TEST_API_SECRET} if api_keys is None else api_keys
        self._user_api = wire.UserDataApi(KeyRing(keys))
        self.connections: list[WSConnection] = []
        self.misrouted: list[Misrouted] = []
        self.rate_violations: list[RateViolation] = []
        self.refused: list[Refusal] = []
        self.sent: list[SentEvent] = []
        self._expired: set[str] = set()
        self._seq: defaultdict[str, int] = defaultdict(int)
        self._attempts: defaultdict[str, deque[float]] = defaultdict(deque)
        self._refuse_until, self._refuse_status = 0.0, 503
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._autopush: dict[str, asyncio.Task[None]] = {}
        self._kline_feeds: dict[str, asyncio.Task[None]] = {}
        self._address = ""

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``; append a path such as ``/ws`` or ``/market/stream``."""
        return self._address

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._address = await self._serve(app, host, port, "ws")

    async def close(self) -> None:
        """Stop background pushes, close every connection with 1001, stop serving."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:  # a client that stopped reading could hold a close frame's drain forever
            async with asyncio.timeout(1.0):
                await asyncio.gather(
                    *(c.close(1001, "server_closed") for c in self.open_connections)
                )
        except TimeoutError:
            for c in self.open_connections:
                c.abort("server_closed")
        await self._stop_serving()

    # --- driving data --------------------------------------------------------------------
    async def push(self, stream: str, payload: Any) -> int:
        """Send one event to every subscriber of ``stream`` whose route serves it; typed events
        get ``E`` and every dict the per-stream ``seq_field``, unless given. Returns how many
        connections it reached."""
        seq = self._next_seq(stream)
        payload = self._stamp(payload, seq)
        delivered = []
        for c in self.open_connections:
            if c.api is None and stream in c.streams and self._serves(c, stream) and not c.stalled:
                frame = {"stream": stream, "data": payload} if c.combined else payload
                if await c.send(frame):
                    delivered.append(c.id)
        return self._record(stream, seq, payload, delivered)

    def autopush(self, stream: str, every_s: float, make_payload: Callable[[int], Any]) -> None:
        """Push ``make_payload(n)`` for n = 0, 1, … every ``every_s`` until stopped or closed."""
        self.stop_autopush(stream)
        self._autopush[stream] = self._spawn(self._pusher(stream, every_s, make_payload))

    def stop_autopush(self, stream: str) -> None:
        task = self._autopush.pop(stream, None)
        if task is not None:
            task.cancel()

    async def push_user_event(self, listen_key: str, event: dict[str, Any]) -> int:
        """A futures user-data event to the connections on ``listen_key`` (none once expired)."""
        seq = self._next_seq(listen_key)
        event = self._stamp(event, seq)
        delivered = []
        if listen_key not in self._expired:
            for c in self._user_conns(listen_key):
                if not c.stalled and (c.events is None or event.get("e") in c.events):
                    frame = {"stream": listen_key, "data": event} if c.combined else event
                    if await c.send(frame):
                        delivered.append(c.id)
        return self._record(listen_key, seq, event, delivered)

    async def expire_listen_key(self, listen_key: str) -> int:
        """Send ``listenKeyExpired`` on ``listen_key``; later events for it are not sent and
        new connections with it are refused. Returns how many connections were told."""
        event, told = wire.listen_key_expired(listen_key), 0
        for c in self._user_conns(listen_key):
            told += await c.send({"stream": listen_key, "data": event} if c.combined else event)
        self._expired.add(listen_key)
        return told

    async def push_spot_user_event(self, api_key: str, event: dict[str, Any]) -> int:
        """A spot user-data event, ``{"subscriptionId", "event"}``, to ``api_key``'s
        WS-API subscriptions; recorded under the stream ``userData:<api_key>``."""
        stream = f"userData:{api_key}"
        seq = self._next_seq(stream)
        event = self._stamp(event, seq)
        delivered = []
        for c, sid in self._spot_subscriptions(api_key):
            if not c.stalled and await c.send({"subscriptionId": sid, "event": event}):
                delivered.append(c.id)
        return self._record(stream, seq, event, delivered)

    async def terminate_spot_user_stream(self, api_key: str) -> int:
        """End ``api_key``'s subscriptions with ``eventStreamTerminated``, as Binance may."""
        ended = 0
        for c, sid in self._spot_subscriptions(api_key):
            if c.api is not None:
                del c.api.subscriptions[sid]
                ended += await c.send(_terminated(sid))
        return ended

    # --- faults --------------------------------------------------------------------------
    def drop(self, conn_filter: Callable[[WSConnection], bool] | None = None) -> int:
        """Abort matching connections' TCP, no close frame; returns how many."""
        targets = self._matching(conn_filter)
        for c in targets:
            c.abort("drop")
        return len(targets)

    def stall(
        self, seconds: float, conn_filter: Callable[[WSConnection], bool] | None = None
    ) -> None:
        """Open connections get no events (lost, as in a real stall) for ``seconds``; pings,
        control replies and connections opened later are unaffected."""
        for c in self._matching(conn_filter):
            c.stalled_until = time.monotonic() + seconds

    def refuse_connections(self, seconds: float, *, status: int = 503) -> None:
        """Answer new handshakes with HTTP ``status`` for ``seconds``."""
        self._refuse_until, self._refuse_status = time.monotonic() + seconds, status

    async def server_shutdown(
        self, *, grace_s: float = 0.0, conn_filter: Callable[[WSConnection], bool] | None = None
    ) -> int:
        """Send ``serverShutdown`` (combined: ``!serverShutdown``; WS-API: ``{"event": …}``),
        then close with 1001 after ``grace_s``; returns how many were told."""
        event, told = wire.server_shutdown_event(), 0
        for c in self._matching(conn_filter):
            if c.api is not None:
                frame: Any = {"event": event}
            else:
                frame = {"stream": "!serverShutdown", "data": event} if c.combined else event
            told += await c.send(frame)
            c.later(grace_s, self._close_soon, c, 1001, "server_shutdown")
        return told

    # --- recording -----------------------------------------------------------------------
    @property
    def open_connections(self) -> list[WSConnection]:
        return [c for c in self.connections if c.open]

    def events_sent(self, stream: str) -> list[SentEvent]:
        return [e for e in self.sent if e.stream == stream]

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
        """Return once ``predicate()`` holds, re-checked on every change the fake records."""
        if predicate():
            return
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter[1]
        finally:
            self._waiters.remove(waiter)

    async def wait_for_connections(self, n: int, *, timeout_s: float = 5.0) -> WSConnection:
        """The ``n``-th connection accepted (1-based), once it is."""
        await self.wait_until(lambda: len(self.connections) >= n, timeout_s=timeout_s)
        return self.connections[n - 1]

    async def wait_for_subscribed(self, stream: str, *, timeout_s: float = 5.0) -> WSConnection:
        """The first open connection subscribed to ``stream``, once there is one."""

        def find() -> WSConnection | None:
            return next((c for c in self.open_connections if stream in c.streams), None)

        await self.wait_until(lambda: find() is not None, timeout_s=timeout_s)
        found = find()
        assert found is not None
        return found

    async def wait_for_closed(self, conn: WSConnection, *, timeout_s: float = 5.0) -> None:
        await self.wait_until(lambda: not conn.open, timeout_s=timeout_s)

    # --- a connection, from handshake to close -------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target = parse_target(
            request.path, dict(request.query), futures=self.market == Market.FUTURES
        )
        refusal = self._admit(request, target)
        if refusal is not None or target is None:
            return refusal or web.Response(status=404)
        ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0)
        await ws.prepare(request)
        conn = WSConnection(
            len(self.connections) + 1,
            request.path,
            target.route,
            target.combined,
            request.remote or "",
            ws,
            request,
            events=target.events,
        )
        if target.route == "ws-api":
            conn.api = wire.ApiSession()
            self._user_api.charge_connect()
        for stream in dict.fromkeys(target.streams):
            self._add_stream(conn, stream)
        self.connections.append(conn)
        conn.later(self.lifetime_s, self._close_soon, conn, 1001, "lifetime")
        pinger = None
        if self.ping_interval_s:
            pinger = asyncio.create_task(
                conn.ping_every(self.ping_interval_s, self.pong_timeout_s)
            )
        self._notify()
        try:
            await self._read(conn)
        finally:
            conn.finish()
            if pinger is not None:
                pinger.cancel()
                await asyncio.wait([pinger])
            self._notify()
        return ws

    def _admit(self, request: web.Request, target: Target | None) -> web.Response | None:
        """None to accept the handshake, else the refusal (recorded)."""
        now, ip = time.monotonic(), request.remote or ""
        attempts = self._attempts[ip]
        attempts.append(now)
        while attempts[0] <= now - self.connect_window_s:
            attempts.popleft()
        if target is None:
            status, reason = 404, "unknown_path"
        elif len(attempts) > self.max_connects_per_window:
            status, reason = 429, "connect_limit"
        elif now < self._refuse_until:
            status, reason = self._refuse_status, "refused"
        elif len(set(target.streams)) > self.max_streams:
            status, reason = 400, "too_many_streams"
        elif target.route == "private" and not (
            target.streams and all(self._listen_key_valid(k) for k in target.streams)
        ):
            status, reason = 400, "invalid_listen_key"
        elif not web.WebSocketResponse().can_prepare(request).ok:
            status, reason = 400, "not_websocket"
        else:
            return None
        self.refused.append(Refusal(now, ip, request.path, status, reason))
        self._notify()
        return web.json_response({"code": -status, "msg": reason}, status=status)

    async def _read(self, conn: WSConnection) -> None:
        while True:
            msg = await conn.ws.receive()
            kind = _KINDS.get(msg.type)
            if kind is None:  # close, closing, closed or error
                return
            data = msg.data if isinstance(msg.data, str) else bytes(msg.data).decode("latin-1")
            count, limit = conn.count(kind, data), self.max_messages_per_s
            self._notify()
            if conn.api is None and limit and count > limit:
                self.rate_violations.append(RateViolation(conn.id, time.monotonic(), count, limit))
                await conn.close(1008, "rate_limit")
                return
            if msg.type is WSMsgType.PING:
                await conn.ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                # Spot: only a pong echoing a ping counts; futures allows unsolicited pongs (§8).
                conn.pong(bytes(msg.data), unsolicited_counts=self.market == Market.FUTURES)
            elif msg.type is WSMsgType.TEXT:
                await self._on_text(conn, msg.data)

    async def _on_text(self, conn: WSConnection, text: str) -> None:
        if conn.api is not None:
            reply, ended = self._user_api.handle(conn.api, text)
            await conn.send(reply)
            for sid in ended:
                await conn.send(_terminated(sid))
            return
        control = wire.parse_control(text, futures=self.market == Market.FUTURES)
        await conn.send(control if isinstance(control, dict) else self._apply(conn, control))
        self._notify()

    def _apply(self, conn: WSConnection, control: Control) -> dict[str, Any]:
        params = control.params
        result: Any = None
        if control.method == "SUBSCRIBE":
            new = [s for s in dict.fromkeys(params) if s not in conn.streams]
            if len(conn.streams) + len(new) > self.max_streams:
                return wire.too_many_streams(self.max_streams, control.id)
            for stream in new:
                self._add_stream(conn, stream)
        elif control.method == "UNSUBSCRIBE":
            for stream in params:
                conn.streams.pop(stream, None)
        elif control.method == "LIST_SUBSCRIPTIONS":
            result = list(conn.streams)
        elif control.method == "SET_PROPERTY":
            conn.combined = params[1]
        else:
            result = conn.combined
        return {"result": result, "id": control.id}

    # --- routes and user data -----------------------------------------------------------
    def _route_of(self, stream: str) -> str | None:
        return stream_route(stream, futures=self.market == Market.FUTURES, key=self._listen_key_ok)

    def _serves(self, conn: WSConnection, stream: str) -> bool:
        return serves(conn.route, self._route_of(stream), strict=self.strict_routes)

    def _add_stream(self, conn: WSConnection, stream: str) -> None:
        conn.streams[stream] = None
        self._feed_klines(stream)
        if not self._serves(conn, stream):
            self.misrouted.append(
                Misrouted(conn.id, conn.route, stream, self._route_of(stream) or "")
            )

    def _listen_key_valid(self, key: str) -> bool:
        return key not in self._expired and self._listen_key_ok(key)

    def _user_conns(self, listen_key: str) -> list[WSConnection]:
        served = ("private",) if self.strict_routes else ("private", "unrouted")
        return [c for c in self.open_connections if listen_key in c.streams and c.route in served]

    def _spot_subscriptions(self, api_key: str) -> list[tuple[WSConnection, int]]:
        return [
            (c, sid)
            for c in self.open_connections
            if c.api is not None
            for sid, key in list(c.api.subscriptions.items())
            if key == api_key
        ]

    # --- helpers -------------------------------------------------------------------------
    def _matching(self, conn_filter: Callable[[WSConnection], bool] | None) -> list[WSConnection]:
        return [c for c in self.open_connections if conn_filter is None or conn_filter(c)]

    def _next_seq(self, stream: str) -> int:
        self._seq[stream] += 1
        return self._seq[stream]

    def _stamp(self, payload: Any, seq: int) -> Any:
        if isinstance(payload, list):
            return [self._stamp(p, seq) for p in payload]
        if not isinstance(payload, dict):
            return payload
        out = dict(payload)
        if "e" in out:  # typed events carry E; spot bookTicker has neither
            out.setdefault("E", wire.now_ms())
        if self.seq_field:
            out.setdefault(self.seq_field, seq)
        return out

    def _record(self, stream: str, seq: int, payload: Any, delivered: list[int]) -> int:
        self.sent.append(SentEvent(time.monotonic(), stream, seq, payload, tuple(delivered)))
        self._notify()
        return len(delivered)

    def _close_soon(self, conn: WSConnection, code: int, reason: str) -> None:
        _ = self._spawn(conn.close(code, reason))

    def _feed_klines(self, stream: str) -> None:
        """Start Binance's updates of a kline stream once someone subscribes to it."""
        symbol, _, kind = stream.partition("@")
        interval, market = kind.removeprefix("kline_"), self.market
        if self.candles is None or stream in self._kline_feeds or not kind.startswith("kline_"):
            return
        if self.candles.serves(market, symbol.upper(), interval):
            every_s = self.kline_update_s or (1.0 if interval == "1s" else _KLINE_UPDATE_S[market])
            push = functools.partial(self.push, stream)
            feed = self.candles.feed(market, symbol.upper(), interval, push, every_s)
            self._kline_feeds[stream] = self._spawn(feed)

    async def _pusher(self, stream: str, every_s: float, make: Callable[[int], Any]) -> None:
        loop = asyncio.get_running_loop()
        deadline, n = loop.time(), 0
        while True:
            await self.push(stream, make(n))
            n, deadline = n + 1, deadline + every_s
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _notify(self) -> None:
        for predicate, fut in self._waiters:
            if not fut.done() and predicate():
                fut.set_result(None)


def _terminated(subscription_id: int) -> dict[str, Any]:
    event = {"e": "eventStreamTerminated", "E": wire.now_ms()}
    return {"subscriptionId": subscription_id, "event": event}
