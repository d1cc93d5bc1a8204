"""How one request travels: local checks, the start-up work of each market (rate limits from
exchangeInfo, the clock offset), then limiter -> breaker -> transport, with retries and jittered
backoff for idempotent calls, one resync on -1021, and the lookup of an order whose answer was
lost. ``binance_a`` composes it; it holds no policy of its own beyond that order of steps."""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from utils.binance.binance_constants import EXCHANGE_INFO, ORDER_QUERY, SERVER_TIME
from utils.binance.binance_exceptions import (
    BinanceError,
    BinanceInputError,
    BinanceIPBannedError,
    BinanceOrderNotPlacedError,
    BinanceOrderRejectedError,
    BinanceRateLimitError,
    BinanceTimestampError,
    BinanceTransportError,
    BinanceUnknownStatusError,
)
from utils.binance.binance_ratelimit import RequestCap
from utils.binance.binance_request import error_from_response, outcome_unknown
from utils.binance.binance_types import (
    BinanceEvent,
    Endpoint,
    ErrorCode,
    Market,
    Params,
    PoolKind,
    RateWindow,
    interval_seconds,
)
from utils.binance.binance_utils import backoff_delay, new_client_order_id
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from utils.binance.binance_circuit_breaker import CircuitBreaker
    from utils.binance.binance_metrics import RequestMetrics
    from utils.binance.binance_ratelimit import WeightLimiter
    from utils.binance.binance_request import RawResponse, Transport
    from utils.config import BinanceConfig

__all__ = ("RequestPipeline",)

_log = get_logger(__name__)

_TIME_SAMPLES: Final = 3
_RESYNC_EVENT_MS: Final = 500  # an offset change worth telling the operator about


