"""The fake Telegram Bot API, driven by a real aiogram Bot (and a real Dispatcher for polling):
what aiogram sends reaches the fake, and what the fake answers is what aiogram raises."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)

from tests.fakes import fake_telegram_wire as wire
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.fake_telegram_html import HtmlError, parse_html

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

    from aiogram.types import TelegramObject

ROOT = Path(__file__).resolve().parents[2]
CHAT = 500
OTHER = 501
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Refresh", callback_data="refresh")]]
)
# A PNG header is all the fake reads: 640 x 480.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4) + (480).to_bytes(4) + b"\x08\x02"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """A fake with loose flood windows (the flood test builds its own) and two chats."""
    async with FakeTelegram(chat_rate=1000, group_rate=1000, global_rate=1000) as server:
        server.add_chat(CHAT, language_code="en")
        server.add_chat(OTHER)
        yield server


@asynccontextmanager
async def bot_on(fake: FakeTelegram) -> AsyncIterator[Bot]:
    """A real aiogram Bot pointed at the fake; its session is closed on the way out."""
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.url)))
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with bot_on(fake) as client:
        yield client


async def test_the_bots_token_gets_its_user_messages_and_chats_and_another_token_401(
    fake: FakeTelegram, bot: Bot
) -> None:
    at_receipt: list[tuple[str, int]] = []
    fake.on_request = lambda method, _params: at_receipt.append((method, len(fake.sent)))
    me = await bot.get_me()
    first = await bot.send_message(CHAT, "hello", reply_markup=KEYBOARD)
    second = await bot.send_message(CHAT, "again", disable_notification=True)
    fake.add_chat(-1001234, "supergroup", username="traders")
    group = await bot.get_chat("@traders")
    typing = await bot.send_chat_action(CHAT, "typing")
    stranger = Bot("43:OTHER", session=bot.session)  # shares, and so closes with, the session
    with pytest.raises(TelegramUnauthorizedError) as refused:
        await stranger.get_me()

    assert at_receipt[:3] == [("getMe", 0), ("sendMessage", 0), ("sendMessage", 1)]
    assert (me.id, me.is_bot, me.username) == (42, True, "fake_bot")
    assert first.from_user is not None
    assert (first.text, first.chat.id, first.from_user.id) == ("hello", CHAT, 42)
    assert first.reply_markup is not None
    assert _dump(first.reply_markup) == _dump(KEYBOARD)
    assert second.message_id == first.message_id + 1
    assert (group.id, group.type, group.username) == (-1001234, "supergroup", "traders")
    assert typing is True
    assert fake.chat_actions == [(CHAT, "typing")]
    assert refused.value.message == "Unauthorized"
    assert [(m.text, m.method) for m in fake.sent_to(CHAT)] == [
        ("hello", "sendMessage"),
        ("again", "sendMessage"),
    ]
    assert fake.sent[0].reply_markup == KEYBOARD.model_dump(exclude_none=True)
    assert fake.sent[1].params["disable_notification"] == "true"
    assert [(c.method, c.status) for c in fake.calls_of("getMe")] == [
        ("getMe", 200),
        ("getMe", 401),
    ]


async def test_text_and_chats_are_checked_as_telegram_checks_them(
    fake: FakeTelegram, bot: Bot
) -> None:
    html = '<b>BTC</b> &lt; 70&#160;000 <a href="https://t.me/x">chart</a>'
    parsed = await bot.send_message(CHAT, html, parse_mode="HTML")
    longest = await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    refusals = [
        await _refusal(bot.send_message(CHAT, "Traceback <module> x", parse_mode="HTML")),
        await _refusal(bot.send_message(CHAT, "<b>BTC</i>", parse_mode="HTML")),
        await _refusal(bot.send_message(CHAT, "€" * 4097)),
        await _refusal(bot.send_message(CHAT, "<b> </b>", parse_mode="HTML")),
        await _refusal(bot.send_message(999, "hi")),
        await _refusal(bot.get_chat(999)),
    ]
    fake.block(CHAT)
    blocked = await _refusal(bot.send_message(CHAT, "hi"))
    fake.unblock(CHAT)
    await bot.send_message(CHAT, "welcome back")

    assert parsed.text == "BTC < 70\xa0000 chart"
    assert _dump(*parsed.entities or []) == [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "text_link", "offset": 13, "length": 5, "url": "https://t.me/x"},
    ]
    assert longest.text == "x" * 4096
    assert refusals == [
        'Bad Request: can\'t parse entities: Unsupported start tag "module" at byte offset 10',
        "Bad Request: can't parse entities: Unmatched end tag at byte offset 6,"
        ' expected "</b>", found "</i>"',
        "Bad Request: message is too long",
        "Bad Request: message text is empty",
        "Bad Request: chat not found",
        "Bad Request: chat not found",
    ]
    assert blocked == "Forbidden: bot was blocked by the user"
    assert [m.text for m in fake.sent] == [html, "<b>" + "x" * 4096 + "</b>", "welcome back"]
    assert [m.plain for m in fake.sent][-1] == "welcome back"


async def _refusal(send: Awaitable[object]) -> str:
    """The description of the 400 or 403 the send must get."""
    with pytest.raises((TelegramBadRequest, TelegramForbiddenError)) as refused:
        await send
    return refused.value.message


def test_html_errors_and_results_match_tdlibs_test_vectors() -> None:
    """From tdlib's td/test/message_entities.cpp; error offsets are UTF-8 byte offsets."""
    bad = {
        "🏟 🏟&lt;<abacaba": "Unclosed start tag at byte offset 13",
        "🏟 🏟&lt;<abac aba>": 'Unsupported start tag "abac" at byte offset 13',
        "🏟 🏟&lt;<i   =aba>": 'Empty attribute name in the tag "i" at byte offset 13',
        "🏟 🏟&lt;<i    aba>": 'Can\'t find end tag corresponding to start tag "i"',
        "🏟 🏟&lt;<i    aba  =  ": 'Unclosed start tag "i" at byte offset 13',
        "🏟 🏟&lt;<i    aba  =  190azAz-.,": "Unexpected end of name token at byte offset 27",
        '🏟 🏟&lt;<i    aba  =  "&lt;&gt;&quot;>': "Unclosed start tag at byte offset 13",
        "🏟 🏟&lt;</": "Unexpected end tag at byte offset 13",
        "🏟 🏟&lt;<b></b></": "Unexpected end tag at byte offset 20",
        "🏟 🏟&lt;<i>a</i   ": "Unclosed end tag at byte offset 17",
        "🏟 🏟&lt;<i>a</em   >": (
            'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"'
        ),
        "<span>x</span>": 'Tag "span" must have class "tg-spoiler" at byte offset 0',
        "a < b": 'Unsupported start tag "" at byte offset 2',
    }
    good = {
        "&ge;&lt;&gt;&amp;&quot;&#12345678;": ('&ge;<>&"&#12345678;', []),
        "🏟 🏟<i>🏟 &lt🏟</i>": ("🏟 🏟🏟 <🏟", [{"type": "italic", "offset": 5, "length": 6}]),
        '<pre><code class="language-py">x</code></pre><span class="tg-spoiler">s</span>': (
            "xs",
            [
                {"type": "pre", "offset": 0, "length": 1, "language": "py"},
                {"type": "spoiler", "offset": 1, "length": 1},
            ],
        ),
    }

    assert {html: _html_error(html) for html in bad} == bad
    assert {html: parse_html(html) for html in good} == good


