"""Fixtures every test may use: a real Redis server, and a guard that fails a test leaking
an aiohttp session or connector."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import os
import shutil
import socket
import subprocess
from typing import TYPE_CHECKING, Any, Final, Literal

import pytest
import structlog
from hypothesis import settings
from redis.asyncio import Redis

from tests.redis_cluster import LocalCluster
from utils.config import LoggingConfig
from utils.logging_setup import configure_logging
from utils.redis_conn import RedisClient, connect

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

REDIS_MISSING: Final = (
    "redis-server is not installed: install Debian's redis-server package "
    "(sudo apt-get install redis-server), or run `make test` as root to have it installed"
)
_DEBIAN_REDIS: Final = "/usr/bin/redis-server"

# A noisy shared machine: no per-example wall-clock deadline (hypothesis's 200 ms would flake).
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")
_START_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 10.0


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, binary: str, directory: Path) -> None:
        self._binary = binary
        self._directory = directory
        self._process: asyncio.subprocess.Process | None = None
        self.port = _free_port()
        #: Keep the data across restarts (an append-only file, as docker-compose runs it).
        self.appendonly = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start on the same port as before and return once it answers PING."""
        if self._process is not None:
            raise RuntimeError("redis-server is already running")
        self._directory.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            self._binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--dir", str(self._directory)),
            *("--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"),
            *("--daemonize", "no", "--protected-mode", "no"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await self._until_ready()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Terminate the server and wait for it; a no-op when it is not running."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer: nothing is flushed on the way out, so only
        what ``appendonly`` (``appendfsync always``) wrote before each reply survives."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.kill()
        await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _until_ready(self) -> None:
        # The process takes a moment to listen; nothing to await but trying again.
        async with asyncio.timeout(_START_TIMEOUT_S):
            while True:
                if self._process is None or self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited before listening on {self.port}")
                if await _answers_ping(self.port):
                    return
                await asyncio.sleep(0.01)


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A fresh, empty Redis server owned by this test."""
    server = RedisServer(_redis_or_fail(), tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _redis_or_fail() -> str:
    binary = _redis_binary()
    if binary is None:
        if "CI" in os.environ:  # any value: CI=1, CI=yes and CI=true all fail, never skip
            pytest.fail(REDIS_MISSING)
        pytest.skip(REDIS_MISSING)
    return binary


@pytest.fixture(scope="session")
def _worker_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(_redis_or_fail(), tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(_worker_cluster: LocalCluster) -> LocalCluster:
    """A real 3-master Redis Cluster, empty; one per test worker, shared by its tests (kill
    nodes only in ``redis_cluster_replicas``). ``.url`` is ``redis+cluster://…``."""
    _worker_cluster.flush()
    return _worker_cluster


@pytest.fixture
def redis_cluster_replicas(tmp_path: Path) -> Iterator[LocalCluster]:
    """A fresh 3-master cluster with one replica per master that the test may kill nodes of;
    a dead master's replica is promoted about a second (the node timeout) later."""
    cluster = LocalCluster(
        _redis_or_fail(), tmp_path / "cluster", replicas=1, node_timeout_ms=1000
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", "cluster"])
def redis_target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """("redis" or "cluster", its URL): a store's Redis-only tests run on both."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return "cluster", cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return "redis", server.url


@pytest.fixture
async def redis_client(redis_target: tuple[str, str]) -> AsyncIterator[RedisClient]:
    """A client of a single Redis (decoding replies: str replies work too) or of a cluster."""
    kind, url = redis_target
    client: RedisClient = (
        connect(url, max_connections=8)
        if kind == "cluster"
        else Redis.from_url(url, decode_responses=True)
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(autouse=True)
async def _no_unclosed_aiohttp() -> AsyncIterator[None]:
    """Fail the test if it leaves an aiohttp ClientSession or connector unclosed.

    aiohttp reports a leak from ``__del__`` twice: as a ResourceWarning (an error under
    ``filterwarnings = error``) and through the loop's exception handler, caught here.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    leaks: list[str] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("Unclosed"):
            leaks.append(message)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    if leaks:
        pytest.fail("test left aiohttp resources open: " + "; ".join(leaks))


def _redis_binary() -> str | None:
    if found := shutil.which("redis-server"):
        return found
    return _DEBIAN_REDIS if os.access(_DEBIAN_REDIS, os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _answers_ping(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        return (await reader.readline()).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.fixture
def log_to() -> Iterator[Callable[..., io.StringIO]]:
    """Configure logging into a fresh buffer; restore structlog and the root logger after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(
        level: str = "INFO", log_format: Literal["console", "json"] = "json"
    ) -> io.StringIO:
        stream = io.StringIO()
        config = LoggingConfig(level=level, format=log_format, _env_file=None)
        configure_logging(config, stream=stream)
        return stream

    yield configure
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
