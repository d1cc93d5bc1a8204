"""What the alarm engine holds, compactly: no ``Alarm`` objects, only arrays.

- ``AlarmIndex``: every alarm as a dense slot in parallel arrays (id, chat, seq, level or
  percent, book, kind and direction, where it is, repeat, hysteresis, window, generation:
  54 bytes), the id map, the books, the cooldown heap; putting a slot into its book's lists
  and taking it out, re-arming after a cooldown.
- ``alarm_idmap.IdMap``: alarm id -> slot (12 bytes an id).

Where a slot is (``where`` bits): in ``up``/``dn`` (fires when the price reaches the level
from below/above), in ``au``/``ad`` (a re-arming point: reaching it moves the slot to
``dn``/``up``; ``STRICT`` when the point is the level itself, one float past it, else the
hysteresis band), in a percent group, cooling down, or pending (a percent alarm past its
cooldown waiting for its change to fall back under the band).
"""

from __future__ import annotations

import heapq
import math
from array import array
from typing import TYPE_CHECKING, Any, Final

from utils.alarms.alarm_book import BOTH, DOWN, INF, UP, Book, Change, Day, Pairs
from utils.alarms.alarm_idmap import IdMap
from utils.alarms.alarm_model import DEFAULT_HYSTERESIS, AlarmKind, AlarmState, Direction

if TYPE_CHECKING:
    from decimal import Decimal

    from utils.alarms.alarm_model import Alarm

__all__ = (
    "ABOVE",
    "BELOW",
    "BOTH",
    "CHANGE",
    "COOL",
    "CROSS",
    "DAY",
    "DEFAULT_HYS",
    "DIR_CODES",
    "DOWN",
    "IN_AD",
    "IN_AU",
    "IN_DN",
    "IN_GRP",
    "IN_UP",
    "KIND_CODES",
    "PEND",
    "STRICT",
    "UP",
    "AlarmIndex",
)

ABOVE, BELOW, CROSS, CHANGE, DAY = range(5)
IN_UP, IN_DN, IN_AU, IN_AD, STRICT, IN_GRP, COOL, PEND = (1 << i for i in range(8))
#: AlarmKind (or its value) -> kind code; Direction (or its value) -> direction code.
KIND_CODES: Final = {
    AlarmKind.ABOVE: ABOVE,
    AlarmKind.BELOW: BELOW,
    AlarmKind.CROSS: CROSS,
    AlarmKind.CHANGE: CHANGE,
    AlarmKind.DAY_CHANGE: DAY,
}
DIR_CODES: Final = {Direction.UP: UP, Direction.DOWN: DOWN, Direction.BOTH: BOTH}
_KIND_NAMES: Final = {code: kind.value for kind, code in KIND_CODES.items()}
DEFAULT_HYS: Final = float(DEFAULT_HYSTERESIS)
_ARMED: Final = AlarmState.ARMED  # a module global: an enum class attribute costs 0.15 µs
_FIRED: Final = AlarmState.FIRED