def _html_error(html: str) -> str:
    try:
        parse_html(html)
    except HtmlError as e:
        return str(e)
    return "accepted"


def _dump(*models: TelegramObject) -> list[dict[str, Any]]:
    """aiogram models as dicts (they carry the bot, so ``==`` between them is False)."""
    return [m.model_dump(exclude_none=True) for m in models]


async def test_flood_windows_per_chat_per_group_and_overall_answer_429() -> None:
    now = [0.0]
    async with (
        FakeTelegram(
            group_rate=1,
            group_window_s=60.0,
            global_rate=4,
            global_window_s=60.0,
            clock=lambda: now[0],
        ) as fake,
        bot_on(fake) as bot,
    ):
        for chat_id in (1, 2, 3):
            fake.add_chat(chat_id)
        fake.add_chat(-100, "group")
        await bot.send_message(-100, "group")
        group = await _retry_after(bot.send_message(-100, "group again"))
        await bot.send_message(1, "one")
        same_chat = await _retry_after(bot.send_message(1, "one again"))
        now[0] = 1.0  # the private chat's 1 s window has passed
        await bot.send_message(1, "one, a second later")
        await bot.send_message(2, "two")  # the 4th message in the 60 s global window
        overall = await _retry_after(bot.send_message(3, "three"))
        fake.flood_retry_after = 7
        pinned = await _retry_after(bot.send_message(3, "three again"))

    assert (group, same_chat, overall, pinned) == (60, 1, 59, 7)
    assert fake.flood_429s == 4
    assert fake.flood_429s_by_chat == {-100: 1, 1: 1, 3: 2}
    assert [m.text for m in fake.sent] == ["group", "one", "one, a second later", "two"]
    assert fake.calls[-1].status == 429


