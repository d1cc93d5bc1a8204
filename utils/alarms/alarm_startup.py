"""The engine's start-up load: every live alarm of the store into a fresh ``AlarmEngine``, as
the store's rows (``armed_rows`` into ``AlarmEngine.loading``): a page is held while the next
is read, and no ``Alarm`` is built but for the few set after the feed's checkpoint, which
join the gap replay at the minute they were set in instead (``alarm_leader``).

A million alarms of ``bench/alarms.py``'s mix load in a few seconds from either store
(``python -m bench --only alarms``: "start-up load from SQLite / Redis"); through ``armed``
and ``AlarmEngine.load`` they took 8 to 15 s here, most of it building ``Alarm`` objects.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from utils.alarms.alarm_codec import SPEC_FIELDS, decode_row

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from utils.alarms.alarm_codec import LiveRow
    from utils.alarms.alarm_engine import AlarmEngine
    from utils.alarms.alarm_model import Alarm
    from utils.alarms.alarm_store_types import AlarmStore

__all__ = ("Loaded", "load_engine")

_SPEC: Final = 7  # where a LiveRow holds its spec_data array
_CREATED: Final = SPEC_FIELDS.index("created_at")
_MARKET: Final = SPEC_FIELDS.index("market")


@dataclass(slots=True)
class Loaded:
    """What a start-up load did: ``held`` alarms in the engine, the ``(market, symbol)`` pairs
    they watch, and per market the alarms ``later`` than its checkpoint (not loaded)."""

    held: int = 0
    symbols: set[tuple[str, str]] = field(default_factory=set)
    later: dict[str, list[Alarm]] = field(default_factory=dict)


async def load_engine(
    store: AlarmStore, engine: AlarmEngine, *, since: Mapping[str, int | None]
) -> Loaded:
    """Load every live alarm of ``store`` into ``engine``, but those of a market created
    after its checkpoint ``since[market]`` (unix ms; None: no checkpoint), which are
    returned in ``later``."""
    cut = {market: ms for market, ms in since.items() if ms is not None}
    first = min(cut.values(), default=None)
    out = Loaded()
    with _no_collector(), engine.loading() as load:
        async with contextlib.aclosing(store.armed_rows()) as pages:
            async for page in pages:
                out.held += load(_split(page, cut, first, out.later))
    out.symbols = engine.held_symbols()
    return out


def _split(
    page: list[LiveRow],
    cut: Mapping[str, int],
    first: int | None,
    later: dict[str, list[Alarm]],
) -> list[LiveRow]:
    """The page's rows to load; those created after their market's checkpoint go to
    ``later`` as alarms. Such rows are rare (set while no engine ran): one comparison a row
    finds whether the page has any."""
    if first is None or not any(row[_SPEC][_CREATED] * 1000 > first for row in page):
        return page
    rows = []
    for row in page:
        ms = cut.get(row[_SPEC][_MARKET])
        if ms is not None and row[_SPEC][_CREATED] * 1000 > ms:
            later.setdefault(row[_SPEC][_MARKET], []).append(decode_row(row))
        else:
            rows.append(row)
    return rows


@contextlib.contextmanager
def _no_collector() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as it was after). The load makes no
    cycles, but its pages' million rows trigger collections that rescan every page still
    alive: 1.7 of 5.9 s CPU for a million alarms from SQLite, measured."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
