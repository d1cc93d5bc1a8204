"""User data streams (BINANCE.md §9). Futures: a listenKey, a ``/private/ws`` connection,
a keepalive every ``keepalive_s`` (Binance: within 60 min; we use 30), and a fresh key with a
new connection on ``listenKeyExpired`` or a keepalive answered -1125. Drops reconnect forever
with full-jitter backoff. Spot: a signed WS-API subscription. The REST calls and the
signing come in as functions: no transport here.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from abc import ABC, abstractmethod
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson

from utils.binance.binance_exceptions import BinanceAPIError, BinanceWebSocketError
from utils.binance.binance_types import BinanceEvent, ErrorCode, Market
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.client import ClientConnection

    from utils.binance.binance_ws_dispatch import Subscriber

__all__ = ("FuturesUserStream", "SpotUserStream")

_log = get_logger(__name__)
_STREAM = "userData"


class _UserStream(ABC):
    """What both user streams share: a supervised task, its subscriber, backoff, counters."""

    def __init__(
        self,
        subscriber: Subscriber,
        emit: Callable[[BinanceEvent], None],
        backoff: tuple[float, float],
    ) -> None:
        self.subscriber, self._emit = subscriber, emit
        self._backoff = backoff
        self.reconnects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.subscriber.aclose()

    @abstractmethod
    async def _run(self) -> None:
        """The stream's life: connect, subscribe, read, reconnect; until cancelled."""


class FuturesUserStream(_UserStream):
    """Delivers every futures account event to ``subscriber`` until ``aclose``."""

    def __init__(
        self,
        base_url: str,
        *,
        new_key: Callable[[], Awaitable[str]],
        keep_alive: Callable[[str], Awaitable[Any]],
        subscriber: Subscriber,
        emit: Callable[[BinanceEvent], None],
        keepalive_s: float = 1800.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
    ) -> None:
        super().__init__(subscriber, emit, (backoff_base_s, backoff_max_s))
        self._base, self._new_key, self._keep_alive = base_url, new_key, keep_alive
        self._keepalive_s = keepalive_s
        self.listen_key: str | None = None
        self._ws: ClientConnection | None = None

    async def _run(self) -> None:
        # websockets is imported with the first stream, not with the client (start-up time)
        from websockets.asyncio.client import connect  # noqa: PLC0415
        from websockets.exceptions import InvalidStatus, WebSocketException  # noqa: PLC0415

        attempt, fresh = 0, True
        while True:
            try:
                if fresh or self.listen_key is None:
                    self.listen_key = await self._new_key()
                url = f"{self._base}/private/ws?listenKey={self.listen_key}"
                async with connect(url, ping_interval=None, max_size=None) as ws:
                    self._ws, attempt = ws, 0
                    fresh = await self._serve(ws, self.listen_key)
            except (
                WebSocketException, OSError, TimeoutError, BinanceAPIError, orjson.JSONDecodeError
            ) as e:  # fmt: skip
                _log.warning("ws_user_stream_lost", error=str(e))
                fresh = isinstance(e, InvalidStatus)  # Binance answers 400 to a dead key
            finally:
                self._ws = None
            attempt += 1
            self.reconnects += 1
            self._event("ws.reconnect", "futures user data stream reconnecting")
            base, ceiling = self._backoff
            delay = random.uniform(0, min(ceiling, base * 2 ** (attempt - 1)))  # noqa: S311
            await asyncio.sleep(delay)

    async def _serve(self, ws: ClientConnection, key: str) -> bool:
        """Read until the connection ends; True when the key must be replaced."""
        keeper = asyncio.get_running_loop().create_task(self._keep(ws, key))
        try:
            async for raw in ws:
                event = orjson.loads(raw)
                data = event.get("data", event) if isinstance(event, dict) else event
                if isinstance(data, dict) and data.get("e") == "listenKeyExpired":
                    self._event("ws.listen_key_expired", "listenKey expired; creating a new one")
                    return True
                self.subscriber.put(_STREAM, data)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        return not keeper.cancelled() and keeper.exception() is None and keeper.result()

    async def _keep(self, ws: ClientConnection, key: str) -> bool:
        """PUT the key every ``keepalive_s``; on -1125 close the socket, asking for a new key."""
        while True:
            await asyncio.sleep(self._keepalive_s)
            try:
                await self._keep_alive(key)
            except BinanceAPIError as e:
                if e.code != ErrorCode.INVALID_LISTEN_KEY:
                    _log.warning("ws_keepalive_failed", error=str(e))
                    continue
                self._event("ws.listen_key_expired", "keepalive got -1125; creating a new key")
                await ws.close()
                return True

    def _event(self, kind: str, message: str) -> None:
        self._emit(BinanceEvent(kind, Market.FUTURES, message, {"reconnects": self.reconnects}))


class SpotUserStream(_UserStream):
    """Spot user data over the WS-API (``userDataStream.subscribe.signature``, BINANCE.md §9):
    subscribes again after ``eventStreamTerminated``, reconnects on drops and on
    ``serverShutdown``; ``signed_params()`` gives ``{apiKey, timestamp, signature}``."""

    def __init__(
        self,
        url: str,
        *,
        signed_params: Callable[[], dict[str, Any]],
        subscriber: Subscriber,
        emit: Callable[[BinanceEvent], None],
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
    ) -> None:
        super().__init__(subscriber, emit, (backoff_base_s, backoff_max_s))
        self._url, self._signed_params = url, signed_params
        self._ids = itertools.count(1)

    async def _run(self) -> None:
        from websockets.asyncio.client import connect  # noqa: PLC0415 - see FuturesUserStream
        from websockets.exceptions import WebSocketException  # noqa: PLC0415

        attempt = 0
        while True:
            try:
                async with connect(self._url, ping_interval=None, max_size=None) as ws:
                    await self._subscribe(ws)
                    attempt = 0
                    await self._serve(ws)
            except (
                WebSocketException, OSError, TimeoutError, BinanceWebSocketError,
                orjson.JSONDecodeError,
            ) as e:  # fmt: skip
                _log.warning("ws_spot_user_stream_lost", error=str(e))
            attempt += 1
            self.reconnects += 1
            self._emit(
                BinanceEvent(
                    "ws.reconnect", Market.SPOT, "spot user data stream reconnecting",
                    {"reconnects": self.reconnects},
                )
            )  # fmt: skip
            base, ceiling = self._backoff
            delay = random.uniform(0, min(ceiling, base * 2 ** (attempt - 1)))  # noqa: S311
            await asyncio.sleep(delay)

    async def _subscribe(self, ws: ClientConnection) -> None:
        rid = f"uds-{next(self._ids)}"
        request = {"id": rid, "method": "userDataStream.subscribe.signature"}
        await ws.send(orjson.dumps({**request, "params": self._signed_params()}).decode())
        async with asyncio.timeout(10.0):
            while True:
                reply = orjson.loads(await ws.recv(decode=False))
                if isinstance(reply, dict) and reply.get("id") == rid:
                    break
        if reply.get("status") != HTTPStatus.OK:
            error = reply.get("error") or {}
            raise BinanceWebSocketError(
                f"spot user data subscription refused: {error.get('code')} {error.get('msg')}"
            )

    async def _serve(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = orjson.loads(raw)
            event = msg.get("event") if isinstance(msg, dict) else None
            if not isinstance(event, dict):
                continue
            kind = event.get("e")
            if kind == "serverShutdown":
                return
            if kind == "eventStreamTerminated":
                await self._subscribe(ws)
                continue
            self.subscriber.put(_STREAM, event)