async def _retry_after(send: Any) -> int:
    with pytest.raises(TelegramRetryAfter) as flood:
        await send
    description = f"Too Many Requests: retry after {flood.value.retry_after}"
    assert flood.value.message.endswith(description)
    return flood.value.retry_after


async def test_send_photo_uploads_multipart_and_limits_the_caption(
    fake: FakeTelegram, bot: Bot
) -> None:
    chart = await bot.send_photo(
        CHAT, BufferedInputFile(PNG, "chart.png"), caption="<b>BTC</b> 1h", parse_mode="HTML"
    )
    again = await bot.send_photo(OTHER, chart.photo[-1].file_id if chart.photo else "")

    with pytest.raises(TelegramBadRequest) as long_caption:
        await bot.send_photo(CHAT, BufferedInputFile(PNG, "chart.png"), caption="x" * 1025)

    assert chart.photo
    assert (chart.photo[-1].width, chart.photo[-1].height) == (640, 480)
    assert chart.caption == "BTC 1h"
    assert again.photo
    assert again.photo[-1].file_id == chart.photo[-1].file_id
    assert long_caption.value.message == "Bad Request: message caption is too long"
    assert fake.calls[0].params["photo"].startswith("attach://")
    assert [(m.method, m.photo) for m in fake.sent] == [
        ("sendPhoto", PNG),
        ("sendPhoto", chart.photo[-1].file_id),
    ]


