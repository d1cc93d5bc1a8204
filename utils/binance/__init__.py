"""The async Binance client: ``BinanceClient`` (the facade), its settings and its errors."""

from typing import TYPE_CHECKING

from utils.binance import binance_types
from utils.binance.binance_a import BinanceClient, EventBus
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
from utils.binance.binance_types import (
    BinanceEvent,
    KlineInterval,
    Market,
    OrderSide,
    OrderType,
)
from utils.config import BinanceConfig

if TYPE_CHECKING:
    from utils.binance.binance_models import Order

__all__ = (
    "BinanceAPIError",
    "BinanceAuthError",
    "BinanceCircuitOpenError",
    "BinanceClient",
    "BinanceConfig",
    "BinanceConfigError",
    "BinanceCredentialsError",
    "BinanceError",
    "BinanceEvent",
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
    "EventBus",
    "KlineInterval",
    "Market",
    "Order",
    "OrderSide",
    "OrderType",
)


def __getattr__(name: str) -> object:
    """``Order`` (a pydantic model) is loaded on first use, not with the package."""
    if name == "Order":
        return binance_types.models.Order
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
