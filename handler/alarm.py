"""Price alarms: ``/alarm``, ``/alarms``, ``/delalarm``, ``/history``, ``/tz``, and the buttons
under the alarm list and under firing messages. The work is the ``AlarmService``'s (injected
as ``alarms``); this module parses the command's shape, checks who may do what and words the
answers.

In a group, alarms belong to the group: anyone may set one and read the list, but only the
alarm's creator or a group administrator (``getChatMember``) may pause, re-arm, snooze or
delete it, and only an administrator may delete them all. ``ALARMS_ALLOWED=users`` keeps
``/alarm`` to ``ALLOWED_USER_IDS`` (and admins). A refused input stores nothing; a button on
an alarm that is gone, or not this chat's, is answered with a line saying so.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InaccessibleMessage, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from analysis.errors import NotEnoughHistoryError
from handler.commands import N_, CommandSpec
from utils.alarms.alarm_errors import (
    USAGE,
    AlarmExistsError,
    AlarmLimitError,
    AlarmSyntaxError,
)
from utils.alarms.alarm_parser import describe
from utils.alarms.alarm_service import (
    AlarmIndicatorsOffError,
    AlarmSymbolError,
    AlarmWouldFireError,
)
from utils.alarms.alarm_text import (
    BUTTON_PREFIX,
    confirmation,
    history_text,
    list_buttons,
    list_text,
    pack,
    price_text,
    unpack,
    when_text,
)
from utils.text import escape

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.filters import CommandObject
    from aiogram.types import CallbackQuery, Message

    from handler.commands import AccessPolicy
    from utils.alarms.alarm_model import Alarm
    from utils.alarms.alarm_service import AlarmService
    from utils.alarms.alarm_text import Buttons, Press

__all__ = ("COMMANDS", "PAGE", "SNOOZE_S", "get_router")

ALARM = CommandSpec(
    name="alarm",
    args="SYMBOL CONDITION [options] [note]",
    menu=N_("Set a price alarm: /alarm btc > 70000"),
    help=N_(
        "a price alarm: above 70000, below 2500, cross 150, +5% 1h, 24h +10%;\n"
        "  options: futures, repeat [30m], for 7d, until 2027-01-31, now; then a note"
    ),
    detail=(
        N_(
            "Indicator alarms: rsi > 70 1h, rsi < 30 4h (RSI(14), Wilder), macd cross [up|down] "
            "4h (the MACD(12,26,9) line against its signal), ema 50 cross [up|down] 1d (the "
            "close against EMA 50; periods 2 to 500). Intervals: 1m 3m 5m 15m 30m 1h 2h 4h 6h "
            "8h 12h 1d 3d 1w."
        ),
        N_(
            "They are checked only when a candle of that interval closes, never on the forming "
            "candle, and fire at the close where the condition becomes true (at the close "
            "before it was not). With repeat, they fire again only after a close where the "
            "condition was false. The same options as price alarms apply."
        ),
    ),
)
ALARMS = CommandSpec(
    name="alarms",
    menu=N_("Your alarms"),
    help=N_("this chat's alarms, with buttons to pause, resume and delete"),
)
DELALARM = CommandSpec(
    name="delalarm",
    args="12 | all",
    menu=N_("Delete an alarm"),
    help=N_("delete an alarm by its number, or all of this chat's"),
)
HISTORY = CommandSpec(
    name="history", menu=N_("Alarms that fired"), help=N_("the last 20 alarm firings here")
)
TZ = CommandSpec(
    name="tz",
    args="[Europe/Istanbul]",
    menu=N_("Time zone of alarm times"),
    help=N_("show or set the time zone alarm times are shown in"),
)
COMMANDS = (ALARM, ALARMS, DELALARM, HISTORY, TZ)

PAGE: Final = 10  # alarms per page of /alarms
SNOOZE_S: Final = 3600
_HISTORY: Final = 20
_ADMINS: Final = frozenset({"creator", "administrator"})


# --- /alarm --------------------------------------------------------------------------------
async def cmd_alarm(
    message: Message, command: CommandObject, alarms: AlarmService, access: AccessPolicy
) -> None:
    user_id = message.from_user.id if message.from_user else message.chat.id
    if alarms.settings.allowed == "users" and not access.permits(user_id, "user"):
        await message.answer(_("Alarms are for the authorised users of this bot."))
        return
    text = (command.args or "").strip()
    if not text:
        await message.answer(escape(_(USAGE)))
        return
    try:
        added = await alarms.add_alarm(
            message.chat.id, user_id, text, locale=get_i18n().current_locale
        )
    except AlarmSyntaxError as e:
        await message.answer(escape(e.translate(_)))
    except AlarmSymbolError as e:
        await message.answer(_symbol_text(e))
    except AlarmWouldFireError as e:
        await message.answer(_would_fire_text(e, text))
    except AlarmExistsError as e:
        await message.answer(
            _("This chat already has alarm #{id} for that condition; see /alarms.").format(
                id=e.existing_id
            )
        )
    except AlarmLimitError as e:
        await message.answer(_limit_text(e))
    except AlarmIndicatorsOffError:
        await message.answer(_("Indicator alarms are not available on this bot."))
    except NotEnoughHistoryError as e:
        await message.answer(
            _(
                "Not enough history for that indicator: Binance lists {have} closed candles "
                "of that interval, {need} are needed."
            ).format(have=e.have, need=e.need)
        )
    else:
        tz = await alarms.get_tz(message.chat.id)
        await message.answer(
            confirmation(
                added.alarm,
                _,
                tz=tz,
                price=added.price,
                change=added.change,
                indicator=added.indicator,
            )
        )


def _symbol_text(e: AlarmSymbolError) -> str:
    if e.suggestions:
        return _("{symbol} is not traded on Binance {market}. Did you mean {suggestions}?").format(
            symbol=escape(e.symbol), market=e.market, suggestions=", ".join(e.suggestions)
        )
    return _("{symbol} is not traded on Binance {market}.").format(
        symbol=escape(e.symbol), market=e.market
    )


def _would_fire_text(e: AlarmWouldFireError, text: str) -> str:
    now = f"{e.change:+.2f} %" if e.price is None or e.spec.percent else price_text(e.price)
    return _(
        "{condition}: that is already true (now {now}), so it would fire at once. "
        "To set it anyway, add now: /alarm {text} now"
    ).format(condition=escape(describe(e.spec, gettext=_)), now=now, text=escape(text))


def _limit_text(e: AlarmLimitError) -> str:
    if e.scope == "chat":
        return _(
            "This chat has {count} open alarms, the most it may have ({limit}): "
            "delete some with /delalarm first."
        ).format(count=e.count, limit=e.limit)
    return _("The bot holds {count} alarms, its limit ({limit}); please try again later.").format(
        count=e.count, limit=e.limit
    )


# --- /alarms and its buttons ---------------------------------------------------------------
async def cmd_alarms(message: Message, alarms: AlarmService) -> None:
    text, buttons = await _page(alarms, message.chat.id, 0)
    await message.answer(text, reply_markup=_markup(buttons))


async def _page(alarms: AlarmService, chat_id: int, page: int) -> tuple[str, Buttons]:
    items, total = await alarms.chat_alarms(chat_id, offset=page * PAGE, limit=PAGE)
    pages = max(1, math.ceil(total / PAGE))
    if not items and page > 0:  # the last page emptied: show the one before
        return await _page(alarms, chat_id, min(page, pages) - 1)
    tz = await alarms.get_tz(chat_id)
    text = list_text(items, _, tz=tz, offset=page * PAGE, total=total, now=time.time())
    return text, list_buttons(items, _, page=page, pages=pages)


# --- /delalarm -----------------------------------------------------------------------------
async def cmd_delalarm(
    message: Message, command: CommandObject, bot: Bot, alarms: AlarmService
) -> None:
    arg = (command.args or "").strip().lstrip("#").lower()
    chat_id = message.chat.id
    user_id = message.from_user.id if message.from_user else chat_id
    if arg == "all":
        count = (await alarms.chat_alarms(chat_id, offset=0, limit=1))[1]
        if not count:
            await message.answer(_("This chat has no alarms."))
        elif not await _admin(bot, message.chat.type, chat_id, user_id):
            await message.answer(_("Only a group administrator may delete all its alarms."))
        else:
            keep, drop = _("Keep them"), _("Delete all {count}").format(count=count)
            await message.answer(
                _("Delete all {count} alarms of this chat?").format(count=count),
                reply_markup=_markup([[(drop, pack("all")), (keep, pack("keep"))]]),
            )
        return
    if not arg.isdigit():
        await message.answer(
            _("Usage: /delalarm 12 (an alarm's number from /alarms) or /delalarm all")
        )
        return
    alarm = await alarms.get(int(arg))
    if alarm is None or alarm.chat_id != chat_id:
        await message.answer(_("There is no alarm #{id} in this chat.").format(id=int(arg)))
    elif not await _may_change(bot, message.chat.type, alarm, user_id):
        await message.answer(_not_yours(alarm.id))
    else:
        await alarms.delete(alarm.id)
        await message.answer(_("Alarm #{id} deleted.").format(id=alarm.id))


# --- /history, /tz -------------------------------------------------------------------------
async def cmd_history(message: Message, alarms: AlarmService) -> None:
    firings, known = await alarms.history(message.chat.id, _HISTORY)
    tz = await alarms.get_tz(message.chat.id)
    await message.answer(history_text(firings, known, _, tz=tz))


async def cmd_tz(message: Message, command: CommandObject, alarms: AlarmService) -> None:
    name = (command.args or "").strip()
    if not name:
        tz = await alarms.get_tz(message.chat.id) or "UTC"
        await message.answer(
            _("Alarm times are shown in {tz} (now {time}). Change it: /tz Europe/Istanbul").format(
                tz=escape(tz), time=when_text(time.time(), tz)
            )
        )
        return
    try:
        zone: ZoneInfo | None = ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found (a KeyError), a path, a folder
        zone = None
    if zone is None:
        await message.answer(
            _("“{tz}” is no time zone: use an IANA name like Europe/Istanbul or UTC.").format(
                tz=escape(name[:60])
            )
        )
        return
    await alarms.set_tz(message.chat.id, zone.key)
    await message.answer(
        _("Alarm times are now shown in {tz} (now {time}).").format(
            tz=escape(zone.key), time=when_text(time.time(), zone.key)
        )
    )


# --- buttons -------------------------------------------------------------------------------
async def on_button(query: CallbackQuery, bot: Bot, alarms: AlarmService) -> None:
    press = unpack(query.data)
    message = query.message
    if press is None or message is None or isinstance(message, InaccessibleMessage):
        await query.answer(_("This button is out of date; send /alarms again."))
        return
    chat = message.chat
    if press.action == "page":
        await _show_page(message, alarms, chat.id, press.arg)
        await query.answer()
        return
    if press.action in ("all", "keep"):
        await _delete_all(query, message, bot, alarms, press)
        return
    alarm = await alarms.get(press.alarm_id)
    if alarm is None or alarm.chat_id != chat.id:
        gone = alarm is None
        await query.answer(
            _("Alarm #{id} no longer exists.").format(id=press.alarm_id)
            if gone
            else _("Alarm #{id} is not this chat's.").format(id=press.alarm_id),
            show_alert=True,
        )
        if gone and press.action in ("pause", "resume", "drop"):
            await _show_page(message, alarms, chat.id, press.arg)
        return
    if not await _may_change(bot, chat.type, alarm, query.from_user.id):
        await query.answer(_not_yours(alarm.id), show_alert=True)
        return
    if press.action in ("pause", "resume", "drop"):
        await _list_action(query, message, alarms, alarm, press)
    else:
        await _firing_action(query, message, alarms, alarm, press)


async def _list_action(
    query: CallbackQuery, message: Message, alarms: AlarmService, alarm: Alarm, press: Press
) -> None:
    if press.action == "pause":
        await alarms.pause(alarm.id)
        said = _("Alarm #{id} paused.")
    elif press.action == "resume":
        await alarms.resume(alarm.id)
        said = _("Alarm #{id} armed again.")
    else:
        await alarms.delete(alarm.id)
        said = _("Alarm #{id} deleted.")
    await _show_page(message, alarms, message.chat.id, press.arg)
    await query.answer(said.format(id=alarm.id))


async def _firing_action(
    query: CallbackQuery, message: Message, alarms: AlarmService, alarm: Alarm, press: Press
) -> None:
    tz = await alarms.get_tz(message.chat.id)
    keep: Buttons | None = _buttons_of(message)
    if press.action == "snooze":
        changed = await alarms.snooze(alarm.id, SNOOZE_S)
        until = when_text(changed.rearm_at or 0.0, tz) if changed else ""
        said = _("Alarm #{id} snoozed until {when}.").format(id=alarm.id, when=until)
    elif press.action == "rearm":
        await alarms.rearm(alarm.id)
        said = _("Alarm #{id} re-armed: it fires when the price comes back to the level.").format(
            id=alarm.id
        )
    else:
        await alarms.delete(alarm.id)
        said = _("Alarm #{id} deleted.").format(id=alarm.id)
        keep = [row for row in keep or [] if _id_of(row) != alarm.id]
    text = f"{message.html_text}\n\n{escape(said)}"
    with contextlib.suppress(TelegramAPIError):  # too old to edit: the answer says it
        await message.edit_text(text, reply_markup=_markup(keep or []))
    await query.answer(said)


async def _delete_all(
    query: CallbackQuery, message: Message, bot: Bot, alarms: AlarmService, press: Press
) -> None:
    chat = message.chat
    if not await _admin(bot, chat.type, chat.id, query.from_user.id):
        await query.answer(_("Only a group administrator may delete all its alarms."))
        return
    if press.action == "keep":
        said = _("Nothing was deleted.")
    else:
        count = await alarms.delete_chat(chat.id)
        said = _("Deleted {count} alarms.").format(count=count)
    await message.edit_text(escape(said), reply_markup=None)
    await query.answer(said)


async def _show_page(message: Message, alarms: AlarmService, chat_id: int, page: int) -> None:
    text, buttons = await _page(alarms, chat_id, page)
    with contextlib.suppress(TelegramAPIError):  # "not modified": the list is as it was
        await message.edit_text(text, reply_markup=_markup(buttons))


# --- who may ------------------------------------------------------------------------------
async def _admin(bot: Bot, chat_type: str, chat_id: int, user_id: int) -> bool:
    if chat_type == ChatType.PRIVATE:
        return True
    member = await bot.get_chat_member(chat_id, user_id)
    return member.status in _ADMINS


async def _may_change(bot: Bot, chat_type: str, alarm: Alarm, user_id: int) -> bool:
    return alarm.user_id == user_id or await _admin(bot, chat_type, alarm.chat_id, user_id)


def _not_yours(alarm_id: int) -> str:
    return _("Only its creator or a group administrator may change alarm #{id}.").format(
        id=alarm_id
    )


# --- keyboards ----------------------------------------------------------------------------
def _markup(buttons: Buttons) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in buttons
        ]
    )


def _buttons_of(message: Message) -> Buttons | None:
    markup = message.reply_markup
    if markup is None:
        return None
    return [[(b.text, b.callback_data or "") for b in row] for row in markup.inline_keyboard]


def _id_of(row: list[tuple[str, str]]) -> int:
    press = unpack(row[0][1])
    return press.alarm_id if press else 0


def get_router() -> Router:
    router = Router(name="alarm")
    ALARM.register(router, cmd_alarm)
    ALARMS.register(router, cmd_alarms)
    DELALARM.register(router, cmd_delalarm)
    HISTORY.register(router, cmd_history)
    TZ.register(router, cmd_tz)
    router.callback_query.register(on_button, F.data.startswith(f"{BUTTON_PREFIX}:"))
    return router