async def test_a_sent_message_can_be_edited_deleted_and_its_button_answered_once(
    fake: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(CHAT, "BTC 1")
    unchanged = await _refusal(
        bot.edit_message_text("BTC 1", chat_id=CHAT, message_id=sent.message_id)
    )
    edited = await bot.edit_message_text(
        "BTC 2", chat_id=CHAT, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    same_keyboard = await _refusal(
        bot.edit_message_reply_markup(
            chat_id=CHAT, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    )
    missing = await _refusal(bot.edit_message_text("x", chat_id=CHAT, message_id=999))
    update = Update.model_validate(fake.inject_callback(CHAT, "refresh", sent.message_id))
    assert update.callback_query is not None
    query = update.callback_query
    long_answer = await _refusal(bot.answer_callback_query(query.id, text="x" * 201))
    answered = await bot.answer_callback_query(query.id, text="Updated")
    answered_twice = await _refusal(bot.answer_callback_query(query.id))
    deleted = await bot.delete_message(CHAT, sent.message_id)
    deleted_twice = await _refusal(bot.delete_message(CHAT, sent.message_id))

    assert isinstance(edited, Message)
    assert edited.text == "BTC 2"
    assert edited.reply_markup is not None
    assert _dump(edited.reply_markup) == _dump(KEYBOARD)
    assert (unchanged, same_keyboard) == (wire.NOT_MODIFIED, wire.NOT_MODIFIED)
    assert missing == "Bad Request: message to edit not found"
    assert isinstance(query.message, Message)
    assert query.message.text == "BTC 2"
    assert (query.data, query.from_user.id, query.from_user.language_code) == (
        "refresh",
        CHAT,
        "en",
    )
    assert long_answer == "Bad Request: MESSAGE_TOO_LONG"
    assert (answered, answered_twice) == (True, wire.QUERY_TOO_OLD)
    assert [a["text"] for a in fake.callback_answers] == ["Updated"]
    assert deleted is True
    assert deleted_twice == "Bad Request: message to delete not found"
    assert [(m.method, m.text) for m in fake.sent] == [
        ("sendMessage", "BTC 1"),
        ("editMessageText", "BTC 2"),
    ]


async def test_commands_are_kept_per_scope_and_language(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="price", description="Price")])
    await bot.set_my_commands(
        [BotCommand(command="price", description="Цена")], language_code="ru"
    )
    await bot.set_my_commands(
        [BotCommand(command="alarms", description="Alarms")], scope=BotCommandScopeAllGroupChats()
    )
    with pytest.raises(TelegramBadRequest) as capital:
        await bot.set_my_commands([BotCommand(command="Price", description="Price")])
    russian = await bot.get_my_commands(language_code="ru")
    await bot.delete_my_commands(language_code="ru")

    assert capital.value.message == "Bad Request: BOT_COMMAND_INVALID"
    assert _dump(*russian) == [{"command": "price", "description": "Цена"}]
    assert _dump(*await bot.get_my_commands()) == [{"command": "price", "description": "Price"}]
    assert await bot.get_my_commands(language_code="ru") == []
    assert fake.commands_for(scope={"type": "all_group_chats"}) == [
        {"command": "alarms", "description": "Alarms"}
    ]


async def test_a_polling_dispatcher_gets_an_injected_command_and_its_reply_is_recorded(
    fake: FakeTelegram,
) -> None:
    seen: list[Message] = []

    async def echo(message: Message) -> None:
        seen.append(message)
        await message.answer(f"echo: {message.text}")

    dp = Dispatcher()
    dp.message.register(echo)
    async with bot_on(fake) as bot:
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=1)
        )
        await fake.wait_for_call("getUpdates")
        fake.inject_message(CHAT, "/price BTC", language_code="de")
        [reply] = await fake.wait_for_sent()
        await dp.stop_polling()
        await polling

    assert (reply.chat_id, reply.text) == (CHAT, "echo: /price BTC")
    assert _dump(*seen[0].entities or []) == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert seen[0].from_user is not None
    assert seen[0].from_user.language_code == "de"


