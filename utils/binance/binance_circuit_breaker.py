"""Circuit breaker per market. Counts timeouts, transport errors and 5xx, never 4xx; after
``failures_to_open`` in a row it opens and calls fail fast with ``BinanceCircuitOpenError``
naming the next try; after ``open_for_s`` one probe goes through (half-open): success closes
it, failure opens it again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from utils.binance.binance_exceptions import BinanceCircuitOpenError
from utils.binance.binance_types import BinanceEvent, Market

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("BreakerConfig", "BreakerState", "CircuitBreaker")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    failures_to_open: int = 5
    open_for_s: float = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One market's breaker. ``before_call`` admits or raises; the caller reports the outcome."""

    def __init__(
        self,
        market: Market,
        config: BreakerConfig,
        *,
        emit: Callable[[BinanceEvent], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self._config = config
        self._emit = emit
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._retry_in() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        return self._failures

    def before_call(self) -> bool:
        """Admit a call or raise; returns True when the call is the half-open probe."""
        if self._state is BreakerState.CLOSED:
            return False
        if self._state is BreakerState.OPEN:
            if self._retry_in() > 0:
                raise self._open_error()
            self._change(BreakerState.HALF_OPEN, "probing with one call")
        if self._probing:  # half-open: one probe at a time, the rest fail fast
            raise self._open_error()
        self._probing = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._probing = False
            self._change(BreakerState.CLOSED, "answering again")

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False
            self._open("the probe failed")
        elif (
            self._state is BreakerState.CLOSED and self._failures >= self._config.failures_to_open
        ):
            self._open(f"{self._failures} failures in a row")

    def record_neutral(self) -> None:
        """An answer that says nothing about health (a 4xx): release a probe slot."""
        if self._state is BreakerState.HALF_OPEN:
            self.record_success()

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        self._change(BreakerState.OPEN, f"{why}; next try in {self._config.open_for_s:.0f} s")

    def _retry_in(self) -> float:
        return self._opened_at + self._config.open_for_s - self._clock()

    def _open_error(self) -> BinanceCircuitOpenError:
        return BinanceCircuitOpenError(
            str(self.market), retry_in_s=max(0.0, self._retry_in()), failures=self._failures
        )

    def _change(self, state: BreakerState, why: str) -> None:
        self._state = state
        self._emit(
            BinanceEvent(
                f"breaker.{state}",
                self.market,
                f"Binance {self.market} circuit {state}: {why}",
                {"failures": self._failures, "open_for_s": self._config.open_for_s},
            )
        )
