"""``python -m scripts.crash_delivery``: what a crash costs the delivery queue, per policy.

For each ``DeliveryPolicy``, a real ``python -m bot`` process delivers ``--messages`` messages,
put straight into its outbox (the SQLite file, or Redis with ``--redis URL``), to the fake Bot
API served by this script, whose every answer takes ``--send-delay-s``. The process is
SIGKILLed ``--kills`` times, each at a random moment while it delivers (uniform over a span
after its first send, sized so the kills spread over the whole delivery), and restarted each
time; then it is left to finish and stopped with SIGTERM. The fake's log of every message it
accepted gives, per policy, how many never arrived (lost) and how many arrived more than once
(duplicated); the outbox gives how many were set aside as "outcome unknown after a crash",
and of those how many had arrived anyway::

    python -m scripts.crash_delivery                  # 300 messages, 200 kills, both policies
    python -m scripts.crash_delivery --messages 30 --kills 5 --policy at_most_once --seed 1

With 200 kills in 300 messages every run is killed within tens of ms of its first send, while
the process is still busy starting; ``--warm-s 1 --rate 20`` (and fewer kills) measures a
process that has been delivering at a steady pace instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from bot.notifier import UNKNOWN_AFTER_CRASH
from bot.outbox import DeliveryPolicy, Job, RedisOutbox, SqliteOutbox
from tests.fakes.bot_env import fake_bot_env
from tests.fakes.fake_binance import TEST_API_KEY, TEST_API_SECRET, FakeBinance
from tests.fakes.fake_telegram import FakeTelegram

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from bot.outbox import Outbox

__all__ = ("Shape", "Tally", "main", "measure")

TOKEN: Final = "4343:CRASH"  # noqa: S105 - the fake Bot API's token, not a credential
CHATS: Final = 30
START_S: Final = 120.0  # a started bot must send within this long (a loaded machine is slow)
FINISH_S: Final = 120.0  # the last run must empty the outbox within this long
_POLL_S: Final = 0.1  # how often the last run's outbox is looked at (another process's file)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """What the kills cost one policy."""

    policy: DeliveryPolicy
    messages: int
    kills: int
    kills_mid_send: int  # kills while the fake was processing a sendMessage of the bot's
    lost: int  # never arrived
    duplicated: int  # arrived more than once
    set_aside: int  # dead letters "outcome unknown after a crash"
    set_aside_arrived: int  # of those, arrived anyway: Telegram had taken them
    unaccounted: int  # lost and not a dead letter either: must be 0
    seconds: float

    def line(self) -> str:
        return (
            f"{self.policy.value:<13}  {self.messages} messages, {self.kills} kills "
            f"({self.kills_mid_send} with a send in flight): lost {self.lost}, "
            f"duplicated {self.duplicated}; set aside as {UNKNOWN_AFTER_CRASH!r} "
            f"{self.set_aside} (arrived anyway {self.set_aside_arrived}); "
            f"unaccounted {self.unaccounted}; {self.seconds:.0f} s"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """How a measurement runs (the command line's options)."""

    messages: int = 300
    kills: int = 200
    concurrency: int = 4  # TELEGRAM_DELIVERY_CONCURRENCY
    send_delay_s: float = 0.02  # how long the fake takes to answer a sendMessage
    rate: float = 1000.0  # TELEGRAM_GLOBAL_RATE (1000: no limit here)
    warm_s: float = 0.0  # each run delivers this long before its random kill moment
    seed: int | None = None  # the same kill moments again


async def measure(
    policy: DeliveryPolicy,
    shape: Shape,
    *,
    workdir: Path,
    redis_url: str | None = None,
    progress: Callable[[str], object] | None = None,
) -> Tally:
    """Deliver ``shape.messages`` of ``policy`` through a bot killed ``shape.kills`` times, in
    ``workdir`` (and ``redis_url``'s Redis); what it cost."""
    messages, kills, concurrency = shape.messages, shape.kills, shape.concurrency
    rng = random.Random(shape.seed)  # noqa: S311 - kill moments, not secrets
    began = time.monotonic()
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    prefix = f"crash{os.getpid()}{policy.value}"
    chats = [2_000_000 + i for i in range(CHATS)]
    jobs = [
        Job(id=f"m{i}", chat_id=chats[i % CHATS], text=f"{policy.value} {i}", policy=policy)
        for i in range(messages)
    ]

    def store() -> Outbox:
        if redis_url:
            return RedisOutbox.from_url(redis_url, prefix=f"{prefix}:")
        return SqliteOutbox(workdir / "outbox.sqlite3")

    async with (
        FakeTelegram(TOKEN, chat_rate=1000, global_rate=100_000) as telegram,
        FakeBinance(api_keys={TEST_API_KEY: TEST_API_SECRET}) as binance,
    ):
        for chat in chats:
            telegram.add_chat(chat)
        telegram.delay("sendMessage", shape.send_delay_s)
        async with _opened(store()) as outbox:
            await outbox.put_many(jobs)
        env = fake_bot_env(
            telegram.url,
            binance.url,
            TOKEN,
            TELEGRAM_OUTBOX_PATH=str(workdir / "outbox.sqlite3"),
            TELEGRAM_CHAT_INTERVAL_S="0",
            TELEGRAM_GLOBAL_RATE=str(shape.rate),
            TELEGRAM_DELIVERY_CONCURRENCY=str(concurrency),
            TELEGRAM_DELIVERY_LEASE_S="1",  # a killed holder's Redis lease ends soon
            LOG_FORMAT="json",
            **({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix} if redis_url else {}),
        )
        guess_s = shape.send_delay_s * 2 / concurrency  # per message, until measured
        killer = _Killer(telegram, env, workdir, rng, guess_s, shape.warm_s)
        done = mid_send = 0
        while done < kills:
            async with _opened(store()) as outbox:
                left = await outbox.depth()
            if left == 0:
                break
            killed_mid_send = await killer.run_and_kill(left / (kills - done + 1), store)
            if killed_mid_send is None:  # it had only jobs to set aside, and did so
                break
            mid_send += killed_mid_send
            done += 1
            if progress is not None and done % 10 == 0:
                progress(f"{policy.value}: {done} kills, {left} messages were left")
        await killer.run_to_the_end(store)
        async with _opened(store()) as outbox:
            dead = await outbox.dead_letters()
        arrived = Counter(m.text for m in telegram.sent)
    texts = [job.text for job in jobs]
    unknown = {job.text for job, reason in dead if reason == UNKNOWN_AFTER_CRASH}
    return Tally(
        policy=policy,
        messages=messages,
        kills=done,
        kills_mid_send=mid_send,
        lost=sum(arrived[t] == 0 for t in texts),
        duplicated=sum(arrived[t] > 1 for t in texts),
        set_aside=len(unknown),
        set_aside_arrived=sum(arrived[t] > 0 for t in unknown),
        unaccounted=sum(arrived[t] == 0 and t not in unknown for t in texts),
        seconds=time.monotonic() - began,
    )


class _Killer:
    """Starts the bot, and SIGKILLs it at a random moment once it sends."""

    def __init__(
        self,
        telegram: FakeTelegram,
        env: dict[str, str],
        workdir: Path,
        rng: random.Random,
        per_message_s: float,
        warm_s: float,
    ) -> None:
        self._telegram = telegram
        self._warm_s = warm_s
        self._env = env
        self._workdir = workdir
        self._rng = rng
        self._spent_s = 0.0  # time delivering before kills, all runs together
        self._delivered = 0  # messages the fake accepted meanwhile
        self._guess_s = per_message_s

    async def run_and_kill(self, target: float, store: Callable[[], Outbox]) -> int | None:
        """One run killed after about ``target`` deliveries: 1 if a send was in flight then,
        else 0; None if it sent nothing because the outbox emptied (jobs set aside)."""
        sending = asyncio.Event()
        self._telegram.on_request = lambda method, _params: (
            sending.set() if method == "sendMessage" else None
        )
        proc = await self._start()
        try:
            if not await self._until_sending(sending, proc, store):
                return None
            first = len(self._telegram.sent)
            await asyncio.sleep(self._warm_s)  # delivering at its steady pace by then
            before, began = len(self._telegram.sent), time.monotonic()
            target = max(1.0, target - (before - first))
            per_message_s = self._spent_s / self._delivered if self._delivered else self._guess_s
            await asyncio.sleep(self._rng.uniform(0.0, 2 * target * per_message_s))
            in_flight = any(
                c.method == "sendMessage" and c.status is None for c in self._telegram.calls
            )
        finally:
            with contextlib.suppress(ProcessLookupError):  # it died by itself: _until said so
                proc.kill()
            await proc.wait()
        self._spent_s += time.monotonic() - began
        self._delivered += len(self._telegram.sent) - before
        self._telegram.on_request = None
        await self._telegram.wait_until_idle(timeout=30)
        return int(in_flight)

    async def run_to_the_end(self, store: Callable[[], Outbox]) -> None:
        """A last run, left to empty the outbox, then stopped as on ``docker stop``."""
        proc = await self._start()
        try:
            emptied = asyncio.create_task(_until_empty(store))
            exited = asyncio.create_task(proc.wait())
            await asyncio.wait(
                (emptied, exited), timeout=FINISH_S, return_when=asyncio.FIRST_COMPLETED
            )
            exited.cancel()
            if not emptied.done():
                emptied.cancel()
                raise RuntimeError(f"the outbox was not emptied in {FINISH_S} s{self._tail()}")
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _start(self) -> asyncio.subprocess.Process:
        with (self._workdir / "bot.log").open("ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                cwd=self._workdir,
                env=self._env,
                stdout=log,
                stderr=log,
            )

    async def _until_sending(
        self, sending: asyncio.Event, proc: asyncio.subprocess.Process, store: Callable[[], Outbox]
    ) -> bool:
        """True once the bot sends, False once the outbox is empty without it."""
        tasks = (
            asyncio.create_task(sending.wait()),
            asyncio.create_task(proc.wait()),
            asyncio.create_task(_until_empty(store)),
        )
        await asyncio.wait(tasks, timeout=START_S, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if sending.is_set():
            return True
        if tasks[2].done() and not tasks[2].cancelled():
            return False
        raise RuntimeError(f"the bot sent nothing within {START_S} s{self._tail()}")

    def _tail(self) -> str:
        lines = (self._workdir / "bot.log").read_text(errors="replace").splitlines()
        return "; its log ends:\n" + "\n".join(lines[-5:])


async def _until_empty(store: Callable[[], Outbox]) -> None:
    """Until no job waits in the outbox (another process's: no event to await)."""
    async with _opened(store()) as outbox:
        while await outbox.depth() > 0:  # noqa: ASYNC110 - no event crosses processes
            await asyncio.sleep(_POLL_S)


@contextlib.asynccontextmanager
async def _opened(outbox: Outbox) -> AsyncIterator[Outbox]:
    await outbox.open()
    try:
        yield outbox
    finally:
        await outbox.close()


async def _main(args: argparse.Namespace) -> None:
    policies = list(DeliveryPolicy) if args.policy == "both" else [DeliveryPolicy(args.policy)]
    shape = Shape(
        messages=args.messages,
        kills=args.kills,
        concurrency=args.concurrency,
        send_delay_s=args.send_delay_s,
        rate=args.rate,
        warm_s=args.warm_s,
        seed=args.seed,
    )
    print(  # noqa: T201 - the script's output
        f"{shape.messages} messages to {CHATS} chats per policy, answers after "
        f"{shape.send_delay_s * 1000:.0f} ms, {shape.concurrency} sends at once, at most "
        f"{shape.rate:g}/s, outbox {'Redis' if args.redis else 'SQLite'}; {shape.kills} "
        f"SIGKILLs at random moments, each {shape.warm_s:g} s or more after its run's first send",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="crash-delivery-") as tmp:
        for policy in policies:
            tally = await measure(
                policy,
                shape,
                workdir=Path(tmp) / policy.value,
                redis_url=args.redis,
                progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True),  # noqa: T201
            )
            print(tally.line(), flush=True)  # noqa: T201 - the script's output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--policy", choices=["both", *DeliveryPolicy], default="both")
    parser.add_argument("--redis", metavar="URL", help="use this Redis for the outbox")
    parser.add_argument("--seed", type=int, help="for the same kill moments again")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="TELEGRAM_DELIVERY_CONCURRENCY (4)"
    )
    parser.add_argument(
        "--send-delay-s", type=float, default=0.02, help="how long the fake takes to answer"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="TELEGRAM_GLOBAL_RATE (1000: no limit)"
    )
    parser.add_argument(
        "--warm-s",
        type=float,
        default=0.0,
        help="each run delivers this long before its kill moment (0: from its first send)",
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
