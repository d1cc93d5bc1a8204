"""``make demo`` as a newcomer uses it, driven through its stdin and read from its stdout:
``python -m scripts.demo`` with its fakes and its own ``python -m bot``. An alarm is set, the
fake exchange's price moved with ``:move``, the firing prints by itself (no line typed after
the move) with its buttons, and ``:press 1`` presses one through the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT: Final = Path(__file__).resolve().parents[1]
WAIT_S: Final = 15.0


class Terminal:
    """The demo's stdin and stdout, as a user at the terminal has them."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.screen = ""
        self._read = 0  # how far ``until`` has looked

    def type(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line.encode() + b"\n")

    async def until(self, *texts: str) -> str:
        """What came on the screen since the last wait, once every one of ``texts`` has."""
        assert self._process.stdout is not None
        start = self._read
        try:
            async with asyncio.timeout(WAIT_S):
                while any(self.screen.find(text, start) < 0 for text in texts):
                    chunk = await self._process.stdout.read(4096)
                    if not chunk:
                        raise AssertionError(f"the demo ended before {texts!r}:\n{self.screen}")
                    self.screen += chunk.decode(errors="replace")
        except TimeoutError:
            raise AssertionError(f"no {texts!r} on the screen:\n{self.screen}") from None
        self._read = max(self.screen.find(text, start) + len(text) for text in texts)
        return self.screen[start : self._read]


@contextlib.asynccontextmanager
async def demo(tmp_path: Path) -> AsyncIterator[Terminal]:
    errors = (tmp_path / "demo.err").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.demo",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DEMO_LANG": ""},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=errors,
    )
    try:
        yield Terminal(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the end of input: the demo stops its bot and leaves
        try:
            await asyncio.wait_for(process.wait(), WAIT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        errors.close()


async def test_the_demo_moves_the_price_and_the_alarm_fires_with_buttons_to_press(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as terminal:
        banner = await terminal.until("you> ")
        assert "/alarm btc > 71000" in banner
        assert ":move btc 71500" in banner
        assert ":press 1" in banner

        terminal.type("/alarm btc > 71000 take profit")
        reply = await terminal.until("you> ")
        assert "bot> Alarm #1 is set: BTCUSDT spot price rises to 71,000 or above." in reply

        terminal.type(":move btc 71500")
        assert "demo> BTCUSDT 65000 -> 71500" in await terminal.until("you> ")
        firing = await terminal.until("[3 Delete]")  # printed without another line typed
        assert "bot> 🔔 Alarm #1: BTCUSDT spot price rises to 71,000 or above" in firing
        assert "Touched 71,500" in firing
        assert "take profit" in firing
        assert "[1 Snooze 1 h] [2 Re-arm] [3 Delete]" in firing

        terminal.type(":press 1")
        pressed = await terminal.until(  # the answer, and the firing message changed
            "bot (pop-up)> Alarm #1 snoozed until ", "bot (edited)> 🔔 Alarm #1"
        )
        assert "demo> pressed [Snooze 1 h]" in pressed

        terminal.type(":move nope 1")
        await terminal.until("demo> nope is not traded on the fake exchange")
        terminal.type("/quit")
        await terminal.until("\n")
