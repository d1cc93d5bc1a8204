"""The app factory and lifecycle: everything is built from ``Settings`` and passed down.

``run(settings)``: open the Binance client, the outbox and the intake, start the notifier and
the alarm service, set the command menu (English and Turkish, from the handlers' declared
commands), serve ``/healthz`` and ``/metrics`` (and, with ``WEBHOOK_URL``, the webhook),
handle the updates a crashed process left in the intake, then take updates by long polling
or webhook until
SIGTERM/SIGINT, each stored in the intake before Telegram is told it arrived
(``bot.receiver``). On the signal it stops taking updates, lets the handlers in flight and
the sends in flight finish, and closes every session, the Redis client last.

With ``REDIS_URL`` the process has one Redis client (one connection pool), built here and
handed to the Binance client's limiter and cache, to the outbox, to the intake and to the
alarms (store, lease, checkpoint); none of them closes it. Without it, the alarms live in the
SQLite file ``ALARM_STORE_PATH``. The alarm service (``utils.alarms``) starts after the
notifier and stops before it, so that what fired is in the outbox before delivery stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import orjson
import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommandScopeDefault
from aiogram.utils.i18n import SimpleI18nMiddleware
from aiohttp import web

from analysis.alarm_source import AlarmSource
from analysis.chart import Charts
from analysis.chart_pool import ChartPool
from bot.alarm_delivery import NotifierDelivery
from bot.alerts import AdminAlerts
from bot.i18n import LOCALES, build_i18n
from bot.intake import SqliteIntake
from bot.intake_redis import RedisIntake
from bot.middlewares import AccessMiddleware, InFlight, ThrottleMiddleware
from bot.notifier import Notifier
from bot.outbox import SqliteOutbox
from bot.outbox_redis import RedisOutbox
from bot.pacing import ReplyGuard, SendPacer
from bot.poll_lease import PollLease
from bot.receiver import Receiver
from handler import FEATURES, build_router, declared_commands
from handler.commands import AccessPolicy, menu_commands
from utils.alarms.alarm_meta import LocalLease, RedisLease, RedisMeta, SqliteMeta
from utils.alarms.alarm_service import AlarmService
from utils.alarms.alarm_store import RedisAlarmStore, SqliteAlarmStore
from utils.binance.binance_a import BinanceClient
from utils.redis_conn import RedisClient, connect
from utils.tasks import BackgroundTasks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiogram.utils.i18n import I18n

    from bot.intake import Intake
    from bot.outbox import Outbox
    from handler.commands import CommandSpec, Feature
    from utils.alarms.alarm_meta import AlarmMeta, Lease
    from utils.alarms.alarm_store import AlarmStore
    from utils.config import Settings

__all__ = ("BotApp", "build_app", "run", "serve")

_log = structlog.get_logger(__name__)
#: How long start-up waits for Telegram's first answer before saying it is unreachable.
_STARTUP_TIMEOUT_S: Final = 15
#: Redis connections beyond the client's and the delivery workers': leases, stats, alerts.
_REDIS_SPARE: Final = 8
_REDIS_WAIT_S: Final = 5.0  # a caller waits this long for a free pooled connection
_DRAIN_S: Final = 30.0  # on SIGTERM, handlers in flight get this long to finish
#: Libraries that log a DEBUG line per operation of the idle bot (aiosqlite: two per query,
#: the notifier queries the outbox every second); quiet below INFO.
_CHATTY_LOGGERS: Final = ("aiosqlite",)


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
    commands: tuple[CommandSpec, ...]
    intake: Intake
    receiver: Receiver
    alarms: AlarmService
    charts: Charts  # chart renders: their process pool starts on the first /chart
    redis: RedisClient | None = None  # the process's one Redis client, when REDIS_URL is set
    started_at: float = field(default_factory=time.monotonic)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    http_url: str | None = None

    @property
    def webhook_mode(self) -> bool:
        return self.settings.telegram.webhook_url is not None


_APP: web.AppKey[BotApp] = web.AppKey("bot_app", BotApp)


def build_app(
    settings: Settings, *, features: Sequence[Feature] = FEATURES, charts: Charts | None = None
) -> BotApp:
    """Build every object from the settings; nothing is opened yet. ``features`` are the
    feature modules whose routers and declared commands the bot serves; ``charts`` draws
    ``/chart`` (default: a pool of ``DEFAULT_WORKERS`` render processes)."""
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
    pacer = SendPacer(
        chat_interval_s=tg.chat_interval_s,
        group_interval_s=tg.group_interval_s,
        global_rate=tg.global_rate,
    )
    replies = ReplyGuard(
        retry_s=tg.reply_retry_s,
        retry_base_s=tg.retry_base_s,
        retry_max_s=tg.retry_max_s,
        pacer=pacer,
    )
    bot.session.middleware(replies)  # outermost: its retries go through the pacer too
    bot.session.middleware(pacer)
    redis = _redis_client(settings)
    binance = BinanceClient(config=settings.binance, redis=settings.redis, redis_client=redis)
    outbox: Outbox = (
        RedisOutbox(redis, prefix=f"{settings.redis.key_prefix}:", capacity=tg.outbox_capacity)
        if redis is not None
        else SqliteOutbox(tg.outbox_path, capacity=tg.outbox_capacity)
    )
    intake: Intake = SqliteIntake(tg.intake_file)
    turns: RedisIntake | None = None  # chats taken in turn across the processes sharing Redis
    poll_lease: PollLease | None = None  # one poller among them
    if redis is not None:
        prefix = f"{settings.redis.key_prefix}:"
        intake = turns = RedisIntake(redis, prefix=prefix, lease_s=tg.intake_lease_s)
        if tg.webhook_url is None:
            poll_lease = PollLease(
                redis, prefix=prefix, bot_id=bot.id, owner=turns.owner, lease_s=tg.poll_lease_s
            )
    notifier = Notifier(bot, outbox, tg)
    alerts = AdminAlerts(notifier, tg.admin_chat_id, cooldown_s=tg.alert_cooldown_s)
    notifier.on_event = alerts.on_bot_event
    replies.notifier, replies.on_event = notifier, alerts.on_bot_event
    i18n = build_i18n()
    alarms = _alarm_service(settings, redis, binance, NotifierDelivery(notifier, i18n))
    tasks = BackgroundTasks()
    in_flight = InFlight()
    app_started = time.monotonic()
    commands = declared_commands(features)
    charts = Charts(ChartPool()) if charts is None else charts
    dp = Dispatcher(
        binance=binance,
        notifier=notifier,
        tasks=tasks,
        started_at=app_started,
        commands=commands,
        access=AccessPolicy(allowed=frozenset(tg.allowed_user_ids), admins=tg.admin_ids),
        price_retry_s=tg.price_retry_s,
        alarms=alarms,
        charts=charts,
    )
    dp.update.outer_middleware(in_flight)
    SimpleI18nMiddleware(i18n).setup(dp)  # outer: the locale is known before the throttle
    dp.message.outer_middleware(ThrottleMiddleware(tg.throttle_rate, tg.throttle_burst))
    access = AccessMiddleware(dp["access"])
    dp.message.middleware(access)
    dp.include_router(build_router(features))
    receiver = Receiver(
        bot,
        dp,
        intake,
        lease_s=tg.intake_lease_s,
        secret_token=tg.webhook_secret_value,
        turns=turns,
        poll_lease=poll_lease,
    )
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
        commands=commands,
        intake=intake,
        receiver=receiver,
        alarms=alarms,
        charts=charts,
        redis=redis,
        started_at=app_started,
    )


def _alarm_service(
    settings: Settings,
    redis: RedisClient | None,
    binance: BinanceClient,
    delivery: NotifierDelivery,
) -> AlarmService:
    """The alarms: in Redis (the process's one client) with a lease, so that one process
    evaluates them; else in the SQLite file ``ALARM_STORE_PATH``, this process leading."""
    config = settings.alarms
    store: AlarmStore
    meta: AlarmMeta
    lease: Lease
    if redis is not None:
        prefix = f"{settings.redis.key_prefix}:"
        store = RedisAlarmStore(redis, prefix=prefix)
        meta, lease = RedisMeta(redis, prefix=prefix), RedisLease(redis, prefix=prefix)
    else:
        store, meta = SqliteAlarmStore(config.store_path), SqliteMeta(config.store_path)
        lease = LocalLease()
    return AlarmService(
        binance,
        store,
        delivery,
        config,
        meta=meta,
        lease=lease,
        indicators=AlarmSource(binance),  # indicator alarms read analysis' TA-Lib values
    )


def _redis_client(settings: Settings) -> RedisClient | None:
    """The process's one Redis client (a single Redis or a cluster, as ``REDIS_URL`` says),
    shared by the Binance client's limiter and cache, the outbox and the intake; None without
    ``REDIS_URL``. A caller waits for a free connection rather than failing. Its connections
    are named ``<prefix>:bot:<pid>`` so that ``CLIENT LIST`` tells the processes apart."""
    if settings.redis.url is None:
        return None
    return connect(
        settings.redis.url.get_secret_value(),
        max_connections=settings.binance.pool_size
        + settings.telegram.delivery_concurrency
        + _REDIS_SPARE,
        wait_s=_REDIS_WAIT_S,
        client_name=f"{settings.redis.key_prefix}:bot:{os.getpid()}",
    )


async def run(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT, then shut down cleanly."""
    await serve(build_app(settings))


async def serve(app: BotApp, *, handle_signals: bool = True) -> None:
    """Run a built app until SIGTERM/SIGINT or ``app.stop_requested``; ``app.ready`` is set
    once it takes updates."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, app.stop_requested.set)
    async with contextlib.AsyncExitStack() as stack:
        if app.redis is not None:  # closed last: the client and the outbox use it to the end
            stack.push_async_callback(app.redis.aclose)
        stack.push_async_callback(app.bot.session.close)
        await stack.enter_async_context(app.binance)
        stack.push_async_callback(app.charts.aclose)  # after the handlers, with the client
        await app.outbox.open()
        stack.push_async_callback(app.outbox.close)
        await app.intake.open()
        stack.push_async_callback(app.intake.close)
        # Renews this process's claim on its updates until they are drained, not just until
        # the signal: another process must not adopt an update still being handled here.
        keeper = asyncio.create_task(app.receiver.keep_alive())
        stack.push_async_callback(_cancel, keeper)
        unsubscribe = app.binance.events.subscribe(app.alerts.on_binance_event)
        stack.callback(unsubscribe)
        await app.notifier.start()
        stack.push_async_callback(app.notifier.stop)
        await app.alarms.start()  # stopped before the notifier: what fired is stored first
        stack.push_async_callback(app.alarms.stop)
        stack.push_async_callback(app.alerts.aclose)
        stack.push_async_callback(app.tasks.aclose)
        me = await app.bot.get_me(request_timeout=_STARTUP_TIMEOUT_S)  # a silent network: fail
        await _set_commands(app)
        runner = await _serve_http(app)
        stack.push_async_callback(runner.cleanup)
        _log.info(
            "bot_started",
            username=me.username,
            mode="webhook" if app.webhook_mode else "polling",
            http=app.http_url,
            outbox=type(app.outbox).__name__,
            intake=type(app.intake).__name__,
        )
        await app.dispatcher.emit_startup(bot=app.bot)
        try:
            if app.webhook_mode:
                await _run_webhook(app)
            else:
                await _run_polling(app)
        except BaseException:
            await app.receiver.drain(timeout_s=0.0)  # cancelled now; they stay stored
            raise
        else:
            _log.info("bot_stopping", handlers_in_flight=app.receiver.handling)
            if cancelled := await app.receiver.drain(timeout_s=_DRAIN_S):
                _log.warning(
                    "bot_stop_handlers_unfinished", count=cancelled, kept_for_restart=True
                )
        finally:
            await app.dispatcher.emit_shutdown(bot=app.bot)
    _log.info("bot_stopped")


async def _run_polling(app: BotApp) -> None:
    await app.bot.delete_webhook(drop_pending_updates=False)
    await app.receiver.recover()  # before any new update, so a chat keeps its order
    app.ready.set()
    await app.receiver.poll(
        app.stop_requested,
        timeout_s=app.settings.telegram.polling_timeout_s,
        allowed_updates=app.dispatcher.resolve_used_update_types(),
    )


async def _run_webhook(app: BotApp) -> None:
    tg = app.settings.telegram
    assert tg.webhook_url is not None  # noqa: S101 - webhook_mode checked it
    await app.receiver.recover()
    await app.bot.set_webhook(
        url=tg.webhook_url,
        secret_token=tg.webhook_secret_value,
        allowed_updates=app.dispatcher.resolve_used_update_types(),
    )
    app.ready.set()
    await app.stop_requested.wait()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _set_commands(app: BotApp) -> None:
    scope = BotCommandScopeDefault()
    for locale in LOCALES:
        await app.bot.set_my_commands(
            menu_commands(app.commands, app.i18n, locale),
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
        web_app.router.add_post(tg.webhook_path, app.receiver.webhook)
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
    intake_depth = await app.intake.depth()
    lines = [
        "# HELP bot_uptime_seconds Seconds since the bot started.",
        "# TYPE bot_uptime_seconds gauge",
        f"bot_uptime_seconds {time.monotonic() - app.started_at:.1f}",
        "# HELP bot_updates_handled_total Telegram updates handled.",
        "# TYPE bot_updates_handled_total counter",
        f"bot_updates_handled_total {app.in_flight.handled}",
        "# HELP bot_intake_updates Updates stored and not yet handled to the end.",
        "# TYPE bot_intake_updates gauge",
        f"bot_intake_updates {intake_depth}",
        "# HELP bot_updates_repeated_total Deliveries of an update already taken in.",
        "# TYPE bot_updates_repeated_total counter",
        f"bot_updates_repeated_total {app.receiver.duplicates}",
        "# HELP bot_updates_recovered_total Updates a stopped or crashed process left, handled.",
        "# TYPE bot_updates_recovered_total counter",
        f"bot_updates_recovered_total {app.receiver.recovered}",
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
        "# HELP bot_poller_leading 1 while this process long-polls Telegram (the poller).",
        "# TYPE bot_poller_leading gauge",
        f"bot_poller_leading {int(app.receiver.polling)}",
        "# HELP bot_delivery_leading 1 while this process delivers the outbox.",
        "# TYPE bot_delivery_leading gauge",
        f"bot_delivery_leading {int(delivery['leading'])}",
        "# HELP bot_alarm_engine_leading 1 while this process runs the alarm engine.",
        "# TYPE bot_alarm_engine_leading gauge",
        f"bot_alarm_engine_leading {int(app.alarms.leading)}",
        "# HELP bot_alarms_fired_total Alarm firings by this process's engine since start.",
        "# TYPE bot_alarms_fired_total counter",
        f"bot_alarms_fired_total {app.alarms.fired}",
    ]
    text = app.binance.metrics_text().rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
