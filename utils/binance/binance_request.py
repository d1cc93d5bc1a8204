"""HTTP transport: one pooled aiohttp session per client, request signing, the server-time
offset per market, and the translation of Binance's answers into the error tree. No policy:
the limiter, breaker and retries live above it (``binance_a``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson
from yarl import URL

from utils.binance.binance_exceptions import (
    BinanceAPIError,
    BinanceAuthError,
    BinanceCredentialsError,
    BinanceError,
    BinanceInvalidSymbolError,
    BinanceIPBannedError,
    BinanceOrderRejectedError,
    BinanceRateLimitError,
    BinanceTimeoutError,
    BinanceTimestampError,
    BinanceTransportError,
    BinanceUnknownStatusError,
)
from utils.binance.binance_types import Endpoint, ErrorCode, Market, Params
from utils.binance.binance_utils import Signer, ban_seconds, encode_params
from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from multidict import CIMultiDictProxy

__all__ = ("RawResponse", "Transport", "error_from_response", "outcome_unknown")

_log = get_logger(__name__)
_debug_on = logging.getLogger(__name__).isEnabledFor  # cached by logging: ~100 ns

_AUTH_CODES: Final = frozenset(
    {ErrorCode.BAD_API_KEY_FMT, ErrorCode.REJECTED_MBX_KEY, ErrorCode.INVALID_SIGNATURE}
)
_ORDER_CODES: Final = frozenset(
    {ErrorCode.NEW_ORDER_REJECTED, ErrorCode.CANCEL_REJECTED, ErrorCode.NO_SUCH_ORDER}
)
_HINTS: Final[Mapping[int, str]] = {
    ErrorCode.BAD_API_KEY_FMT: "check BINANCE_API_KEY",
    ErrorCode.REJECTED_MBX_KEY: "check the API key, its IP whitelist and its permissions",
    ErrorCode.INVALID_SIGNATURE: (
        "check BINANCE_API_SECRET (or the private key) belongs to BINANCE_API_KEY"
    ),
    ErrorCode.INVALID_TIMESTAMP: "the clock is off even after a resync; check the machine's time",
    ErrorCode.BAD_SYMBOL: "check the symbol spelling, e.g. BTCUSDT",
}
_UNKNOWN_OUTCOME: Final = frozenset({HTTPStatus.REQUEST_TIMEOUT})


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per request
class RawResponse:
    """An HTTP answer with the moments (ms, local clock) it was sent and received."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    sent_ms: float
    received_ms: float

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class Transport:
    """Owns the aiohttp session; signs requests with the market's server-time offset."""

    def __init__(
        self,
        *,
        base_urls: Mapping[Market, str],
        api_key: str | None,
        signer: Signer | None,
        timeout_s: float,
        pool_size: int,
        recv_window_ms: int,
    ) -> None:
        self._base = {market: url.rstrip("/") for market, url in base_urls.items()}
        self._api_key = api_key
        self._signer = signer
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._pool_size = pool_size
        self._recv_window = str(recv_window_ms)
        self._offset_ms: dict[Market, float] = {}
        self._clock_offset_s = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._key_headers = {"X-MBX-APIKEY": api_key} if api_key else {}

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, keepalive_timeout=30
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, raise_for_status=False
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def can_sign(self) -> bool:
        return self._api_key is not None and self._signer is not None

    def offset_ms(self, market: Market) -> float | None:
        return self._offset_ms.get(market)

    def set_offset_ms(self, market: Market, offset_ms: float) -> None:
        self._offset_ms[market] = offset_ms
        offsets = self._offset_ms
        self._clock_offset_s = offsets.get(Market.SPOT, offsets.get(Market.FUTURES, 0.0)) / 1000

    def server_time_s(self) -> float:
        """Binance's clock as we best know it (the spot offset, else futures, else ours)."""
        return time.time() + self._clock_offset_s

    def check_credentials(self, endpoint: Endpoint) -> None:
        """Raise before sending when the endpoint needs a key or signature we do not have."""
        if endpoint.needs_key and self._api_key is None:
            raise BinanceCredentialsError(
                f"{endpoint.key} needs an API key: set BINANCE_API_KEY or pass api_key="
            )
        if endpoint.signed and self._signer is None:
            raise BinanceCredentialsError(
                f"{endpoint.key} is signed: set BINANCE_API_SECRET (or BINANCE_PRIVATE_KEY_PATH)"
                " or pass secret_key="
            )

    async def send(self, endpoint: Endpoint, params: Params) -> RawResponse:
        """One HTTP exchange. Raises only transport errors; any HTTP status is returned."""
        session = self._session
        if session is None:
            raise BinanceTransportError(
                "the Binance client is closed: use it inside 'async with BinanceClient(...)'"
            )
        query = encode_params(params) if params else ""
        if endpoint.signed:
            query = self._signed_query(endpoint.market, query, params)
        url = self._base[endpoint.market] + endpoint.path
        if query:
            url = f"{url}?{query}"
        headers = self._key_headers if endpoint.needs_key else None
        sent = time.time() * 1000
        try:
            async with session.request(
                endpoint.method, URL(url, encoded=True), headers=headers
            ) as resp:
                body = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except TimeoutError as e:
            raise BinanceTimeoutError(
                f"{endpoint.key}: no answer from Binance {endpoint.market} within "
                f"{self._timeout.total:.1f} s"
            ) from e
        except aiohttp.ClientError as e:
            raise BinanceTransportError(
                f"{endpoint.key}: could not reach Binance {endpoint.market} "
                f"({type(e).__name__}); check the network or BINANCE_BASE_URL"
            ) from e
        received = time.time() * 1000
        if _debug_on(logging.DEBUG):  # build nothing for a line nobody reads
            _log.debug(
                "binance_request",
                endpoint=endpoint.key,
                params=tuple(params) if endpoint.signed else params,  # names only when signed
                status=status,
                ms=received - sent,
            )
        return RawResponse(status, resp_headers, body, sent, received)

    def _signed_query(self, market: Market, query: str, params: Params) -> str:
        assert self._signer is not None  # noqa: S101 - check_credentials ran before
        timestamp = int(time.time() * 1000 + self._offset_ms.get(market, 0.0))
        extra = f"timestamp={timestamp}"
        if "recvWindow" not in params:
            extra = f"recvWindow={self._recv_window}&{extra}"
        payload = f"{query}&{extra}" if query else extra
        signature = self._signer(payload.encode())
        return f"{payload}&signature={encode_params({'s': signature})[2:]}"


