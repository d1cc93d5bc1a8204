"""The engine's start-up load from the stores' rows (``alarm_codec.LiveRow``, what
``armed_rows`` yields): ``admit_rows`` holds each row as ``AlarmIndex.admit_fields`` would,
building no ``Alarm``, ``AlarmSpec`` or ``Decimal``.

Almost every row of a start-up load is one case: an ARMED alarm with an id above every id
held and no free slot to reuse. That case is inlined here (slot arrays appended, the id map
extended once a call, the alarm appended to its book's list, sorted when the bulk load
ends), as ``AlarmIndex._alloc``, ``_count`` and ``_place`` do it in bulk mode; every other
row (a cooling repeat, a snooze, an id held already, an invalid row) goes through
``admit_fields``.

Measured on ``bench/alarms.py``'s million (CPU time, this machine): about 1.9 µs a row, and
0.3 s to sort the lists at the end, against about 3.8 µs a row through ``admit_fields``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from utils.alarms.alarm_book import INF, Change, Day, Pairs
from utils.alarms.alarm_codec import SPEC_FIELDS
from utils.alarms.alarm_index import (
    ABOVE,
    BELOW,
    CHANGE,
    CROSS,
    DAY,
    DEFAULT_HYS,
    DIR_CODES,
    DOWN,
    IN_AD,
    IN_AU,
    IN_DN,
    IN_GRP,
    IN_UP,
    KIND_CODES,
    STRICT,
    UP,
)
from utils.alarms.alarm_model import DEFAULT_HYSTERESIS, AlarmState

if TYPE_CHECKING:
    from collections.abc import Iterable

    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_index import AlarmIndex

__all__ = ("admit_rows",)

#: The leading ``spec_data`` fields ``admit_rows`` unpacks, in the codec's order.
_SPEC_HEAD: Final = (
    *("format", "user_id", "created_at", "symbol", "market", "kind", "direction", "level"),
    *("percent", "window_s", "repeat_s", "hysteresis"),
)
if SPEC_FIELDS[: len(_SPEC_HEAD)] != _SPEC_HEAD:
    raise ImportError("alarm_codec.SPEC_FIELDS changed: update alarm_rows.admit_rows")
_HEAD: Final = len(_SPEC_HEAD)
_ARMED: Final = AlarmState.ARMED.value
_DEFAULT_HYS_TEXT: Final = str(DEFAULT_HYSTERESIS)  # as spec_data stores it


def admit_rows(ix: AlarmIndex, rows: Iterable[LiveRow], now: float) -> int:  # noqa: C901, PLR0912, PLR0915 - one loop, inlined
    """Hold every row as ``ix.admit_fields`` would (``now`` decides cooldowns); ``ix`` must
    be in a bulk load (``begin_bulk``). How many are held."""
    if not ix.bulk:
        raise RuntimeError("admit_rows needs a bulk load: call begin_bulk() first")
    kinds, dirs, markets, next_after = KIND_CODES, DIR_CODES, ix.markets, math.nextafter
    aids, chats, seqs, bids, lvls = ix.aid, ix.chat, ix.seq, ix.book, ix.lvl
    kds, wheres, reps, wins, hyss, gens = ix.kd, ix.where, ix.rep, ix.win, ix.hys, ix.gen
    touched, free, extend_ids = ix.bulk_books, ix.free, ix.ids.extend
    new_ids: list[int] = []
    new_slots: list[int] = []
    top = ix.ids.top()
    taken = slow = 0
    for aid, chat, state, seq, fired_at, rearm_at, _, spec in rows:
        (_, _, _, symbol, market, kind, direction, level, percent, window, repeat, h) = spec[
            :_HEAD
        ]
        k = kinds.get(kind)
        if k is None:  # an indicator alarm: alarm_indicator's, never the price engine's
            continue
        d = dirs[direction]
        value = level if k <= CROSS else percent
        window = window or 0
        hys = DEFAULT_HYS if h == _DEFAULT_HYS_TEXT else float(h)
        if aid <= top or state != _ARMED or free or value is None or (k == CHANGE and window <= 0):
            extend_ids(new_ids, new_slots)  # in order, before admit_fields puts its own
            new_ids, new_slots = [], []
            slow += ix.admit_fields(aid, chat, seq, state, fired_at, rearm_at, market, symbol,
                                    k, d, value, window, repeat, hys, None, now)  # fmt: skip
            top = max(top, aid)
            continue
        books = markets.get(market)
        book = None if books is None else books.get(symbol)
        if book is None:
            book = ix.book_for(market, symbol)
        s = len(aids)
        lv = float(value)
        bid = book.bid
        aids.append(aid)
        chats.append(chat)
        seqs.append(seq)
        bids.append(bid)
        lvls.append(lv)
        kds.append(k | d << 3)
        reps.append(-1 if repeat is None else repeat)
        wins.append(window)
        hyss.append(hys)
        gens.append(0)
        new_ids.append(aid)
        new_slots.append(s)
        top = aid
        touched.add(bid)
        if k == CHANGE:
            chg = book.chg
            if chg is None:
                chg = book.chg = Change()
            chg.hist.reach(window)
            chg.n += 1
            book.n += 1
            pairs = chg.groups.get((window, d))
            if pairs is None:
                pairs = chg.groups[window, d] = Pairs()
            pairs.keys.append(lv)
            pairs.slots.append(s)
            wheres.append(IN_GRP)
        elif k == DAY:
            day = book.day
            if day is None:
                day = book.day = Day()
            day.n += 1
            pairs = day.groups[d]
            pairs.keys.append(lv)
            pairs.slots.append(s)
            wheres.append(IN_GRP)
        else:
            book.n += 1
            price = book.last
            if k == ABOVE or (k == CROSS and d != DOWN and price < lv):
                book.up.keys.append(lv)
                book.up.slots.append(s)
                wheres.append(IN_UP)
            elif k == BELOW or (k == CROSS and d != UP and price > lv):
                book.dn.keys.append(lv)
                book.dn.slots.append(s)
                wheres.append(IN_DN)
            else:  # a CROSS at or past the level, or with no price: first to the other side
                where = STRICT
                if d != DOWN:
                    book.ad.keys.append(next_after(lv, -INF))
                    book.ad.slots.append(s)
                    where |= IN_AD
                if d != UP:
                    book.au.keys.append(next_after(lv, INF))
                    book.au.slots.append(s)
                    where |= IN_AU
                wheres.append(where)
        taken += 1
    extend_ids(new_ids, new_slots)
    ix.live += taken
    return taken + slow
