"""``BinanceClient``, the one door to Binance; ``__all__`` is all that app code may import.

The client is its public, private and stream helpers over one ``Caller`` base; here it
provides what the base asks for and composes the mechanisms and their lifecycle: transport,
weight limiter (shared through Redis), one breaker per market, cache, metrics, event bus. A
call goes cache -> ``RequestPipeline`` (limiter -> breaker -> transport). ``get_prices`` and
``get_portfolio`` fetch spot and futures together (``binance_fanout`` shapes the answers).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any, Self

import orjson

from utils.binance.binance_cache import (
    Cache,
    MemoryCache,
    RedisCache,
    SingleFlight,
    cache_key,
    endpoint_ttl,
    get_or_fetch,
    kline_ttl,
)
from utils.binance.binance_circuit_breaker import BreakerConfig, CircuitBreaker
from utils.binance.binance_constants import DEFAULT_RATE_WINDOWS, KLINE_OPERATIONS
from utils.binance.binance_events import EventBus
from utils.binance.binance_exceptions import (
    BinanceAPIError,
    BinanceAuthError,
    BinanceCircuitOpenError,
    BinanceConfigError,
    BinanceCredentialsError,
    BinanceError,
    BinanceFilterError,
    BinanceInputError,
    BinanceInvalidSymbolError,
    BinanceIPBannedError,
    BinanceOrderNotPlacedError,
    BinanceOrderRejectedError,
    BinanceRateLimitError,
    BinanceTimeoutError,
    BinanceTimestampError,
    BinanceTransportError,
    BinanceUnknownStatusError,
    BinanceUnknownSymbolError,
    BinanceWebSocketError,
)
from utils.binance.binance_fanout import portfolio, price_snapshots, symbol_request
from utils.binance.binance_metrics import RequestMetrics, render_prometheus
from utils.binance.binance_pipeline import RequestPipeline
from utils.binance.binance_private import PrivateEndpoints
from utils.binance.binance_public import PublicEndpoints
from utils.binance.binance_ratelimit import LimiterConfig, WeightLimiter
from utils.binance.binance_request import Transport
from utils.binance.binance_streams import StreamMethods, ws_settings
from utils.binance.binance_types import (
    AssetValue,
    BinanceEvent,
    Endpoint,
    KlineInterval,
    Market,
    OrderSide,
    OrderType,
    Params,
    Portfolio,
    PriceSnapshot,
    RateWindow,
    TimeInForce,
    models,
)
from utils.binance.binance_utils import SymbolRules, make_signer
from utils.binance.binance_websocket import StreamSubscription, WebSocketManager
from utils.binance.binance_ws_user import FuturesUserStream, SpotUserStream
from utils.config import BinanceConfig, RedisConfig
from utils.logging_setup import register_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from decimal import Decimal

    from utils.binance.binance_models import *  # noqa: F403 - the models of __all__
    from utils.binance.binance_ws_events import (
        AggTradeEvent,
        BookTickerEvent,
        EventArray,
        KlineCallback,
        KlineEvent,
        MarkPriceEvent,
        MarkPricesCallback,
        MiniTickerEvent,
        MiniTickersCallback,
        RawEvent,
        Source,
        StreamCallback,
        StreamEvent,
        StreamMessage,
        TickerCallback,
        TickerEvent,
        TradeEvent,
    )
    from utils.redis_conn import RedisClient

# All that handler/, analysis/, bot/, utils/alarms/ may use; utils.binance re-exports it.
# fmt: off
__all__ = (  # noqa: RUF022 - grouped by kind, sorted within a group
    # the client, its settings and events, what its methods answer, its stream handles
    "BinanceClient", "BinanceConfig", "BinanceEvent", "EventBus", "FuturesUserStream",
    "RateWindow", "SpotUserStream", "StreamSubscription", "SymbolRules",
    # errors (the tree is drawn in binance_exceptions)
    "BinanceAPIError", "BinanceAuthError", "BinanceCircuitOpenError", "BinanceConfigError",
    "BinanceCredentialsError", "BinanceError", "BinanceFilterError", "BinanceIPBannedError",
    "BinanceInputError", "BinanceInvalidSymbolError", "BinanceOrderNotPlacedError",
    "BinanceOrderRejectedError", "BinanceRateLimitError", "BinanceTimeoutError",
    "BinanceTimestampError", "BinanceTransportError", "BinanceUnknownStatusError",
    "BinanceUnknownSymbolError", "BinanceWebSocketError",
    # closed sets, then the plain results of the fan-out helpers
    "KlineInterval", "Market", "OrderSide", "OrderType", "TimeInForce",
    "AssetValue", "Portfolio", "PriceSnapshot",
    # typed stream events and the callbacks that receive them (binance_ws_events)
    "AggTradeEvent", "BookTickerEvent", "EventArray", "KlineCallback", "KlineEvent",
    "MarkPriceEvent", "MarkPricesCallback", "MiniTickerEvent", "MiniTickersCallback",
    "RawEvent", "Source", "StreamCallback", "StreamEvent", "StreamMessage", "TickerCallback",
    "TickerEvent", "TradeEvent",
    # every model of binance_models: loaded on first use (__getattr__); mypy reads the star
    # import above, hence F405
    "AccountInfo", "AggTrade", "AvgPrice", "Balance", "BookTicker", "FundingRate",  # noqa: F405
    "FuturesAccount", "FuturesAsset", "FuturesBalance", "FuturesPosition", "Income",  # noqa: F405
    "Kline", "LeverageChange", "LotSize", "MarkPrice", "MyTrade", "NotionalFilter",  # noqa: F405
    "OpenInterest", "Order", "OrderBook", "PositionRisk", "PriceFilter", "SymbolInfo",  # noqa: F405
    "Ticker24h", "TickerPrice", "Trade",  # noqa: F405
)
# fmt: on


class BinanceClient(PublicEndpoints, PrivateEndpoints, StreamMethods):
    """Async Binance client (spot and USDⓈ-M futures). Use it as an async context manager.

    ``redis_client``: the app's Redis client, used by the limiter and the cache and left open
    by ``aclose()``; without it, one is built from ``REDIS_URL`` when set (and closed)."""

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        config: BinanceConfig | None = None,
        *,
        redis: RedisConfig | None = None,
        redis_client: RedisClient | None = None,
    ) -> None:
        super().__init__()
        self.config = config = config if config is not None else BinanceConfig.from_env()
        redis = redis if redis is not None else RedisConfig.from_env()
        api_key = api_key or _secret(config.api_key)
        secret = secret_key or _secret(config.secret_key)
        pem = config.private_key_path.read_bytes() if config.private_key_path else None
        for value in filter(None, (api_key, secret)):
            register_secret(value)
        self.events = EventBus()
        self.metrics = RequestMetrics()
        self._api_key, self._signer = api_key, make_signer(secret, pem)
        self._transport = Transport(
            base_urls={Market.SPOT: config.base_url, Market.FUTURES: config.futures_base_url},
            api_key=api_key,
            signer=self._signer,
            timeout_s=config.request_timeout,
            pool_size=config.pool_size,
            recv_window_ms=config.recv_window_ms,
        )
        self._redis_url = _secret(redis.url)
        self._redis = redis_client
        self._owns_redis = redis_client is None  # an app's client is closed by the app
        self._redis_prefix = redis.key_prefix
        self._account = hashlib.sha256((api_key or "anonymous").encode()).hexdigest()[:16]
        breaker_config = BreakerConfig(
            failures_to_open=config.breaker_failures, open_for_s=config.breaker_open_s
        )
        self._breakers = {
            m: CircuitBreaker(m, breaker_config, emit=self.events.publish) for m in Market
        }
        self._cache: Cache = MemoryCache(config.cache_max_entries)
        self._flights = SingleFlight()
        self._cache_on = config.cache_enabled
        self._ws = WebSocketManager(
            ws_settings(config),
            emit=self.events.publish,
            snapshot=self._stream_snapshot,
            klines=self._kline_gap,
        )
        self._user_streams: list[FuturesUserStream | SpotUserStream] = []
        self._pipeline = RequestPipeline(
            config,
            transport=self._transport,
            limiter=self._new_limiter(None),
            breakers=self._breakers,
            metrics=self.metrics,
            emit=self.events.publish,
        )

    # --- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self._transport.open()
        if self._redis is None and self._redis_url:
            from utils.redis_conn import connect  # noqa: PLC0415 - redis only with REDIS_URL

            # A single Redis waits for a free connection rather than failing; or a cluster.
            self._redis = connect(self._redis_url, max_connections=self.config.pool_size, wait_s=5)
        if self._redis is not None:
            self._pipeline.limiter = self._new_limiter(self._redis)
            self._cache = RedisCache(
                self._redis,
                prefix=self._redis_prefix,
                emit=self.events.publish,
                retry_after_s=self.config.redis_retry_s,
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close streams, the session and a Redis client it built; cancel subscriber tasks."""
        await self._ws.aclose()
        streams, self._user_streams = self._user_streams, []
        await asyncio.gather(*(s.aclose() for s in streams))
        self._pipeline.limiter.close()
        await self.events.aclose()
        await self._transport.close()
        if self._redis is not None and self._owns_redis:
            redis, self._redis = self._redis, None
            await redis.aclose()

    # --- what the helpers stand on (Caller) ----------------------------------------------
    async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
        """Cache (public answers only) -> limiter -> breaker -> transport; decoded JSON."""
        request = dict(params) if params else {}
        ttl = self._ttl(endpoint, request) if self._cache_on else None
        if ttl is None:  # the hot path, without the extra coroutine of _prepared_exchange
            self._pipeline.validate(endpoint, request)
            if self._pipeline.needs_setup(endpoint):
                await self._pipeline.setup(endpoint)
            return (await self._pipeline.exchange(endpoint, request)).json()

        async def fetch() -> bytes:
            return (await self._pipeline.prepared(endpoint, request)).body

        key = cache_key(endpoint.key, request)
        body, hit = await get_or_fetch(self._cache, self._flights, key, ttl, fetch)
        self.metrics.record_cache(endpoint.key, hit=hit)
        return orjson.loads(body)

    async def place_order_checked(self, endpoint: Endpoint, params: Params) -> Any:
        """Send an order once; an unknown outcome is looked up by client order id
        (``RequestPipeline.place_order``)."""
        return await self._pipeline.place_order(endpoint, params)

    def check_credentials(self, endpoint: Endpoint) -> None:
        """Raise ``BinanceCredentialsError`` now if ``endpoint`` needs keys we lack."""
        self._transport.check_credentials(endpoint)

    def now_ms(self) -> int:
        """Binance's clock (closed-candle flags, cache lifetimes and signatures go by it)."""
        return int(self._transport.server_time_s() * 1000)

    # --- numbers -----------------------------------------------------------------------
    def get_metrics(self) -> dict[str, Any]:
        """A plain dict: ``http`` (``RequestMetrics.snapshot()``: totals, retries, per
        endpoint requests, cache hits/misses, errors by code, p50-p95-p99 ms), ``pools``
        (``pool``, ``used``, ``limit`` per window), ``breakers`` (market -> state), ``cache``
        (``hits``, ``misses``, ``errors``), ``ws`` (``WebSocketManager.snapshot``)."""
        return {
            "http": self.metrics.snapshot(),
            "pools": self._pipeline.limiter.usage(),
            "breakers": {str(m): str(b.state) for m, b in self._breakers.items()},
            "cache": self._cache.stats(),
            "ws": self._ws.snapshot(),
        }

    def metrics_text(self) -> str:
        """The same numbers in Prometheus' text format (for the bot's ``/metrics``)."""
        return render_prometheus(self.get_metrics())

    def rate_windows(self, market: Market) -> tuple[RateWindow, ...]:
        """The pools in force for a market (from exchangeInfo once loaded)."""
        return self._pipeline.limiter.windows(market)

    # --- fan-out: spot and futures together ----------------------------------------------
    async def get_prices(self, symbols: Sequence[str]) -> dict[str, PriceSnapshot]:
        """Spot last price, 24 h change, futures mark price and funding per symbol, fetched
        together (one batched spot call each, futures marks in parallel). A bad or unknown
        symbol is reported in its own entry (``error``); the others are still answered.
        A bare base asset means its USDT pair: ``btc`` is ``BTCUSDT``."""
        spot_rules, futures_rules = await asyncio.gather(
            self.symbol_rules(Market.SPOT), self.symbol_rules(Market.FUTURES)
        )
        request = symbol_request(symbols, spot_rules, futures_rules)
        price_rows, day_rows, marks = await asyncio.gather(
            self._spot_batch("GET /api/v3/ticker/price", request.spot),
            self._spot_batch("GET /api/v3/ticker/24hr", request.spot),
            asyncio.gather(*map(self.get_mark_price, request.futures), return_exceptions=True),
            return_exceptions=True,
        )
        return price_snapshots(request, price_rows, day_rows, marks)

    async def get_portfolio(self) -> Portfolio:
        """Spot balances and the futures wallet, valued in USDT, fetched together."""
        account, wallet, prices = await asyncio.gather(
            self._spot_account(),
            self.get_futures_balance(),
            self.call("GET /api/v3/ticker/price"),
            return_exceptions=True,
        )
        return portfolio(account, wallet, prices)

    # --- seed-compatible aliases -------------------------------------------------------
    # The seed's spellings, answering Binance's JSON as it came; each is one line over the
    # implementation its typed twin (named in the docstring) parses.
    async def get_symbol_price(self, symbol: str, market: Market = Market.SPOT) -> dict[str, str]:
        """Last price: ``{"symbol": "BTCUSDT", "price": "..."}`` (typed: ``get_ticker_price``)."""
        return await self._ticker_price(symbol, market)

    async def get_order_book(
        self, symbol: str, limit: int = 100, market: Market = Market.SPOT
    ) -> dict[str, Any]:
        """The order book as Binance sent it (typed: ``get_depth``)."""
        return await self._order_book(symbol, limit, market)

    async def get_account(self) -> dict[str, Any]:
        """The spot account as Binance sent it (typed: ``get_account_info``)."""
        return await self._spot_account()

    async def get_account_balance(self) -> dict[str, Any]:
        """The spot account with its ``balances`` list (``asset``, ``free``, ``locked``)
        (typed: ``get_account_info`` / ``get_balances``)."""
        return await self._spot_account()

    async def place_order(
        self,
        symbol: str,
        side: OrderSide | str,
        type_: OrderType | str,
        quantity: Decimal | str | float,
        price: Decimal | str | float | None = None,
        **extra: Any,
    ) -> models.Order:
        """``new_order`` with the seed's positional order (symbol, side, type, quantity)."""
        return await self.new_order(
            symbol, side=side, type_=type_, quantity=quantity, price=price, **extra
        )

    # --- private helpers ---------------------------------------------------------------
    async def _spot_batch(self, operation: str, symbols: list[str]) -> dict[str, Any]:
        """One call for many symbols (``symbols=[...]``), indexed by symbol."""
        if not symbols:
            return {}
        rows = await self.call(operation, symbols=symbols)
        return {row["symbol"]: row for row in rows}

    def _ttl(self, endpoint: Endpoint, params: Params) -> float | Callable[[bytes], float] | None:
        """How long this answer may be cached; signed answers never are."""
        if endpoint.key in KLINE_OPERATIONS:
            now_ms = self.now_ms()
            return lambda body: kline_ttl(params, orjson.loads(body), now_ms=now_ms)
        return endpoint_ttl(endpoint)

    def _new_limiter(self, redis: RedisClient | None) -> WeightLimiter:
        config = self.config
        return WeightLimiter(
            LimiterConfig(
                margin=config.rate_limit_margin,
                quiet_margin=config.rate_limit_quiet_margin,
                guard_s=config.rate_limit_guard_ms / 1000,
                max_pause_wait_s=config.rate_limit_max_pause_s,
                redis_retry_s=config.redis_retry_s,
                threshold_events=config.enable_rate_limit_checks,
            ),
            emit=self.events.publish,
            clock=self._transport.server_time_s,
            redis=redis,
            key_prefix=self._redis_prefix,
            account=self._account,
            egress=config.egress_id,
            windows=DEFAULT_RATE_WINDOWS,
        )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


if not TYPE_CHECKING:  # mypy sees the models imported above and flags a misspelt name
    # The names between the stream-events comment and the models' in __all__.
    _FIRST, _END = __all__.index("AggTradeEvent"), __all__.index("AccountInfo")
    _STREAM_EVENTS = frozenset(__all__[_FIRST:_END])

    def __getattr__(name: str) -> Any:
        """The pydantic models and the stream event types in ``__all__`` load on first use,
        not with the client (start-up time)."""
        if name in _STREAM_EVENTS:
            from utils.binance import binance_ws_events  # noqa: PLC0415 - the point

            return getattr(binance_ws_events, name)
        if name in __all__:
            return getattr(models, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
