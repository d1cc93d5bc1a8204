"""The webhook through the intake: 200 once the update is stored, a repeated delivery handled
once (SQLite and Redis), a body that is no Telegram update refused with 400 and one log line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest

from tests.bot.conftest import ALLOWED, running

if TYPE_CHECKING:
    import io
    from collections.abc import AsyncIterator, Callable

    from bot.app import BotApp
    from tests.fakes.fake_binance import FakeBinance
    from tests.fakes.fake_telegram import FakeTelegram
    from utils.config import Settings

SECRET: Final = "s3cret-Token_1"
GOOD: Final = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def help_update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": ALLOWED, "type": "private"},
            "from": {"id": ALLOWED, "is_bot": False, "first_name": "A"},
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }


@pytest.fixture
async def webhook_app(
    outbox_backend: str | None,
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[BotApp]:
    """The bot in webhook mode on SQLite, or on Redis (where chats are taken in turn)."""
    settings = make_settings(
        webhook_url="https://bot.example.org/telegram/webhook",
        webhook_secret=SECRET,
        redis_url=outbox_backend,
    )
    async with running(settings) as app:
        yield app


async def test_a_webhook_update_telegram_sends_twice_is_answered_once(
    webhook_app: BotApp, telegram: FakeTelegram
) -> None:
    url = f"{webhook_app.http_url}/telegram/webhook"
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # Telegram repeats a delivery whose 200 it did not get
            async with http.post(url, json=help_update(90), headers=GOOD) as response:
                assert response.status == 200
        (reply,) = await telegram.wait_for_sent(lambda m: m.chat_id == ALLOWED)
        await webhook_app.receiver.drain(timeout_s=10.0)
    assert "I show Binance prices" in reply.text
    assert telegram.sent_to(ALLOWED) == [reply]
    assert await webhook_app.intake.depth() == 0
    assert webhook_app.receiver.duplicates == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"update_id": 91, "message": {',  # cut short
        b"not json at all",
        b"[1, 2]",
        b'{"update_id": "ninety-two"}',
        b'{"update_id": 93}',  # no event in it
        b'{"update_id": 94, "message": {"text": "/help"}}',  # a message without its chat
    ],
)
async def test_a_webhook_body_that_is_no_update_gets_400_and_one_log_line(
    body: bytes,
    telegram: FakeTelegram,
    binance: FakeBinance,
    make_settings: Callable[..., Settings],
    log_to: Callable[..., io.StringIO],
) -> None:
    stream = log_to("DEBUG")
    settings = make_settings(
        webhook_url="https://bot.example.org/telegram/webhook", webhook_secret=SECRET
    )
    async with running(settings) as app, aiohttp.ClientSession() as http:
        before = len(stream.getvalue().splitlines())
        url = f"{app.http_url}/telegram/webhook"
        async with http.post(url, data=body, headers=GOOD) as response:
            assert response.status == 400
            assert await response.text() == "not a Telegram update"
        logged = stream.getvalue().splitlines()[before:]
        assert await app.intake.depth() == 0
    assert len(logged) == 1, logged
    assert '"event":"webhook_bad_update"' in logged[0]
    assert '"level":"warning"' in logged[0]
    assert "Traceback" not in stream.getvalue()
    assert telegram.sent == []
