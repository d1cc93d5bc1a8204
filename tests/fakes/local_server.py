"""What every fake server shares: an aiohttp app served on 127.0.0.1 (port 0 picks a free
one) that a test opens with ``async with`` and that is always torn down."""

from __future__ import annotations

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

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self._stop_serving()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
