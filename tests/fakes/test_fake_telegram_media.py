"""The fake Bot API's photos, driven by a real aiogram Bot: an upload is answered with
Telegram's array of sizes (thumbnails first, each with its own ``file_id``), a ``file_id``
sends the photo again without a file, and ``editMessageMedia`` swaps a photo message's picture
and caption (upload or ``file_id``), refusing an edit that changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)

from tests.fakes import fake_telegram_wire as wire
from tests.fakes.fake_telegram import FakeTelegram

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CHAT: Final = 500
KEYBOARD: Final = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="4h", callback_data="chart:4h")]]
)


def png(width: int, height: int) -> bytes:
    """A PNG header is all the fake reads for a photo's size."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + ihdr + b"\x08\x02"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(chat_rate=1000, global_rate=1000) as server:
        server.add_chat(CHAT)
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.url)))
    try:
        yield bot
    finally:
        await bot.session.close()


async def test_an_upload_is_answered_with_thumbnails_then_the_photo_as_sent(
    fake: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_photo(CHAT, BufferedInputFile(png(1200, 800), "chart.png"))
    assert sent.photo is not None
    assert [(p.width, p.height) for p in sent.photo] == [(90, 60), (320, 213), (1200, 800)]
    assert len({p.file_id for p in sent.photo}) == 3
    thumb = await bot.send_photo(CHAT, sent.photo[0].file_id)  # a thumbnail's file_id
    assert thumb.photo is not None
    assert [(p.width, p.height) for p in thumb.photo] == [(90, 60)]
    assert fake.photos.uploads == 1


async def test_edit_message_media_swaps_the_picture_and_caption_by_upload_or_file_id(
    fake: FakeTelegram, bot: Bot
) -> None:
    first = await bot.send_photo(CHAT, BufferedInputFile(png(640, 480), "a.png"), caption="4h")
    assert first.photo is not None
    old_id = first.photo[-1].file_id

    edited = await bot.edit_message_media(
        InputMediaPhoto(
            media=BufferedInputFile(png(1200, 800), "b.png"),
            caption="<b>1h</b>",
            parse_mode="HTML",
        ),
        chat_id=CHAT,
        message_id=first.message_id,
        reply_markup=KEYBOARD,
    )
    assert isinstance(edited, Message)
    assert edited.message_id == first.message_id
    assert edited.caption == "1h"
    assert edited.photo is not None
    assert (edited.photo[-1].width, edited.photo[-1].height) == (1200, 800)
    assert edited.reply_markup is not None
    assert [[b.callback_data for b in row] for row in edited.reply_markup.inline_keyboard] == [
        ["chart:4h"]
    ]

    back = await bot.edit_message_media(
        InputMediaPhoto(media=old_id, caption="4h"), chat_id=CHAT, message_id=first.message_id
    )
    assert isinstance(back, Message)
    assert back.photo is not None
    assert back.photo[-1].file_id == old_id
    assert [(m.method, m.message_id, m.plain) for m in fake.sent] == [
        ("sendPhoto", first.message_id, "4h"),
        ("editMessageMedia", first.message_id, "1h"),
        ("editMessageMedia", first.message_id, "4h"),
    ]
    assert isinstance(fake.sent[1].photo, bytes)
    assert fake.sent[2].photo == old_id
    assert fake.photos.uploads == 2
    assert fake.calls_of("editMessageMedia")[0].params["media"].find("attach://") > 0


async def test_edit_message_media_refuses_no_change_a_text_message_and_an_unknown_file(
    bot: Bot,
) -> None:
    photo = await bot.send_photo(CHAT, BufferedInputFile(png(640, 480), "a.png"), caption="x")
    text = await bot.send_message(CHAT, "plain text")
    assert photo.photo is not None
    same = InputMediaPhoto(media=photo.photo[-1].file_id, caption="x")

    with pytest.raises(TelegramBadRequest) as unchanged:
        await bot.edit_message_media(same, chat_id=CHAT, message_id=photo.message_id)
    with pytest.raises(TelegramBadRequest) as not_media:
        await bot.edit_message_media(same, chat_id=CHAT, message_id=text.message_id)
    with pytest.raises(TelegramBadRequest) as unknown:
        await bot.edit_message_media(
            InputMediaPhoto(media="no-such-file"), chat_id=CHAT, message_id=photo.message_id
        )
    assert unchanged.value.message == wire.NOT_MODIFIED
    assert not_media.value.message == "Bad Request: there is no media in the message to edit"
    assert unknown.value.message == "Bad Request: wrong file identifier/HTTP URL specified"
