"""Streams through the client: market streams (``ws_subscribe`` and its shortcuts, typed
events from ``binance_ws_events``), kline streams (``ws_klines``), the user data streams, and
the REST fetches a stream's subscribers get after a reconnect: a price stream's snapshot, a
kline stream's missed closes. ``BinanceClient`` mixes this in; the sockets live in
``binance_websocket``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from utils.binance.binance_caller import Caller
from utils.binance.binance_constants import ENDPOINTS
from utils.binance.binance_exceptions import BinanceCredentialsError
from utils.binance.binance_types import BinanceEvent, KlineInterval, Market
from utils.binance.binance_utils import check_interval, check_symbol
from utils.binance.binance_websocket import WSSettings
from utils.binance.binance_ws_dispatch import Subscriber
from utils.binance.binance_ws_klines import KlineRows, interval_ms
from utils.binance.binance_ws_user import FuturesUserStream, SpotUserStream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from utils.binance.binance_utils import Signer
    from utils.binance.binance_websocket import StreamSubscription, WebSocketManager
    from utils.binance.binance_ws_events import (
        KlineCallback,
        MarkPricesCallback,
        MiniTickersCallback,
        StreamCallback,
        TickerCallback,
    )
    from utils.config import BinanceConfig

__all__ = ("StreamMethods", "ws_settings")

_U = TypeVar("_U", FuturesUserStream, SpotUserStream)

# REST field -> stream field, for snapshots delivered after a reconnect (BINANCE.md §8).
_TICKER_FIELDS = {"p": "priceChange", "P": "priceChangePercent", "w": "weightedAvgPrice"}
_TICKER_FIELDS |= {"c": "lastPrice", "o": "openPrice", "h": "highPrice", "l": "lowPrice"}
_TICKER_FIELDS |= {"v": "volume", "q": "quoteVolume", "E": "closeTime"}
_SNAPSHOT_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "ticker": ("24hrTicker", _TICKER_FIELDS),
    "miniTicker": ("24hrMiniTicker", _TICKER_FIELDS),
    "markPrice": (
        "markPriceUpdate",
        {"p": "markPrice", "i": "indexPrice", "P": "estimatedSettlePrice"}
        | {"r": "lastFundingRate", "T": "nextFundingTime", "E": "time"},
    ),
    "bookTicker": ("", {"b": "bidPrice", "B": "bidQty", "a": "askPrice", "A": "askQty"}),
}
# The all-market price streams and the kind of their elements.
_ARRAYS = {"!miniTicker@arr": "miniTicker", "!ticker@arr": "ticker", "!markPrice@arr": "markPrice"}
# REST source of a snapshot: (spot operation, futures operation).
_SOURCES = {
    "ticker": ("GET /api/v3/ticker/24hr", "GET /fapi/v1/ticker/24hr"),
    "miniTicker": ("GET /api/v3/ticker/24hr", "GET /fapi/v1/ticker/24hr"),
    "markPrice": ("", "GET /fapi/v1/premiumIndex"),
    "bookTicker": ("GET /api/v3/ticker/bookTicker", "GET /fapi/v1/ticker/bookTicker"),
}
_KLINES = {Market.SPOT: "GET /api/v3/klines", Market.FUTURES: "GET /fapi/v1/klines"}
_KLINE_PAGE = 1000  # rows per gap fill: spot's maximum, futures' 5-weight tier
# A REST row is taken as closed when its close time is this long before Binance's clock (our
# estimate of it may be off by a round trip); a later row proves it closed in any case.
_CLOSE_MARGIN_MS = 1000


def ws_settings(config: BinanceConfig) -> WSSettings:
    """The stream manager's settings, from the client's."""
    return WSSettings(
        spot_url=config.ws_url,
        futures_url=config.futures_ws_url,
        max_connections=config.max_websocket_connections,
        stall_s=config.ws_stall_s,
        rotate_s=config.ws_rotate_s,
        backoff_base_s=config.ws_backoff_base_s,
        backoff_max_s=config.ws_backoff_max_s,
        queue_size=config.ws_queue_size,
        connect_limit=config.ws_connect_limit,
        connect_window_s=config.ws_connect_window_s,
    )


class StreamMethods(Caller):
    """WebSocket streams of the client; the facade provides the manager and settings."""

    config: BinanceConfig
    _ws: WebSocketManager
    _user_streams: list[FuturesUserStream | SpotUserStream]

    _api_key: str | None
    _signer: Signer | None

    def _user_stream_params(self) -> dict[str, Any]:
        """``{apiKey, timestamp, signature}`` for the spot WS-API's user data subscription."""
        if self._api_key is None or self._signer is None:
            raise BinanceCredentialsError(
                "the spot user data stream needs an API key and secret; set BINANCE_API_KEY "
                "and BINANCE_API_SECRET"
            )
        params = {"apiKey": self._api_key, "timestamp": self.now_ms()}
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        return {**params, "signature": self._signer(payload.encode())}

    async def ws_subscribe(
        self,
        streams: Iterable[str],
        callback: StreamCallback,
        *,
        market: Market | str = Market.SPOT,
    ) -> StreamSubscription:
        """``callback(stream, event)`` (sync or async) for every message of ``streams``, kept
        alive across reconnects; ``await sub.unsubscribe()`` ends it. ``event`` is typed by
        the stream's kind (``KlineEvent``, ``AggTradeEvent``, an ``EventArray`` for the
        all-market arrays, ``RawEvent`` for kinds without a type); ``event["s"]`` still reads
        Binance's payload. Kline streams get the closes a reconnect missed, as ``ws_klines``.

        ``sub = await client.ws_subscribe(["btcusdt@kline_1m", "ethusdt@aggTrade"], on_msg)``
        """
        return await self._ws.subscribe(streams, callback, market=Market(market))

    async def ws_ticker(
        self, symbol: str, callback: TickerCallback, *, market: Market | str = Market.SPOT
    ) -> StreamSubscription:
        """``callback(data)`` with each 24hrTicker of ``symbol`` as a ``TickerEvent``
        (``data.last_price``; the seed's ``data["c"]``, a string, still works)."""
        return await self._ws.subscribe(
            [f"{symbol.lower()}@ticker"], callback, market=Market(market), with_stream=False
        )

    async def ws_all_mini_tickers(
        self, callback: MiniTickersCallback, *, market: Market | str = Market.SPOT
    ) -> StreamSubscription:
        """``callback(rows)`` with every ``!miniTicker@arr`` update (changed symbols only):
        an ``EventArray`` of ``MiniTickerEvent``, each typed when read (``rows.rows``: the
        decoded dicts)."""
        return await self._ws.subscribe(
            ["!miniTicker@arr"], callback, market=Market(market), with_stream=False
        )

    async def ws_all_mark_prices(
        self, callback: MarkPricesCallback, *, market: Market | str = Market.FUTURES
    ) -> StreamSubscription:
        """``callback(rows)`` with every ``!markPrice@arr`` update (futures, ``/market``): an
        ``EventArray`` of ``MarkPriceEvent``."""
        return await self._ws.subscribe(
            ["!markPrice@arr"], callback, market=Market(market), with_stream=False
        )

    async def ws_klines(
        self,
        symbol: str,
        interval: KlineInterval | str,
        callback: KlineCallback,
        *,
        market: Market | str = Market.SPOT,
    ) -> StreamSubscription:
        """``callback(kline)`` with each update of ``symbol``'s candles as a ``KlineEvent``
        (``kline.closed`` once final). After a reconnect or a stall, the candles that closed
        meanwhile come first, fetched over REST (``source="rest"``): every close once, in
        order, before live updates resume.

        ``await client.ws_klines("BTCUSDT", KlineInterval.M1, on_candle)``
        """
        market = Market(market)
        stream = f"{check_symbol(symbol).lower()}@kline_{check_interval(interval, market)}"
        return await self._ws.subscribe([stream], callback, market=market, with_stream=False)

    async def ws_futures_user_data(self, callback: Callable[[Any], Any]) -> FuturesUserStream:
        """``callback(event)`` with every futures account event (``ORDER_TRADE_UPDATE``,
        ``ACCOUNT_UPDATE``…) over a listenKey kept alive and renewed; ``await s.aclose()``."""
        endpoint = ENDPOINTS["POST /fapi/v1/listenKey"]
        self.check_credentials(endpoint)

        async def new_key() -> str:
            reply = await self.call_endpoint(endpoint)
            return str(reply["listenKey"])

        async def keep_alive(key: str) -> Any:
            return await self.call("PUT /fapi/v1/listenKey", listenKey=key)

        stream = FuturesUserStream(
            self.config.futures_ws_url,
            new_key=new_key,
            keep_alive=keep_alive,
            subscriber=self._user_subscriber(callback, Market.FUTURES),
            emit=self._ws.emit,
            keepalive_s=self.config.ws_listen_key_keepalive_s,
            backoff_base_s=self.config.ws_backoff_base_s,
            backoff_max_s=self.config.ws_backoff_max_s,
        )
        return self._started(stream)

    async def ws_spot_user_data(self, callback: Callable[[Any], Any]) -> SpotUserStream:
        """``callback(event)`` with every spot account event (``executionReport``,
        ``outboundAccountPosition``…) over the WS-API's signed subscription; ``aclose()``."""
        self._user_stream_params()  # fails now, not in the background, without keys
        stream = SpotUserStream(
            self.config.ws_api_url,
            signed_params=self._user_stream_params,
            subscriber=self._user_subscriber(callback, Market.SPOT),
            emit=self._ws.emit,
            backoff_base_s=self.config.ws_backoff_base_s,
            backoff_max_s=self.config.ws_backoff_max_s,
        )
        return self._started(stream)

    def _user_subscriber(self, callback: Callable[[Any], Any], market: Market) -> Subscriber:
        """A user stream's mailbox; a full one is reported like any stream's."""
        return Subscriber(
            callback,
            queue_size=self.config.ws_queue_size,
            stats=self._ws.stats,
            on_overflow=lambda _stream: self._ws.emit(
                BinanceEvent("ws.overflow", market, "user data callback too slow")
            ),
        )

    def _started(self, stream: _U) -> _U:
        """Track a user stream (closed with the client) and start it."""
        self._user_streams.append(stream)
        stream.start()
        return stream

    def _stream_snapshot(self, market: Market, stream: str) -> Awaitable[Any] | None:
        """After a reconnect: the REST state of a price stream (ticker, mini ticker, mark
        price, book ticker, or their all-market arrays) in the stream's own shape, marked
        ``source: "rest"``, so its subscribers miss nothing."""
        name = stream.removesuffix("@1s")
        array_kind = _ARRAYS.get(name)
        symbol, _, kind = name.partition("@")
        kind = array_kind or kind
        if kind not in _SOURCES:
            return None
        operation = _SOURCES[kind][market is Market.FUTURES]
        if not operation:  # spot has no mark price
            return None
        if array_kind is not None:
            return self._array_snapshot(operation, kind)
        return self._snapshot_of(operation, symbol.upper(), kind)

    async def _kline_gap(
        self, market: Market, symbol: str, interval: str, start_ms: int
    ) -> KlineRows | None:
        """A kline stream's gap: the candles from ``start_ms`` to Binance's now, in one
        request through the limiter (``endTime`` = now, so a cached page is never reused);
        None, without a request, while the candle opened at ``start_ms`` is still open."""
        now, step = self.now_ms(), interval_ms(interval)
        if start_ms + step - 1 >= now:
            return None
        rows = await self.call(
            _KLINES[market], symbol=symbol, interval=interval, startTime=start_ms,
            endTime=now, limit=min(_KLINE_PAGE, (now - start_ms) // step + 2),
        )  # fmt: skip
        return KlineRows(rows, now - _CLOSE_MARGIN_MS)

    async def _snapshot_of(self, operation: str, symbol: str, kind: str) -> dict[str, Any]:
        return _stream_shape(kind, await self.call(operation, symbol=symbol))

    async def _array_snapshot(self, operation: str, kind: str) -> list[dict[str, Any]]:
        return [_stream_shape(kind, row) for row in await self.call(operation)]


def _stream_shape(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    event, fields = _SNAPSHOT_FIELDS[kind]
    out: dict[str, Any] = {"e": event} if event else {}
    out |= {"s": row["symbol"], "source": "rest"}
    out.update({short: row[long] for short, long in fields.items() if long in row})
    return out
