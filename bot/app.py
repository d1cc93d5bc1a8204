"""The app factory and lifecycle: everything is built from ``Settings`` and passed down.

``run(settings)``: open the Binance client and the outbox, start the notifier, set the command
menu (English and Turkish), serve ``/healthz`` and ``/metrics`` (and, with ``WEBHOOK_URL``, the
webhook), then take updates by long polling or webhook until SIGTERM/SIGINT. On the signal it
stops taking updates, lets the handlers in flight and the sends in flight finish, and closes
every session.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommandScopeDefault
from aiogram.utils.i18n import SimpleI18nMiddleware
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.alerts import AdminAlerts
from bot.i18n import LOCALES, build_i18n
from bot.middlewares import ThrottleMiddleware
from bot.notifier import Notifier
from bot.outbox import SqliteOutbox
from bot.outbox_redis import RedisOutbox
from bot.pacing import SendPacer
from handler import build_router
from handler.access import AccessMiddleware, AccessPolicy
from handler.commands import bot_commands
from handler.deps import BackgroundTasks
from utils.binance.binance_a import BinanceClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram.types import TelegramObject
    from aiogram.utils.i18n import I18n

    from bot.outbox import Outbox
    from utils.config import Settings

__all__ = ("BotApp", "build_app", "run", "serve")

_log = structlog.get_logger(__name__)


class InFlight(BaseMiddleware):
    """Counts updates being handled, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self.handled = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._progress = asyncio.Condition()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self.count -= 1
            self.handled += 1
            if self.count == 0:
                self._idle.set()
            async with self._progress:
                self._progress.notify_all()

    async def wait_handled(self, count: int, timeout_s: float) -> None:
        """Until ``count`` updates have been handled since start."""
        async with asyncio.timeout(timeout_s), self._progress:
            await self._progress.wait_for(lambda: self.handled >= count)

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


@dataclass(slots=True, eq=False)
class BotApp:
    """Everything the running bot holds; built by ``build_app``, driven by ``run``."""

    settings: Settings
    bot: Bot
    dispatcher: Dispatcher
    binance: BinanceClient
    outbox: Outbox
    notifier: Notifier
    alerts: AdminAlerts
    i18n: I18n
    tasks: BackgroundTasks
    in_flight: InFlight
    started_at: float = field(default_factory=time.monotonic)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    http_url: str | None = None

    @property
    def webhook_mode(self) -> bool:
        return self.settings.telegram.webhook_url is not None


_APP: web.AppKey[BotApp] = web.AppKey("bot_app", BotApp)


def build_app(settings: Settings) -> BotApp:
    """Build every object from the settings; nothing is opened yet."""
    tg = settings.telegram
    if tg.bot_token is None:
        raise ValueError("BOT_TOKEN is not set")
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(tg.api_url))
        if tg.api_url
        else AiohttpSession()
    )
    bot = Bot(
        tg.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )
    bot.session.middleware(
        SendPacer(
            chat_interval_s=tg.chat_interval_s,
            group_interval_s=tg.group_interval_s,
            global_rate=tg.global_rate,
        )
    )
    binance = BinanceClient(config=settings.binance, redis=settings.redis)
    redis_url = settings.redis.url.get_secret_value() if settings.redis.url else None
    outbox: Outbox = (
        RedisOutbox.from_url(
            redis_url, prefix=f"{settings.redis.key_prefix}:", capacity=tg.outbox_capacity
        )
        if redis_url
        else SqliteOutbox(tg.outbox_path, capacity=tg.outbox_capacity)
    )
    notifier = Notifier(bot, outbox, tg)
    alerts = AdminAlerts(notifier, tg.admin_chat_id, cooldown_s=tg.alert_cooldown_s)
    notifier.on_event = alerts.on_bot_event
    i18n = build_i18n()
    tasks = BackgroundTasks()
    in_flight = InFlight()
    app_started = time.monotonic()
    dp = Dispatcher(
        binance=binance,
        notifier=notifier,
        tasks=tasks,
        started_at=app_started,
        access=AccessPolicy(allowed=frozenset(tg.allowed_user_ids), admins=tg.admin_ids),
    )
    dp.update.outer_middleware(in_flight)
    SimpleI18nMiddleware(i18n).setup(dp)  # outer: the locale is known before the throttle
    dp.message.outer_middleware(ThrottleMiddleware(tg.throttle_rate, tg.throttle_burst))
    access = AccessMiddleware(dp["access"])
    dp.message.middleware(access)
    dp.include_router(build_router())
    return BotApp(
        settings=settings,
        bot=bot,
        dispatcher=dp,
        binance=binance,
        outbox=outbox,
        notifier=notifier,
        alerts=alerts,
        i18n=i18n,
        tasks=tasks,
        in_flight=in_flight,
        started_at=app_started,
    )


