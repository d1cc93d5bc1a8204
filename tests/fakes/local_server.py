"""What every fake server shares: an aiohttp app served on 127.0.0.1 (port 0 picks a free
one) that a test opens with ``async with`` and that is always torn down."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Self

from aiohttp import web

__all__ = ("LocalServer",)


class LocalServer:
    """Subclasses build their app in ``start`` and release their own state in ``close``."""

    _runner: web.AppRunner | None = None

    async def _serve(self, app: web.Application, host: str, port: int, scheme: str) -> str:
        """Serve ``app``; returns its base URL, e.g. ``http://127.0.0.1:41234``."""
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        return f"{scheme}://{bound_host}:{bound_port}"

    async def _stop_serving(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    url: str = ""

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        raise NotImplementedError

    async def serve_until_signalled(self, *, host: str, port: int, banner: str = "{url}") -> None:
        """The command line's loop: serve, print ``banner`` (with the URL) on stdout for a
        parent process to read, and stop cleanly on SIGINT or SIGTERM."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start(host=host, port=port)
        try:
            sys.stdout.write(banner.format(url=self.url) + "\n")
            sys.stdout.flush()
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        await self._stop_serving()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
