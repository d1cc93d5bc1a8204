"""Bot API wire rules for the fake Telegram server: Telegram's error texts, the answer
envelope, the input checks (text and caption limits after HTML parsing, commands, keyboards,
entities), the records and JSON shapes aiogram 3.31 validates, and sliding flood windows.
Pure: no I/O, no clock, no aiohttp. HTML parsing lives in ``fake_telegram_html``.

Error texts follow TELEGRAM.md §2; the few that no source pins down are marked
``[unverified]``.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from tests.fakes.fake_telegram_html import HtmlError, parse_html, utf16_len

__all__ = (
    "BLOCKED",
    "CALLBACK_TEXT_LIMIT",
    "CAPTION_LIMIT",
    "CAPTION_TOO_LONG",
    "CHAT_NOT_FOUND",
    "DELETE_NOT_FOUND",
    "EDIT_NOT_FOUND",
    "NOT_FOUND",
    "NOT_MODIFIED",
    "POLL_CONFLICT",
    "QUERY_TOO_OLD",
    "TEST_TOKEN",
    "TEXT_EMPTY",
    "TEXT_LIMIT",
    "TEXT_TOO_LONG",
    "UNAUTHORIZED",
    "WEBHOOK_CONFLICT",
    "ApiError",
    "ApiRequest",
    "Call",
    "FakeChat",
    "FloodWindows",
    "Formatted",
    "SentMessage",
    "bad_request",
    "bool_param",
    "check_commands",
    "command_entity",
    "envelope",
    "format_text",
    "int_param",
    "parse_json",
    "reply_markup",
    "user_json",
    "utf16_len",
)

#: The token of TELEGRAM.md §6's examples; the fake knows it unless told another.
TEST_TOKEN: Final = "42:TEST"
UNAUTHORIZED: Final = "Unauthorized"
NOT_FOUND: Final = "Not Found"
CHAT_NOT_FOUND: Final = "Bad Request: chat not found"
BLOCKED: Final = "Forbidden: bot was blocked by the user"
TEXT_EMPTY: Final = "Bad Request: message text is empty"
TEXT_TOO_LONG: Final = "Bad Request: message is too long"
CAPTION_TOO_LONG: Final = "Bad Request: message caption is too long"
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND: Final = "Bad Request: message to edit not found"
DELETE_NOT_FOUND: Final = "Bad Request: message to delete not found"
QUERY_TOO_OLD: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
POLL_CONFLICT: Final = (
    "Conflict: terminated by other getUpdates request;"
    " make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active;"
    " use deleteWebhook to delete the webhook first"
)
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
CALLBACK_TEXT_LIMIT: Final = 200
_BUTTON_DATA_LIMIT: Final = 64  # bytes
_COMMANDS_LIMIT: Final = 100
_DESCRIPTION_LIMIT: Final = 256
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_PARSE_MODES: Final = frozenset({"HTML", "MarkdownV2", "Markdown"})


class ApiError(Exception):
    """A Bot API failure: answered as ``{"ok":false,...}`` with HTTP status = error_code."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            answer["parameters"] = {"retry_after": self.retry_after}
        return answer


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def envelope(result: object) -> dict[str, Any]:
    return {"ok": True, "result": result}


# --- requests and records -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One Bot API call as a handler sees it: canonical method name, strings, uploads."""

    method: str
    params: dict[str, str]
    files: dict[str, bytes]