async def test_get_updates_holds_confirms_by_offset_and_conflicts_with_a_rival_or_webhook(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.inject_message(CHAT, "one")
    fake.inject_message(CHAT, "two")
    unconfirmed = await bot.get_updates()
    repeated = await bot.get_updates(limit=1)
    rest = await bot.get_updates(offset=unconfirmed[0].update_id + 1)
    waiting = asyncio.create_task(bot.get_updates(offset=rest[-1].update_id + 1, timeout=5))
    await fake.wait_for_call("getUpdates", count=4)
    fake.inject_message(CHAT, "three")
    woken = await waiting
    rival = asyncio.create_task(bot.get_updates(offset=woken[-1].update_id + 1, timeout=5))
    await fake.wait_for_call("getUpdates", count=5)
    ours = asyncio.create_task(bot.get_updates(offset=woken[-1].update_id + 1, timeout=5))
    await fake.wait_for_call("getUpdates", count=6)
    superseded = await _conflict(rival)
    await bot.set_webhook("https://example.com/hook", secret_token="s3cret")
    ended_by_webhook = await _conflict(ours)
    fake.inject_message(CHAT, "pending")
    info = await bot.get_webhook_info()
    while_webhook = await _conflict(bot.get_updates())
    await bot.delete_webhook(drop_pending_updates=True)

    assert [u.message.text for u in unconfirmed if u.message] == ["one", "two"]
    assert [u.update_id for u in repeated] == [unconfirmed[0].update_id]
    assert [u.message.text for u in rest if u.message] == ["two"]
    assert [u.message.text for u in woken if u.message] == ["three"]
    assert superseded == wire.POLL_CONFLICT
    assert (ended_by_webhook, while_webhook) == (wire.WEBHOOK_CONFLICT, wire.WEBHOOK_CONFLICT)
    assert (info.url, info.pending_update_count) == ("https://example.com/hook", 1)
    assert fake.updates == []
    assert fake.webhook.url == ""


async def _conflict(poll: Awaitable[object]) -> str:
    with pytest.raises(TelegramConflictError) as conflict:
        await poll
    return conflict.value.message


async def test_faults_reach_aiogram_as_it_raises_them_and_an_abandoned_delayed_send_is_lost(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.html_502("sendMessage")
    fake.drop_connection_next("sendMessage")
    fake.fail_next("sendMessage", chat_id=OTHER, status=429, retry_after=5)
    fake.fail_next("sendMessage", status=500)
    with pytest.raises(ClientDecodeError):
        await bot.send_message(CHAT, "proxy down")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(CHAT, "dropped")
    with pytest.raises(TelegramServerError):  # the 429 is scripted for OTHER only
        await bot.send_message(CHAT, "server error")
    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(OTHER, "flooded")
    await bot.send_message(OTHER, "through")
    fake.delay("sendMessage", 0.2)
    abandoned = asyncio.create_task(bot.send_message(CHAT, "abandoned"))
    await fake.wait_for_call("sendMessage", count=6)
    abandoned.cancel()  # the client goes away, as a killed bot process would
    await fake.wait_until_idle()
    fake.delay("sendMessage", 0.01)
    await bot.send_message(CHAT, "in time")

    assert flood.value.retry_after == 5
    assert abandoned.cancelled()
    assert [m.text for m in fake.sent] == ["through", "in time"]
    assert [c.status for c in fake.calls] == [502, 0, 500, 429, 200, 0, 200]
    assert fake.flood_429s_by_chat == {OTHER: 1}
    assert fake.last_answer_at is not None
    assert fake.last_answer_at >= fake.calls[-1].t


async def test_the_cli_prints_its_url_and_serves_the_api_and_the_control_endpoints() -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.fakes.fake_telegram", "--port", "0", "--token", "7:CLI"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(10):
            line = (await process.stdout.readline()).decode()
        url = line.removeprefix("fake-telegram listening on ").strip()
        async with aiohttp.ClientSession(url) as http:
            async with http.post("/_fake/inject_message", json={"chat_id": 5, "text": "/start"}):
                pass
            me = await _post(http, "/bot7:CLI/getme")  # method names are case-insensitive
            updates = await _post(http, "/bot7:CLI/getUpdates", {"timeout": "0"})
            await _post(http, "/bot7:CLI/sendMessage", {"chat_id": "5", "text": "hi"})
            async with http.get("/_fake/sent", params={"chat_id": "5", "after": "-1"}) as sent:
                delivered = await sent.json()
            async with http.post("/_fake/block", json={"chat_id": 5}):
                pass
            blocked = await _post(http, "/bot7:CLI/sendMessage", {"chat_id": "5", "text": "x"})
            malformed = await _post(http, "/botnot-a-token/getMe")
    finally:
        process.terminate()
        await process.communicate()

    assert line.startswith("fake-telegram listening on http://127.0.0.1:")
    assert me["result"]["id"] == 7
    assert updates["result"][0]["message"]["text"] == "/start"
    assert [(m["index"], m["text"]) for m in delivered] == [(0, "hi")]
    assert blocked == {"ok": False, "error_code": 403, "description": wire.BLOCKED}
    assert malformed == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert process.returncode == 0


async def _post(
    http: aiohttp.ClientSession, path: str, form: dict[str, str] | None = None
) -> dict[str, Any]:
    async with http.post(path, data=form or {}) as response:
        body: dict[str, Any] = await response.json()
        assert response.status == body.get("error_code", 200)
        return body
