"""The bot end to end: a real aiogram ``Bot`` against the fake Bot API, a real
``BinanceClient`` against the fake exchange, the SQLite outbox or a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest

from bot.app import BotApp, build_app, serve
from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_market import Market
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.fake_ws import FakeBinanceWS
from tests.utils.binance.conftest import make_config
from utils.config import AlarmConfig, LoggingConfig, RedisConfig, Settings, TelegramConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from tests.conftest import RedisServer
    from tests.fakes.fake_telegram_wire import SentMessage

TOKEN: Final = "42:TEST"
ADMIN: Final = 500  # an admin user; the admin chat is their private chat
ALLOWED: Final = 600  # in ALLOWED_USER_IDS
STRANGER: Final = 700  # anyone else

#: Telegram's limits scaled down 20x so that hundreds of messages take seconds.
FAST_FLOOD: Final = {"chat_rate": 1, "chat_window_s": 0.05, "global_rate": 200}


def bot_settings(
    telegram: FakeTelegram,
    binance: FakeBinance,
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    binance_overrides: dict[str, Any] | None = None,
    alarm_overrides: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "api_url": telegram.url,
        "admin_chat_id": ADMIN,
        "allowed_user_ids": [ALLOWED],
        "http_port": 0,
        "polling_timeout_s": 1,
        "outbox_path": tmp_path / "outbox.sqlite3",
        "global_rate": 150.0,
        "chat_interval_s": 0.05,
        "group_interval_s": 0.1,
        "retry_base_s": 0.05,
        "retry_max_s": 0.2,
        "throttle_rate": 1.0,
        "throttle_burst": 3,
    }
    values.update(overrides)
    return Settings(
        binance=make_config(binance, cache_enabled=True, **(binance_overrides or {})),
        redis=RedisConfig(url=redis_url, key_prefix="test", _env_file=None),
        telegram=TelegramConfig(**values, _env_file=None),
        logging=LoggingConfig(_env_file=None),
        alarms=AlarmConfig(
            **{"store_path": tmp_path / "alarms.sqlite3", **(alarm_overrides or {})},
            _env_file=None,
        ),
    )


@contextlib.asynccontextmanager
async def running(settings: Settings, *, app: BotApp | None = None) -> AsyncIterator[BotApp]:
    """The bot, served in this process until the block ends (then shut down as on SIGTERM)."""
    app = app or build_app(settings)
    task = asyncio.create_task(serve(app, handle_signals=False))
    ready = asyncio.create_task(app.ready.wait())
    await asyncio.wait({task, ready}, timeout=15.0, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        await task  # raises what stopped it
        raise AssertionError("the bot did not start")
    try:
        yield app
    finally:
        app.stop_requested.set()
        await asyncio.wait_for(task, 20.0)


@dataclass
class Harness:
    telegram: FakeTelegram
    binance: FakeBinance
    app: BotApp

    async def ask(
        self,
        chat_id: int,
        text: str,
        *,
        language_code: str | None = None,
        replies: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - a test helper's deadline
    ) -> list[SentMessage]:
        """Write ``text`` as the user of private chat ``chat_id``; the bot's next replies."""
        before = len(self.telegram.sent_to(chat_id))
        self.telegram.inject_message(chat_id, text, language_code=language_code)
        sent = await self.telegram.wait_for_sent(
            lambda m: m.chat_id == chat_id, count=before + replies, timeout=timeout
        )
        return sent[before:]


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN, **FAST_FLOOD) as fake:
        for chat_id in (ADMIN, ALLOWED, STRANGER):
            fake.add_chat(chat_id)
        yield fake


@pytest.fixture
async def binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(api_keys={TEST_API_KEY: TEST_API_SECRET}) as fake:
        yield fake


@pytest.fixture
def make_settings(
    telegram: FakeTelegram, binance: FakeBinance, tmp_path: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return bot_settings(telegram, binance, tmp_path, **overrides)

    return make


@pytest.fixture
async def harness(
    telegram: FakeTelegram, binance: FakeBinance, make_settings: Callable[..., Settings]
) -> AsyncIterator[Harness]:
    async with running(make_settings()) as app:
        yield Harness(telegram, binance, app)


@pytest.fixture(params=["sqlite", "redis"])
def outbox_backend(request: pytest.FixtureRequest) -> str | None:
    """None for the SQLite outbox, else a Redis URL (a real server of its own)."""
    if request.param == "sqlite":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def streams(binance: FakeBinance) -> AsyncIterator[tuple[FakeBinanceWS, FakeBinanceWS]]:
    candles = binance.market.candles
    async with (
        FakeBinanceWS(Market.SPOT, candles=candles, kline_update_s=0.2) as spot,
        FakeBinanceWS(
            Market.FUTURES, strict_routes=True, candles=candles, kline_update_s=0.2
        ) as futures,
    ):
        yield spot, futures


@pytest.fixture
def alarm_settings(
    make_settings: Callable[..., Settings], streams: tuple[FakeBinanceWS, FakeBinanceWS]
) -> Callable[..., Settings]:
    spot, futures = streams

    def make(**overrides: Any) -> Settings:
        return make_settings(
            binance_overrides={
                "ws_url": spot.url,
                "futures_ws_url": futures.url,
                "ws_backoff_base_s": 0.05,
                "ws_backoff_max_s": 0.2,
            },
            throttle_rate=100.0,
            throttle_burst=100,
            **overrides,
        )

    return make