class AlarmIndex:
    """Every alarm held, by dense slot, and where each one sits in its book."""

    def __init__(self) -> None:
        self.markets: dict[str, dict[str, Book]] = {"spot": {}, "futures": {}}
        self.books: list[Book] = []
        self.ids = IdMap()
        self.aid, self.chat = array("q"), array("q")
        self.seq, self.book, self.gen = array("I"), array("I"), array("I")
        self.lvl = array("d")  # the level, or the percent of CHANGE and DAY
        self.kd, self.where = array("B"), array("B")  # kind | direction << 3; where bits
        self.rep, self.win = array("i"), array("i")  # repeat_s (-1: once); window_s
        self.hys = array("d")
        self.free = array("i")
        self.cool: list[tuple[float, int, int]] = []  # (rearm_at, slot, generation)
        self.live = 0
        self.bulk = False  # loading: lists take appends, sorted once at the end
        self.bulk_books: set[int] = set()

    def arrays(self) -> tuple[array[int] | array[float], ...]:
        return (*(self.aid, self.chat, self.seq, self.book, self.gen, self.lvl, self.kd),
                *(self.where, self.rep, self.win, self.hys, self.free))  # fmt: skip

    def admit(self, alarm: Alarm, price: float | None, now: float) -> bool:
        """Hold ``alarm`` (replacing one with its id): armed, or cooling down when it fired
        and repeats or has a ``rearm_at`` (a snooze). Any other state only removes it. True
        when held."""
        spec = alarm.spec
        k = KIND_CODES.get(spec.kind)
        if k is None:  # an indicator alarm: alarm_indicator's, never the price engine's
            old = self.ids.get(alarm.id)
            if old >= 0:
                self.drop(old)
            return False
        h = spec.hysteresis  # float(Decimal) costs 0.3-0.5 µs: skip it for the default
        return self.admit_fields(
            alarm.id, alarm.chat_id, alarm.seq, alarm.state, alarm.fired_at, alarm.rearm_at,
            spec.market, spec.symbol, k, DIR_CODES[spec.direction],
            spec.level if k <= CROSS else spec.percent, spec.window_s or 0, spec.repeat_s,
            DEFAULT_HYS if h is DEFAULT_HYSTERESIS else float(h), price, now,
        )  # fmt: skip

    def admit_fields(  # noqa: PLR0913, PLR0917 - once an alarm at start-up: no object built
        self,
        aid: int,
        chat: int,
        seq: int,
        state: str,
        fired_at: float | None,
        rearm_at: float | None,
        market: str,
        symbol: str,
        k: int,
        d: int,
        value: Decimal | str | None,
        window: int,
        repeat: int | None,
        hys: float,
        price: float | None,
        now: float,
    ) -> bool:
        """``admit`` from an alarm's fields: ``k``/``d`` the kind and direction codes,
        ``value`` the level (ABOVE, BELOW, CROSS) or the percent, as a Decimal or its text,
        ``window`` 0 when none, ``hys`` the hysteresis as a float."""
        old = self.ids.get(aid)
        if old >= 0:
            self.drop(old)
        if state == _ARMED:
            until = None
        elif state == _FIRED and (repeat is not None or rearm_at is not None):
            until = rearm_at  # a repeat's cooldown, or a snooze
            if until is None:
                until = (fired_at or now) + (repeat or 0)
        else:
            return False
        if value is None or (k == CHANGE and window <= 0):
            need = "a level" if k <= CROSS else "a percent" + (" and a window" * (k == CHANGE))
            raise ValueError(f"alarm {aid}: a {_KIND_NAMES[k]} alarm needs {need}")
        book = self.book_for(market, symbol)
        rep = -1 if repeat is None else repeat
        s = self._alloc((aid, chat, seq, book.bid, float(value), k | d << 3, 0, rep, window, hys))
        self._count(book, k, window)
        if until is not None and until > now:
            self.where[s] = COOL
            heapq.heappush(self.cool, (until, s, self.gen[s]))
        elif until is not None:
            self.rearm(s)
        else:
            self._place(s, book, book.last if price is None else price)
        return True

    def drop(self, s: int) -> None:
        """Take slot ``s`` out of everything and free it."""
        w, book = self.where[s], self.books[self.book[s]]
        k, d, level = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s]
        if w & IN_UP:
            self._sorted(book.up).discard(level, s)
        if w & IN_DN:
            self._sorted(book.dn).discard(level, s)
        if w & (IN_AU | IN_AD):
            up, dn = self.arm_levels(s)
            if w & IN_AU:
                self._sorted(book.au).discard(up, s)
            if w & IN_AD:
                self._sorted(book.ad).discard(dn, s)
        if w & (IN_GRP | PEND) and k == CHANGE and book.chg is not None:
            if w & IN_GRP:
                self._sorted(book.chg.groups[self.win[s], d]).discard(level, s)
            else:
                book.chg.pend.remove(s)
        if w & (IN_GRP | PEND) and k == DAY and book.day is not None:
            if w & IN_GRP:
                self._sorted(book.day.groups[d]).discard(level, s)
                book.day.retrig()
            else:
                book.day.pend.remove(s)
        self.release(s)
        book.retrig()

    def release(self, s: int) -> None:
        """Free slot ``s`` (already out of every list): a one-shot that fired, or a drop."""
        self.ids.pop(self.aid[s])
        self.where[s] = 0
        self.free.append(s)
        self.live -= 1
        book, k = self.books[self.book[s]], self.kd[s] & 7
        if k != DAY:
            book.n -= 1
        if k == CHANGE and book.chg is not None:
            book.chg.n -= 1
            if not book.chg.n:  # no update pays for a history nobody reads
                book.chg = None
        elif k == DAY and book.day is not None:
            book.day.n -= 1
            if not book.day.n:
                book.day = None

    def rearm_due(self, now: float) -> None:
        cool = self.cool
        while cool and cool[0][0] <= now:
            _, s, gen = heapq.heappop(cool)
            if self.gen[s] == gen and self.where[s] == COOL:
                self.rearm(s)

    def rearm(self, s: int) -> None:
        """After the cooldown: back in the lists once the price is past the hysteresis band,
        else at the band's re-arming points (percent alarms: pending until the change falls
        back under the band)."""
        book = self.books[self.book[s]]
        k, d, level, h = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s], self.hys[s]
        self.where[s] = 0
        if k == CHANGE and book.chg is not None:
            book.chg.pend.append(s)
            self.where[s] = PEND
            return
        if k == DAY and book.day is not None:
            book.day.pend.append(s)
            self.where[s] = PEND
            return
        rises = k == ABOVE or (k == CROSS and d != DOWN)  # fires again from below
        falls = k == BELOW or (k == CROSS and d != UP)
        up_band, dn_band, last = level * (1 + h), level * (1 - h), book.last
        if rises and last <= dn_band:
            self._put(book.up, level, s, IN_UP)
        elif falls and last >= up_band:
            self._put(book.dn, level, s, IN_DN)
        else:
            if rises:
                self._put(book.ad, dn_band, s, IN_AD)
            if falls:
                self._put(book.au, up_band, s, IN_AU)
        if not self.bulk:
            book.retrig()

    def arm_levels(self, s: int) -> tuple[float, float]:
        """Slot ``s``'s re-arming points in ``au`` and ``ad``."""
        level = self.lvl[s]
        if self.where[s] & STRICT:
            return math.nextafter(level, INF), math.nextafter(level, -INF)
        h = self.hys[s]
        return level * (1 + h), level * (1 - h)

    def begin_bulk(self) -> None:
        self.bulk, self.bulk_books = True, set()
        self.ids.holding = True

    def end_bulk(self) -> None:
        self.bulk = False
        self.ids.holding = False
        self.ids.rebuild()
        for bid in self.bulk_books:
            book = self.books[bid]
            for pairs in book.lists():
                pairs.sort()
            book.retrig()
            if book.chg is not None:
                book.chg.retrig(book.chg.hist.window)
            if book.day is not None:
                book.day.retrig()

    def book_for(self, market: str, symbol: str) -> Book:
        books = self.markets.get(market)
        if books is None:
            books = self.markets[market] = {}
        book = books.get(symbol)
        if book is None:
            book = books[symbol] = Book(market, symbol, len(self.books))
            self.books.append(book)
        return book

    def _alloc(self, row: tuple[int, int, int, int, float, int, int, int, int, float]) -> int:
        """A slot for ``(id, chat, seq, book, level, kd, where, rep, window, hys)``."""
        if self.free:
            s = self.free.pop()
            arrays: tuple[array[Any], ...] = (self.aid, self.chat, self.seq, self.book,
                                              self.lvl, self.kd, self.where, self.rep,
                                              self.win, self.hys)  # fmt: skip
            for a, v in zip(arrays, row, strict=True):
                a[s] = v
            self.gen[s] += 1
        else:  # one append per array, no loop: the bulk load's cost is mostly here
            s = len(self.aid)
            aid, chat, seq, bid, level, kd, where, rep, window, hys = row
            self.aid.append(aid)
            self.chat.append(chat)
            self.seq.append(seq)
            self.book.append(bid)
            self.lvl.append(level)
            self.kd.append(kd)
            self.where.append(where)
            self.rep.append(rep)
            self.win.append(window)
            self.hys.append(hys)
            self.gen.append(0)
        self.ids.put(row[0], s)
        self.live += 1
        return s

    def _count(self, book: Book, k: int, window: int) -> None:
        """A slot of kind ``k`` joined ``book``."""
        if k == CHANGE:
            if book.chg is None:
                book.chg = Change()
            book.chg.hist.reach(window)
            book.chg.n += 1
        elif k == DAY:
            if book.day is None:
                book.day = Day()
            book.day.n += 1
        if k != DAY:
            book.n += 1
        if self.bulk:
            self.bulk_books.add(book.bid)

    def _place(self, s: int, book: Book, price: float) -> None:
        k, d, level = self.kd[s] & 7, self.kd[s] >> 3, self.lvl[s]
        if k == ABOVE or (k == CROSS and d != DOWN and price < level):
            self._put(book.up, level, s, IN_UP)
        elif k == BELOW or (k == CROSS and d != UP and price > level):
            self._put(book.dn, level, s, IN_DN)
        elif k == CROSS:  # at or past the level, or no price: first to the other side
            self.where[s] = STRICT
            if d != DOWN:
                self._put(book.ad, math.nextafter(level, -INF), s, IN_AD)
            if d != UP:
                self._put(book.au, math.nextafter(level, INF), s, IN_AU)
        elif k == CHANGE and book.chg is not None:
            self._put(book.chg.groups.setdefault((self.win[s], d), Pairs()), level, s, IN_GRP)
            if not self.bulk:
                book.chg.retrig(book.chg.hist.window)
        elif book.day is not None:
            self._put(book.day.groups[d], level, s, IN_GRP)
            if not self.bulk:
                book.day.retrig()
        if not self.bulk:
            book.retrig()

    def _put(self, pairs: Pairs, key: float, s: int, bit: int) -> None:
        self.where[s] |= bit
        if self.bulk:  # sorted once in end_bulk
            pairs.keys.append(key)
            pairs.slots.append(s)
        else:
            pairs.insert(key, s)

    def _sorted(self, pairs: Pairs) -> Pairs:
        if self.bulk:
            pairs.sort()
        return pairs
