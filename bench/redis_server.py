"""A throw-away ``redis-server`` for the row sets that need one (shared IP, Redis cache):
started on a free port of 127.0.0.1 without persistence, emptied between runs, stopped at
the end. When the binary is missing, ``redis_server()`` yields None and the rows say so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("REDIS_MISSING", "RedisServer", "redis_server")

REDIS_MISSING: Final = "redis-server not installed"
_DEBIAN_BINARY: Final = "/usr/bin/redis-server"
_START_S: Final = 10.0
_STOP_S: Final = 5.0


class RedisServer:
    """A running server: its ``url``, and ``flush()`` to empty it between runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    async def command(self, *words: str) -> bytes:
        """Send one inline command; the first line of the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(" ".join(words).encode() + b"\r\n")
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def flush(self) -> None:
        if not (await self.command("FLUSHALL")).startswith(b"+OK"):
            raise RuntimeError("redis-server did not empty itself")


def redis_binary() -> str | None:
    if found := shutil.which("redis-server"):
        return found
    return _DEBIAN_BINARY if os.access(_DEBIAN_BINARY, os.X_OK) else None


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[RedisServer | None]:
    """A fresh server for the block, or None when ``redis-server`` is not installed."""
    binary = redis_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        port = _free_port()
        proc = await asyncio.create_subprocess_exec(
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", directory),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            server = RedisServer(port)
            await _until_ready(proc, server)
            yield server
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(_STOP_S):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _until_ready(proc: asyncio.subprocess.Process, server: RedisServer) -> None:
    async with asyncio.timeout(_START_S):
        while True:  # it takes a moment to listen; nothing to await but trying again
            if proc.returncode is not None:
                raise RuntimeError(f"redis-server exited before listening on {server.port}")
            with contextlib.suppress(OSError):
                if (await server.command("PING")).startswith(b"+PONG"):
                    return
            await asyncio.sleep(0.02)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
