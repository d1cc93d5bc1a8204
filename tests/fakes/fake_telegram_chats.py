"""Chats and what the bot does in them, for the fake Telegram server: registered chats and
their messages, sendMessage, sendPhoto (photos in ``fake_telegram_photos``), the edit methods
(editMessageMedia for photos), deleteMessage,
answerCallbackQuery, sendChatAction, getChat and getChatMember, the flood windows they pass
and the record of delivered messages (``sent``).

``fake_telegram_api.FakeBotApi`` adds updates, the webhook and commands on top; rules and
error texts live in ``fake_telegram_wire``. A handler returns the ``result`` or raises
``ApiError``.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Final

from tests.fakes import fake_telegram_wire as wire
from tests.fakes.fake_telegram_photos import FakePhotos
from tests.fakes.fake_telegram_wire import ApiError, FakeChat, SentMessage, bad_request

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fakes.fake_telegram_wire import ApiRequest

__all__ = ("FakeChats",)

_CHAT_ACTIONS: Final = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)


class FakeChats:
    """The chats one bot knows and the messages it sends, edits and deletes in them."""

    def __init__(
        self,
        bot_id: int,
        *,
        username: str,
        flood: wire.FloodWindows | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_id, self.username = bot_id, username
        self.flood = flood or wire.FloodWindows(chat=(1, 1.0), group=(20, 60.0), overall=(30, 1.0))
        self.flood_retry_after: int | None = None
        self.chats: dict[int, FakeChat] = {}
        self.sent: list[SentMessage] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.callback_answers: list[dict[str, str]] = []
        self.deleted: list[tuple[int, int]] = []
        self._clock = clock
        self._open_queries: set[str] = set()
        self.photos = FakePhotos()

    # --- test control ------------------------------------------------------------------
    def add_chat(
        self,
        chat_id: int,
        type: str = "private",
        language_code: str | None = None,
        username: str | None = None,
        *,
        title: str | None = None,
        first_name: str = "Test",
    ) -> FakeChat:
        """Register a chat (private ids > 0, groups < 0); returns the existing one if known."""
        if (type == "private") != (chat_id > 0):
            raise ValueError(f"a {type} chat id must be {'>' if type == 'private' else '<'} 0")
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = FakeChat(chat_id, type, language_code, username, title, first_name)
            self.chats[chat_id] = chat
        return chat

    def block(self, chat_id: int) -> None:
        """The user blocked the bot (or a group removed it): sends to the chat get 403."""
        self._known(chat_id).blocked = True

    def unblock(self, chat_id: int) -> None:
        self._known(chat_id).blocked = False

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def _changed(self) -> None:
        """Called after anything a test may wait for; the server wakes its waiters."""

    # --- messages ----------------------------------------------------------------------
    async def _send_message(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=True)
        text = wire.format_text(r.params, "text", limit=wire.TEXT_LIMIT)
        markup = wire.reply_markup(r.params)
        message = self._new_message(chat, r.params)
        self._admit(chat.id)
        message["text"] = text.plain
        if text.entities:
            message["entities"] = text.entities
        return self._deliver(chat, message, r, text, markup)

    async def _send_photo(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=True)
        caption = wire.format_text(r.params, "caption", limit=wire.CAPTION_LIMIT)
        markup = wire.reply_markup(r.params)
        photo, sizes = self.photos.take(r.params.get("photo", ""), r.files)
        message = self._new_message(chat, r.params)
        self._admit(chat.id)
        message["photo"] = sizes
        if caption.plain:
            message["caption"] = caption.plain
        if caption.entities:
            message["caption_entities"] = caption.entities
        return self._deliver(chat, message, r, caption, markup, photo)

    async def _edit_message_text(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=True)
        stored = self._own_message(chat, r.params, wire.EDIT_NOT_FOUND)
        if "text" not in stored:
            raise bad_request("there is no text in the message to edit")
        text = wire.format_text(r.params, "text", limit=wire.TEXT_LIMIT)
        markup = _inline(wire.reply_markup(r.params))
        before = (stored["text"], stored.get("entities"), stored.get("reply_markup"))
        if before == (text.plain, text.entities, markup):
            raise ApiError(400, wire.NOT_MODIFIED)
        stored["text"] = text.plain
        _set(stored, "entities", text.entities)
        return self._edited(chat, stored, r, text, markup)

    async def _edit_message_media(self, r: ApiRequest) -> object:
        """A photo message gets another photo (``media``: an InputMediaPhoto whose ``media``
        is ``attach://<part>`` or a file_id) with the caption the media carries."""
        chat = self._chat(r.params, sending=True)
        stored = self._own_message(chat, r.params, wire.EDIT_NOT_FOUND)
        media = wire.parse_json(r.params, "media")
        if not isinstance(media, dict) or media.get("type") != "photo":
            raise bad_request("can't parse InputMedia JSON object")  # [unverified]; photos only
        if "photo" not in stored:
            raise bad_request("there is no media in the message to edit")  # [unverified]
        fields = {
            k: v if isinstance(v, str) else json.dumps(v)
            for k, v in media.items()
            if k in ("caption", "parse_mode", "caption_entities")
        }
        caption = wire.format_text(fields, "caption", limit=wire.CAPTION_LIMIT)
        markup = _inline(wire.reply_markup(r.params))
        photo, sizes = self.photos.take(str(media.get("media", "")), r.files)
        before = (stored["photo"][-1]["file_id"], stored.get("caption"))
        after = (sizes[-1]["file_id"], caption.plain or None)
        unchanged = stored.get("caption_entities") == caption.entities
        if before == after and unchanged and stored.get("reply_markup") == markup:
            raise ApiError(400, wire.NOT_MODIFIED)
        stored["photo"] = sizes
        _set(stored, "caption", caption.plain)
        _set(stored, "caption_entities", caption.entities)
        return self._edited(chat, stored, r, caption, markup, photo)

    async def _edit_message_reply_markup(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=True)
        stored = self._own_message(chat, r.params, wire.EDIT_NOT_FOUND)
        markup = _inline(wire.reply_markup(r.params))
        if stored.get("reply_markup") == markup:
            raise ApiError(400, wire.NOT_MODIFIED)
        shown = stored.get("text", stored.get("caption", ""))
        text = wire.Formatted(shown, shown, None, None)
        return self._edited(chat, stored, r, text, markup)

    async def _delete_message(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=False)
        message_id = wire.int_param(r.params, "message_id", 0)
        if chat.messages.pop(message_id, None) is None:
            raise ApiError(400, wire.DELETE_NOT_FOUND)
        self.deleted.append((chat.id, message_id))
        self._changed()
        return True

    async def _answer_callback_query(self, r: ApiRequest) -> object:
        if len(r.params.get("text", "")) > wire.CALLBACK_TEXT_LIMIT:
            raise bad_request("MESSAGE_TOO_LONG")
        query_id = r.params.get("callback_query_id", "")
        if query_id not in self._open_queries:
            raise ApiError(400, wire.QUERY_TOO_OLD)
        self._open_queries.discard(query_id)
        self.callback_answers.append(dict(r.params))
        self._changed()
        return True

    async def _send_chat_action(self, r: ApiRequest) -> object:
        chat = self._chat(r.params, sending=True)
        action = r.params.get("action", "")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append((chat.id, action))
        return True

    async def _get_chat(self, r: ApiRequest) -> object:
        return self._chat(r.params, sending=False).full_info()

    async def _get_chat_member(self, r: ApiRequest) -> object:
        """A group's administrators (``FakeChat.admins``) answer as its owner, anyone else
        as a plain member; in a private chat its user owns it."""
        chat = self._chat(r.params, sending=False)
        user_id = wire.int_param(r.params, "user_id", 0)
        user = wire.user_json(user_id)
        if user_id in chat.admins or (chat.type == "private" and user_id == chat.id):
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    # --- helpers -----------------------------------------------------------------------
    def _known(self, chat_id: int, chat_type: str | None = None) -> FakeChat:
        """The chat, registered first (private or group by the id's sign) if unknown."""
        known = self.chats.get(chat_id)
        if known is not None:
            return known
        return self.add_chat(chat_id, chat_type or ("private" if chat_id > 0 else "group"))

    def _me(self) -> dict[str, Any]:
        return wire.user_json(
            self.bot_id, first_name="Fake Bot", username=self.username, is_bot=True
        )

    def _chat(self, params: dict[str, str], *, sending: bool) -> FakeChat:
        raw = params.get("chat_id", "")
        if not raw:
            raise bad_request("chat_id is empty")
        if raw.startswith("@"):
            chat = next((c for c in self.chats.values() if c.username == raw[1:]), None)
        else:
            chat = self.chats.get(int(raw)) if re.fullmatch(r"-?\d+", raw) else None
        if chat is None:
            raise ApiError(400, wire.CHAT_NOT_FOUND)
        if sending and chat.blocked:
            kicked = f"Forbidden: bot was kicked from the {chat.type} chat"
            raise ApiError(403, wire.BLOCKED if chat.type == "private" else kicked)
        return chat

    def _own_message(
        self, chat: FakeChat, params: dict[str, str], not_found: str
    ) -> dict[str, Any]:
        stored = chat.messages.get(wire.int_param(params, "message_id", 0))
        if stored is None:
            raise ApiError(400, not_found)
        if stored.get("from", {}).get("id") != self.bot_id:
            raise bad_request("message can't be edited")
        return stored

    def _new_message(self, chat: FakeChat, params: dict[str, str]) -> dict[str, Any]:
        """The bot's message, without its id yet; checks what it replies to."""
        message: dict[str, Any] = {
            "date": int(time.time()),
            "chat": chat.json(),
            "from": self._me(),
        }
        reply = wire.parse_json(params, "reply_parameters") or {}
        if not isinstance(reply, dict):
            raise bad_request("can't parse reply parameters JSON object")  # [unverified]
        reply_to = reply.get("message_id") or wire.int_param(params, "reply_to_message_id", 0)
        if reply_to:
            original = chat.messages.get(int(reply_to))
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k != "reply_to_message"
                }
            elif not reply.get("allow_sending_without_reply"):
                raise bad_request("message to be replied not found")
        return message

    def _admit(self, chat_id: int) -> None:
        now = self._clock()
        retry_after = self.flood.retry_after(chat_id, now)
        if retry_after is not None:
            n = self.flood_retry_after or retry_after
            raise ApiError(429, f"Too Many Requests: retry after {n}", retry_after=n)
        self.flood.accept(chat_id, now)

    def _deliver(
        self,
        chat: FakeChat,
        message: dict[str, Any],
        r: ApiRequest,
        text: wire.Formatted,
        markup: dict[str, Any] | None,
        photo: bytes | str | None = None,
    ) -> dict[str, Any]:
        message = {"message_id": chat.take_message_id(), **message}
        _set(message, "reply_markup", _inline(markup))
        chat.messages[message["message_id"]] = message
        self._record(chat, message["message_id"], r, text, markup, photo)
        return dict(message)

    def _edited(
        self,
        chat: FakeChat,
        stored: dict[str, Any],
        r: ApiRequest,
        text: wire.Formatted,
        markup: dict[str, Any] | None,
        photo: bytes | str | None = None,
    ) -> dict[str, Any]:
        _set(stored, "reply_markup", markup)
        stored["edit_date"] = int(time.time())
        self._record(chat, stored["message_id"], r, text, markup, photo)
        return dict(stored)

    def _record(
        self,
        chat: FakeChat,
        message_id: int,
        r: ApiRequest,
        text: wire.Formatted,
        markup: dict[str, Any] | None,
        photo: bytes | str | None,
    ) -> None:
        self.sent.append(
            SentMessage(
                chat_id=chat.id,
                message_id=message_id,
                text=text.source,
                parse_mode=r.params.get("parse_mode") or None,
                entities=text.sent_entities,
                reply_markup=markup,
                method=r.method,
                t=self._clock(),
                plain=text.plain,
                photo=photo,
                params=dict(r.params),
            )
        )
        self._changed()


def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """Telegram echoes (and keeps) inline keyboards only."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def _set(target: dict[str, Any], key: str, value: object) -> None:
    if value:
        target[key] = value
    else:
        target.pop(key, None)
