"""One logical stream connection (BINANCE.md §8): the wanted streams kept alive on a socket.

``StreamConnection`` reconciles the wanted streams with what its socket subscribed, in
batched SUBSCRIBE/UNSUBSCRIBE frames paced under Binance's per-connection message limit
(control frames ≤4/s spot, ≤8/s futures, leaving room for pongs). It reconnects forever
with full-jitter exponential backoff, reconnects when a subscribed socket falls silent
(stall), and moves to a new socket before the 24 h cut or on ``serverShutdown`` by opening
and subscribing the new one before closing the old one; frames both sockets carried during
the handover are delivered once.

It reaches its owner only through ``StreamHost``: settings, the connect gate, counters,
delivery, the reconnect hook and events (the manager in ``binance_websocket`` is one).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from utils.binance.binance_types import Market
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from websockets.asyncio.client import ClientConnection

__all__ = ("ConnectGate", "ConnectionSettings", "StreamConnection", "StreamHost")

_log = get_logger(__name__)
_BATCH = 200  # streams per SUBSCRIBE: Binance documents no maximum [unverified]
_CONTROL_RATE = {Market.SPOT: 4, Market.FUTURES: 8}  # leaves room for pongs under 5/s, 10/s
_ids = itertools.count(1)


class ConnectionSettings(Protocol):
    """What a connection reads of its owner's settings (``WSSettings`` has them)."""

    @property
    def spot_url(self) -> str: ...
    @property
    def futures_url(self) -> str: ...
    @property
    def stall_s(self) -> float: ...
    @property
    def rotate_s(self) -> float: ...
    @property
    def backoff_base_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...
    @property
    def open_timeout_s(self) -> float: ...


class StreamHost(Protocol):
    """What a ``StreamConnection`` may ask of its owner, and nothing more."""

    @property
    def settings(self) -> ConnectionSettings: ...

    async def admit(self) -> None:
        """Wait until a connection attempt is allowed (Binance's per-IP connect limit)."""

    def count(self, name: str) -> None:
        """Add one to the counter ``name`` (``reconnects``, ``stalls``, …)."""

    def deliver(self, market: Market, stream: str, data: Any) -> None:
        """One decoded payload of ``stream``, once, in order."""

    def reconnected(self, market: Market, streams: list[str]) -> None:
        """A new socket replaced a lost one: messages of ``streams`` may have been missed."""

    def event(self, kind: str, market: Market, message: str, **data: Any) -> None:
        """Publish a ``ws.*`` event."""


class _Socket:
    """One websocket of a connection: what it subscribed, its pacing, its reader."""

    def __init__(self, ws: ClientConnection, inbox: asyncio.Queue[tuple[_Socket, bytes | None]],
                 rate: int) -> None:  # fmt: skip
        self.ws, self.rate = ws, rate
        self.subscribed: set[str] = set()
        self.pending: set[int] = set()
        self.sent_at: deque[float] = deque()
        self._lock = asyncio.Lock()  # FIFO: control frames leave in the order they were made
        self.reader = asyncio.get_running_loop().create_task(self._read(inbox))

    @property
    def settled(self) -> bool:
        return not self.pending

    async def send_control(self, method: str, params: list[str]) -> None:
        """One control frame, waiting first so at most ``rate`` go out in any 1.1 s."""
        async with self._lock:
            while len(self.sent_at) >= self.rate:
                wait = self.sent_at[0] + 1.1 - time.monotonic()
                if wait <= 0:
                    self.sent_at.popleft()
                else:
                    await asyncio.sleep(wait)
            self.sent_at.append(time.monotonic())
            rid = next(_ids)
            self.pending.add(rid)
            frame = {"method": method, "params": params, "id": rid}
            await self.ws.send(orjson.dumps(frame).decode())

    async def close(self) -> None:
        self.reader.cancel()
        try:
            async with asyncio.timeout(1.0):
                await self.ws.close()
        except TimeoutError:
            pass
        await asyncio.gather(self.reader, return_exceptions=True)

    async def _read(self, inbox: asyncio.Queue[tuple[_Socket, bytes | None]]) -> None:
        try:
            while True:
                raw = await self.ws.recv(decode=False)
                inbox.put_nowait((self, raw if isinstance(raw, bytes) else raw.encode()))
        except _ws_errors():
            inbox.put_nowait((self, None))


