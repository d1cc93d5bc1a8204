"""What the stream tests share: a callback that records what it got and lets a test await
it, the client's events, and a client configured for the fake stream servers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from utils.binance import BinanceClient, BinanceEvent
from utils.config import BinanceConfig, RedisConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_ws import FakeBinanceWS

WAIT_S = 5.0


class Inbox:
    """What a callback received, with a way to await the n-th message."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, *args: Any) -> None:
        self.items.append(args[-1] if len(args) == 1 else args)
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], *, timeout_s: float = WAIT_S
    ) -> list[Any]:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
        return self.items

    async def wait_count(self, n: int) -> list[Any]:
        return await self.wait_for(lambda items: len(items) >= n)


class Events(Inbox):
    """The client's ``BinanceEvent``s."""

    def __init__(self, client: BinanceClient) -> None:
        super().__init__()
        client.events.subscribe(self)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items if isinstance(e, BinanceEvent)]


def config(
    spot: FakeBinanceWS | None,
    futures: FakeBinanceWS | None = None,
    *,
    rest: FakeBinance | None = None,
    **kw: Any,
) -> BinanceConfig:
    """A client of the fake stream servers; REST goes to ``rest`` (else nowhere)."""
    rest_url = rest.url if rest is not None else "http://127.0.0.1:9"
    values: dict[str, Any] = {
        "base_url": rest_url,
        "futures_base_url": rest_url,
        "ws_url": spot.url if spot else "ws://127.0.0.1:9",
        "futures_ws_url": futures.url if futures else "ws://127.0.0.1:9",
        "ws_stall_s": 5.0,
        "ws_backoff_base_s": 0.05,
        "ws_backoff_max_s": 0.2,
        "rate_limits_from_exchange": False,
    }
    values.update(kw)
    return BinanceConfig(**values, _env_file=None)


@contextlib.asynccontextmanager
async def open_client(cfg: BinanceConfig) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(config=cfg, redis=RedisConfig(url=None, _env_file=None)) as c:
        yield c