@dataclass(slots=True)
class Call:
    """One request as the fake saw it. ``status`` is None while it is being answered and 0
    when it never was (dropped connection, client gone)."""

    method: str
    params: dict[str, str]
    t: float
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMessage:
    """A message the fake delivered (sendMessage, sendPhoto) or changed (edit* methods).

    ``text`` is the text or caption as sent (HTML source under ``parse_mode="HTML"``);
    ``plain`` is what the user sees; ``entities`` and ``reply_markup`` are the parsed JSON
    the bot sent; ``photo`` is the uploaded bytes or the reused file_id.
    """

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None
    entities: list[dict[str, Any]] | None
    reply_markup: dict[str, Any] | None
    method: str
    t: float
    plain: str
    photo: bytes | str | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class FakeChat:
    """A chat the fake knows: registered by a test or seen in an injected update."""

    id: int
    type: str = "private"
    language_code: str | None = None
    username: str | None = None
    title: str | None = None
    first_name: str = "Test"
    blocked: bool = False
    last_message_id: int = 0
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    admins: set[int] = field(default_factory=set)  # getChatMember: "creator"; others "member"

    def take_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def json(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.first_name
        else:
            chat["title"] = self.title or f"Test {self.type} {self.id}"
        if self.username:
            chat["username"] = self.username
        return chat

    def full_info(self) -> dict[str, Any]:
        """ChatFullInfo with the fields aiogram 3.31 requires (Bot API 10.3)."""
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        return {
            **self.json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }


def user_json(
    user_id: int,
    *,
    first_name: str = "Test",
    language_code: str | None = None,
    username: str | None = None,
    is_bot: bool = False,
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def command_entity(text: str) -> dict[str, Any] | None:
    """The ``bot_command`` entity Telegram puts on a message starting with a command."""
    found = _BOT_COMMAND.match(text)
    if found is None:
        return None
    return {"type": "bot_command", "offset": 0, "length": utf16_len(found.group())}


# --- input checks -------------------------------------------------------------------------
def parse_json(params: dict[str, str], name: str, default: Any = None) -> Any:
    """A JSON-string parameter; 400 naming it when it does not parse."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request(f"can't parse {name} JSON object") from None  # [unverified]


def reply_markup(params: dict[str, str]) -> dict[str, Any] | None:
    """The keyboard sent; callback_data over 64 bytes is refused as Telegram does."""
    markup = parse_json(params, "reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= _BUTTON_DATA_LIMIT:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def check_commands(params: dict[str, str]) -> list[dict[str, str]]:
    commands = parse_json(params, "commands", [])
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")  # [unverified]
    if len(commands) > _COMMANDS_LIMIT:
        raise bad_request("too many commands specified")  # [unverified]
    checked: list[dict[str, str]] = []
    for item in commands:
        command = str(item.get("command", "")) if isinstance(item, dict) else ""
        description = str(item.get("description", "")) if isinstance(item, dict) else ""
        if not _COMMAND.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not description.strip():
            raise bad_request("command description must be non-empty")
        if len(description) > _DESCRIPTION_LIMIT:
            raise bad_request("command description is too long")  # [unverified]
        checked.append({"command": command, "description": description})
    return checked


def int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"invalid {name} specified") from None  # [unverified]


def bool_param(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").lower() in ("true", "1")


@dataclass(frozen=True, slots=True)
class Formatted:
    """Text as the user sees it, with its entities; ``source`` is what the bot sent."""

    source: str
    plain: str
    entities: list[dict[str, Any]] | None
    sent_entities: list[dict[str, Any]] | None


def format_text(params: dict[str, str], field_name: str, *, limit: int) -> Formatted:
    """Parse ``text`` or ``caption`` the way Telegram does and apply its length limit.

    Lengths count UTF-16 units after parsing (TELEGRAM.md §3: split at ≤4096 units).
    """
    source = params.get(field_name, "")
    entities_name = "entities" if field_name == "text" else f"{field_name}_entities"
    sent_entities = parse_json(params, entities_name)
    parse_mode = params.get("parse_mode") or None
    if sent_entities is not None:
        if not isinstance(sent_entities, list):
            raise bad_request("can't parse entities JSON object")  # [unverified]
        plain, entities = source, sent_entities or None
    elif parse_mode == "HTML":
        try:
            plain, found = parse_html(source)
        except HtmlError as e:
            raise bad_request(f"can't parse entities: {e}") from None
        entities = found or None
    elif parse_mode is None or parse_mode in _PARSE_MODES:  # Markdown is not parsed here
        plain, entities = source, None
    else:
        raise bad_request("unsupported parse_mode")
    if field_name == "text" and not plain.strip():
        raise ApiError(400, TEXT_EMPTY)
    if utf16_len(plain) > limit:
        raise ApiError(400, TEXT_TOO_LONG if field_name == "text" else CAPTION_TOO_LONG)
    return Formatted(source, plain, entities, sent_entities)


# --- flood windows ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class _Limit:
    rate: int
    window_s: float


class FloodWindows:
    """Sliding windows over accepted messages: per private chat, per group (``chat_id < 0``)
    and overall. ``wait_s`` says how long until a message to ``chat_id`` would be accepted."""

    def __init__(
        self, *, chat: tuple[int, float], group: tuple[int, float], overall: tuple[int, float]
    ) -> None:
        self.chat = _Limit(rate=chat[0], window_s=chat[1])
        self.group = _Limit(rate=group[0], window_s=group[1])
        self.overall = _Limit(rate=overall[0], window_s=overall[1])
        self._per_chat: dict[int, deque[float]] = {}
        self._all: deque[float] = deque()

    def retry_after(self, chat_id: int, now: float) -> int | None:
        """Telegram's ``retry_after`` (whole seconds, at least 1), or None when free."""
        per_chat = self._per_chat.setdefault(chat_id, deque())
        limit = self.group if chat_id < 0 else self.chat
        wait = max(_wait_s(per_chat, limit, now), _wait_s(self._all, self.overall, now))
        return None if wait <= 0 else max(1, math.ceil(wait))

    def accept(self, chat_id: int, now: float) -> None:
        self._per_chat.setdefault(chat_id, deque()).append(now)
        self._all.append(now)


def _wait_s(stamps: deque[float], limit: _Limit, now: float) -> float:
    while stamps and stamps[0] <= now - limit.window_s:
        stamps.popleft()
    if len(stamps) < limit.rate:
        return 0.0
    return stamps[len(stamps) - limit.rate] + limit.window_s - now
