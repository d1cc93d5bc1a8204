"""A fake Telegram Bot API server on 127.0.0.1 that a real aiogram ``Bot`` talks to::

    async with FakeTelegram() as fake:
        api = TelegramAPIServer.from_base(fake.url)
        bot = Bot(fake.token, session=AiohttpSession(api=api))

Wire (TELEGRAM.md §6): ``POST /bot{token}/{method}`` with a form or multipart body; answers
are the JSON envelope with HTTP status = ``error_code``. It speaks getMe, getUpdates (long
polling), setWebhook, deleteWebhook, getWebhookInfo, sendMessage, sendPhoto,
editMessageText, editMessageReplyMarkup, editMessageMedia, answerCallbackQuery,
deleteMessage, setMyCommands, getMyCommands, deleteMyCommands, sendChatAction and getChat
(names case-insensitive). Any other method is 404 "Not Found", a malformed token 404,
another well-formed token 401 "Unauthorized". The methods and their state live in
``fake_telegram_api`` (updates, webhook, commands) and ``fake_telegram_chats`` (chats,
messages, flood windows); photos in ``fake_telegram_photos``, rules and error texts in
``fake_telegram_wire``, HTML parsing in ``fake_telegram_html``.

Test control, on the instance:

- Chats: ``add_chat(chat_id, type, language_code, username)``, ``block``, ``unblock``,
  ``chats``. A chat also exists once an injected update came from it; sends to others get
  400 "chat not found".
- Users: ``inject_message(chat_id, text, *, user_id, language_code, first_name, chat_type)``
  (a leading ``/command`` gets its ``bot_command`` entity; in a private chat the sender is
  the chat's user, elsewhere ``user_id``, default 1001), ``inject_callback(chat_id, data,
  message_id, *, user_id, language_code)``, ``inject_update(raw)``; each returns the queued
  update. ``updates`` holds the ones no getUpdates offset has confirmed yet.
- Record: ``sent`` (a ``SentMessage`` per delivered or edited message), ``sent_to(chat_id)``,
  ``calls`` (a ``Call`` per request: method, params, status; None while open, 0 if never
  answered), ``calls_of(method)``, ``commands`` keyed by (scope JSON, language_code) and
  ``commands_for(language_code, scope)``, ``webhook``, ``chat_actions``,
  ``callback_answers``, ``deleted``, ``flood_429s`` and ``flood_429s_by_chat`` (every 429
  answered), ``in_flight``, ``last_answer_at`` (clock time of the last answer written),
  ``photos.uploads`` (photo files uploaded; a photo sent by file_id uploads none).
- Waiting, on events (TimeoutError after ``timeout`` s): ``await wait_for_sent(predicate,
  count=, timeout=)`` returns the first ``count`` matching messages (those already sent
  count), ``await wait_for_call(method, count=, timeout=)`` the ``count``-th call on
  receipt, ``await wait_until_idle(timeout=)`` once only waiting getUpdates polls are open.
- Flood windows (sliding, over accepted sendMessage and sendPhoto; edits are free):
  ``chat_rate`` per ``chat_window_s`` for a private chat, ``group_rate`` per
  ``group_window_s`` for a group (``chat_id < 0``), ``global_rate`` per ``global_window_s``
  overall; ``flood_retry_after`` pins the 429's ``retry_after``; ``clock`` drives them.
- getUpdates holds until an update or ``timeout``; a second getUpdates ends the waiting one
  with 409 "terminated by other getUpdates request" (as Telegram does), and so does
  setWebhook with the webhook 409.
- Faults, consumed first in first out per method (and chat): ``fail_next(method, *, chat_id,
  status, description, retry_after, times)``, ``html_502(method)`` (a proxy's HTML page),
  ``drop_connection_next(method)``; ``delay(method, seconds)`` slows every call, and a
  delayed call whose client went away meanwhile is never processed (not delivered, not
  counted). ``on_request(method, params)`` runs synchronously on receipt of every request.
- Over HTTP, for another process: ``POST /_fake/inject_message`` ``{chat_id, text, user_id?,
  language_code?}`` returns the update; ``GET /_fake/sent?chat_id=&after=`` the messages whose
  index is above ``after``; ``POST /_fake/block`` and ``/_fake/unblock`` ``{chat_id}``.

Not modelled: webhook delivery, MarkdownV2 parsing (only HTML is parsed), files other than
photos, inline mode. Run by hand: ``python -m tests.fakes.fake_telegram --port 0``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson
from aiohttp import web

from tests.fakes import fake_telegram_wire as wire
from tests.fakes.fake_telegram_api import CANONICAL, FakeBotApi
from tests.fakes.fake_telegram_wire import ApiError, ApiRequest, Call, SentMessage
from tests.fakes.local_server import LocalServer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("Call", "FakeTelegram", "SentMessage", "main")

_T = TypeVar("_T")
_TOKEN = re.compile(r"\d+:[\w-]+")
_MAX_BODY: Final = 64 * 1024 * 1024  # above Telegram's 50 MB upload limit
_HTML_502: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_DEFAULT_TEXT: Final = {403: wire.BLOCKED, 409: wire.POLL_CONFLICT}


@dataclass(slots=True)
class _Fault:
    kind: str  # fail | html_502 | drop
    method: str  # lower case
    chat_id: int | None
    left: int
    status: int = 500
    description: str | None = None
    retry_after: int | None = None

    def error(self) -> ApiError:
        retry_after = self.retry_after
        if self.status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = 1 if retry_after is None else retry_after
            default = f"Too Many Requests: retry after {retry_after}"
        else:
            default = _DEFAULT_TEXT.get(self.status) or HTTPStatus(self.status).phrase
        return ApiError(self.status, self.description or default, retry_after=retry_after)


class FakeTelegram(FakeBotApi, LocalServer):
    """The fake Bot API; ``async with FakeTelegram() as fake:`` serves at ``fake.url``."""

    def __init__(
        self,
        token: str = wire.TEST_TOKEN,
        *,
        username: str = "fake_bot",
        chat_rate: int = 1,
        chat_window_s: float = 1.0,
        group_rate: int = 20,
        group_window_s: float = 60.0,
        global_rate: int = 30,
        global_window_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        flood = wire.FloodWindows(
            chat=(chat_rate, chat_window_s),
            group=(group_rate, group_window_s),
            overall=(global_rate, global_window_s),
        )
        super().__init__(token, username=username, flood=flood, clock=clock)
        self.url = ""
        self.calls: list[Call] = []
        self.on_request: Callable[[str, dict[str, str]], None] | None = None
        self.in_flight = 0
        self.last_answer_at: float | None = None
        self.flood_429s = 0
        self.flood_429s_by_chat: Counter[int] = Counter()
        self._polls_open = 0
        self._faults: list[_Fault] = []
        self._delays: dict[str, float] = {}
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post("/_fake/inject_message", self._control_inject)
        app.router.add_get("/_fake/sent", self._control_sent)
        app.router.add_post("/_fake/block", self._control_block)
        app.router.add_post("/_fake/unblock", self._control_block)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", _not_found)
        self._stopped.clear()
        self.url = await self._serve(app, host, port, "http")

    async def close(self) -> None:
        """Stop serving; a waiting getUpdates or delayed call is answered or dropped now."""
        self.release_polls()
        await self._stop_serving()

    # --- faults ------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``chat_id``) fail with this error.

        Without ``description`` the text is Telegram's for the status (429: "Too Many
        Requests: retry after N", with ``retry_after`` 1 unless given).
        """
        fault = _Fault("fail", method.lower(), chat_id, times, status, description, retry_after)
        self._faults.append(fault)

    def html_502(self, method: str, *, times: int = 1) -> None:
        """The next call(s) get a proxy's HTML "502 Bad Gateway" page, not JSON."""
        self._faults.append(_Fault("html_502", method.lower(), None, times, 502))

    def drop_connection_next(
        self, method: str, *, chat_id: int | None = None, times: int = 1
    ) -> None:
        """The next call(s) are not processed; the connection is closed without an answer."""
        self._faults.append(_Fault("drop", method.lower(), chat_id, times))

    def delay(self, method: str, seconds: float) -> None:
        """Every call of ``method`` waits ``seconds`` before it is processed; 0 removes it."""
        if seconds > 0:
            self._delays[method.lower()] = seconds
        else:
            self._delays.pop(method.lower(), None)

    # --- recording ---------------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    async def wait_for_sent(
        self,
        predicate: Callable[[SentMessage], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as in FakeBinance
    ) -> list[SentMessage]:
        """The first ``count`` recorded messages matching ``predicate``, once they exist."""
        matches: list[SentMessage] = []
        seen = 0

        def ready() -> list[SentMessage] | None:
            nonlocal seen
            matches.extend(m for m in self.sent[seen:] if predicate is None or predicate(m))
            seen = len(self.sent)
            return matches[:count] if len(matches) >= count else None

        return await self._wait(ready, timeout, f"{count} matching sent message(s)")

    async def wait_for_call(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as in FakeBinance
    ) -> Call:
        """The ``count``-th call of ``method`` (counting those already made), on receipt."""
        wanted, seen, found = method.lower(), 0, 0

        def ready() -> Call | None:
            nonlocal seen, found
            for call in self.calls[seen:]:
                found += call.method.lower() == wanted
                if found == count:
                    return call
            seen = len(self.calls)
            return None

        return await self._wait(ready, timeout, f"call {count} of {method}")

    async def wait_until_idle(
        self,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline, as in FakeBinance
    ) -> None:
        """Return once no request but a waiting getUpdates is being processed."""
        await self._wait(
            lambda: True if self.in_flight == self._polls_open else None, timeout, "idle"
        )

    def _changed(self) -> None:
        for ready, future in list(self._waiters):
            if not future.done() and (result := ready()) is not None:
                future.set_result(result)

    async def _wait(self, ready: Callable[[], _T | None], timeout_s: float, what: str) -> _T:
        result = ready()
        if result is not None:
            return result
        waiter: tuple[Callable[[], Any], asyncio.Future[Any]] = (
            ready,
            asyncio.get_running_loop().create_future(),
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                found: _T = await waiter[1]
                return found
        except TimeoutError:
            seen = f"{len(self.sent)} sent, {len(self.calls)} calls"
            raise TimeoutError(f"no {what} within {timeout_s} s ({seen} so far)") from None
        finally:
            self._waiters.remove(waiter)

    # --- the request path --------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params, files = await _read(request)
        method = CANONICAL.get(request.match_info["method"].lower(), request.match_info["method"])
        call = Call(method, params, self._clock())
        self.calls.append(call)
        polling = method == "getUpdates"
        self.in_flight += 1
        self._polls_open += polling
        try:
            if self.on_request is not None:
                self.on_request(method, params)
            self._changed()
            token = request.match_info["token"]
            response = await self._answer(request, token, ApiRequest(method, params, files), call)
        finally:
            self.in_flight -= 1
            self._polls_open -= polling
            if call.status is None:
                call.status = 0
            elif call.status:
                self.last_answer_at = self._clock()
            self._changed()
        return response

    async def _answer(
        self, request: web.Request, token: str, r: ApiRequest, call: Call
    ) -> web.StreamResponse:
        chat_id = _chat_id(r.params)
        if not _TOKEN.fullmatch(token):
            return self._reply(call, ApiError(404, wire.NOT_FOUND).body(), 404, chat_id)
        if token != self.token:
            return self._reply(call, ApiError(401, wire.UNAUTHORIZED).body(), 401, chat_id)
        handler = self.handler(r.method)
        if handler is None:
            return self._reply(call, ApiError(404, wire.NOT_FOUND).body(), 404, chat_id)
        delay = self._delays.get(r.method.lower())
        if delay is not None:
            await _wait_or(self._stopped, delay)
            if request.transport is None or request.transport.is_closing():
                return _abort(request)  # the client died meanwhile: never processed
        fault = self._take_fault(r.method, chat_id)
        if fault is not None and fault.kind == "drop":
            return _abort(request)
        if fault is not None and fault.kind == "html_502":
            call.status = 502
            return web.Response(text=_HTML_502, status=502, content_type="text/html")
        try:
            if fault is not None:
                raise fault.error()
            result = await handler(r)
        except ApiError as e:
            return self._reply(call, e.body(), e.status, chat_id)
        return self._reply(call, wire.envelope(result), 200, chat_id)

    def _reply(
        self, call: Call, body: dict[str, Any], status: int, chat_id: int | None
    ) -> web.Response:
        call.status = status
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            self.flood_429s += 1
            if chat_id is not None:
                self.flood_429s_by_chat[chat_id] += 1
        return web.Response(
            body=orjson.dumps(body), status=status, content_type="application/json"
        )

    def _take_fault(self, method: str, chat_id: int | None) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method.lower() and fault.chat_id in (None, chat_id):
                fault.left -= 1
                if fault.left <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- control over HTTP -------------------------------------------------------------
    async def _control_inject(self, request: web.Request) -> web.Response:
        body = await _control_body(request)
        update = self.inject_message(
            int(body["chat_id"]),
            str(body["text"]),
            user_id=body.get("user_id"),
            language_code=body.get("language_code"),
            first_name=body.get("first_name", "Test"),
            chat_type=body.get("chat_type"),
        )
        return web.json_response(update)

    async def _control_sent(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "-1"))
        chat_id = request.query.get("chat_id")
        found = [
            _sent_json(i, self.sent[i])
            for i in range(max(after + 1, 0), len(self.sent))
            if chat_id is None or self.sent[i].chat_id == int(chat_id)
        ]
        return web.json_response(found)

    async def _control_block(self, request: web.Request) -> web.Response:
        chat_id = int((await _control_body(request))["chat_id"])
        if request.path.endswith("/unblock"):
            self.unblock(chat_id)
        else:
            self.block(chat_id)
        return web.json_response({"ok": True})