class RequestPipeline:
    """Sends table operations the safe way; see the module docstring."""

    def __init__(
        self,
        config: BinanceConfig,
        *,
        transport: Transport,
        limiter: WeightLimiter,
        breakers: Mapping[Market, CircuitBreaker],
        metrics: RequestMetrics,
        emit: Callable[[BinanceEvent], None],
    ) -> None:
        self.config = config
        self.limiter = limiter  # replaced by a Redis-backed one when the client opens
        # The seed's optional caps (MAX_REQUESTS_PER_SECOND, ...), per process.
        caps = config.request_caps
        self._cap = RequestCap(caps) if caps else None
        self.metrics = metrics
        self._transport = transport
        self._breakers = breakers
        self._emit = emit
        self._ready: set[Market] = set()
        self._synced_at: dict[Market, float] = {}
        self._locks = {m: asyncio.Lock() for m in Market}

    async def prepared(self, endpoint: Endpoint, params: dict[str, Any]) -> RawResponse:
        self.validate(endpoint, params)
        if self.needs_setup(endpoint):
            await self.setup(endpoint)
        return await self.exchange(endpoint, params)

    def validate(self, endpoint: Endpoint, params: Params) -> None:
        """Everything knowable before sending: keys, required parameters, enum values."""
        if endpoint.needs_key:
            self._transport.check_credentials(endpoint)
        if endpoint.required:
            missing = [name for name in endpoint.required if params.get(name) in (None, "")]
            if missing:
                raise BinanceInputError(f"{endpoint.key} needs {', '.join(missing)}")
        for name, allowed in endpoint.enums:
            value = params.get(name)
            if value is not None and str(value) not in allowed:
                raise BinanceInputError(
                    f"{endpoint.key}: {name}={value!r} is not one of {', '.join(allowed)}"
                )

    def needs_setup(self, endpoint: Endpoint) -> bool:
        """First call to a market (limits), or a signed call with a stale clock offset."""
        market = endpoint.market
        if market not in self._ready:
            return True
        if not endpoint.signed:
            return False
        synced = self._synced_at.get(market)
        return synced is None or time.monotonic() - synced > self.config.time_sync_interval_s

    async def setup(self, endpoint: Endpoint) -> None:
        market = endpoint.market
        if market not in self._ready:
            await self._load_limits(market)
        if self.needs_setup(endpoint):
            await self._sync_time(market, stale_since=self._synced_at.get(market))

    async def exchange(self, endpoint: Endpoint, params: dict[str, Any]) -> RawResponse:
        breaker = self._breakers[endpoint.market]
        retries = self.config.retry_attempts if endpoint.idempotent else 0
        attempt, resynced = 0, False
        while True:
            breaker.before_call()
            if self._cap is not None:
                await self._cap.wait()
            limiter = self.limiter
            ticket = limiter.acquire_now(endpoint, params) or await limiter.acquire(
                endpoint, params
            )
            try:
                response = await self._transport.send(endpoint, params)
            except BinanceTransportError:
                await self.limiter.settle(ticket, None, succeeded=False)
                breaker.record_failure()
                self.metrics.record(endpoint.key, 0.0, 0)
                if attempt >= retries:
                    raise
                attempt += 1
                await self._backoff(attempt)
                continue
            ok = response.status < HTTPStatus.BAD_REQUEST
            if not limiter.settle_now(ticket, response.headers, succeeded=ok):
                await limiter.settle(ticket, response.headers, succeeded=ok)
            latency = response.received_ms - response.sent_ms
            if ok:
                breaker.record_success()
                self.metrics.record(endpoint.key, latency)
                return response
            error = error_from_response(endpoint, response, now_s=self._transport.server_time_s())
            self.metrics.record(endpoint.key, latency, getattr(error, "code", response.status))
            if isinstance(error, BinanceRateLimitError):
                breaker.record_neutral()
                await self.limiter.pause(
                    endpoint.market,
                    seconds=error.retry_after_s,
                    banned=isinstance(error, BinanceIPBannedError),
                    orders=error.code == ErrorCode.TOO_MANY_ORDERS,
                    endpoint=endpoint.key,
                )
                if attempt >= retries or error.retry_after_s > self.config.rate_limit_max_pause_s:
                    raise error
                attempt += 1
                self.metrics.record_retry()
                continue  # acquire() waits for the pause to end
            if outcome_unknown(response.status):
                breaker.record_failure()
                if attempt >= retries:
                    raise error
                attempt += 1
                await self._backoff(attempt)
                continue
            breaker.record_neutral()
            if isinstance(error, BinanceTimestampError) and endpoint.signed and not resynced:
                resynced = True
                await self._sync_time(
                    endpoint.market, stale_since=self._synced_at.get(endpoint.market)
                )
                continue
            raise error

    async def _backoff(self, attempt: int) -> None:
        self.metrics.record_retry()
        await asyncio.sleep(
            backoff_delay(
                attempt,
                base_s=self.config.retry_base_delay_s,
                cap_s=self.config.retry_max_delay_s,
            )
        )

    # --- start-up work, once per market ------------------------------------------------
    async def _load_limits(self, market: Market) -> None:
        """Replace the documented pools with ``exchangeInfo.rateLimits`` (first use only)."""
        async with self._locks[market]:
            if market in self._ready:
                return
            if self.config.rate_limits_from_exchange:
                # Another process on this Redis may have learned them: book this call there.
                shared = await self.limiter.load_shared_windows(market)
                params = {"symbol": "BTCUSDT"} if market is Market.SPOT else {}
                response = await self.exchange(EXCHANGE_INFO[market], params)
                windows = _windows_from(market, response.json().get("rateLimits", ()))
                if windows and not (shared and tuple(windows) == self.limiter.windows(market)):
                    self.limiter.set_windows(market, windows)  # the call was booked elsewhere
                    await self.limiter.adopt(EXCHANGE_INFO[market], params, response.headers)
                if windows:
                    await self.limiter.share_windows(market)
            self._ready.add(market)

    async def _sync_time(self, market: Market, *, stale_since: float | None) -> None:
        """Offset = server time - RTT midpoint, from the fastest of a few samples."""
        async with self._locks[market]:
            if self._synced_at.get(market) != stale_since:
                return  # another task resynced while we waited for the lock
            samples = []
            for _ in range(_TIME_SAMPLES):
                response = await self.exchange(SERVER_TIME[market], {})
                server_ms = int(response.json()["serverTime"])
                rtt = response.received_ms - response.sent_ms
                samples.append((rtt, server_ms - (response.sent_ms + response.received_ms) / 2))
            rtt, offset = min(samples)
            previous = self._transport.offset_ms(market)
            self._transport.set_offset_ms(market, offset)
            self._synced_at[market] = time.monotonic()
            if previous is not None and abs(previous - offset) > _RESYNC_EVENT_MS:
                self._emit(
                    BinanceEvent(
                        "time.resync",
                        market,
                        f"{market}: clock offset to Binance changed by "
                        f"{offset - previous:+.0f} ms (now {offset:+.0f} ms)",
                        {"offset_ms": offset, "previous_ms": previous, "rtt_ms": rtt},
                    )
                )

    async def place_order(self, endpoint: Endpoint, params: Params) -> Any:
        """Send an order once. On an unknown outcome, query it by client order id: return it
        if Binance has it, raise ``BinanceOrderNotPlacedError`` if it provably never will."""
        request = dict(params)
        client_order_id = str(request.setdefault("newClientOrderId", new_client_order_id()))
        try:
            response = await self.prepared(endpoint, request)
        except (BinanceTransportError, BinanceUnknownStatusError) as e:
            _log.warning("order_outcome_unknown", client_order_id=client_order_id, error=str(e))
            return await self.reconcile_order(endpoint.market, request, client_order_id, e)
        return response.json()

    async def reconcile_order(
        self, market: Market, params: Params, client_order_id: str, cause: BinanceError
    ) -> Any:
        query = {"symbol": params["symbol"], "origClientOrderId": client_order_id}
        # Binance rejects an order older than recvWindow before the matching engine, so once
        # that has passed, "no such order" is final.
        deadline = self._transport.server_time_s() + self.config.recv_window_ms / 1000 + 1
        while True:
            try:
                return (await self.exchange(ORDER_QUERY[market], query)).json()
            except BinanceOrderRejectedError as e:
                if e.code != ErrorCode.NO_SUCH_ORDER:
                    raise
                wait = deadline - self._transport.server_time_s()
                if wait <= 0:
                    raise BinanceOrderNotPlacedError(
                        client_order_id, "Binance has no order with that id"
                    ) from cause
                await asyncio.sleep(wait)
            except BinanceError as e:
                raise BinanceUnknownStatusError(
                    getattr(e, "code", 0),
                    f"the order's outcome is unknown and looking it up failed ({e}); "
                    f"query client order id {client_order_id} before sending it again",
                    endpoint=f"POST order {params['symbol']}",
                    http_status=getattr(e, "http_status", 0),
                    client_order_id=client_order_id,
                ) from cause


def _windows_from(market: Market, limits: Any) -> list[RateWindow]:
    windows = []
    for row in limits:
        try:
            kind = PoolKind(row["rateLimitType"])
            seconds = interval_seconds(row["interval"], int(row["intervalNum"]))
        except (KeyError, ValueError):
            continue  # a pool type we do not meter (e.g. CONNECTIONS)
        windows.append(
            RateWindow(market, kind, seconds, int(row["limit"]), kind is PoolKind.ORDERS)
        )
    return windows
