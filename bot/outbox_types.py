"""The vocabulary of the bot's outbound delivery queue: ``Job``, its ``DeliveryPolicy``,
``ChatState``, ``OutboxFullError`` and the ``Outbox`` protocol that every store backend
provides.

Types only, no I/O. Import them from ``bot.outbox``, which also holds the SQLite backend and
re-exports the Redis one; this module exists so that both backends can share the types
without importing each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

#: Where a job is: waiting to be sent, held for a blocked chat, or set aside for good.
JobState = Literal["pending", "parked", "dead"]

__all__ = (
    "DEFAULT_CAPACITY",
    "DEFAULT_DELIVERED_TTL_S",
    "ChatState",
    "DeliveryPolicy",
    "Job",
    "JobState",
    "Outbox",
    "OutboxFullError",
    "new_job_id",
)

DEFAULT_CAPACITY: Final = 10_000
DEFAULT_DELIVERED_TTL_S: Final = 7 * 86_400.0


class DeliveryPolicy(StrEnum):
    """What a send whose outcome is unknown becomes. The Bot API has no idempotency key, so a
    message whose request went out but whose answer never came back (the process was killed,
    the connection dropped, the request timed out) may or may not have reached the user.

    ``AT_LEAST_ONCE`` sends it again: never lost, possibly twice (alarms, the default).
    ``AT_MOST_ONCE`` is marked "sending" in the store before its request and is never sent
    again once its outcome is unknown: it is set aside as a dead letter with the reason,
    possibly lost, never twice (admin alerts).
    """

    AT_LEAST_ONCE = "at_least_once"
    AT_MOST_ONCE = "at_most_once"


class ChatState(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One message to one chat. ``seq`` and ``created_at`` are set by the store on put."""

    id: str  # caller-chosen dedupe key (e.g. "alarm:12:1700000000") or new_job_id()
    chat_id: int
    text: str  # HTML, ready to send
    seq: int = 0  # enqueue order, strictly increasing
    attempts: int = 0
    not_before: float = 0.0  # unix time before which delivery must not be tried
    created_at: float = 0.0  # unix time
    policy: DeliveryPolicy = DeliveryPolicy.AT_LEAST_ONCE
    markup: str = ""  # inline buttons as JSON rows of [text, callback_data]; "" for none


class OutboxFullError(Exception):
    """Pending plus parked jobs fill the capacity; the put stored nothing."""

    def __init__(self, depth: int, capacity: int) -> None:
        super().__init__(
            f"outbox is full: {depth} of {capacity} jobs are waiting (pending + parked); "
            "nothing was stored: retry once jobs are delivered, or raise the capacity"
        )
        self.depth, self.capacity = depth, capacity


def new_job_id() -> str:
    return uuid.uuid4().hex


class Outbox(Protocol):
    """What the notifier needs from a store; ``SqliteOutbox`` and ``RedisOutbox`` provide it."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def put(self, job: Job) -> Job | None:
        """Store the job atomically and return it with ``seq`` and ``created_at`` set.

        Returns None when its id is pending, parked, dead or was delivered within
        ``delivered_ttl_s``; raises OutboxFullError (storing nothing) when pending plus
        parked jobs already fill the capacity. A job for a BLOCKED or NOT_FOUND chat is stored
        parked.
        """

    async def put_many(self, jobs: Sequence[Job]) -> list[Job | None]:
        """``put`` for each job in one transaction; all or nothing when they do not fit."""

    async def pending(self, limit: int | None = None) -> list[Job]:
        """Jobs waiting for delivery (not parked, not dead), by ``seq``."""

    async def get(self, job_id: str) -> Job | None: ...

    async def ack(self, job_id: str) -> bool:
        """Delivered: forget the job, remember its id; False if no such job is stored."""

    async def retry(self, job_id: str, *, attempts: int, not_before: float) -> None:
        """Record a failed attempt and clear its "sending" mark; the job keeps its place.
        No-op for an unknown id."""

    async def mark_sending(self, job_id: str) -> bool:
        """Record, durably, that the job's request is about to go out (``AT_MOST_ONCE``);
        False, marking nothing, when it is not pending any more."""

    async def dead_letter_sending(self, reason: str, *, keep: Collection[str] = ()) -> list[Job]:
        """Set aside every job still marked "sending" but those in ``keep`` (the sends this
        process has in flight): their request went out and no answer was recorded, so their
        outcome is unknown. Returns them, by ``seq``."""

    async def park_chat(self, chat_id: int, state: ChatState) -> int:
        """Record the chat as BLOCKED or NOT_FOUND and park its pending jobs; how many."""

    async def reactivate_chat(self, chat_id: int) -> int:
        """Forget the chat's state and make its parked jobs pending again; how many."""

    async def chat_state(self, chat_id: int) -> ChatState: ...

    async def chat_states(self) -> dict[int, ChatState]:
        """Every chat that is not ACTIVE."""

    async def parked(self, chat_id: int | None = None) -> list[Job]: ...

    async def dead_letter(self, job_id: str, reason: str) -> None:
        """Give up on a pending or parked job, keeping it with a reason (and no "sending"
        mark)."""

    async def dead_letters(self) -> list[tuple[Job, str]]: ...

    async def depth(self, state: JobState = "pending") -> int:
        """How many jobs are in ``state``: pending (the default), parked or dead."""

    async def lead(self, owner: str, ttl_s: float) -> bool:
        """Take or renew the delivery lease for ``ttl_s``; False while another owner has it."""

    async def release(self, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""