async def _read(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Query and body parameters as strings, and uploaded files by field name."""
    params: dict[str, str] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":  # Telegram takes JSON too; aiogram never
        body = await request.json()
        params.update(
            (k, v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in body.items()
        )
        return params, files
    for name, value in (await request.post()).items():
        if isinstance(value, web.FileField):
            files[name] = value.file.read()
        else:
            params[name] = str(value)
    return params, files


async def _control_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be a JSON object") from None
    if not isinstance(body, dict) or "chat_id" not in body:
        raise web.HTTPBadRequest(text='the body must be a JSON object with "chat_id"')
    return body


def _sent_json(index: int, message: SentMessage) -> dict[str, Any]:
    photo = message.photo
    return {
        "index": index,
        "chat_id": message.chat_id,
        "message_id": message.message_id,
        "method": message.method,
        "text": message.text,
        "plain": message.plain,
        "parse_mode": message.parse_mode,
        "entities": message.entities,
        "reply_markup": message.reply_markup,
        "photo": f"{len(photo)} bytes" if isinstance(photo, bytes) else photo,
        "t": message.t,
    }


def _chat_id(params: dict[str, str]) -> int | None:
    raw = params.get("chat_id", "")
    return int(raw) if re.fullmatch(r"-?\d+", raw) else None


async def _wait_or(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set first (the fake is closing)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


async def _not_found(request: web.Request) -> web.Response:
    body = ApiError(404, wire.NOT_FOUND).body()
    return web.Response(body=orjson.dumps(body), status=404, content_type="application/json")


def _abort(request: web.Request) -> web.Response:
    """Drop the connection; aiohttp then fails to write this dummy answer and moves on."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


async def _serve_forever(args: argparse.Namespace) -> None:
    fake = FakeTelegram(
        args.token,
        username=args.username,
        chat_rate=args.chat_rate,
        chat_window_s=args.chat_window_s,
        group_rate=args.group_rate,
        group_window_s=args.group_window_s,
        global_rate=args.global_rate,
        global_window_s=args.global_window_s,
    )
    await fake.serve_until_signalled(
        host=args.host, port=args.port, banner="fake-telegram listening on {url}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.fakes.fake_telegram``: serve until SIGTERM/SIGINT, URL on stdout."""
    parser = argparse.ArgumentParser(description="Serve the fake Telegram Bot API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=wire.TEST_TOKEN)
    parser.add_argument("--username", default="fake_bot")
    parser.add_argument("--chat-rate", type=int, default=1)
    parser.add_argument("--chat-window-s", type=float, default=1.0)
    parser.add_argument("--group-rate", type=int, default=20)
    parser.add_argument("--group-window-s", type=float, default=60.0)
    parser.add_argument("--global-rate", type=int, default=30)
    parser.add_argument("--global-window-s", type=float, default=1.0)
    asyncio.run(_serve_forever(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
