"""One stream consumer in a fresh process; prints one JSON line on stdout.

``python -m bench.run_ws plain|ours --url WS_URL`` subscribes to ``!miniTicker@arr`` and
consumes frames until the one whose first ticker is the end marker. ``plain`` is the floor: a
bare ``websockets`` connection, ``json.loads`` per frame and a no-op callback. ``ours`` is
``BinanceClient.ws_all_mini_tickers`` with a no-op callback (one orjson decode per frame,
the rows wrapped as a lazily typed ``EventArray``, per-subscriber mailbox, conflation) that
reads the first row's symbol. CPU is ``time.process_time()`` from the first frame to
the end marker; ``callbacks`` counts frames handed to the callback (ours may conflate)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from utils.binance.binance_ws_events import EventArray, MiniTickerEvent

__all__ = ("END_SYMBOL", "main")

END_SYMBOL: Final = "ZZZENDUSDT"
STREAM: Final = "!miniTicker@arr"


class _Clock:
    def __init__(self) -> None:
        self.cpu0 = self.wall0 = 0.0
        self.callbacks = 0

    def tick(self) -> None:
        if self.callbacks == 0:
            self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self.callbacks += 1

    def result(self) -> dict[str, Any]:
        return {
            "callbacks": self.callbacks,
            "cpu_s": time.process_time() - self.cpu0,
            "wall_s": time.perf_counter() - self.wall0,
        }


async def plain(url: str) -> dict[str, Any]:
    from websockets.asyncio.client import connect  # noqa: PLC0415 - measured apart

    clock = _Clock()
    async with connect(f"{url}/stream?streams={STREAM}", ping_interval=None) as ws:
        async for message in ws:
            data = json.loads(message)["data"]
            clock.tick()
            if data[0]["s"] == END_SYMBOL:
                break
    return clock.result()


async def ours(url: str) -> dict[str, Any]:
    from utils.binance.binance_a import BinanceClient  # noqa: PLC0415
    from utils.config import BinanceConfig, RedisConfig  # noqa: PLC0415

    clock, done = _Clock(), asyncio.Event()

    def on_prices(data: EventArray[MiniTickerEvent]) -> None:
        clock.tick()
        if data[0].symbol == END_SYMBOL:
            done.set()

    config = BinanceConfig(
        ws_url=url,
        base_url="http://127.0.0.1:9",
        futures_base_url="http://127.0.0.1:9",
        rate_limits_from_exchange=False,
        _env_file=None,
    )
    async with BinanceClient(config=config, redis=RedisConfig(url=None, _env_file=None)) as c:
        await c.ws_all_mini_tickers(on_prices)
        await done.wait()
        return clock.result()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_ws")
    parser.add_argument("client", choices=("plain", "ours"))
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    run = plain if args.client == "plain" else ours
    sys.stdout.write(json.dumps(asyncio.run(run(args.url))) + "\n")


if __name__ == "__main__":
    main()
