"""Alarm rows, end to end (``--only alarms``): from the fake exchange writing a price frame
that crosses an alarm's level to the fake Bot API receiving the ``sendMessage`` of its
firing, with the real bot as a process of its own.

One process (``python -m bench.alarm_latency``) runs the fakes of ``tests/fakes`` (the Bot
API, the exchange's REST and its spot stream server) and starts ``python -m bot`` against
them as production configures it (``tests.fakes.bot_env.fake_bot_env``: environment only,
SQLite stores in a temporary directory). One chat sets one alarm, ``/alarm btc > 66000``;
then, per firing: the stream server pushes a ``!miniTicker@arr`` frame with BTCUSDT at
66,100; the time from its write to the socket (the fake's record of the push) to the
receipt of the ``sendMessage`` that carries the firing (the fake's record of the call) is
one sample. Between firings the chat presses the firing's Re-arm button (waiting for the
bot's answer) and a frame at 65,000 takes the price back under the hysteresis band, so the
next crossing fires again; then the bench waits ``_PAUSE_S`` so that neither the chat's
send interval nor the previous frame is still pending when the next crossing is written.

The chat's send interval is ``TELEGRAM_CHAT_INTERVAL_S=0.05`` (production: 1 s, Telegram's
one message a second per chat); with the pause it never holds a measured firing back, so
it only shortens the run. The first ``_WARMUP`` firings are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.report import Row, verdict
from bench.runner import answer, spawn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from tests.fakes.fake_telegram import FakeTelegram
    from tests.fakes.fake_telegram_wire import SentMessage
    from tests.fakes.fake_ws import FakeBinanceWS

__all__ = ("LatencyPlan", "latency_rows", "main")

P99_TARGET_S: Final = 0.250
TOKEN: Final = "4242:BENCH"  # noqa: S105 - the fake Bot API's token, not a credential
CHAT: Final = 600  # a private chat: the user's id
LEVEL, ABOVE, BELOW = "66000", "66100", "65000"
_STREAM: Final = "!miniTicker@arr"
_WAIT_S: Final = 30.0  # for any one answer of the bot
_PAUSE_S: Final = 0.1  # before each crossing frame: the chat's send interval (0.05 s) passed
_WARMUP: Final = 5
_RUN_TIMEOUT_S: Final = 600.0
_OURS: Final = "ours: python -m bot"


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyPlan:
    firings: int


async def latency_rows(plan: LatencyPlan, log: Callable[[str], None]) -> list[Row]:
    log(f"alarm end to end: {plan.firings} firings through python -m bot")
    setting = f"1 alarm, {plan.firings} firings"

    def row(measure: str) -> Row:
        return Row(section="alarm end to end", client=_OURS, setting=setting, measure=measure,
                   fmt=lambda s: f"{s * 1000:,.1f} ms")  # fmt: skip

    p50, p99 = row("frame to sendMessage, p50"), row("frame to sendMessage, p99")
    result = await _child("--firings", str(plan.firings))
    if "error" in result:
        for r in (p50, p99):
            r.notes.append(str(result["error"]))
    else:
        samples = result["latency_s"]
        p50.values, p99.values = [_quantile(samples, 0.50)], [_quantile(samples, 0.99)]
        p50.notes.append(f"fastest {min(samples) * 1000:,.1f} ms")
        p99.notes.append(f"slowest {max(samples) * 1000:,.1f} ms")
        if result["flood_429s"]:
            p99.notes.append(f"{result['flood_429s']} answered 429")
    met = None if p99.median is None else p99.median < P99_TARGET_S
    p99.target = verdict(f"< {P99_TARGET_S * 1000:.0f} ms", met)
    return [p50, p99]


def _quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile, interpolated between the nearest ranks (``statistics``' inclusive
    method: the p99 of 200 samples lies between the 198th and 199th fastest)."""
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]


