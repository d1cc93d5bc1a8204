"""The alarm service over the wire: a real ``BinanceClient`` on the fake exchange's REST and
stream servers (spot and futures; its kline streams follow the prices set), a real store
(SQLite, or Redis), and a delivery that records what it is handed and, as the outbox does,
ignores a job id it already holds. Each alarm fires at the frame that reaches it, once;
wicks, repeats, expiry and a dropped stream's gap are read from the klines.

"Nothing more fired" is proved without sleeping: the same frame carries ETHUSDT past the
level of a *sentinel* alarm in another chat, so once the sentinel's message has arrived the
whole frame has been fed to the engine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import pytest
from redis.asyncio import Redis

from tests.fakes import fake_ws_wire as wire
from tests.fakes.fake_binance import FakeBinance
from tests.fakes.fake_ws import FakeBinanceWS
from tests.utils.binance.stream_helpers import config
from utils.alarms.alarm_errors import AlarmExistsError, AlarmLimitError, AlarmSyntaxError
from utils.alarms.alarm_meta import RedisLease, RedisMeta, SqliteMeta
from utils.alarms.alarm_service import (
    AlarmService,
    AlarmSymbolError,
    AlarmWouldFireError,
)
from utils.alarms.alarm_store import RedisAlarmStore, SqliteAlarmStore
from utils.alarms.alarm_text import unpack
from utils.binance import BinanceClient
from utils.binance.binance_types import Market
from utils.config import AlarmConfig, RedisConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from tests.conftest import RedisServer
    from utils.alarms.alarm_text import Buttons

WAIT_S: Final = 10.0
USER: Final = 42
SENTINELS: Final = -1  # the chat of the sentinel alarms


@dataclasses.dataclass
class Sent:
    chat_id: int
    text: str
    job_id: str
    buttons: Buttons | None


class Recorder:
    """An ``AlarmDelivery`` that keeps what it is handed, ignoring a job id it holds."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.blocked: set[int] = set()
        self._changed = asyncio.Condition()

    async def send(
        self, chat_id: int, text: str, *, job_id: str, buttons: Buttons | None = None
    ) -> None:
        if any(s.job_id == job_id for s in self.sent):
            return
        async with self._changed:
            self.sent.append(Sent(chat_id, text, job_id, buttons))
            self._changed.notify_all()

    async def reachable(self, chat_id: int) -> bool:
        return chat_id not in self.blocked

    def translator(self, locale: str | None) -> Callable[[str], str]:
        return str

    def on_unreachable(self, pause: Callable[[int], Awaitable[object]]) -> None:
        self.pause = pause  # a 403 is the bot's business (tests/bot/test_alarm_wire.py)

    def to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)