def error_from_response(
    endpoint: Endpoint, response: RawResponse, *, now_s: float, client_order_id: str | None = None
) -> BinanceError:
    """The error a non-2xx answer means; the one place Binance's codes are interpreted."""
    status = response.status
    code, msg = _code_and_msg(response)
    key = endpoint.key
    if status == HTTPStatus.IM_A_TEAPOT:
        wait = ban_seconds(msg, response.headers.get("Retry-After"), now_s)
        code = code or ErrorCode.TOO_MANY_REQUESTS
        return BinanceIPBannedError(code, msg, endpoint=key, retry_after_s=wait)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        retry = response.headers.get("Retry-After")
        wait = float(retry) if retry and retry.replace(".", "", 1).isdigit() else 1.0
        code = code or ErrorCode.TOO_MANY_REQUESTS
        return BinanceRateLimitError(code, msg, endpoint=key, retry_after_s=wait)
    hint = _HINTS.get(code)
    text = f"{msg} ({hint})" if hint else msg
    if code in _AUTH_CODES or status == HTTPStatus.UNAUTHORIZED:
        return BinanceAuthError(code, text, endpoint=key, http_status=status)
    if code == ErrorCode.BAD_SYMBOL:
        return BinanceInvalidSymbolError(code, text, endpoint=key, http_status=status)
    if code == ErrorCode.INVALID_TIMESTAMP:
        return BinanceTimestampError(code, text, endpoint=key, http_status=status)
    if code in _ORDER_CODES:
        return BinanceOrderRejectedError(code, text, endpoint=key, http_status=status)
    if outcome_unknown(status) or code == ErrorCode.TIMEOUT:
        return BinanceUnknownStatusError(
            code, text, endpoint=key, http_status=status, client_order_id=client_order_id
        )
    return BinanceAPIError(code, text, endpoint=key, http_status=status)


def outcome_unknown(status: int) -> bool:
    """5xx and 408: Binance could not say whether the request executed."""
    return status >= HTTPStatus.INTERNAL_SERVER_ERROR or status in _UNKNOWN_OUTCOME


def _code_and_msg(response: RawResponse) -> tuple[int, str]:
    try:
        payload = response.json()
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and "code" in payload:
        return int(payload["code"]), str(payload.get("msg", ""))
    text = response.body[:200].decode(errors="replace").strip()
    return 0, text or f"HTTP {response.status} with an empty body"
