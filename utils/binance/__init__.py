"""The async Binance client: ``BinanceClient`` (the facade), its settings and its errors."""

from utils.binance.binance_a import BinanceClient, EventBus
from utils.binance.binance_exceptions import (
    BinanceAPIError,
    BinanceAuthError,
    BinanceCircuitOpenError,
    BinanceConfigError,
    BinanceCredentialsError,
    BinanceError,
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
    BinanceWebSocketError,
)
from utils.binance.binance_types import BinanceEvent, Market, Order, OrderSide, OrderType
from utils.config import BinanceConfig

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
    "BinanceWebSocketError",
    "EventBus",
    "Market",
    "Order",
    "OrderSide",
    "OrderType",
)
