"""The test infrastructure itself: the Redis fixture and the aiohttp leak guard."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio
import redis.exceptions

if TYPE_CHECKING:
    from tests.conftest import RedisServer

_ROOT = Path(__file__).resolve().parents[1]

_LEAKY_TEST = """
import aiohttp

async def test_leaks_a_session():
    session = aiohttp.ClientSession()
    assert not session.closed
"""

_CLEAN_TEST = """
import aiohttp

async def test_closes_its_session():
    async with aiohttp.ClientSession() as session:
        assert not session.closed
"""


async def _run_pytest(test_file: Path, *extra: str) -> tuple[int, str]:
    """Run pytest with this project's config and conftest over one file, in a subprocess."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "pytest", "-c", str(_ROOT / "pyproject.toml"), "--rootdir", str(_ROOT)),
        *("-p", "tests.conftest", "-p", "no:cacheprovider", "-q", *extra, str(test_file)),
        cwd=_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    ("warnings", "reported_by"),
    [
        pytest.param((), "PytestUnraisableExceptionWarning", id="resource-warnings-as-errors"),
        # With the warning silenced, only the guard's exception handler can catch the leak.
        pytest.param(
            ("-W", "ignore::ResourceWarning"),
            "test left aiohttp resources open",
            id="resource-warnings-ignored",
        ),
    ],
)
async def test_a_test_leaking_an_aiohttp_session_fails(
    tmp_path: Path, warnings: tuple[str, ...], reported_by: str
) -> None:
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(_LEAKY_TEST)

    code, output = await _run_pytest(leaky, *warnings)

    assert code == 1, output
    assert "Unclosed client session" in output
    assert reported_by in output


async def test_a_test_closing_its_aiohttp_session_passes(tmp_path: Path) -> None:
    clean = tmp_path / "test_clean.py"
    clean.write_text(_CLEAN_TEST)

    code, output = await _run_pytest(clean, "-W", "ignore::ResourceWarning")

    assert code == 0, output
    assert "1 passed" in output


async def test_redis_server_can_be_stopped_and_started_again(redis_server: RedisServer) -> None:
    assert await _redis_answers(redis_server.url)

    await redis_server.stop()
    assert not await _redis_answers(redis_server.url)

    await redis_server.start()
    assert await _redis_answers(redis_server.url)

    await redis_server.restart()
    assert await _redis_answers(redis_server.url)


async def _redis_answers(url: str) -> bool:
    """Ping with a fresh client, so that the answer is the server's state, not the pool's."""
    client = redis.asyncio.Redis.from_url(url, socket_timeout=2)
    try:
        return bool(await client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        await client.aclose()
