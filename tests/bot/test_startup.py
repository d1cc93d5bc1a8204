"""``python -m bot`` that cannot start says what to fix in one line and exits non-zero, with
no traceback and no secret anywhere in its output: each case is a real process against the
fake Bot API and the fake exchange (or a port nothing listens on)."""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import orjson
import pytest
from aiohttp import web

from tests.bot.conftest import TOKEN
from tests.fakes.bot_env import fake_bot_env
from tests.fakes.fake_binance import TEST_API_SECRET
from tests.fakes.local_server import LocalServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram

#: Well formed, so the fake Bot API answers 401 (it knows tests.bot.conftest.TOKEN only).
WRONG_TOKEN: Final = "7301946285:AAHf3kXq9TzLw2VbN8pRj5sYc0dMu4eGi6o"
TOKEN_SECRET: Final = WRONG_TOKEN.partition(":")[2]
REDIS_PASSWORD: Final = "redis-pw-Zq81vX3kLm"
PEM_BODY: Final = "MC4CAQAwBQYDK2VwBCIEIGarbageGarbageGarbageGarbageGarbage01"
GARBAGE_PEM: Final = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
SECRETS: Final = (WRONG_TOKEN, TOKEN_SECRET, TEST_API_SECRET, REDIS_PASSWORD, PEM_BODY)
DEADLINE_S: Final = 60.0  # a safety net, not a speed check: start-up takes 2-10 s here


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    output: str  # stdout and stderr together, as a user's terminal shows them

    @property
    def verdict(self) -> list[str]:
        """What the process said in plain text; the rest are its (JSON) log lines."""
        return [line for line in self.output.splitlines() if not line.startswith("{")]

    @property
    def log_levels(self) -> set[str]:
        lines = self.output.splitlines()
        return {str(orjson.loads(line)["level"]) for line in lines if line.startswith("{")}


