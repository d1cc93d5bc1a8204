"""The render processes: a small fixed ``ProcessPoolExecutor`` (spawn start method) that
draws ``ChartFrame``s to PNG bytes, so the bot's event loop keeps answering while charts are
drawn (a 500-candle chart costs about 0.15 s of CPU, see ``bench/chart.py``).

The pool is created on the first render, not before: a bot whose users never ask for a chart
starts no process. ``aclose()`` shuts it down (the app does, on stop). Workers load
matplotlib once, at start; the bot's own process never imports it. A worker that dies (killed,
out of memory) breaks the executor: that render fails with ``ChartRenderError`` and the next
one starts a new pool.

``held=True`` makes every render wait in its worker until ``release()``: tests use it to keep
renders busy for as long as they need, without timing anything.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import structlog

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from analysis.chart_frame import ChartFrame

__all__ = ("DEFAULT_WORKERS", "ChartPool", "ChartRenderError", "WorkerProbe")

#: Render processes: two keep one core free for the bot on a 2-core machine; charts queue.
DEFAULT_WORKERS: Final = 2
StartMethod = Literal["spawn", "forkserver"]
_log = structlog.get_logger(__name__)
#: A worker's own state: the hold gate and its render count (set by ``_start_worker``).
_WORKER: dict[str, Any] = {}


class ChartRenderError(RuntimeError):
    """A render process died or the pool is closed; the chart was not drawn."""


@dataclass(frozen=True, slots=True)
class WorkerProbe:
    """One worker's state between renders: its pid, renders done, figures still alive (all
    objects, and those pyplot holds) and its peak resident memory."""

    pid: int
    renders: int
    live_figures: int
    pyplot_figures: int
    peak_rss_bytes: int


class ChartPool:
    """Render processes, started on first use; ``await render(frame)`` answers PNG bytes."""

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        start_method: StartMethod = "spawn",
        held: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a chart pool needs at least one worker, got {workers}")
        self._workers = workers
        self._context = multiprocessing.get_context(start_method)
        self._gate: Event | None = self._context.Event() if held else None
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False
        self.submitted = 0  # renders handed to the pool
        self.completed = 0  # renders that came back with a picture
        self._busy = 0  # renders handed over and not back yet
        self._busy_changed = asyncio.Event()

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def started(self) -> bool:
        """Whether the processes exist (the first render starts them)."""
        return self._executor is not None

    @property
    def busy(self) -> int:
        """Renders handed to the processes and not back yet (drawing or queued)."""
        return self._busy

    async def render(self, frame: ChartFrame) -> bytes:
        """Draw ``frame`` in a render process; the event loop is free meanwhile."""
        self.submitted += 1
        self._set_busy(+1)
        try:
            png: bytes = await self._run(_render, frame)
        finally:
            self._set_busy(-1)
        self.completed += 1
        return png

    async def wait_busy(self, count: int) -> None:
        """Return once at least ``count`` renders are in the pool at the same time."""
        while self._busy < count:
            self._busy_changed.clear()
            await self._busy_changed.wait()

    async def probe(self) -> WorkerProbe:
        """The state of the worker that takes this job (with one worker: that worker)."""
        result: WorkerProbe = await self._run(_probe)
        return result

    def release(self) -> None:
        """Let held renders go (``held=True``); every later render goes at once."""
        if self._gate is not None:
            self._gate.set()

    async def aclose(self) -> None:
        """Stop the processes; renders still queued fail with ``ChartRenderError``."""
        self._closed = True
        self.release()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _set_busy(self, step: int) -> None:
        self._busy += step
        self._busy_changed.set()

    async def _run(self, job: Any, *args: Any) -> Any:
        executor = self._ensure()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, job, *args)
        except BrokenProcessPool as e:
            if self._executor is executor:  # the next render starts a new pool
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            _log.error("chart_pool_broken", error=str(e))
            raise ChartRenderError("a chart render process died; try again") from e

    def _ensure(self) -> ProcessPoolExecutor:
        if self._closed:
            raise ChartRenderError("the chart pool is closed")
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=self._context,
                initializer=_start_worker,
                initargs=(self._gate,),
            )
            _log.info("chart_pool_started", workers=self._workers)
        return self._executor


# --- in the worker process -------------------------------------------------------------
def _start_worker(gate: Event | None) -> None:
    from analysis import chart_render  # noqa: PLC0415 - workers only: no matplotlib in the bot

    chart_render.use_agg()
    _WORKER.update(gate=gate, renders=0, module=chart_render)


def _render(frame: ChartFrame) -> bytes:
    gate: Event | None = _WORKER["gate"]
    if gate is not None:
        gate.wait()
    png: bytes = _WORKER["module"].render_png(frame)
    _WORKER["renders"] += 1
    return png


def _probe() -> WorkerProbe:
    module = _WORKER["module"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return WorkerProbe(
        pid=os.getpid(),
        renders=_WORKER["renders"],
        live_figures=module.live_figures(),
        pyplot_figures=module.pyplot_figures(),
        peak_rss_bytes=peak if sys.platform == "darwin" else peak * 1024,  # Linux: KiB
    )
