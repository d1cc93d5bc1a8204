"""Every error the Binance client raises. Branch on the class or on ``code``, never on text.

::

    BinanceError
    ├── BinanceInputError             (also ValueError) bad input caught before any request
    │   ├── BinanceCredentialsError   a signed call without API key / secret
    │   ├── BinanceUnknownSymbolError not in exchangeInfo; ``suggestions``
    │   └── BinanceFilterError        an order breaks a symbol filter; ``filter_type``, ``limit``
    ├── BinanceTransportError         connection refused/reset, DNS, TLS
    │   └── BinanceTimeoutError       no answer within the request timeout
    ├── BinanceCircuitOpenError       the market's breaker is open; ``retry_in_s``
    ├── BinanceWebSocketError         stream capacity or protocol problems
    ├── BinanceOrderNotPlacedError    an unknown outcome that reconciliation proved never executed
    └── BinanceAPIError               Binance answered an error: ``code``, ``msg``, ``http_status``
        ├── BinanceRateLimitError     429 / -1003 / -1015, or a pool paused; ``retry_after_s``
        │   └── BinanceIPBannedError  418; ``banned_until`` (aware UTC datetime)
        ├── BinanceAuthError          -2014 / -2015 / -1022 (and 401)
        ├── BinanceInvalidSymbolError -1121
        ├── BinanceTimestampError     -1021
        ├── BinanceOrderRejectedError -2010 / -2011 / -2013
        └── BinanceUnknownStatusError 5xx, 408, -1007: the execution status is unknown

    ValueError
    └── SettingsError                 (utils.config) a bad or unknown setting; ``variable``
        └── BinanceConfigError        a BinanceConfig setting or the private key file; re-exported
                                      here, and no BinanceError: nothing was sent to Binance
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from utils.config import BinanceConfigError

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = (
    "BinanceAPIError",
    "BinanceAuthError",
    "BinanceCircuitOpenError",
    "BinanceConfigError",
    "BinanceCredentialsError",
    "BinanceError",
    "BinanceFilterError",
    "BinanceIPBannedError",
    "BinanceInputError",
    "BinanceInvalidSymbolError",
    "BinanceOrderNotPlacedError",
    "BinanceOrderRejectedError",
    "BinanceRateLimitError",
    "BinanceTimeoutError",
    "BinanceTimestampError",
    "BinanceTransportError",
    "BinanceUnknownStatusError",
    "BinanceUnknownSymbolError",
    "BinanceWebSocketError",
)


class BinanceError(Exception):
    """Root of every error raised by ``utils.binance``."""


class BinanceInputError(BinanceError, ValueError):
    """Bad input caught locally; nothing was sent to Binance."""


class BinanceCredentialsError(BinanceInputError):
    """A signed endpoint was called without an API key or secret."""


class BinanceUnknownSymbolError(BinanceInputError):
    """The symbol is not in the market's exchangeInfo; ``suggestions`` are the closest ones."""

    def __init__(self, symbol: str, suggestions: list[str], *, market: str) -> None:
        if suggestions:
            hint = f"did you mean {', '.join(suggestions)}?"
        else:
            hint = f"no {market} symbol looks like it; pairs are written like BTCUSDT"
        super().__init__(f"unknown symbol {symbol} \N{EM DASH} {hint}")
        self.symbol = symbol
        self.suggestions = suggestions
        self.market = market


class BinanceFilterError(BinanceInputError):
    """An order breaks one of the symbol's exchangeInfo filters; nothing was sent.

    ``filter_type`` is Binance's name (``LOT_SIZE``, ``PRICE_FILTER``, ``NOTIONAL``, ...),
    ``limit`` the value the order broke (``minQty``, ``tickSize``, ``minNotional``...).
    """

    def __init__(self, symbol: str, filter_type: str, detail: str, *, limit: Decimal) -> None:
        super().__init__(f"{filter_type}: {detail} ({symbol})")
        self.symbol = symbol
        self.filter_type = filter_type
        self.limit = limit


class BinanceTransportError(BinanceError):
    """The request did not get an HTTP answer (connection refused, reset, DNS, TLS)."""


class BinanceTimeoutError(BinanceTransportError):
    """No answer within the request timeout."""


class BinanceCircuitOpenError(BinanceError):
    """The breaker for a market is open after repeated failures; calls fail fast until a probe."""

    def __init__(self, market: str, *, retry_in_s: float, failures: int) -> None:
        super().__init__(
            f"Binance {market} is not answering ({failures} failures in a row); "
            f"calls fail fast, next try in {retry_in_s:.0f} s"
        )
        self.market = market
        self.retry_in_s = retry_in_s


class BinanceWebSocketError(BinanceError):
    """A stream could not be opened or subscribed (capacity, protocol)."""


class BinanceOrderNotPlacedError(BinanceError):
    """An order's answer was lost, and querying it by client order id proved it never executed."""

    def __init__(self, client_order_id: str, reason: str) -> None:
        super().__init__(
            f"order {client_order_id} was not placed ({reason}); it is safe to send it again"
        )
        self.client_order_id = client_order_id


class BinanceAPIError(BinanceError):
    """Binance answered with an error payload ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, *, endpoint: str, http_status: int) -> None:
        super().__init__(f"{endpoint} failed: Binance error {code} (HTTP {http_status}): {msg}")
        self.code = code
        self.msg = msg
        self.endpoint = endpoint
        self.http_status = http_status


class BinanceRateLimitError(BinanceAPIError):
    """A rate limit was hit (or a pool is paused after one); wait ``retry_after_s``."""

    def __init__(
        self,
        code: int,
        msg: str,
        *,
        endpoint: str,
        retry_after_s: float,
        http_status: int = 429,
    ) -> None:
        super().__init__(code, msg, endpoint=endpoint, http_status=http_status)
        self.retry_after_s = retry_after_s
        self.args = (f"{endpoint}: {msg}; resuming in {retry_after_s:.0f} s",)


class BinanceIPBannedError(BinanceRateLimitError):
    """HTTP 418: the IP is banned for ignoring 429s, until ``banned_until``."""

    def __init__(self, code: int, msg: str, *, endpoint: str, retry_after_s: float) -> None:
        super().__init__(
            code, msg, endpoint=endpoint, retry_after_s=retry_after_s, http_status=418
        )
        self.banned_until = datetime.fromtimestamp(
            datetime.now(UTC).timestamp() + retry_after_s, tz=UTC
        )
        self.args = (
            f"{endpoint}: the IP is banned by Binance until "
            f"{self.banned_until:%Y-%m-%d %H:%M:%S} UTC ({retry_after_s:.0f} s); "
            "no request of that market is sent until then",
        )


class BinanceAuthError(BinanceAPIError):
    """The API key or signature was refused: check the key, its IP whitelist and permissions."""


class BinanceInvalidSymbolError(BinanceAPIError):
    """Binance does not know the symbol."""


class BinanceTimestampError(BinanceAPIError):
    """The request's timestamp was outside recvWindow, even after a time resync."""


class BinanceOrderRejectedError(BinanceAPIError):
    """An order, cancel or order query was rejected (balance, unknown order, market closed)."""


class BinanceUnknownStatusError(BinanceAPIError):
    """Binance could not say whether the request executed (5xx, 408, -1007)."""

    def __init__(
        self,
        code: int,
        msg: str,
        *,
        endpoint: str,
        http_status: int,
        client_order_id: str | None = None,
    ) -> None:
        super().__init__(code, msg, endpoint=endpoint, http_status=http_status)
        self.client_order_id = client_order_id
