"""The shared parts of every book figure: :class:`BookFigure`, :func:`figure_png`,
:func:`figure_and_axes`, the argument checks for masks, labels and colormaps, the colour scale
shared by the heatmaps and the tick labels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import checks
from ..errors import InvalidInputError, bad_argument

MAX_TICKS = 40  # at most this many tick labels per axis of a heatmap
GRID_MAX_TICKS = 20  # ... and per axis of a panel in a grid of heads
MAX_LABEL_CHARS = 14
MAX_ANNOTATED_CELLS = 900
LOG_FLOOR = 1e-4  # LogNorm floor, relative to the largest value shown
LOG_ABS_FLOOR = 1e-12  # ... and in absolute terms
MASK_COLOUR = "lightgrey"
TOP_COLOUR = "#e41a1c"
PNG_DPI = 100
PNG_COLOURS = 256  # a figure's PNG is stored with an adaptive palette of this many colours


class BookFigure(Figure):
    """A Figure outside pyplot that renders itself as PNG in Jupyter (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = PNG_DPI, colours: int | None = PNG_COLOURS) -> bytes:
    """The PNG bytes of ``fig`` at ``dpi``, stored with an adaptive palette of ``colours`` colours
    (median cut, no dithering; None keeps matplotlib's 32-bit RGBA). A book figure is lines, text
    and colormaps of 256 entries, so the palette keeps what it shows while the file is about 2.5×
    smaller, which keeps a chapter page with every seed's figures within its size budget. A figure
    with transparent pixels keeps its alpha (fast-octree palette). Titles wrap at the figure's edge
    (:func:`attnbook.plots.legibility.wrap_titles`), and the file carries the height of the figure's
    smallest text in its own pixels and the texts still cut at its edge as tEXt entries
    (:func:`attnbook.plots.legibility.png_entries`), which the site's tests read to check what a
    page shows."""
    from PIL import Image, PngImagePlugin

    from .legibility import png_entries, wrap_titles

    wrap_titles(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    info = PngImagePlugin.PngInfo()
    for key, value in png_entries(fig, dpi, draw=False).items():  # measured on the layout savefig drew
        info.add_text(key, value)
    image = Image.open(io.BytesIO(buffer.getvalue()))
    if colours is not None:
        checks.integer("colours", colours, minimum=2)
        opaque = image.mode != "RGBA" or image.getchannel("A").getextrema()[0] == 255
        if opaque:
            image = image.convert("RGB").quantize(colors=min(colours, 256), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        else:
            image = image.quantize(colors=min(colours, 256), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True, pnginfo=info)
    return out.getvalue()


# -- validation helpers ------------------------------------------------------------------------
def _as_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a bool array of ``shape`` (True = allowed); all True when None."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    if hasattr(mask, "detach"):
        mask = mask.detach().to("cpu").numpy()
    array = np.asarray(mask)
    if array.dtype != bool:
        raise bad_argument(InvalidInputError, "mask", "a bool array (True = allowed)", f"dtype {array.dtype}", raw=True)
    if array.shape != tuple(shape):
        raise bad_argument(InvalidInputError, "mask", f"shape {tuple(shape)}", f"shape {array.shape}", raw=True)
    return array


def _labels(name: str, labels: Sequence[str] | None, length: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        raise bad_argument(InvalidInputError, name, "a sequence of strings", labels)
    labels = [str(x) for x in labels]
    if len(labels) != length:
        raise bad_argument(InvalidInputError, name, f"{length} labels", f"{len(labels)} labels", raw=True)
    return labels


def _colormap(cmap: Any) -> mcolors.Colormap:
    """A copy of ``cmap`` (name or Colormap) whose 'bad' colour is the mask grey."""
    if not isinstance(cmap, mcolors.Colormap):
        try:
            cmap = matplotlib.colormaps[cmap]
        except (KeyError, ValueError, TypeError):
            raise bad_argument(InvalidInputError, "cmap", "a matplotlib colormap name", cmap) from None
    return cmap.with_extremes(bad=MASK_COLOUR)


# -- colour scale ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Colour:
    """Validated colour options shared by every heatmap."""

    gamma: float | None = None
    robust: tuple[float, float] | None = None
    log: bool = False
    top_percent: float | None = None
    cmap: Any = "viridis"

    def __post_init__(self) -> None:
        if self.gamma is not None and checks.real("gamma", self.gamma) <= 0:
            raise bad_argument(InvalidInputError, "gamma", "a number > 0", self.gamma)
        if self.robust is not None:
            object.__setattr__(self, "robust", _robust(self.robust))
        if self.log and self.gamma is not None:
            raise bad_argument(InvalidInputError, "log", "log=False when gamma is given (choose one)", self.log)
        if self.top_percent is not None and not 0 < checks.real("top_percent", self.top_percent) <= 100:
            raise bad_argument(InvalidInputError, "top_percent", "a number in (0, 100]", self.top_percent)
        object.__setattr__(self, "cmap", _colormap(self.cmap))

    def norm(self, values: np.ndarray) -> mcolors.Normalize:
        """The colour normalisation for the (flat) values that will be shown."""
        values = values[np.isfinite(values)] if values.size else np.zeros(1)
        if values.size == 0:
            values = np.zeros(1)
        if self.robust is not None:
            lo, hi = (float(v) for v in np.percentile(values, self.robust))
        else:
            lo, hi = float(values.min()), float(values.max())
            lo = min(lo, 0.0)  # anchor non-negative data (attention) at 0
        if self.log:
            # weights below LOG_ABS_FLOOR count as zero: matplotlib's log colour bar breaks on
            # ranges near the bottom of float64 (subnormals, 1e-300)
            top = hi if hi > LOG_ABS_FLOOR else 1.0
            lo = max(lo, top * LOG_FLOOR, LOG_ABS_FLOOR)
            return mcolors.LogNorm(vmin=lo, vmax=max(hi, lo * 10), clip=True)
        if hi <= lo:
            hi = lo + (abs(lo) * 1e-3 if lo else 1.0)
        if self.gamma is not None:
            return mcolors.PowerNorm(self.gamma, vmin=lo, vmax=hi, clip=True)
        return mcolors.Normalize(vmin=lo, vmax=hi)


def _robust(robust: Any) -> tuple[float, float]:
    if robust is True:
        return (2.0, 98.0)
    try:
        lo, hi = robust
        lo, hi = checks.real("robust", lo), checks.real("robust", hi)
    except (TypeError, ValueError, InvalidInputError):
        raise bad_argument(InvalidInputError, "robust", "a pair of percentiles (lo, hi)", robust) from None
    if not 0 <= lo < hi <= 100:
        raise bad_argument(InvalidInputError, "robust", "percentiles with 0 <= lo < hi <= 100", robust)
    return (lo, hi)


# -- figure and axes, tick labels --------------------------------------------------------------
def _new_figure(figsize: tuple[float, float]) -> BookFigure:
    return BookFigure(figsize=figsize, layout="constrained")


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A new :class:`BookFigure` with one axes of ``figsize``, or ``ax`` and its figure (for figures drawn into a panel)."""
    if ax is None:
        fig = _new_figure(figsize)
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise bad_argument(InvalidInputError, "ax", "a matplotlib Axes or None", ax)
    return ax.figure, ax


def _tick_text(label: str) -> str:
    label = label.replace("\n", "⏎").replace("\t", "⇥")
    if len(label) > MAX_LABEL_CHARS:
        label = label[: MAX_LABEL_CHARS - 1] + "…"
    return label.replace("$", r"\$")  # never mathtext


def _set_ticks(ax: Axes, axis: str, labels: list[str] | None, max_ticks: int = MAX_TICKS) -> None:
    """Label the ticks of ``axis`` ('x' or 'y') with ``labels``, thinned to ``max_ticks``."""
    if labels is None:
        return
    step = max(1, math.ceil(len(labels) / max_ticks))
    positions = np.arange(0, len(labels), step)
    text = [_tick_text(labels[i]) for i in positions]
    size = 8 if len(positions) > 16 else 9
    if axis == "x":
        ax.set_xticks(positions, text, rotation=90, fontsize=size)
    else:
        ax.set_yticks(positions, text, fontsize=size)
