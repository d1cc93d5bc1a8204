"""The Bot API one fake bot speaks: getMe, the update queue with long polling (getUpdates),
the webhook methods and the commands methods, plus the injection of user updates; chats and
messages come from ``fake_telegram_chats.FakeChats``.

No HTTP here: ``fake_telegram.FakeTelegram`` checks the token, routes each request to
``FakeBotApi.handler(method)`` and owns faults, delays and the request log. A handler returns
the ``result`` or raises ``ApiError``; rules and texts live in ``fake_telegram_wire``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tests.fakes import fake_telegram_wire as wire
from tests.fakes.fake_telegram_chats import FakeChats
from tests.fakes.fake_telegram_wire import ApiError, FakeChat, bad_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.fakes.fake_telegram_wire import ApiRequest

__all__ = ("CANONICAL", "FakeBotApi", "Webhook")

_METHODS: Final = (
    "getMe",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "sendPhoto",
    "editMessageText",
    "editMessageReplyMarkup",
    "editMessageMedia",
    "answerCallbackQuery",
    "deleteMessage",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "sendChatAction",
    "getChat",
    "getChatMember",
)
#: Telegram matches method names case-insensitively; aiogram sends camelCase.
CANONICAL: Final = {name.lower(): name for name in _METHODS}
_DEFAULT_EXCLUDED: Final = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_GROUP_USER_ID: Final = 1001  # who speaks in an injected group message unless told
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(slots=True)
class Webhook:
    """Webhook state; the fake stores it (and refuses getUpdates) but POSTs nothing."""

    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40


class FakeBotApi(FakeChats):
    """Bot API state and methods for one bot; ``FakeTelegram`` serves it over HTTP."""

    def __init__(
        self,
        token: str = wire.TEST_TOKEN,
        *,
        username: str = "fake_bot",
        flood: wire.FloodWindows | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not re.fullmatch(r"\d+:[\w-]+", token):
            raise ValueError(f"a bot token is digits ':' letters, got {token!r}")
        bot_id = int(token.split(":", maxsplit=1)[0])
        super().__init__(bot_id, username=username, flood=flood, clock=clock)
        self.token = token
        self.updates: list[dict[str, Any]] = []  # pending: not yet confirmed by an offset
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook = Webhook()
        self._next_update_id = 1
        self._next_query_id = 1
        self._allowed: frozenset[str] | None = None
        self._poll: asyncio.Future[str] | None = None
        self._stopped = asyncio.Event()
        self._handlers: dict[str, Callable[[ApiRequest], Awaitable[object]]] = {
            name.lower(): getattr(self, "_" + re.sub(r"([A-Z])", r"_\1", name).lower())
            for name in _METHODS
        }

    # --- test control ------------------------------------------------------------------
    def inject_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        language_code: str | None = None,
        first_name: str = "Test",
        chat_type: str | None = None,
    ) -> dict[str, Any]:
        """A user writes ``text`` in the chat; a leading ``/command`` gets its entity.

        An unknown chat is registered as ``chat_type`` (default: private for ids > 0, group
        for ids < 0); the sender is the chat's user in a private chat, else ``user_id``
        (default 1001).
        """
        if chat_id not in self.chats:
            self._known(chat_id, chat_type).language_code = language_code
        chat = self.chats[chat_id]
        sender = user_id if user_id is not None else (chat_id if chat_id > 0 else _GROUP_USER_ID)
        message: dict[str, Any] = {
            "message_id": chat.take_message_id(),
            "date": int(time.time()),
            "chat": chat.json(),
            "from": wire.user_json(
                sender,
                first_name=first_name,
                language_code=language_code or chat.language_code,
            ),
            "text": text,
        }
        if (entity := wire.command_entity(text)) is not None:
            message["entities"] = [entity]
        chat.messages[message["message_id"]] = message
        return self.inject_update({"message": message})

    def inject_callback(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        *,
        user_id: int | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A user presses a button with ``data`` under message ``message_id``."""
        chat = self._known(chat_id)
        message = chat.messages.get(message_id) or {  # unknown: an InaccessibleMessage
            "chat": chat.json(),
            "message_id": message_id,
            "date": 0,
        }
        query_id = str(self._next_query_id)
        self._next_query_id += 1
        self._open_queries.add(query_id)
        sender = user_id if user_id is not None else (chat_id if chat_id > 0 else _GROUP_USER_ID)
        query = {
            "id": query_id,
            "from": wire.user_json(sender, language_code=language_code or chat.language_code),
            "chat_instance": str(chat_id),
            "message": message,
            "data": data,
        }
        return self.inject_update({"callback_query": query})

    def inject_update(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Queue any update; ``update_id`` is assigned unless given. Returns the update."""
        update = dict(raw)
        if "update_id" in update:
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        else:
            update = {"update_id": self._next_update_id, **update}
            self._next_update_id += 1
        for payload in update.values():
            chat = payload.get("chat") if isinstance(payload, dict) else None
            if isinstance(chat, dict) and chat.get("id") not in self.chats:
                self.chats[chat["id"]] = FakeChat(chat["id"], chat.get("type", "private"))
        self.updates.append(update)
        self._wake_poll("update")
        self._changed()
        return update

    def commands_for(
        self, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[dict[str, str]]:
        """The commands stored by setMyCommands for (scope, language_code)."""
        return self.commands.get((_scope_key(scope or {"type": "default"}), language_code), [])

    def handler(self, method: str) -> Callable[[ApiRequest], Awaitable[object]] | None:
        return self._handlers.get(method.lower())

    def release_polls(self) -> None:
        """Answer a waiting getUpdates now (the server is closing)."""
        self._stopped.set()
        self._wake_poll("closed")

    # --- updates -----------------------------------------------------------------------
    async def _get_me(self, r: ApiRequest) -> object:
        return {
            **self._me(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, r: ApiRequest) -> object:
        if self.webhook.url:
            raise ApiError(409, wire.WEBHOOK_CONFLICT)
        offset = wire.int_param(r.params, "offset", 0)
        limit = min(max(wire.int_param(r.params, "limit", 100), 1), 100)
        allowed = wire.parse_json(r.params, "allowed_updates")
        if isinstance(allowed, list):  # absent: keep the previous choice, as Telegram does
            self._allowed = frozenset(allowed) or None
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        self._wake_poll("superseded")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wire.int_param(r.params, "timeout", 0), 0)
        while True:
            batch = [u for u in self.updates if self._wanted(u)][:limit]
            if batch or self._stopped.is_set() or loop.time() >= deadline:
                return batch
            poll = self._poll = loop.create_future()
            try:
                async with asyncio.timeout_at(deadline):
                    reason = await poll
            except TimeoutError:
                reason = "timeout"
            finally:
                if self._poll is poll:
                    self._poll = None
            if reason == "superseded":
                raise ApiError(409, wire.POLL_CONFLICT)
            if reason == "webhook":
                raise ApiError(409, wire.WEBHOOK_CONFLICT)

    async def _set_webhook(self, r: ApiRequest) -> object:
        url, secret = r.params.get("url", ""), r.params.get("secret_token")
        if url and not url.startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("bad webhook: secret token contains unallowed characters")
        if wire.bool_param(r.params, "drop_pending_updates"):
            self.updates.clear()
        allowed = wire.parse_json(r.params, "allowed_updates")
        connections = wire.int_param(r.params, "max_connections", 40)
        self.webhook = Webhook(url, secret, allowed, connections)
        if url:
            self._wake_poll("webhook")
        return True

    async def _delete_webhook(self, r: ApiRequest) -> object:
        if wire.bool_param(r.params, "drop_pending_updates"):
            self.updates.clear()
        self.webhook = Webhook()
        return True

    async def _get_webhook_info(self, r: ApiRequest) -> object:
        info: dict[str, Any] = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    # --- commands ----------------------------------------------------------------------
    async def _set_my_commands(self, r: ApiRequest) -> object:
        commands = wire.check_commands(r.params)
        key = self._commands_key(r.params)
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        self._changed()
        return True

    async def _get_my_commands(self, r: ApiRequest) -> object:
        return self.commands.get(self._commands_key(r.params), [])

    async def _delete_my_commands(self, r: ApiRequest) -> object:
        self.commands.pop(self._commands_key(r.params), None)
        return True

    # --- helpers -----------------------------------------------------------------------
    def _commands_key(self, params: dict[str, str]) -> tuple[str, str]:
        scope = wire.parse_json(params, "scope", {"type": "default"})
        if not isinstance(scope, dict):
            raise bad_request("can't parse BotCommandScope JSON object")  # [unverified]
        return _scope_key(scope), params.get("language_code", "")

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self._allowed is None:
            return kind not in _DEFAULT_EXCLUDED
        return kind in self._allowed

    def _wake_poll(self, reason: str) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.set_result(reason)


def _scope_key(scope: dict[str, Any]) -> str:
    """A scope as one canonical JSON string: the first half of a ``commands`` key."""
    return json.dumps(scope, sort_keys=True, separators=(",", ":"))
