"""The OHLCV fixtures (``tests/fixtures/make_ohlcv.py`` says how they were made), read with
plain pandas, and a real client against the fake exchange for ``analysis.candles``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import pandas as pd
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.utils.binance.conftest import API_KEY, SECRET, make_config, no_redis
from utils.binance.binance_a import BinanceClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.fakes.fake_klines import Ohlcv

FIXTURES: Final = Path(__file__).resolve().parents[1] / "fixtures"
HOUR_MS: Final = 3_600_000


def load(name: str) -> pd.DataFrame:
    """A fixture CSV as an OHLCV frame: index ``open_time`` (UTC), float columns."""
    frame = pd.read_csv(FIXTURES / name, index_col="open_time")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, unit="ms", utc=True))
    frame.index.name = "open_time"
    return frame.astype("float64")


def series(frame: pd.DataFrame, step_ms: int = HOUR_MS) -> list[Ohlcv | None]:
    """The frame as the fake's ``serve_series`` takes it: one entry per candle time, None
    where the fixture has no row (a gap)."""
    times = frame.index.as_unit("ms").asi8
    by_time = dict(zip(times.tolist(), frame.itertuples(index=False), strict=True))
    out: list[Ohlcv | None] = []
    for t in range(int(times[0]), int(times[-1]) + step_ms, step_ms):
        row = by_time.get(t)
        out.append(None if row is None else (row.open, row.high, row.low, row.close, row.volume))
    return out


@pytest.fixture(scope="session")
def walk() -> pd.DataFrame:
    return load("ohlcv_walk.csv")


@pytest.fixture(scope="session")
def listing() -> pd.DataFrame:
    return load("ohlcv_listing.csv")


@pytest.fixture
async def fake_binance() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(api_keys={API_KEY: SECRET}) as fake:
        yield fake


@pytest.fixture
async def client(fake_binance: FakeBinance) -> AsyncIterator[BinanceClient]:
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as c:
        yield c
