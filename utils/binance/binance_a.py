"""``BinanceClient``: the one door to Binance for ``handler/``, ``analysis/`` and ``bot/``.

It composes the mechanisms and owns their lifecycle: the transport (session, signing),
the weight limiter (shared through Redis when ``REDIS_URL`` is set), one breaker per market,
the cache, metrics and the event bus. A call goes cache -> ``RequestPipeline`` (limiter ->
breaker -> transport, retries, resync, order reconciliation: ``binance_pipeline``). The
fan-out helpers (``get_prices``, ``get_portfolio``) fetch spot and futures together and
report a failure per item.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from decimal import Decimal
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
from utils.binance.binance_constants import DEFAULT_RATE_WINDOWS, ENDPOINTS
from utils.binance.binance_exceptions import (
    BinanceAPIError,
    BinanceCircuitOpenError,
    BinanceCredentialsError,
    BinanceError,
    BinanceInputError,
    BinanceRateLimitError,
    BinanceTransportError,
    BinanceUnknownStatusError,
    BinanceUnknownSymbolError,
)
from utils.binance.binance_metrics import RequestMetrics, render_prometheus
from utils.binance.binance_pipeline import RequestPipeline
from utils.binance.binance_private import PrivateEndpoints
from utils.binance.binance_ratelimit import LimiterConfig, WeightLimiter
from utils.binance.binance_request import (
    Transport,
)
from utils.binance.binance_streams import StreamMethods, ws_settings
from utils.binance.binance_types import (
    AssetValue,
    BinanceEvent,
    Endpoint,
    Market,
    Params,
    Portfolio,
    PriceSnapshot,
    RateWindow,
)
from utils.binance.binance_utils import (
    SymbolRules,
    check_symbol,
    make_signer,
    new_client_order_id,
)
from utils.binance.binance_websocket import WebSocketManager
from utils.config import BinanceConfig, RedisConfig
from utils.logging_setup import get_logger, register_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

    from redis.asyncio import Redis

    from utils.binance.binance_ws_user import FuturesUserStream, SpotUserStream

# What handler/, analysis/ and bot/ need besides the client: they import nothing else
# from utils.binance (tests/test_architecture.py).
__all__ = (
    "AssetValue",
    "BinanceAPIError",
    "BinanceCircuitOpenError",
    "BinanceClient",
    "BinanceCredentialsError",
    "BinanceError",
    "BinanceEvent",
    "BinanceInputError",
    "BinanceRateLimitError",
    "BinanceTransportError",
    "BinanceUnknownSymbolError",
    "EventBus",
    "Market",
    "Portfolio",
    "PriceSnapshot",
)

_log = get_logger(__name__)

# Closed candles never change: their TTL is decided from the answer (kline_ttl).
_KLINES = frozenset(
    {
        "GET /api/v3/klines",
        "GET /api/v3/uiKlines",
        "GET /fapi/v1/klines",
        "GET /fapi/v1/continuousKlines",
        "GET /fapi/v1/indexPriceKlines",
        "GET /fapi/v1/markPriceKlines",
        "GET /fapi/v1/premiumIndexKlines",
    }
)


class EventBus:
    """Fan-out of ``BinanceEvent``s to subscribers; a failing subscriber is logged, isolated."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[BinanceEvent], Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, callback: Callable[[BinanceEvent], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` (sync or async) for every event; returns an unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def publish(self, event: BinanceEvent) -> None:
        _log.info("binance_event", kind=event.kind, message=event.message)
        for callback in tuple(self._subscribers):
            try:
                result = callback(event)
            except Exception:  # noqa: BLE001 - a subscriber must not break the client
                _log.exception("event_subscriber_failed", kind=event.kind)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("event_subscriber_failed", error=repr(task.exception()))

    async def aclose(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class BinanceClient(StreamMethods, PrivateEndpoints):
    """Async Binance client (spot and USDⓈ-M futures). Use it as an async context manager."""

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        config: BinanceConfig | None = None,
        *,
        redis: RedisConfig | None = None,
    ) -> None:
        self.config = config = config if config is not None else BinanceConfig.from_env()
        redis = redis if redis is not None else RedisConfig.from_env()
        api_key = api_key or _secret(config.api_key)
        secret = secret_key or _secret(config.secret_key)
        pem = config.private_key_path.read_bytes() if config.private_key_path else None
        for value in (api_key, secret):
            if value:
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
        self._redis: Redis | None = None
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
        self._symbol_rules = {}
        self._ws = WebSocketManager(
            ws_settings(config), emit=self.events.publish, snapshot=self._stream_snapshot
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
        if self._redis_url:
            from redis.asyncio import BlockingConnectionPool, Redis  # noqa: PLC0415 - only with REDIS_URL

            pool = BlockingConnectionPool.from_url(
                self._redis_url, max_connections=self.config.pool_size, timeout=5
            )
            self._redis = Redis.from_pool(pool)  # waits for a free connection, never fails
            self._pipeline.limiter = self._new_limiter(self._redis)
            self._cache = RedisCache(
                self._redis,
                prefix=self._redis_prefix,
                emit=self.events.publish,
                retry_after_s=self.config.redis_retry_s,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close streams, the session and Redis; pending subscriber tasks are cancelled."""
        await self._ws.aclose()
        streams, self._user_streams = self._user_streams, []
        await asyncio.gather(*(s.aclose() for s in streams))
        self._pipeline.limiter.close()
        await self.events.aclose()
        await self._transport.close()
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    # --- the generic door --------------------------------------------------------------
    async def call(self, operation: str, **params: Any) -> Any:
        """Call any operation of the table.

        ``await client.call("GET /api/v3/depth", symbol="BTCUSDT")``
        """
        try:
            target = ENDPOINTS[operation]
        except KeyError:
            raise BinanceInputError(
                f"{operation!r} is not a known operation; write it as 'GET /api/v3/ticker/price'"
            ) from None
        return await self.call_endpoint(target, params)

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
        """Send an order once. On an unknown outcome, query it by client order id: return it
        if Binance has it, raise ``BinanceOrderNotPlacedError`` if it provably never will."""
        params = dict(params)
        client_order_id = str(params.setdefault("newClientOrderId", new_client_order_id()))
        try:
            response = await self._pipeline.prepared(endpoint, params)
        except (BinanceTransportError, BinanceUnknownStatusError) as e:
            _log.warning("order_outcome_unknown", client_order_id=client_order_id, error=str(e))
            return await self._pipeline.reconcile_order(
                endpoint.market, params, client_order_id, e
            )
        return response.json()

    def check_credentials(self, endpoint: Endpoint) -> None:
        """Raise ``BinanceCredentialsError`` now if ``endpoint`` needs keys we lack."""
        self._transport.check_credentials(endpoint)

    def _now_ms(self) -> int:
        """Binance's clock (closed-candle flags and cache lifetimes go by it)."""
        return int(self._transport.server_time_s() * 1000)

    def get_metrics(self) -> dict[str, Any]:
        """A plain dict: ``http`` (``RequestMetrics.snapshot()``: totals, retries, per endpoint
        requests / cache hits and misses / errors by code / p50-p95-p99 ms), ``pools`` (per
        rate-limit window: ``pool``, ``used``, ``limit``), ``breakers`` (market -> state),
        ``cache`` (``hits``, ``misses``, ``errors``) and ``ws`` (``WebSocketManager.snapshot``:
        connections, streams, reconnects, reconnect attempts, stalls, rotations, conflated,
        overflows, callback errors…)."""
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
        names = [_resolve(s, spot_rules, futures_rules) for s in symbols]
        errors: dict[str, PriceSnapshot] = {}
        valid: list[str] = []
        for name in names:
            try:
                check_symbol(name)
                if spot_rules.get(name) is None and futures_rules.get(name) is None:
                    spot_rules.require(name)  # raises, naming the closest symbols
                valid.append(name)
            except BinanceUnknownSymbolError as e:
                errors[name] = PriceSnapshot(
                    symbol=name, error=str(e), unknown=True, suggestions=tuple(e.suggestions)
                )
            except BinanceInputError as e:
                errors[name] = PriceSnapshot(symbol=name, error=str(e))
        spot = [s for s in valid if spot_rules.get(s) is not None]
        futures = [s for s in valid if futures_rules.get(s) is not None]
        price_rows, day_rows, marks = await asyncio.gather(
            self._spot_batch("GET /api/v3/ticker/price", spot),
            self._spot_batch("GET /api/v3/ticker/24hr", spot),
            asyncio.gather(*(self.get_mark_price(s) for s in futures), return_exceptions=True),
            return_exceptions=True,
        )
        mark_by = dict(zip(futures, marks if isinstance(marks, list) else [], strict=False))
        _raise_if_nothing_answered([price_rows, day_rows, marks, *mark_by.values()], spot, futures)
        result: dict[str, PriceSnapshot] = {}
        for name in names:
            if name in errors:
                result[name] = errors[name]
                continue
            problems: list[str] = []
            price = _field(price_rows, name, "price", problems)
            change = _field(day_rows, name, "priceChangePercent", problems)
            mark = mark_by.get(name)
            if isinstance(mark, BaseException):
                problems.append(f"futures: {mark}")
                mark = None
            result[name] = PriceSnapshot(
                symbol=name,
                price=price if name in spot else None,
                change_24h_pct=change if name in spot else None,
                mark_price=Decimal(mark["markPrice"]) if mark else None,
                funding_rate=Decimal(mark["lastFundingRate"]) if mark else None,
                error="; ".join(problems) or None,
            )
        return result

    async def get_portfolio(self) -> Portfolio:
        """Spot balances and the futures wallet, valued in USDT, fetched together."""
        account, wallet, prices = await asyncio.gather(
            self.get_account_balance(),
            self.get_futures_balance(),
            self.call("GET /api/v3/ticker/price"),
            return_exceptions=True,
        )
        price_of = (
            {row["symbol"]: Decimal(row["price"]) for row in prices}
            if not isinstance(prices, BaseException)
            else {}
        )
        errors: dict[str, str] = {}
        spot: list[AssetValue] = []
        futures: list[AssetValue] = []
        if isinstance(account, BaseException):
            errors["spot"] = str(account)
        else:
            for row in account["balances"]:
                amount = Decimal(row["free"]) + Decimal(row["locked"])
                if amount:
                    spot.append(_valued(row["asset"], amount, price_of))
        if isinstance(wallet, BaseException):
            errors["futures"] = str(wallet)
        else:
            for row in wallet:
                amount = Decimal(row["balance"])
                if amount:
                    futures.append(_valued(row["asset"], amount, price_of))
        if isinstance(prices, BaseException):
            errors["prices"] = str(prices)
        values = [a.value_usdt for a in (*spot, *futures) if a.value_usdt is not None]
        total = sum(values, Decimal(0))
        return Portfolio(spot=tuple(spot), futures=tuple(futures), total_usdt=total, errors=errors)

    async def _spot_batch(self, operation: str, symbols: list[str]) -> dict[str, Any]:
        """One call for many symbols (``symbols=[...]``), indexed by symbol."""
        if not symbols:
            return {}
        rows = await self.call(operation, symbols=symbols)
        return {row["symbol"]: row for row in rows}

    # --- the pipeline ------------------------------------------------------------------
    def _ttl(self, endpoint: Endpoint, params: Params) -> float | Callable[[bytes], float] | None:
        """How long this answer may be cached; signed answers never are."""
        if endpoint.key in _KLINES:
            now_ms = int(self._transport.server_time_s() * 1000)
            return lambda body: kline_ttl(params, orjson.loads(body), now_ms=now_ms)
        return endpoint_ttl(endpoint)

    def _new_limiter(self, redis: Redis | None) -> WeightLimiter:
        config = self.config
        return WeightLimiter(
            LimiterConfig(
                margin=config.rate_limit_margin,
                quiet_margin=config.rate_limit_quiet_margin,
                guard_s=config.rate_limit_guard_ms / 1000,
                max_pause_wait_s=config.rate_limit_max_pause_s,
                redis_retry_s=config.redis_retry_s,
            ),
            emit=self.events.publish,
            clock=self._transport.server_time_s,
            redis=redis,
            key_prefix=self._redis_prefix,
            account=self._account,
            windows=DEFAULT_RATE_WINDOWS,
        )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


_STABLE = frozenset({"USDT", "USDC", "FDUSD", "BUSD", "TUSD"})


def _raise_if_nothing_answered(
    parts: Sequence[Any], spot: Sequence[str], futures: Sequence[str]
) -> None:
    """When every call of a fan-out failed, the failure is the answer: raise it (an open
    breaker first, since it says when Binance will be tried again)."""
    if not spot and not futures:
        return
    answered = [p for p in parts[:2] if not isinstance(p, BaseException)] if spot else []
    if futures and not isinstance(parts[2], BaseException):
        answered += [p for p in parts[3:] if not isinstance(p, BaseException)]
    if answered:
        return
    failures = [p for p in parts if isinstance(p, BinanceError)]
    if failures:
        failures.sort(key=lambda e: not isinstance(e, BinanceCircuitOpenError))
        raise failures[0]


def _resolve(symbol: str, *rules: SymbolRules) -> str:
    """``btc`` -> ``BTCUSDT`` when the bare name is no symbol but its USDT pair is."""
    name = symbol.strip().upper()
    if all(r.get(name) is None for r in rules) and any(r.get(f"{name}USDT") for r in rules):
        return f"{name}USDT"
    return name


def _field(rows: Any, symbol: str, key: str, problems: list[str]) -> Decimal | None:
    if isinstance(rows, BaseException):
        if str(rows) not in problems:
            problems.append(f"spot: {rows}")
        return None
    row = rows.get(symbol)
    return Decimal(row[key]) if row is not None else None


def _valued(asset: str, amount: Decimal, price_of: Mapping[str, Decimal]) -> AssetValue:
    if asset in _STABLE:
        return AssetValue(asset=asset, amount=amount, value_usdt=amount)
    price = price_of.get(f"{asset}USDT")
    return AssetValue(asset=asset, amount=amount, value_usdt=amount * price if price else None)