async def run(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT, then shut down cleanly."""
    await serve(build_app(settings))


async def serve(app: BotApp, *, handle_signals: bool = True) -> None:
    """Run a built app until SIGTERM/SIGINT or ``app.stop_requested``; ``app.ready`` is set
    once it takes updates."""
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, app.stop_requested.set)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(app.bot.session.close)
        await stack.enter_async_context(app.binance)
        await app.outbox.open()
        stack.push_async_callback(app.outbox.close)
        unsubscribe = app.binance.events.subscribe(app.alerts.on_binance_event)
        stack.callback(unsubscribe)
        await app.notifier.start()
        stack.push_async_callback(app.notifier.stop)
        stack.push_async_callback(app.alerts.aclose)
        stack.push_async_callback(app.tasks.aclose)
        me = await app.bot.get_me()
        await _set_commands(app)
        runner = await _serve_http(app)
        stack.push_async_callback(runner.cleanup)
        _log.info(
            "bot_started",
            username=me.username,
            mode="webhook" if app.webhook_mode else "polling",
            http=app.http_url,
            outbox=type(app.outbox).__name__,
        )
        if app.webhook_mode:
            await _run_webhook(app)
        else:
            await _run_polling(app)
        _log.info("bot_stopping", handlers_in_flight=app.in_flight.count)
        if not await app.in_flight.wait_idle(timeout_s=30.0):
            _log.warning("bot_stop_handlers_unfinished", count=app.in_flight.count)
    _log.info("bot_stopped")


async def _run_polling(app: BotApp) -> None:
    await app.bot.delete_webhook(drop_pending_updates=False)  # start_polling never does
    app.ready.set()
    polling = asyncio.create_task(
        app.dispatcher.start_polling(
            app.bot,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=app.settings.telegram.polling_timeout_s,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
        )
    )
    stop = asyncio.create_task(app.stop_requested.wait())
    await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not polling.done():
        with contextlib.suppress(RuntimeError):  # not started yet
            await app.dispatcher.stop_polling()
    stop.cancel()
    await polling


async def _run_webhook(app: BotApp) -> None:
    tg = app.settings.telegram
    assert tg.webhook_url is not None  # noqa: S101 - webhook_mode checked it
    await app.bot.set_webhook(
        url=tg.webhook_url,
        secret_token=tg.webhook_secret_value,
        allowed_updates=app.dispatcher.resolve_used_update_types(),
    )
    await app.dispatcher.emit_startup(bot=app.bot)
    app.ready.set()
    try:
        await app.stop_requested.wait()
    finally:
        await app.dispatcher.emit_shutdown(bot=app.bot)


async def _set_commands(app: BotApp) -> None:
    scope = BotCommandScopeDefault()
    for locale in LOCALES:
        await app.bot.set_my_commands(
            bot_commands(app.i18n, locale),
            scope=scope,
            language_code=None if locale == "en" else locale,
        )


async def _serve_http(app: BotApp) -> web.AppRunner:
    """``/healthz``, ``/metrics`` and, in webhook mode, the webhook (secret checked)."""
    tg = app.settings.telegram
    web_app = web.Application()
    web_app[_APP] = app
    web_app.router.add_get("/healthz", _healthz)
    web_app.router.add_get("/metrics", _metrics)
    if tg.webhook_url is not None:
        SimpleRequestHandler(
            dispatcher=app.dispatcher,
            bot=app.bot,
            secret_token=tg.webhook_secret_value,
            handle_in_background=False,
        ).register(web_app, path=tg.webhook_path)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=30.0)
    await runner.setup()
    site = web.TCPSite(runner, tg.http_host, tg.http_port)
    await site.start()
    host, port = runner.addresses[0][:2]
    app.http_url = f"http://{host}:{port}"
    return runner


async def _healthz(request: web.Request) -> web.Response:
    app = request.app[_APP]
    metrics = app.binance.get_metrics()
    breakers = metrics["breakers"]
    delivery = await app.notifier.stats()
    body = {
        "status": "ok" if all(s == "closed" for s in breakers.values()) else "degraded",
        "mode": "webhook" if app.webhook_mode else "polling",
        "uptime_s": round(time.monotonic() - app.started_at, 1),
        "breakers": breakers,
        "delivery": {k: delivery[k] for k in ("depth", "parked", "dead", "leading")},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _metrics(request: web.Request) -> web.Response:
    app = request.app[_APP]
    delivery = await app.notifier.stats()
    lines = [
        "# HELP bot_uptime_seconds Seconds since the bot started.",
        "# TYPE bot_uptime_seconds gauge",
        f"bot_uptime_seconds {time.monotonic() - app.started_at:.1f}",
        "# HELP bot_updates_handled_total Telegram updates handled.",
        "# TYPE bot_updates_handled_total counter",
        f"bot_updates_handled_total {app.in_flight.handled}",
        "# HELP bot_outbox_jobs Messages in the delivery queue by state.",
        "# TYPE bot_outbox_jobs gauge",
        *(
            f'bot_outbox_jobs{{state="{state}"}} {delivery[state]}'
            for state in ("depth", "parked", "dead")
        ),
        "# HELP bot_delivery_total Delivery outcomes since start.",
        "# TYPE bot_delivery_total counter",
        *(
            f'bot_delivery_total{{outcome="{key}"}} {value}'
            for key, value in sorted(app.notifier.counters.items())
        ),
        "# HELP bot_admin_alerts_total Admin alerts stored for delivery.",
        "# TYPE bot_admin_alerts_total counter",
        f"bot_admin_alerts_total {app.alerts.sent}",
    ]
    text = app.binance.metrics_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
