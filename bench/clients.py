"""The clients under test, each behind one shape: an async context manager that yields a
``call()`` coroutine function fetching ``GET /api/v3/ticker/price?symbol=BTCUSDT`` once.

Imported only by ``bench.run_client``, inside the fresh process of one client, so a peer's
import cost and global patches (CCXT swaps aiohttp's zlib, for one) never touch another.
A peer that fails to import raises ``ImportError``; the caller reports "not installed".
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from utils.binance.binance_a import BinanceClient

    Call = Callable[[], Awaitable[Any]]

__all__ = ("CLIENTS", "IMPORTS", "HttpStatusError", "open_client", "ours_client")

SYMBOL: Final = "BTCUSDT"
PATH: Final = "/api/v3/ticker/price"
_OK: Final = 200


class HttpStatusError(Exception):
    """The floor's non-200 answer, so that every client reports failures as exceptions."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@contextlib.asynccontextmanager
async def _floor(url: str, **_: Any) -> AsyncIterator[Call]:
    """The least any aiohttp client can do: one session, a prebuilt URL, ``orjson.loads``."""
    import aiohttp  # noqa: PLC0415 - the child imports only the client it runs
    import orjson  # noqa: PLC0415

    target = f"{url}{PATH}?symbol={SYMBOL}"
    async with aiohttp.ClientSession() as session:

        async def call() -> Any:
            async with session.get(target) as resp:
                body = await resp.read()
                if resp.status != _OK:
                    raise HttpStatusError(resp.status)
                return orjson.loads(body)

        yield call


def ours_client(
    url: str,
    *,
    margin: float | None = None,
    redis_url: str | None = None,
    cache: bool = False,
) -> BinanceClient:
    """``BinanceClient`` as the bot builds it (limiter and breakers on, logging at INFO),
    pointed at the fake for both markets. Its response cache is off unless ``cache`` (the
    rows measure calls on their way to the fake); ``redis_url`` shares the limiter (and, with
    ``cache``, the cache) through that Redis."""
    from utils.binance.binance_a import BinanceClient  # noqa: PLC0415
    from utils.config import BinanceConfig, LoggingConfig, RedisConfig  # noqa: PLC0415
    from utils.logging_setup import configure_logging  # noqa: PLC0415

    configure_logging(LoggingConfig(level="INFO", _env_file=None))
    settings: dict[str, Any] = {"base_url": url, "futures_base_url": url, "cache_enabled": cache}
    if margin is not None:
        settings["rate_limit_margin"] = margin
    config = BinanceConfig(_env_file=None, **settings)
    return BinanceClient(config=config, redis=RedisConfig(url=redis_url, _env_file=None))


@contextlib.asynccontextmanager
async def _ours(
    url: str, *, margin: float | None = None, redis_url: str | None = None, **_: Any
) -> AsyncIterator[Call]:
    async with ours_client(url, margin=margin, redis_url=redis_url) as c:

        async def call() -> Any:
            return await c.get_symbol_price(SYMBOL)

        yield call


@contextlib.asynccontextmanager
async def _python_binance(url: str, **_: Any) -> AsyncIterator[Call]:
    """python-binance's ``AsyncClient``; its class-level ``API_URL`` is pointed at the fake
    in this process only (the constructor formats it, and a URL without ``{}`` stays put)."""
    from binance import AsyncClient  # type: ignore[import-untyped,import-not-found]  # noqa: PLC0415

    AsyncClient.API_URL = f"{url}/api"
    client = await AsyncClient.create()  # pings and reads the server time, as it always does
    try:

        async def call() -> Any:
            return await client.get_symbol_ticker(symbol=SYMBOL)

        yield call
    finally:
        await client.close_connection()


@contextlib.asynccontextmanager
async def _ccxt(url: str, *, rate_limit: bool = True, **_: Any) -> AsyncIterator[Call]:
    """CCXT's async ``binance`` with every ``api.binance.com`` URL pointed at the fake; the
    call is its implicit ``publicGetTickerPrice``, the same request as everyone else's."""
    import ccxt.async_support as ccxt  # type: ignore[import-untyped,import-not-found]  # noqa: PLC0415

    exchange = ccxt.binance({"enableRateLimit": rate_limit})
    exchange.urls["api"] = {
        name: value.replace("https://api.binance.com", url) if isinstance(value, str) else value
        for name, value in exchange.urls["api"].items()
    }
    try:

        async def call() -> Any:
            return await exchange.public_get_ticker_price({"symbol": SYMBOL})

        yield call
    finally:
        await exchange.close()


#: The modules each client's user imports (what the start-up rows time).
IMPORTS: Final = {
    "floor": ("aiohttp", "orjson"),
    "ours": ("utils.binance", "utils.config", "utils.logging_setup"),
    "python-binance": ("binance",),
    "ccxt": ("ccxt.async_support",),
}

CLIENTS: Final[dict[str, Callable[..., contextlib.AbstractAsyncContextManager[Call]]]] = {
    "floor": _floor,
    "ours": _ours,
    "python-binance": _python_binance,
    "ccxt": _ccxt,
}


def open_client(
    name: str, url: str, **options: Any
) -> contextlib.AbstractAsyncContextManager[Call]:
    """The named client, serving ``call()`` against the fake at ``url``."""
    return CLIENTS[name](url, **options)
