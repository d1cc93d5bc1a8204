"""Who may run what: a handler's ``access`` flag (``"user"`` for authorised users, ``"admin"``)
is checked by ``AccessMiddleware`` before the handler runs; others get a polite refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiogram.types import TelegramObject, User

__all__ = ("AccessMiddleware", "AccessPolicy", "Level")

Level = Literal["user", "admin"]


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Authorised users (``ALLOWED_USER_IDS``) and admins; admins are authorised too."""

    allowed: frozenset[int]
    admins: frozenset[int]

    def permits(self, user_id: int, level: Level) -> bool:
        if level == "admin":
            return user_id in self.admins
        return user_id in self.allowed or user_id in self.admins


class AccessMiddleware(BaseMiddleware):
    """Inner middleware: runs only for the handler that matched, reads its ``access`` flag."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        level: Level | None = get_flag(data, "access")
        user: User | None = data.get("event_from_user")
        if level is None or (user is not None and self.policy.permits(user.id, level)):
            return await handler(event, data)
        if isinstance(event, Message):
            if level == "admin":
                await event.answer(_("Sorry, this command is for the bot's admins only."))
            else:
                await event.answer(
                    _(
                        "Sorry, this command is only for authorised users. Ask the bot's "
                        "owner to add your id ({user_id}) to ALLOWED_USER_IDS."
                    ).format(user_id=user.id if user else "?")
                )
        return None