async def start_up(env: dict[str, str], cwd: Path) -> Outcome:
    """Run ``python -m bot`` until it exits (it must, by itself, within the deadline)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Outcome(proc.returncode, out.decode(errors="replace"))


def assert_one_clean_line(outcome: Outcome, *names: str) -> str:
    """Non-zero, one line naming each of ``names`` (and no log line above info), nothing in
    the whole output that looks like a traceback or is a secret."""
    assert outcome.status != 0, outcome.output
    assert len(outcome.verdict) == 1, outcome.output
    assert outcome.log_levels <= {"debug", "info"}, outcome.output
    assert "Traceback" not in outcome.output
    for secret in SECRETS:
        assert secret not in outcome.output, f"a secret leaked: {outcome.output}"
    (line,) = outcome.verdict
    for name in names:
        assert name in line, line
    return line


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def env_for(
    telegram_url: str, binance: FakeBinance, tmp_path: Path, **settings: str
) -> dict[str, str]:
    return fake_bot_env(
        telegram_url,
        binance.url,
        WRONG_TOKEN,
        TELEGRAM_OUTBOX_PATH=str(tmp_path / "outbox.sqlite3"),
        LOG_FORMAT="json",
        **settings,
    )


class EchoingBotAPI(LocalServer):
    """A Bot API that refuses every token, quoting the request's path (token included) back
    in its description, as a proxy or a misconfigured server may."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._refuse)
        self.url = await self._serve(app, host, port, "http")

    async def _refuse(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        body = {"ok": False, "error_code": 401, "description": f"Unauthorized: {request.path}"}
        return web.Response(status=401, body=orjson.dumps(body), content_type="application/json")


@pytest.fixture
async def echoing_api() -> AsyncIterator[EchoingBotAPI]:
    async with EchoingBotAPI() as server:
        yield server


async def test_a_wrong_token_is_one_line_naming_bot_token(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    outcome = await start_up(env_for(telegram.url, binance, tmp_path), tmp_path)

    line = assert_one_clean_line(outcome, "BOT_TOKEN", "@BotFather")
    assert outcome.status == 1
    assert "refused" in line


async def test_a_server_quoting_the_token_back_never_gets_it_printed(
    echoing_api: EchoingBotAPI, binance: FakeBinance, tmp_path: Path
) -> None:
    outcome = await start_up(env_for(echoing_api.url, binance, tmp_path), tmp_path)

    line = assert_one_clean_line(outcome, "BOT_TOKEN")
    assert echoing_api.paths == [f"/bot{WRONG_TOKEN}/getMe"]  # the token was in the answer
    assert "/bot***/getMe" in line  # and is masked in what the user reads


async def test_telegram_out_of_reach_is_one_line_naming_the_server(
    binance: FakeBinance, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    outcome = await start_up(env_for(url, binance, tmp_path), tmp_path)

    line = assert_one_clean_line(outcome, "unreachable", url, "TELEGRAM_API_URL")
    assert outcome.status == 1
    assert line.startswith("Telegram is unreachable")


async def test_redis_out_of_reach_is_one_line_naming_redis_url_without_its_password(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{closed_port()}/0"
    env = env_for(telegram.url, binance, tmp_path, REDIS_URL=redis_url)
    env["BOT_TOKEN"] = telegram.token  # a good token: Redis is the one thing wrong

    outcome = await start_up(env, tmp_path)

    line = assert_one_clean_line(outcome, "REDIS_URL")
    assert line.startswith("Redis is unreachable")


async def test_a_missing_key_file_is_one_line_naming_the_variable(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    missing = tmp_path / "keys" / "binance_ed25519.pem"
    env = env_for(telegram.url, binance, tmp_path, BINANCE_PRIVATE_KEY_PATH=str(missing))

    outcome = await start_up(env, tmp_path)

    line = assert_one_clean_line(outcome, "BINANCE_PRIVATE_KEY_PATH", str(missing), "no such")
    assert outcome.status == 2
    assert line.startswith("BINANCE_PRIVATE_KEY_PATH=")


async def test_a_garbage_key_file_is_one_line_naming_the_variable_not_the_key(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    key_file = tmp_path / "binance_ed25519.pem"
    key_file.write_text(GARBAGE_PEM)
    env = env_for(telegram.url, binance, tmp_path, BINANCE_PRIVATE_KEY_PATH=str(key_file))

    outcome = await start_up(env, tmp_path)

    line = assert_one_clean_line(outcome, "BINANCE_PRIVATE_KEY_PATH", "PEM")
    assert outcome.status == 2
    assert line.startswith("BINANCE_PRIVATE_KEY_PATH:")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BINANCE_REQUEST_TIMEOUT", "thirty"),
        ("MAX_REQUESTS_PER_SECOND", "-3"),
        ("LIMITER_PERIOD", "2"),  # without LIMITER_RATE
        ("TELEGRAM_HTTP_PORT", "99999"),
        ("WEBHOOK_SECRET", f"not allowed: {REDIS_PASSWORD}"),  # a secret: never echoed
    ],
)
async def test_a_malformed_setting_is_one_line_naming_the_variable(
    binance: FakeBinance, tmp_path: Path, variable: str, value: str
) -> None:
    env = env_for(f"http://127.0.0.1:{closed_port()}", binance, tmp_path, **{variable: value})

    outcome = await start_up(env, tmp_path)

    line = assert_one_clean_line(outcome, variable)
    assert outcome.status == 2
    assert line.startswith(variable)


async def test_a_pem_pasted_into_the_api_secret_is_never_printed(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = env_for(telegram.url, binance, tmp_path, BINANCE_API_SECRET=GARBAGE_PEM)

    outcome = await start_up(env, tmp_path)

    assert_one_clean_line(outcome, "BINANCE_API_SECRET", "PEM")
    assert outcome.status == 2


async def test_a_token_revoked_while_running_stops_the_bot_in_one_line(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> None:
    env = env_for(telegram.url, binance, tmp_path, BOT_TOKEN=TOKEN)
    running = asyncio.create_task(start_up(env, tmp_path))
    await telegram.wait_for_call("getUpdates", timeout=DEADLINE_S)
    telegram.token = WRONG_TOKEN  # @BotFather revoked ours: the old token is refused from now
    telegram.release_polls()

    outcome = await running

    line = assert_one_clean_line(outcome, "BOT_TOKEN")
    assert TOKEN not in outcome.output
    assert outcome.status == 1
    assert "refused" in line