class Clock:
    """The service's clock: real time plus what the test skipped ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Market_:
    """The fake exchange as the test moves it: REST prices (so candles follow) and frames."""

    def __init__(self, rest: FakeBinance, spot: FakeBinanceWS, futures: FakeBinanceWS) -> None:
        self.rest, self.spot, self.futures = rest, spot, futures
        self.eth = Decimal(3500)

    async def tick(self, opens: dict[str, str] | None = None, **prices: str) -> None:
        """One ``!miniTicker@arr`` frame with these spot prices (set on REST first)."""
        rows = []
        for symbol, price in prices.items():
            self.rest.set_price(symbol, price)
            open_price = (opens or {}).get(symbol)
            rows.append(wire.mini_ticker(symbol, price, open_price=open_price))
        await self.spot.push("!miniTicker@arr", rows)

    async def marks(self, **prices: str) -> None:
        for symbol, price in prices.items():
            self.rest.set_price(symbol, price, Market.FUTURES)
        await self.futures.push("!markPrice@arr@1s", wire.mark_price_array(prices))


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as fake:
        yield fake


@pytest.fixture
async def exchange(fake_binance: FakeBinance) -> AsyncIterator[Market_]:
    candles = fake_binance.market.candles
    async with (
        FakeBinanceWS(Market.SPOT, candles=candles, kline_update_s=0.2) as spot,
        FakeBinanceWS(
            Market.FUTURES, strict_routes=True, candles=candles, kline_update_s=0.2
        ) as futures,
    ):
        yield Market_(fake_binance, spot, futures)


@pytest.fixture
async def client(exchange: Market_) -> AsyncIterator[BinanceClient]:
    cfg = config(exchange.spot, exchange.futures, rest=exchange.rest, ws_stall_s=5.0)
    async with BinanceClient(config=cfg, redis=RedisConfig(url=None, _env_file=None)) as c:
        yield c


@pytest.fixture
def settings() -> AlarmConfig:
    return AlarmConfig(sweep_s=0.1, per_chat=5, _env_file=None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextlib.asynccontextmanager
async def running(service: AlarmService) -> AsyncIterator[AlarmService]:
    await service.start()
    try:
        async with asyncio.timeout(WAIT_S):
            await service.led.wait()
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def service(
    client: BinanceClient, recorder: Recorder, settings: AlarmConfig, clock: Clock, tmp_path: Path
) -> AsyncIterator[AlarmService]:
    path = tmp_path / "alarms.sqlite3"
    svc = AlarmService(
        client, SqliteAlarmStore(path), recorder, settings, clock, meta=SqliteMeta(path)
    )
    async with running(svc):
        yield svc


class Sentinels:
    """Alarms on ETHUSDT in another chat, one per frame: ``frame`` carries ETH past the next
    one's level and returns once its message arrived: the frame was fed whole, and the
    firings of its other rows, earlier in it, were delivered before."""

    def __init__(self, service: AlarmService, market: Market_, recorder: Recorder) -> None:
        self.service, self.market, self.recorder = service, market, recorder
        self.level = Decimal(3400)

    async def frame(self, opens: dict[str, str] | None = None, **prices: str) -> None:
        level = self.level
        self.level -= 100
        await self.service.add_alarm(SENTINELS, USER, f"eth < {level}")
        await self.market.spot.wait_for_subscribed("ethusdt@kline_1m")
        before = len(self.recorder.to(SENTINELS))
        await self.market.tick(opens, **prices, ETHUSDT=str(level - 10))  # delivered last
        await self.recorder.wait_for(lambda: len(self.recorder.to(SENTINELS)) > before)


@pytest.fixture
def sentinels(service: AlarmService, exchange: Market_, recorder: Recorder) -> Sentinels:
    return Sentinels(service, exchange, recorder)


async def armed(service: AlarmService, chat_id: int, text: str, market: Market_) -> int:
    added = await service.add_alarm(chat_id, USER, text)
    await market.spot.wait_for_subscribed("!miniTicker@arr")
    return added.alarm.id


def fired(recorder: Recorder, chat_id: int) -> list[Sent]:
    return recorder.to(chat_id)


# --- firing at the right frame, once -------------------------------------------------------


async def test_an_above_alarm_fires_at_the_frame_that_reaches_the_level_and_only_once(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    alarm_id = await armed(service, 1, "btc > 66000 take profit", exchange)
    await sentinels.frame(BTCUSDT="65800")
    assert fired(recorder, 1) == []
    await sentinels.frame(BTCUSDT="66100")
    await sentinels.frame(BTCUSDT="66300")
    [message] = fired(recorder, 1)
    assert message.job_id == f"alarm:{alarm_id}:1"
    assert "66,100" in message.text
    assert "take profit" in message.text
    assert [unpack(data).action for _text, data in message.buttons[0]] == [  # type: ignore[index, union-attr]
        "snooze",
        "rearm",
        "delete",
    ]
    stored = await service.get(alarm_id)
    assert stored is not None
    assert stored.seq == 1


async def test_below_and_cross_alarms_fire_at_their_frames(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    await armed(service, 1, "btc < 64000", exchange)
    await armed(service, 2, "btc cross up 65500", exchange)
    await sentinels.frame(BTCUSDT="65400")
    assert fired(recorder, 1) == fired(recorder, 2) == []
    await sentinels.frame(BTCUSDT="65600")
    assert len(fired(recorder, 2)) == 1
    assert fired(recorder, 1) == []
    await sentinels.frame(BTCUSDT="63900")
    await sentinels.frame(BTCUSDT="63800")
    assert len(fired(recorder, 1)) == 1
    assert "63,900" in fired(recorder, 1)[0].text
    assert len(fired(recorder, 2)) == 1


async def test_a_percent_rise_within_a_window_fires_when_the_rise_is_reached(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    await armed(service, 1, "btc +3% 5m", exchange)
    await sentinels.frame(BTCUSDT="65000")
    await sentinels.frame(BTCUSDT="66000")
    assert fired(recorder, 1) == []
    await sentinels.frame(BTCUSDT="67200")
    [message] = fired(recorder, 1)
    assert "67,200" in message.text


async def test_a_24h_change_alarm_fires_on_binances_24h_change(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    await armed(service, 1, "btc 24h +10%", exchange)
    await sentinels.frame({"BTCUSDT": "60000"}, BTCUSDT="65000")  # +8.3 %
    assert fired(recorder, 1) == []
    await sentinels.frame({"BTCUSDT": "58000"}, BTCUSDT="65000")  # +12.1 %
    assert len(fired(recorder, 1)) == 1


async def test_a_futures_alarm_follows_the_mark_price(
    service: AlarmService, exchange: Market_, recorder: Recorder
) -> None:
    await service.add_alarm(1, USER, "btc > 66000 futures")
    await exchange.futures.wait_for_subscribed("!markPrice@arr@1s")
    await exchange.marks(BTCUSDT="65900")
    await exchange.marks(BTCUSDT="66050")
    await recorder.wait_for(lambda: len(fired(recorder, 1)) == 1)
    assert "futures mark price" in fired(recorder, 1)[0].text


async def test_a_wick_over_the_level_fires_though_no_last_price_reached_it(
    service: AlarmService, exchange: Market_, recorder: Recorder, client: BinanceClient
) -> None:
    [candle] = await client.get_klines("BTCUSDT", "1m", limit=1)
    level = (Decimal(candle[2]) * Decimal("1.003")).quantize(Decimal(1))
    await armed(service, 1, f"btc > {level}", exchange)
    await exchange.spot.wait_for_subscribed("btcusdt@kline_1m")
    below = (level / Decimal("1.0005")).quantize(Decimal("0.01"))  # the candle's high: x 1.001
    await exchange.tick(BTCUSDT=str(below))
    await recorder.wait_for(lambda: len(fired(recorder, 1)) == 1)
    assert Decimal(str(below)) < level
    assert f"{level:,}" in fired(recorder, 1)[0].text  # the condition
    stored = (await service.history(1))[0][0]
    assert stored.touched_price >= level > stored.price


async def test_alarms_of_one_chat_firing_together_come_in_one_message(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    first = await armed(service, 1, "btc > 66000", exchange)
    second = await armed(service, 1, "btc > 66050", exchange)
    await sentinels.frame(BTCUSDT="66100")
    [message] = fired(recorder, 1)
    assert message.job_id == f"alarm:{first}:1+alarm:{second}:1"
    assert len(message.buttons or []) == 2


# --- repeat, expiry -------------------------------------------------------------------------


async def test_a_repeating_alarm_fires_again_only_after_its_cooldown_and_moving_back(
    service: AlarmService,
    exchange: Market_,
    recorder: Recorder,
    sentinels: Sentinels,
    clock: Clock,
) -> None:
    await armed(service, 1, "btc > 66000 repeat 1m", exchange)
    await sentinels.frame(BTCUSDT="66100")
    assert len(fired(recorder, 1)) == 1
    await sentinels.frame(BTCUSDT="66200")  # in its cooldown
    clock.offset += 61
    await sentinels.frame(BTCUSDT="66300")  # cooled down, never back under the band
    assert len(fired(recorder, 1)) == 1
    await sentinels.frame(BTCUSDT="65800")  # back past 66000 - 0.2 %
    await sentinels.frame(BTCUSDT="66100")
    assert [m.job_id.rsplit(":", 1)[1] for m in fired(recorder, 1)] == ["1", "2"]


async def test_an_alarm_that_expires_is_announced_and_stops(
    service: AlarmService, recorder: Recorder, clock: Clock
) -> None:
    added = await service.add_alarm(1, USER, "btc > 70000 for 1h")
    clock.offset += 2 * 3600
    await recorder.wait_for(lambda: len(fired(recorder, 1)) == 1)
    assert "expired" in fired(recorder, 1)[0].text
    stored = await service.get(added.alarm.id)
    assert stored is not None
    assert stored.state == "expired"


async def test_a_chat_that_blocked_the_bot_has_its_alarms_paused_until_it_is_back(
    service: AlarmService, exchange: Market_, recorder: Recorder, sentinels: Sentinels
) -> None:
    await armed(service, 1, "btc > 66000", exchange)
    other = await armed(service, 1, "btc < 60000", exchange)
    recorder.blocked.add(1)
    await sentinels.frame(BTCUSDT="66100")
    assert len(fired(recorder, 1)) == 1  # handed over all the same: it waits for the chat
    paused = await service.get(other)
    assert paused is not None
    assert paused.state == "paused"
    assert await service.resume_chat(1) == 1
    resumed = await service.get(other)
    assert resumed is not None
    assert resumed.state == "armed"


# --- gaps -----------------------------------------------------------------------------------


async def test_a_cross_while_the_stream_was_down_fires_late_from_the_klines(
    service: AlarmService, exchange: Market_, recorder: Recorder
) -> None:
    await armed(service, 1, "btc > 66000", exchange)
    await exchange.spot.wait_for_subscribed("btcusdt@kline_1m")
    exchange.spot.refuse_connections(1.0)
    exchange.spot.drop()
    refused = len(exchange.spot.refused)
    exchange.rest.set_price("BTCUSDT", "66200")  # up and back down while nobody listens
    await exchange.spot.wait_until(lambda: len(exchange.spot.refused) > refused)
    exchange.rest.set_price("BTCUSDT", "65000")
    await recorder.wait_for(lambda: len(fired(recorder, 1)) == 1)
    assert "late" in fired(recorder, 1)[0].text
    assert exchange.rest.count("GET /api/v3/klines") >= 1
    [firing] = (await service.history(1))[0]
    assert firing.late


# --- refusals -------------------------------------------------------------------------------


async def test_an_alarm_that_would_fire_at_once_is_refused_unless_now_is_given(
    service: AlarmService,
) -> None:
    with pytest.raises(AlarmWouldFireError) as refused:
        await service.add_alarm(1, USER, "btc > 60000")
    assert refused.value.price == Decimal(65000)
    assert await service.chat_alarms(1, offset=0, limit=10) == ([], 0)
    added = await service.add_alarm(1, USER, "btc > 60000 now")
    assert added.alarm.spec.now


async def test_bad_alarms_are_refused_and_nothing_is_stored(service: AlarmService) -> None:
    with pytest.raises(AlarmSyntaxError):
        await service.add_alarm(1, USER, "btc > lots")
    with pytest.raises(AlarmSymbolError) as unknown:
        await service.add_alarm(1, USER, "btcusdx > 70000")
    assert "BTCUSDT" in unknown.value.suggestions
    added = await service.add_alarm(1, USER, "btc > 70000")
    assert added.alarm.spec.symbol == "BTCUSDT"
    with pytest.raises(AlarmExistsError) as twice:
        await service.add_alarm(1, USER, "BTCUSDT >= 70000")
    assert twice.value.existing_id == added.alarm.id
    for level in range(71000, 75000, 1000):
        await service.add_alarm(1, USER, f"btc > {level}")
    with pytest.raises(AlarmLimitError) as full:
        await service.add_alarm(1, USER, "btc > 80000")
    assert (full.value.count, full.value.limit) == (5, 5)
    assert (await service.chat_alarms(1, offset=0, limit=10))[1] == 5


# --- several processes ----------------------------------------------------------------------


async def test_with_redis_one_engine_leads_and_another_takes_over_firing_nothing_twice(
    client: BinanceClient, exchange: Market_, recorder: Recorder, redis_server: RedisServer
) -> None:
    redis = Redis.from_url(redis_server.url)
    fast = AlarmConfig(lease_s=0.6, sweep_s=0.1, _env_file=None)
    cfg = config(exchange.spot, exchange.futures, rest=exchange.rest)

    def make(binance: BinanceClient) -> AlarmService:
        return AlarmService(
            binance,
            RedisAlarmStore(redis, prefix="t:"),
            recorder,
            fast,
            meta=RedisMeta(redis, prefix="t:"),
            lease=RedisLease(redis, prefix="t:"),
        )

    def listening() -> bool:
        return any("!miniTicker@arr" in c.streams for c in exchange.spot.open_connections)

    async with BinanceClient(config=cfg, redis=RedisConfig(url=None, _env_file=None)) as other:
        first, second = make(other), make(client)
        try:
            await first.start()
            await asyncio.wait_for(first.led.wait(), WAIT_S)
            await second.start()
            added = await second.add_alarm(1, USER, "btc > 66000")  # stored by the follower
            await exchange.spot.wait_until(listening)  # the leader picked it up
            assert not second.leading
            await first.stop()  # the leader goes
            await exchange.spot.wait_until(lambda: not listening())
            await asyncio.wait_for(second.led.wait(), WAIT_S)
            await exchange.spot.wait_until(listening)
            await exchange.tick(BTCUSDT="66100")
            await recorder.wait_for(lambda: len(fired(recorder, 1)) == 1)
            assert fired(recorder, 1)[0].job_id == f"alarm:{added.alarm.id}:1"
        finally:
            await second.stop()
            await redis.aclose()