async def _child(*args: str) -> dict[str, Any]:
    proc = await spawn("bench.alarm_latency", *args)
    try:
        async with asyncio.timeout(_RUN_TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": f"timed out after {_RUN_TIMEOUT_S:.0f} s"}
    return answer(proc, out, err)


# The child process


async def measure(firings: int) -> dict[str, Any]:
    from tests.fakes import fake_ws_wire as wire  # noqa: PLC0415 - the child's imports
    from tests.fakes.bot_env import fake_bot_env  # noqa: PLC0415
    from tests.fakes.fake_binance import (  # noqa: PLC0415
        TEST_API_KEY,
        TEST_API_SECRET,
        FakeBinance,
    )
    from tests.fakes.fake_telegram import FakeTelegram  # noqa: PLC0415
    from tests.fakes.fake_ws import FakeBinanceWS  # noqa: PLC0415
    from utils.binance.binance_types import Market  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as directory:
        cwd = Path(directory)
        async with (
            FakeTelegram(TOKEN, chat_rate=1, chat_window_s=0.05, global_rate=200) as telegram,
            FakeBinance(api_keys={TEST_API_KEY: TEST_API_SECRET}) as binance,
            FakeBinanceWS(Market.SPOT) as spot,
        ):
            binance.set_price("BTCUSDT", BELOW)
            env = fake_bot_env(
                telegram.url,
                binance.url,
                TOKEN,
                BINANCE_WS_URL=spot.url,
                BINANCE_FUTURES_WS_URL="ws://127.0.0.1:9",  # no futures alarm here
                TELEGRAM_CHAT_INTERVAL_S="0.05",
                LOG_FORMAT="json",
            )

            async def push(price: str) -> float:
                """Write one frame; when the fake wrote it to the socket (its record)."""
                before = len(spot.sent)
                await spot.push(_STREAM, wire.mini_ticker_array({"BTCUSDT": price}))
                return spot.sent[before].t

            async with _bot(env, cwd) as log:
                try:
                    samples = await _fire(telegram, spot, push, firings + _WARMUP)
                except TimeoutError as e:
                    tail = log.read_text(errors="replace").splitlines()[-3:]
                    raise RuntimeError(f"the bot did not answer in time: {tail}") from e
            return {"latency_s": samples[_WARMUP:], "flood_429s": telegram.flood_429s}


async def _fire(
    telegram: FakeTelegram,
    spot: FakeBinanceWS,
    push: Callable[[str], Any],
    firings: int,
) -> list[float]:
    async with asyncio.timeout(_WAIT_S):
        telegram.inject_message(CHAT, f"/alarm btc > {LEVEL}")
        (reply,) = await telegram.wait_for_sent(
            lambda m: m.chat_id == CHAT, count=1, timeout=_WAIT_S
        )
        if not reply.plain.startswith("Alarm #1 is set"):
            raise RuntimeError(f"the alarm was not set: {reply.plain!r}")
        await spot.wait_until(
            lambda: any(c.open and _STREAM in c.streams for c in spot.connections),
            timeout_s=_WAIT_S,
        )
    samples: list[float] = []
    last: SentMessage | None = None
    for n in range(1, firings + 1):
        async with asyncio.timeout(_WAIT_S):
            if last is not None:
                await _rearm(telegram, last)
                await push(BELOW)
            await asyncio.sleep(_PAUSE_S)
            calls = len(telegram.calls)
            written = await push(ABOVE)
            fired = await telegram.wait_for_sent(
                lambda m: m.chat_id == CHAT and m.method == "sendMessage" and m.plain[:1] == "🔔",
                count=n,
                timeout=_WAIT_S,
            )
            last = fired[-1]
            received = next(
                c.t
                for c in telegram.calls[calls:]
                if c.method == "sendMessage" and c.params.get("chat_id") == str(CHAT)
            )
            samples.append(received - written)
    return samples


async def _rearm(telegram: FakeTelegram, firing: SentMessage) -> None:
    """Press the firing's Re-arm button (the second of its row) and await the bot's answer."""
    markup = firing.reply_markup or {}
    button = markup["inline_keyboard"][0][1]
    answered = len(telegram.callback_answers)
    telegram.inject_callback(CHAT, button["callback_data"], firing.message_id)
    await telegram.wait_for_call("answerCallbackQuery", count=answered + 1, timeout=_WAIT_S)
    said = telegram.callback_answers[answered].get("text", "")
    if "re-armed" not in said:
        raise RuntimeError(f"pressing {button['text']!r} did not re-arm: {said!r}")


@contextlib.asynccontextmanager
async def _bot(env: dict[str, str], cwd: Path) -> AsyncIterator[Path]:
    """``python -m bot`` in ``cwd``, logging to ``cwd/bot.log``; stopped at the end."""
    log = cwd / "bot.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=out, stderr=out
        )
    try:
        yield log
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(_WAIT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alarm_latency", description=__doc__)
    parser.add_argument("--firings", type=int, default=200)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    result = asyncio.run(measure(args.firings))
    result["run_s"] = time.perf_counter() - began
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