class ConnectGate:
    """At most ``limit`` connection attempts per ``window_s`` for everything behind one IP
    (Binance: 300 per 5 minutes); a further attempt waits for the oldest to age out, and
    ``margin_s`` more: Binance counts an attempt when it arrives, and the oldest may have
    taken longer on its way than the new one will."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        margin_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit, self._clock = limit, clock
        self._window_s = window_s + margin_s
        self._attempts: deque[float] = deque()

    async def admit(self) -> None:
        while True:
            now = self._clock()
            while self._attempts and now - self._attempts[0] >= self._window_s:
                self._attempts.popleft()
            if len(self._attempts) < self._limit:
                self._attempts.append(now)
                return
            await asyncio.sleep(self._attempts[0] + self._window_s - now)  # computed deadline


class StreamConnection:
    """One logical connection: a set of wanted streams kept alive on some socket."""

    def __init__(self, host: StreamHost, market: Market, route: str | None) -> None:
        self.host, self.market, self.route = host, market, route
        s = host.settings
        base = s.spot_url if market is Market.SPOT else f"{s.futures_url}/{route}"
        self.url = f"{base}/stream"
        self.wanted: dict[str, None] = {}
        self.socket: _Socket | None = None
        self._next: _Socket | None = None  # the rotation's new socket, until it is settled
        self._buffer: list[tuple[str, Any, bytes]] = []
        self._seen: Counter[bytes] = Counter()
        self._inbox: asyncio.Queue[tuple[_Socket, bytes | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sync_tasks: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._rotate_at = 0.0
        self._opened = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """``_run`` only ends by cancellation; anything else is a bug to shout about."""
        if not task.cancelled() and task.exception() is not None:
            _log.error("ws_connection_crashed", url=self.url, error=repr(task.exception()))
            self._event("ws.error", f"stream connection {self.url} stopped: {task.exception()!r}")

    def want(self, names: Iterable[str]) -> None:
        self.wanted.update(dict.fromkeys(names))
        self._sync_all()

    def unwant(self, names: Iterable[str]) -> None:
        for name in names:
            self.wanted.pop(name, None)
        self._sync_all()

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._sync_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._drop_sockets()
        await asyncio.gather(*self._closers, return_exceptions=True)

    async def _drop_sockets(self) -> None:
        socks, self.socket, self._next = (self.socket, self._next), None, None
        await asyncio.gather(*(s.close() for s in socks if s is not None))

    # --- the connection's life --------------------------------------------------------
    async def _run(self) -> None:
        attempt, host = 0, self.host
        while True:
            try:
                sock = await self._open()
            except _ws_errors() as e:
                attempt += 1
                host.count("reconnect_attempts")
                _log.warning("ws_connect_failed", url=self.url, attempt=attempt, error=str(e))
                await self._backoff(attempt)
                continue
            self.socket, attempt = sock, 0
            if self._opened:
                host.count("reconnects")
                self._event("ws.reconnect", f"reconnected {self.url}; resubscribing")
                host.reconnected(self.market, list(self.wanted))
            self._opened = True
            self._sync(sock)
            reason = await self._pump()
            _log.warning("ws_connection_lost", url=self.url, reason=reason)
            await self._drop_sockets()
            attempt = 1
            host.count("reconnect_attempts")
            await self._backoff(attempt)

    async def _open(self) -> _Socket:
        from websockets.asyncio.client import connect  # noqa: PLC0415 - on first stream only

        await self.host.admit()  # after the import: the attempt leaves right after it counts

        ws = await connect(
            self.url,
            ping_interval=None,  # Binance pings us; our own pings would count against 5 msg/s
            max_size=None,
            compression=None,
            open_timeout=self.host.settings.open_timeout_s,
            close_timeout=1.0,
        )
        self._rotate_at = time.monotonic() + self.host.settings.rotate_s
        return _Socket(ws, self._inbox, _CONTROL_RATE[self.market])

    async def _backoff(self, attempt: int) -> None:
        s = self.host.settings
        ceiling = min(s.backoff_max_s, s.backoff_base_s * 2 ** (attempt - 1))
        await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not secrecy

    async def _pump(self) -> str:
        """Read until the active socket is lost or stalls; returns why."""
        stall_s, last_data = self.host.settings.stall_s, time.monotonic()
        while True:
            deadline = min(last_data + stall_s, self._rotate_at)
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    sock, raw = await self._inbox.get()
            except TimeoutError:
                if time.monotonic() < last_data + stall_s:
                    await self._begin_handover("rotation")
                    continue
                self.host.count("stalls")
                self._event("ws.stall", f"no data for {stall_s:g} s; reconnecting")
                return "stall"
            if raw is None:
                if sock is self._next:  # the new socket died: try again shortly
                    self._next = None
                    self._rotate_at = time.monotonic() + self.host.settings.backoff_base_s
                elif sock is self.socket:
                    if self._next is None:
                        return "dropped"
                    self._switch()
                continue
            if sock is self.socket:
                last_data = time.monotonic()
            if self._frame(sock, raw) == "shutdown":
                self.host.count("server_shutdowns")
                await self._begin_handover("server_shutdown")

    def _frame(self, sock: _Socket, raw: bytes) -> str | None:
        """Handle one frame; ``shutdown`` when the server announced it is going away."""
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            _log.warning("ws_bad_frame", url=self.url, size=len(raw))
            return None
        if isinstance(msg, dict) and "stream" not in msg and "id" in msg:
            sock.pending.discard(msg["id"])
            if "code" in msg:
                self.host.count("errors")
                self._event("ws.error", f"Binance refused a control message: {msg.get('msg')}")
            if sock is self._next and sock.settled and set(self.wanted) <= sock.subscribed:
                self._switch()
            return None
        if not isinstance(msg, dict) or "stream" not in msg:
            return None
        stream, data = msg["stream"], msg.get("data")
        if stream == "!serverShutdown":
            return "shutdown" if sock is self.socket else None
        if sock is self._next:
            self._buffer.append((stream, data, raw))
        elif sock is self.socket:
            if self._next is not None:
                self._seen[raw] += 1
            elif self._seen[raw] > 0:
                self._seen[raw] -= 1
                return None
            self.host.deliver(self.market, stream, data)
        return None

    async def _begin_handover(self, why: str) -> None:
        """Open a second socket and subscribe it; ``_switch`` retires the old one once the
        new one has acknowledged every stream, so no message falls in between."""
        if self._next is not None:
            return
        self._rotate_at = float("inf")
        try:
            sock = await self._open()
        except _ws_errors() as e:
            _log.warning("ws_handover_failed", url=self.url, error=str(e))
            self._rotate_at = time.monotonic() + self.host.settings.backoff_base_s
            return
        self._next, self._buffer, self._seen = sock, [], Counter()
        self._rotate_at = float("inf")
        kind = "ws.rotate" if why == "rotation" else "ws.server_shutdown"
        if why == "rotation":
            self.host.count("rotations")
        self._event(kind, f"moving {len(self.wanted)} streams to a new connection ({why})")
        self._sync(sock)

    def _switch(self) -> None:
        old, new = self.socket, self._next
        if new is None:
            return
        self.socket, self._next = new, None
        self._rotate_at = time.monotonic() + self.host.settings.rotate_s
        if old is not None:
            closer = asyncio.get_running_loop().create_task(old.close())
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)
        for stream, data, raw in self._buffer:
            if self._seen[raw] > 0:
                self._seen[raw] -= 1
            else:
                self.host.deliver(self.market, stream, data)
        self._buffer = []

    # --- subscriptions -----------------------------------------------------------------
    def _sync_all(self) -> None:
        for sock in (self.socket, self._next):
            if sock is not None:
                self._sync(sock)

    def _sync(self, sock: _Socket) -> None:
        self._spawn(self._reconcile(sock))

    async def _reconcile(self, sock: _Socket) -> None:
        """Send batched (UN)SUBSCRIBEs until ``sock`` carries exactly the wanted streams."""
        try:
            while True:
                drop = [s for s in sock.subscribed if s not in self.wanted][:_BATCH]
                add = [s for s in self.wanted if s not in sock.subscribed][:_BATCH]
                if not drop and not add:
                    return
                method, batch = ("UNSUBSCRIBE", drop) if drop else ("SUBSCRIBE", add)
                if method == "SUBSCRIBE":
                    sock.subscribed.update(batch)
                else:
                    sock.subscribed.difference_update(batch)
                self.host.count("control_messages")
                await sock.send_control(method, batch)
        except _ws_errors():
            return  # the reader reports the loss

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._sync_tasks.add(task)
        task.add_done_callback(self._sync_tasks.discard)

    def _event(self, kind: str, message: str) -> None:
        self.host.event(kind, self.market, message, url=self.url, streams=len(self.wanted))


def _ws_errors() -> tuple[type[BaseException], ...]:
    """What a socket raises when it fails. ``websockets`` is imported with the first stream,
    not with the client: a client that never streams does not pay for it at start-up."""
    from websockets.exceptions import WebSocketException  # noqa: PLC0415 - see above

    return (WebSocketException, OSError, TimeoutError)
