"""Background tasks are never lost: shutdown either cancels what is left or waits for it."""

from __future__ import annotations

import asyncio

from utils.tasks import BackgroundTasks


async def test_closing_cancels_what_is_left_and_waits_for_it() -> None:
    tasks = BackgroundTasks()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    tasks.spawn(forever())
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(tasks.aclose(), 5)
    assert cancelled.is_set()


async def test_closing_without_cancel_lets_each_task_finish() -> None:
    tasks = BackgroundTasks()
    done: list[int] = []
    release = asyncio.Event()

    async def work(i: int) -> None:
        await release.wait()
        done.append(i)

    async def failing() -> None:
        raise RuntimeError("reported by its owner, not by aclose")

    for i in range(3):
        tasks.spawn(work(i))
    tasks.spawn(failing())
    release.set()
    await asyncio.wait_for(tasks.aclose(cancel=False), 5)
    assert sorted(done) == [0, 1, 2]
