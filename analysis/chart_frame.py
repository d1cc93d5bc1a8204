"""What a chart worker draws: plain float arrays, computed in the bot's process, pickled to a
render process (``analysis.chart_pool``) and drawn there (``analysis.chart_render``).

Nothing here imports matplotlib, pandas or the Binance client, so that a worker process
unpickling a ``ChartFrame`` loads numpy only. 1,000 candles pickle to about 100 KB.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ("DPI", "HEIGHT_PX", "WIDTH_PX", "ChartFrame", "FloatArray", "IntArray")

#: The PNG's size in pixels: Telegram shows photos up to 1280 px on the long side, so this is
#: sent as drawn (no recompression to another size).
WIDTH_PX: Final = 1200
HEIGHT_PX: Final = 800
DPI: Final = 100

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ChartFrame:
    """One chart's data, oldest candle first; every array has one value per candle and NaN
    where an indicator has no value yet (before its period is filled).

    ``open_ms`` are the candles' open times (epoch milliseconds, UTC); ``title`` is drawn
    above the chart as it is (symbol, interval, market: no words to translate).
    """

    title: str
    open_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    ema_fast: FloatArray  # EMA(20)
    ema_slow: FloatArray  # EMA(50)
    bb_upper: FloatArray  # Bollinger(20, 2)
    bb_middle: FloatArray
    bb_lower: FloatArray
    rsi: FloatArray  # RSI(14)
    width_px: int = WIDTH_PX
    height_px: int = HEIGHT_PX
    dpi: int = DPI

    def __post_init__(self) -> None:
        lengths = {
            f.name: len(getattr(self, f.name))
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        if len(set(lengths.values())) != 1 or not lengths["open_ms"]:
            raise ValueError(f"a chart needs one value per candle in every array: {lengths}")
        if min(self.width_px, self.height_px, self.dpi) <= 0:
            raise ValueError("a chart's size and dpi must be positive")

    def __len__(self) -> int:
        return len(self.open_ms)
