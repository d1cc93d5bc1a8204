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

__all__ = (
    "CHILD_TIMEOUT_S",
    "ROOT",
    "UNTHROTTLED",
    "answer",
    "child_env",
    "fake_process",
    "run_client",
    "run_module",
    "spawn",
)

ROOT: Final = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S: Final = 180.0
_FAKE_START_S: Final = 20.0
# Settings the bench chooses itself; a developer's .env or shell must not change them.
_SCRUBBED: Final = ("BINANCE_", "REDIS_", "LOG_")


#: Fake flags for rows that measure clients, not the limiter: no weight limit is ever reached.
UNTHROTTLED: Final = (
    *("--window-s", "60"),
    *("--spot-weight-limit", str(10**9)),
    *("--futures-weight-limit", str(10**9)),
)


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
    return await run_module("bench.run_client", client, scenario, "--url", url, *args)


async def run_module(module: str, *args: str) -> dict[str, Any]:
    """``python -m MODULE ARGS`` in a fresh process; its last stdout line as JSON, or
    ``{"error": ...}`` when it crashed or timed out."""
    proc = await spawn(module, *args)
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"timed out after {CHILD_TIMEOUT_S:.0f} s"}
    return answer(proc, out, err)


async def spawn(module: str, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    """Start ``python -m MODULE ARGS`` (stdout and stderr piped, stdin too if asked)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=ROOT,
        env=child_env(),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def answer(proc: asyncio.subprocess.Process, out: bytes, err: bytes) -> dict[str, Any]:
    """A finished child's JSON answer (its last stdout line), or ``{"error": "crashed: ..."}``."""
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = err.decode().strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return {"error": f"crashed: {tail[0]}"}
    result: dict[str, Any] = orjson.loads(lines[-1])
    return result
