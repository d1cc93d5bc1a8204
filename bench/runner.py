"""Processes of a bench run: the fake exchange served by its own CLI, and one fresh child
process per client run (``bench.run_client``), read back as one JSON line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ("ROOT", "child_env", "fake_process", "run_client")

ROOT: Final = Path(__file__).resolve().parents[1]
_CHILD_TIMEOUT_S: Final = 180.0
_FAKE_START_S: Final = 20.0
# Settings the bench chooses itself; a developer's .env or shell must not change them.
_SCRUBBED: Final = ("BINANCE_", "REDIS_", "LOG_")


def child_env() -> dict[str, str]:
    """The environment minus our settings' variables, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    return env


@contextlib.asynccontextmanager
async def fake_process(*flags: str) -> AsyncIterator[str]:
    """``python -m tests.fakes.fake_binance --port 0 FLAGS`` in its own process; yields its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fake_binance",
        "--port",
        "0",
        *flags,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 - asked for a pipe above
        async with asyncio.timeout(_FAKE_START_S):
            url = (await proc.stdout.readline()).decode().strip()
        if not url:
            raise RuntimeError("the fake exchange exited before printing its URL")
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def run_client(client: str, scenario: str, url: str, *args: str) -> dict[str, Any]:
    """Run one client in a fresh process; its JSON answer, or ``{"error": ...}``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.run_client",
        client,
        scenario,
        "--url",
        url,
        *args,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_CHILD_TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"timed out after {_CHILD_TIMEOUT_S:.0f} s"}
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = err.decode().strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"error": f"crashed: {tail[0]}"}
    result: dict[str, Any] = orjson.loads(lines[-1])
    return result
