"""The async Binance client for app code: exactly ``binance_a.__all__`` (a test keeps the two
equal). Names resolve from ``binance_a`` on first use, so the pydantic models still load only
when one is asked for."""

from typing import TYPE_CHECKING, Any

from utils.binance import binance_a

__all__ = binance_a.__all__

if TYPE_CHECKING:
    from utils.binance.binance_a import *  # noqa: F403 - the names mypy sees, as listed there
else:

    def __getattr__(name: str) -> Any:
        if name in __all__:
            value = getattr(binance_a, name)
            globals()[name] = value  # once: the next lookup is a plain module attribute
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
