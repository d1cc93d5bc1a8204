"""Draws a ``ChartFrame`` to PNG bytes: candles with EMA 20/50 and Bollinger(20, 2) above,
volume in the middle, RSI(14) with its 30/70 lines below, UTC times along the bottom.

This runs in a render process (``analysis.chart_pool``), never in the bot's event loop. The
figure is a bare ``matplotlib.figure.Figure`` on an Agg canvas: pyplot never registers it,
so nothing outlives a render (``live_figures`` counts them, for the memory test and bench).
mplfinance draws the candles and the lines over them, in its external-axes mode; volume is
one ``PolyCollection`` rather than mplfinance's one ``Rectangle`` per bar, which cost 80 %
of the render at 500 candles (profiled: ``Axes.add_patch`` per bar).
"""

from __future__ import annotations

import gc
import io
from typing import TYPE_CHECKING, Any, Final

import matplotlib as mpl
import mplfinance as mpf  # type: ignore[import-untyped]  # ships no type information
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from analysis.chart_frame import ChartFrame

__all__ = ("live_figures", "pyplot_figures", "render_png", "use_agg")

UP: Final = "#26a69a"
DOWN: Final = "#ef5350"
EMA_FAST: Final = "#f39c12"
EMA_SLOW: Final = "#2e86de"
BANDS: Final = "#8e8e8e"
RSI: Final = "#8e44ad"
GRID: Final = "#e6e6e6"
_STYLE: Final = mpf.make_mpf_style(
    base_mpf_style="charles",
    marketcolors=mpf.make_marketcolors(up=UP, down=DOWN, wick="inherit", edge="inherit"),
)
_BAR_HALF: Final = 0.35  # half a volume bar's width, in candles


def use_agg() -> None:
    """Make Agg matplotlib's backend in this process (a render worker's initializer)."""
    mpl.use("Agg")


def render_png(frame: ChartFrame) -> bytes:
    """The chart as PNG bytes of exactly ``width_px`` x ``height_px`` pixels."""
    fig = Figure(figsize=(frame.width_px / frame.dpi, frame.height_px / frame.dpi), dpi=frame.dpi)
    FigureCanvasAgg(fig)
    _draw(fig, frame)
    out = io.BytesIO()
    # Never bbox_inches="tight": it would change the picture's size.
    fig.savefig(out, format="png", dpi=frame.dpi)
    # Nothing else refers to the figure: it goes with its reference cycles at the next
    # collection (fig.clear() would rebuild every axis first, a quarter of a small render).
    return out.getvalue()


def live_figures() -> int:
    """Figures still alive in this process after a collection (0 between renders)."""
    gc.collect()
    return sum(isinstance(o, Figure) for o in gc.get_objects())


def pyplot_figures() -> int:
    """Figures pyplot holds open (mplfinance would leave them there in its own mode)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only asked for by the memory probe

    return len(plt.get_fignums())


# --- drawing -----------------------------------------------------------------------------
def _draw(fig: Figure, frame: ChartFrame) -> None:
    grid = fig.add_gridspec(
        3,
        1,
        height_ratios=(5.0, 1.3, 1.6),
        hspace=0.06,
        left=0.02,
        right=0.92,
        top=0.93,
        bottom=0.05,
    )
    price = fig.add_subplot(grid[0])
    volume = fig.add_subplot(grid[1], sharex=price)
    rsi = fig.add_subplot(grid[2], sharex=price)
    ohlc = pd.DataFrame(
        {
            "Open": frame.open,
            "High": frame.high,
            "Low": frame.low,
            "Close": frame.close,
            "Volume": frame.volume,
        },
        index=pd.DatetimeIndex(pd.to_datetime(frame.open_ms, unit="ms", utc=True)),
    )
    lines = [
        (frame.ema_fast, {"color": EMA_FAST, "width": 1.1}),
        (frame.ema_slow, {"color": EMA_SLOW, "width": 1.1}),
        (frame.bb_upper, {"color": BANDS, "width": 0.7, "linestyle": "--"}),
        (frame.bb_middle, {"color": BANDS, "width": 0.5, "linestyle": ":"}),
        (frame.bb_lower, {"color": BANDS, "width": 0.7, "linestyle": "--"}),
    ]
    addplot = [
        mpf.make_addplot(values, ax=price, **style)
        for values, style in lines
        if np.isfinite(values).any()  # mplfinance cannot scale a line with no value
    ]
    mpf.plot(
        ohlc,
        type="candle",
        ax=price,
        addplot=addplot,
        style=_STYLE,
        ylabel="",
        xrotation=0,
        datetime_format="%d %b %H:%M",
        warn_too_much_data=len(frame) + 1,
    )
    _volume(volume, frame)
    _rsi(rsi, frame)
    for axes in (price, volume, rsi):
        axes.grid(visible=True, color=GRID, linewidth=0.6)
        axes.yaxis.tick_right()
        axes.tick_params(labelsize=8)
    price.tick_params(labelbottom=False)
    volume.tick_params(labelbottom=False)
    _legend(price)
    fig.text(0.02, 0.955, frame.title, fontsize=12, fontweight="bold", ha="left")
    fig.text(0.92, 0.955, "UTC", fontsize=8, ha="right", color="#666666")


def _volume(axes: Axes, frame: ChartFrame) -> None:
    x = np.arange(len(frame), dtype=np.float64)
    v = np.nan_to_num(frame.volume)
    left, right = x - _BAR_HALF, x + _BAR_HALF
    zero = np.zeros_like(v)
    verts = np.stack(
        [np.column_stack(p) for p in ((left, zero), (left, v), (right, v), (right, zero))],
        axis=1,
    )
    colors = np.where(frame.close >= frame.open, UP, DOWN)
    axes.add_collection(PolyCollection(list(verts), facecolors=list(colors), linewidths=0))
    axes.set_ylim(0.0, float(v.max()) * 1.1 or 1.0)
    axes.yaxis.set_major_formatter(EngFormatter(sep=""))
    axes.text(0.005, 0.93, "Volume", transform=axes.transAxes, fontsize=8, va="top")


def _rsi(axes: Axes, frame: ChartFrame) -> None:
    x = np.arange(len(frame), dtype=np.float64)
    axes.plot(x, frame.rsi, color=RSI, linewidth=1.0)
    for level in (30.0, 70.0):
        axes.axhline(level, color=BANDS, linewidth=0.7, linestyle="--")
    axes.set_ylim(0.0, 100.0)
    axes.set_yticks([30.0, 70.0])
    axes.text(0.005, 0.93, "RSI 14", transform=axes.transAxes, fontsize=8, va="top")


def _legend(axes: Axes) -> None:
    handles: list[Any] = [
        Line2D([], [], color=EMA_FAST, linewidth=1.1, label="EMA 20"),
        Line2D([], [], color=EMA_SLOW, linewidth=1.1, label="EMA 50"),
        Line2D([], [], color=BANDS, linewidth=0.7, linestyle="--", label="BB 20, 2"),
    ]
    axes.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, ncol=3)
