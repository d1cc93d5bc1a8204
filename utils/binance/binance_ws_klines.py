"""Kline streams that miss no candle close (issue 11): which update of a ``<s>@kline_<i>``
stream to deliver, and the REST fill of the closes a gap swallowed.

Per (market, stream) ``KlineGaps`` keeps the open time of the next candle whose close is owed
to the subscribers. A live update of an older candle (a close already delivered, possibly over
REST) is dropped; one that skips a candle means closes were missed (a reconnect, a stall, a
subscription that became active just after a close), and the caller holds the stream's live
updates while ``fill`` fetches the closed candles from the owed one on (one REST request) and
offers them, in order, before the held updates. A REST answer is the authority on which
candles exist: a candle it does not list is not waited for twice. The fetch comes in as a
function (through the client's limiter); no sockets and no clock here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from utils.logging_setup import get_logger

if TYPE_CHECKING:
    from utils.binance.binance_types import Market
    from utils.binance.binance_ws_events import KlineEvent

__all__ = ("KlineFetch", "KlineGaps", "KlineRows", "Verdict", "interval_ms", "is_kline_stream")

_log = get_logger(__name__)
# A month counts as its shortest (28 days): an interval's length only sizes a REST page.
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNIT_MS["M"] = 28 * _UNIT_MS["d"]


class KlineRows(NamedTuple):
    """A REST klines answer (rows oldest first, as Binance sent them) and Binance's clock in
    ms when it was asked: a row is closed once its close time is before that, or once a later
    candle has opened."""

    rows: Sequence[Sequence[Any]]
    server_ms: int


#: ``fetch(market, symbol, interval, start_ms)``: the candles from ``start_ms`` on, over REST;
#: None without asking when the candle opened at ``start_ms`` cannot have closed yet.
KlineFetch = Callable[["Market", str, str, int], Awaitable[KlineRows | None]]


class Verdict(Enum):
    DELIVER = "deliver"
    DROP = "drop"  # an update of a candle whose close was already delivered
    GAP = "gap"  # closes were missed: hold the stream and fill


def is_kline_stream(stream: str) -> bool:
    """``<symbol>@kline_<interval>`` (the continuous and index klines have other shapes)."""
    return stream.partition("@")[2].startswith("kline_")


def interval_ms(interval: str) -> int:
    """``1m`` -> 60000; ``1M`` -> 28 days, the shortest month."""
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


@dataclass(slots=True)
class _Track:
    owed: int  # open time of the next candle whose close the subscribers have not had
    settled_at: int | None = None  # ``owed`` when REST last had nothing there (or failed)


class KlineGaps:
    """The delivery state of every kline stream of one manager."""

    def __init__(self, fetch: KlineFetch | None) -> None:
        self._fetch = fetch
        self._tracks: dict[tuple[Market, str], _Track] = {}

    def offer(self, market: Market, stream: str, event: KlineEvent) -> Verdict:
        """Whether to deliver ``event`` now; moves the owed candle past a delivered close."""
        track = self._tracks.get((market, stream))
        if track is None:
            self._tracks[market, stream] = _Track(_after(event))
            return Verdict.DELIVER
        if event.source == "rest" and not event.closed:  # the candle open when REST answered
            track.owed = max(track.owed, event.open_time)
            return Verdict.DROP
        if event.open_time == track.owed:
            track.owed = _after(event)
            return Verdict.DELIVER
        if event.open_time < track.owed:
            return Verdict.DROP
        if event.source == "live" and self._fetch is not None and track.settled_at != track.owed:
            return Verdict.GAP
        if event.source == "live":
            _log.warning(
                "ws_kline_closes_skipped", stream=stream, owed=track.owed, now=event.open_time
            )
        track.owed = _after(event)  # REST lists no candle in between: nothing is owed there
        return Verdict.DELIVER

    def fill(self, market: Market, stream: str) -> Awaitable[list[KlineEvent]] | None:
        """The candles from the owed one on, over REST, for ``offer`` in order; None when
        nothing is owed yet (no update seen) or there is no fetch."""
        track = self._tracks.get((market, stream))
        if track is None or self._fetch is None:
            return None
        return self._fetched(market, stream, track, self._fetch)

    def failed(self, market: Market, stream: str) -> int | None:
        """The fill failed: the next gap is accepted rather than fetched again at once.
        Returns the open time of the first candle whose close may be lost."""
        track = self._tracks.get((market, stream))
        if track is None:
            return None
        track.settled_at = track.owed
        return track.owed

    def forget(self, market: Market, stream: str) -> None:
        self._tracks.pop((market, stream), None)

    def owed(self, market: Market, stream: str) -> int | None:
        """The open time of the next candle whose close is owed, None before any update."""
        track = self._tracks.get((market, stream))
        return None if track is None else track.owed

    async def _fetched(
        self, market: Market, stream: str, track: _Track, fetch: KlineFetch
    ) -> list[KlineEvent]:
        from utils.binance.binance_ws_events import kline_from_row  # noqa: PLC0415 - see manager

        symbol, _, kind = stream.partition("@")
        symbol, interval, start = symbol.upper(), kind.removeprefix("kline_"), track.owed
        answer = await fetch(market, symbol, interval, start)
        if answer is None:  # nothing closed since: the live updates carry on from here
            return []
        rows = [row for row in answer.rows if int(row[0]) >= start]
        server_ms = answer.server_ms
        if not rows:
            track.settled_at = start
        last = len(rows) - 1
        return [
            kline_from_row(symbol, interval, row, closed=i < last or int(row[6]) < server_ms)
            for i, row in enumerate(rows)
        ]


def _after(event: KlineEvent) -> int:
    """The owed candle once ``event`` is delivered: the next one after a close."""
    return event.close_time + 1 if event.closed else event.open_time
