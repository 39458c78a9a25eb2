"""Figures of attention maps (matplotlib only, safe with the Agg backend).

Every function returns a :class:`matplotlib.figure.Figure` (or draws into the ``ax`` it is given
and returns that axes' figure). New figures are :class:`BookFigure` objects: they are not
registered with pyplot, so they never pile up as open figures and a notebook cell that returns one
shows it exactly once (as PNG). Heatmaps put keys on x and queries on y.
"""

from __future__ import annotations

import io
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from . import checks
from .errors import InvalidInputError, bad_argument
from .maps import AttentionMaps, check_index

MAX_TICKS = 40  # at most this many tick labels per axis of a heatmap
GRID_MAX_TICKS = 20  # ... and per axis of a panel in a grid of heads
MAX_LABEL_CHARS = 14
MAX_ANNOTATED_CELLS = 900
LOG_FLOOR = 1e-4  # LogNorm floor, relative to the largest value shown
LOG_ABS_FLOOR = 1e-12  # ... and in absolute terms
MASK_COLOUR = "lightgrey"
TOP_COLOUR = "#e41a1c"
PNG_DPI = 100


class BookFigure(Figure):
    """A Figure outside pyplot that renders itself as PNG in Jupyter (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    """The PNG bytes of ``fig``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


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


# -- drawing helpers ---------------------------------------------------------------------------
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


def _draw(ax: Axes, data: np.ndarray, allowed: np.ndarray, norm: mcolors.Normalize, colour: _Colour):
    """imshow ``data`` with the disallowed cells grey and the optional top-p% outline."""
    shown = np.maximum(data, norm.vmin) if isinstance(norm, mcolors.LogNorm) else data
    image = ax.imshow(
        np.ma.masked_array(shown, mask=~allowed), cmap=colour.cmap, norm=norm, interpolation="nearest", aspect="auto"
    )
    if colour.top_percent is not None:
        _outline_top(ax, data, allowed, colour.top_percent)
    return image


def _outline_top(ax: Axes, data: np.ndarray, allowed: np.ndarray, percent: float) -> LineCollection | None:
    """Outline (along cell edges) the allowed cells holding the top ``percent`` % of the values."""
    values = data[allowed]
    if values.size == 0:
        return None
    top = (data >= np.percentile(values, 100 - percent)) & allowed
    padded = np.pad(top, 1)
    hi, hj = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # edge above row hi
    vi, vj = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # edge left of column vj
    horizontal = np.stack([np.c_[hj - 0.5, hi - 0.5], np.c_[hj + 0.5, hi - 0.5]], axis=1)
    vertical = np.stack([np.c_[vj - 0.5, vi - 0.5], np.c_[vj - 0.5, vi + 0.5]], axis=1)
    lines = LineCollection(
        np.concatenate([horizontal, vertical]), colors=TOP_COLOUR, linewidths=1.2, label=f"top {percent:g}%"
    )
    ax.add_collection(lines, autolim=False)
    return lines


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


def _heatmap_size(shape: tuple[int, int]) -> tuple[float, float]:
    q, k = shape
    return (min(14.0, max(5.0, 2.5 + 0.22 * k)), min(12.0, max(4.0, 1.8 + 0.22 * q)))


# -- heatmaps ----------------------------------------------------------------------------------
def heatmap(
    attn: Any,
    *,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    mask: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    gamma: float | None = None,
    robust: tuple[float, float] | None = None,
    log: bool = False,
    top_percent: float | None = None,
    cmap: Any = "viridis",
    cbar_label: str = "attention weight",
    xlabel: str = "key (attended to)",
    ylabel: str = "query (attending)",
) -> Figure:
    """Heatmap of one ``(queries, keys)`` map: keys on x, queries on y, with a colorbar.

    ``gamma``: power-law colour scale; ``robust=(lo, hi)``: clip the colour range to these
    percentiles; ``log``: logarithmic colour scale (floor ``LOG_FLOOR`` x the maximum);
    ``top_percent``: outline the cells holding the top p % of the weights; ``mask`` (bool,
    True = allowed): other cells are drawn grey.
    """
    data = checks.array("attn", attn, (2,))
    allowed = _as_mask(mask, data.shape)
    q_labels = _labels("query_labels", query_labels, data.shape[0])
    k_labels = _labels("key_labels", key_labels, data.shape[1])
    colour = _Colour(gamma, robust, bool(log), top_percent, cmap)
    fig, ax = figure_and_axes(ax, _heatmap_size(data.shape))
    image = _draw(ax, data, allowed, colour.norm(data[allowed]), colour)
    _set_ticks(ax, "x", k_labels)
    _set_ticks(ax, "y", q_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "attention map")
    fig.colorbar(image, ax=ax, label=cbar_label)
    return fig


def _sample_labels(labels: Any, sample: int) -> list[str] | None:
    return None if labels is None else list(labels[sample])


def head_map(maps: AttentionMaps, layer: int | str, head: int, sample: int = 0, **heatmap_kwargs: Any) -> Figure:
    """Heatmap of one head with the sample's labels and mask, titled '<layer> · head h · sample b'."""
    attn = maps.head(layer, head, sample)
    l, h, b = maps.layer_index(layer), head % maps.n_heads, sample % maps.batch_size
    kwargs = {
        "query_labels": _sample_labels(maps.query_labels, b),
        "key_labels": _sample_labels(maps.key_labels, b),
        "mask": None if maps.mask is None else maps.mask[b],
        "title": f"{maps.layer_names[l]} · head {h} · sample {b}",
    }
    kwargs.update(heatmap_kwargs)
    return heatmap(attn, **kwargs)


def _head_indices(maps: AttentionMaps, heads: int | Sequence[int] | None) -> list[int]:
    if heads is None:
        return list(range(maps.n_heads))
    if isinstance(heads, numbers.Integral):
        heads = [heads]
    chosen = [check_index("head", h, maps.n_heads) for h in heads]
    if not chosen:
        raise bad_argument(InvalidInputError, "heads", "at least one head", list(heads), raw=True)
    return chosen


def _layer_indices(maps: AttentionMaps, layers: int | str | Sequence[int | str] | None) -> list[int]:
    if layers is None:
        return list(range(maps.n_layers))
    if isinstance(layers, (numbers.Integral, str)):
        layers = [layers]
    chosen = [maps.layer_index(x) for x in layers]
    if not chosen:
        raise bad_argument(InvalidInputError, "layers", "at least one layer", list(layers), raw=True)
    return chosen


def _valid_cells(maps: AttentionMaps, sample: int, crop: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column indices to show (the unpadded part when ``crop``) and the allowed cells there."""
    mask = maps.key_mask()[sample].detach().to("cpu").numpy()
    rows, cols = np.arange(mask.shape[0]), np.arange(mask.shape[1])
    if crop:
        valid_rows, valid_cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        if valid_rows.size and valid_cols.size:
            rows, cols = valid_rows, valid_cols
    return rows, cols, mask[np.ix_(rows, cols)]


def _panels(maps: AttentionMaps, layers: list[int], sample: int, heads: list[int], rows, cols) -> np.ndarray:
    """Weights ``(len(layers), len(heads), rows, cols)`` of one sample as a numpy array."""
    w = maps.weights[layers][:, sample][:, heads].detach().to("cpu").double().numpy()
    return w[:, :, rows][:, :, :, cols]


def head_view(
    maps: AttentionMaps,
    layer: int | str,
    sample: int = 0,
    heads: int | Sequence[int] | None = None,
    *,
    title: str | None = None,
    crop: bool = True,
    ncols: int | None = None,
    **colour: Any,
) -> Figure:
    """All (or the chosen) heads of one layer as a grid of heatmaps with a shared colour scale.

    ``colour``: ``gamma``, ``robust``, ``log``, ``top_percent``, ``cmap`` as in :func:`heatmap`.
    ``crop`` drops padding rows/columns (those the sample's mask never allows).
    """
    l, b = maps.layer_index(layer), check_index("sample", sample, maps.batch_size)
    hs = _head_indices(maps, heads)
    style = _Colour(**colour)
    rows, cols, allowed = _valid_cells(maps, b, crop)
    panels = _panels(maps, [l], b, hs, rows, cols)[0]
    ncols = min(len(hs), 4) if ncols is None else max(1, min(int(ncols), len(hs)))
    nrows = math.ceil(len(hs) / ncols)
    side = min(3.2, 14.0 / ncols)
    fig = _new_figure((side * ncols + 1.2, side * nrows + 0.8))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    norm = style.norm(panels[:, allowed])
    q_labels = _sample_labels(maps.query_labels, b)
    k_labels = _sample_labels(maps.key_labels, b)
    used = list(axes.flat)[: len(hs)]
    for ax in list(axes.flat)[len(hs):]:
        fig.delaxes(ax)
    for k, ax in enumerate(used):
        image = _draw(ax, panels[k], allowed, norm, style)
        ax.set_title(f"head {hs[k]}", fontsize=10)
        _set_ticks(ax, "x", None if k_labels is None else [k_labels[j] for j in cols], GRID_MAX_TICKS)
        _set_ticks(ax, "y", None if q_labels is None else [q_labels[i] for i in rows], GRID_MAX_TICKS)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.label_outer()
    fig.colorbar(image, ax=used, label="attention weight", shrink=0.9)
    fig.suptitle(title if title is not None else f"{maps.layer_names[l]} · sample {b} · {len(hs)} heads")
    return fig


def model_view(
    maps: AttentionMaps,
    sample: int = 0,
    layers: int | str | Sequence[int | str] | None = None,
    heads: int | Sequence[int] | None = None,
    *,
    title: str | None = None,
    crop: bool = True,
    **colour: Any,
) -> Figure:
    """Small multiples of every (chosen) layer x head (rows = layers, columns = heads).

    One shared colour scale, no tick labels, cropped to the sample's unpadded length when
    ``crop``. ``colour``: ``gamma``, ``robust``, ``log``, ``top_percent``, ``cmap``.
    """
    b = check_index("sample", sample, maps.batch_size)
    ls, hs = _layer_indices(maps, layers), _head_indices(maps, heads)
    style = _Colour(**colour)
    rows, cols, allowed = _valid_cells(maps, b, crop)
    panels = _panels(maps, ls, b, hs, rows, cols)
    side = max(0.5, min(1.6, 15.0 / len(hs), 18.0 / len(ls)))
    fig = _new_figure((side * len(hs) + 1.8, side * len(ls) + 1.0))
    axes = fig.subplots(len(ls), len(hs), squeeze=False)
    norm = style.norm(panels[:, :, allowed])
    for i, l in enumerate(ls):
        for j, h in enumerate(hs):
            ax = axes[i, j]
            image = _draw(ax, panels[i, j], allowed, norm, style)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {h}", fontsize=8)
            if j == 0:
                ax.set_ylabel(maps.layer_names[l], fontsize=8, rotation=0, ha="right", va="center")
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    fig.supxlabel("key (columns of each panel)", fontsize=9)
    fig.supylabel("query (rows of each panel); one row of panels per layer", fontsize=9)
    fig.suptitle(title if title is not None else f"all layers x heads · sample {b} · {len(rows)}x{len(cols)} tokens")
    return fig


# -- other figures -----------------------------------------------------------------------------
def _visible_token(token: str) -> str:
    token = token.replace("\n", "⏎").replace("\t", "⇥").replace("\r", "")
    return token if token.strip() else "␣" * max(1, len(token))


def _wrap(tokens: list[str], width: int) -> list[list[tuple[int, int]]]:
    """Greedy line wrap: per line, (token index, column) pairs; one blank column between tokens."""
    lines: list[list[tuple[int, int]]] = [[]]
    column = 0
    for k, token in enumerate(tokens):
        if lines[-1] and column + len(token) > width:
            lines.append([])
            column = 0
        lines[-1].append((k, column))
        column += len(token) + 1
    return lines


def _ink(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on the background ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def token_highlight(
    tokens: Sequence[str],
    scores: Any,
    *,
    title: str | None = None,
    cmap: Any = "Reds",
    ax: Axes | None = None,
    fontsize: float = 11,
    width: float = 9.0,
) -> Figure:
    """Tokens as text on boxes coloured by their score (lines wrap), with a colorbar."""
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise bad_argument(InvalidInputError, "tokens", "a list of strings", tokens)
    text = [_visible_token(str(t))[:60] for t in tokens]
    values = checks.array("scores", scores, (1,))
    if len(values) != len(text):
        raise bad_argument(InvalidInputError, "scores", f"{len(text)} values (one per token)", f"{len(values)} values", raw=True)
    if not text:
        raise bad_argument(InvalidInputError, "tokens", "at least one token", [], raw=True)
    cm = _colormap(cmap)
    norm = _Colour(cmap=cm).norm(values)
    columns = max(10, int(width * 72 / (0.6 * fontsize) * 0.92))
    lines = _wrap(text, columns)
    fig, ax = figure_and_axes(ax, (width, 1.3 + 0.38 * len(lines) * fontsize / 11))
    ax.set_xlim(-0.5, columns + 0.5)
    ax.set_ylim(len(lines) - 0.4, -0.6)
    ax.set_axis_off()
    for row, line in enumerate(lines):
        for k, column in line:
            face = cm(norm(values[k]))
            ax.text(column, row, text[k], family="monospace", fontsize=fontsize, va="center", ha="left",
                    color=_ink(face), parse_math=False,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": face, "edgecolor": "none"})
    fig.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, orientation="horizontal", label="score",
                 fraction=0.08, aspect=40)
    ax.set_title(title if title is not None else "token scores")
    return fig


def curves(
    values: Any,
    *,
    x: Any = None,
    labels: Sequence[str] | None = None,
    xlabel: str = "x",
    ylabel: str = "value",
    title: str | None = None,
    marks: float | Sequence[float] | None = None,
    mark_label: str = "marked",
    legend_columns: int = 1,
    ax: Axes | None = None,
) -> Figure:
    """Lines of ``values`` ``(n,)`` or ``(n_curves, n)`` against ``x`` (default 0, 1, ...), one legend
    entry per ``labels``; ``marks`` are dashed vertical lines (the first labelled ``mark_label``)."""
    data = checks.array("values", values, (1, 2))
    rows = data[None] if data.ndim == 1 else data
    if rows.shape[1] == 0:
        raise bad_argument(InvalidInputError, "values", "at least one point", f"shape {data.shape}", raw=True)
    xs = np.arange(rows.shape[1]) if x is None else checks.array("x", x, (1,))
    if len(xs) != rows.shape[1]:
        raise bad_argument(InvalidInputError, "x", f"{rows.shape[1]} values", f"{len(xs)} values", raw=True)
    names = _labels("labels", labels, rows.shape[0])
    positions = [] if marks is None else [checks.real("marks", m) for m in np.atleast_1d(marks).tolist()]
    fig, ax = figure_and_axes(ax, (7.0, 4.0))
    for k, y in enumerate(rows):
        ax.plot(xs, y, marker="o" if len(xs) <= 60 else None, markersize=3, label=None if names is None else names[k])
    for n, position in enumerate(positions):
        ax.axvline(position, linestyle="--", color="grey", linewidth=1, label=mark_label if n == 0 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else f"{ylabel} against {xlabel}")
    ax.grid(alpha=0.3)
    if names is not None or positions:
        ax.legend(fontsize=8 if legend_columns == 1 else 7, ncol=checks.positive_int("legend_columns", legend_columns))
    return fig


def lag_profile(
    profile: Any,
    *,
    labels: Sequence[str] | None = None,
    true_periods: float | Sequence[float] | None = None,
    lags: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "lag (steps)",
    ylabel: str = "mean attention",
    legend_columns: int = 1,
) -> Figure:
    """Mean attention against lag: ``profile`` ``(n_lags,)`` or ``(n_curves, n_lags)``
    (:func:`curves` with lag labels). ``lags`` gives the x values (default 0, 1, ...);
    ``true_periods`` are marked by dashed lines."""
    profile = checks.array("profile", profile, (1, 2))
    lags = None if lags is None else checks.array("lags", lags, (1,))
    if profile.shape[-1] == 0:
        raise bad_argument(InvalidInputError, "profile", "at least one lag", f"shape {profile.shape}", raw=True)
    if lags is not None and len(lags) != profile.shape[-1]:
        raise bad_argument(InvalidInputError, "lags", f"{profile.shape[-1]} values", f"{len(lags)} values", raw=True)
    periods = None if true_periods is None else [checks.real("true_periods", p) for p in np.atleast_1d(true_periods).tolist()]
    return curves(profile, x=lags, labels=labels, xlabel=xlabel, ylabel=ylabel, title=title if title is not None else "attention by lag",
                  marks=periods, mark_label="true period", legend_columns=legend_columns, ax=ax)


def _bar_data(values: Any, labels: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    if isinstance(values, Mapping):
        names = [str(k) for k in values]
        data = checks.array("values", list(values.values()), (1,))
    else:
        data = checks.array("values", values, (1,))
        names = [str(i) for i in range(len(data))]
    if labels is not None:
        names = _labels("labels", labels, len(data))
    if len(data) == 0:
        raise bad_argument(InvalidInputError, "values", "at least one value", "none", raw=True)
    return names, data


def _bar_errors(errors: Any, names: list[str]) -> np.ndarray | None:
    """Error bar sizes in bar order (a mapping is matched to the bar names)."""
    if errors is None:
        return None
    if isinstance(errors, Mapping):
        missing = [n for n in names if n not in {str(k) for k in errors}]
        if missing:
            raise bad_argument(InvalidInputError, "errors", "an error for every bar", f"none for {missing}", raw=True)
        errors = [dict((str(k), v) for k, v in errors.items())[n] for n in names]
    err = checks.array("errors", errors, (1,))
    if len(err) != len(names):
        raise bad_argument(InvalidInputError, "errors", f"{len(names)} values", f"{len(err)} values", raw=True)
    if (err < 0).any():
        raise bad_argument(InvalidInputError, "errors", "non-negative values", f"minimum {err.min():.3g}", raw=True)
    return err


def metric_bars(
    values: Mapping[str, float] | Sequence[float],
    *,
    labels: Sequence[str] | None = None,
    errors: Mapping[str, float] | Sequence[float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str | None = None,
    threshold: float | None = None,
) -> Figure:
    """Bar chart of named values with optional error bars and a dashed threshold line."""
    names, data = _bar_data(values, labels)
    err = _bar_errors(errors, names)
    fig, ax = figure_and_axes(ax, (min(14.0, max(4.5, 0.55 * len(data) + 2)), 4.0))
    x = np.arange(len(data))
    ax.bar(x, data, yerr=err, capsize=3 if err is not None else 0, color="C0")
    slanted = len(data) > 8 or max(len(n) for n in names) > 6
    ax.set_xticks(x, [_tick_text(n) for n in names], rotation=40 if slanted else 0, ha="right" if slanted else "center")
    if threshold is not None:
        level = checks.real("threshold", threshold)
        ax.axhline(level, linestyle="--", color="C3", linewidth=1.2, label=f"threshold {level:g}")
        ax.legend(fontsize=8)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_title(title if title is not None else "metric")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _annotate(ax: Axes, data: np.ndarray, image, fmt: str) -> None:
    for (i, j), v in np.ndenumerate(data):
        if np.isnan(v):
            ax.text(j, i, "–", ha="center", va="center", fontsize=8, color="black")
            continue
        ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8, color=_ink(image.cmap(image.norm(v))))


def layer_head_grid(
    values: Any,
    *,
    title: str | None = None,
    cbar_label: str | None = None,
    ax: Axes | None = None,
    fmt: str = ".2f",
    annotate: bool = True,
    layer_names: Sequence[str] | None = None,
    cmap: Any = "viridis",
) -> Figure:
    """A metric per layer and head ``(L, H)`` as a heatmap (x = head, y = layer), values written in.

    NaN marks a missing value (grey cell). Cells are annotated when ``annotate`` and there are at
    most ``MAX_ANNOTATED_CELLS`` of them.
    """
    data = checks.array("values", values, (2,), allow_nan=True)
    n_layers, n_heads = data.shape
    names = _labels("layer_names", layer_names, n_layers)
    try:
        format(0.5, fmt)
    except (TypeError, ValueError):
        raise bad_argument(InvalidInputError, "fmt", "a float format spec such as '.2f'", fmt) from None
    fig, ax = figure_and_axes(ax, (min(14.0, 2.8 + 0.6 * n_heads), min(12.0, 1.6 + 0.45 * n_layers)))
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=_colormap(cmap), aspect="auto", interpolation="nearest",
                      norm=mcolors.Normalize(lo, hi if hi > lo else lo + 1.0))
    _set_ticks(ax, "x", [str(h) for h in range(n_heads)])
    _set_ticks(ax, "y", names if names is not None else [str(i) for i in range(n_layers)])
    ax.tick_params(axis="x", labelrotation=0)
    if annotate and data.size <= MAX_ANNOTATED_CELLS:
        _annotate(ax, data, image, fmt)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title if title is not None else "metric per layer and head")
    fig.colorbar(image, ax=ax, label=cbar_label if cbar_label is not None else "value")
    return fig


def head_dendrogram(
    distances: Any, n_heads: int, *, method: str = "average", title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Hierarchical clustering of heads from a symmetric distance matrix ``(L·H, L·H)``.

    Head ``i`` is layer ``i // n_heads``, head ``i % n_heads``; leaves are labelled ``L<l>H<h>``
    and coloured by layer, so runs of one colour are heads of one layer that attend alike.
    Linkage by ``scipy.cluster.hierarchy.linkage(method)`` on the condensed distances.
    """
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    data = checks.array("distances", distances, (2,))
    n = data.shape[0]
    if data.shape != (n, n) or n < 2 or not np.allclose(data, data.T, atol=1e-6) or (data < -1e-9).any():
        raise bad_argument(InvalidInputError, "distances", "a square, symmetric, non-negative matrix of at least 2 heads", data.shape, raw=True)
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1 or n % n_heads:
        raise bad_argument(InvalidInputError, "n_heads", f"a positive divisor of {n}", n_heads, raw=True)
    condensed = squareform(np.clip((data + data.T) / 2, 0, None), checks=False)
    tree = linkage(condensed, method=method)
    fig, ax = figure_and_axes(ax, (min(16.0, 3.0 + 0.18 * n), 4.5))
    names = [f"L{i // n_heads}H{i % n_heads}" for i in range(n)]
    dendrogram(tree, labels=names, ax=ax, color_threshold=0, above_threshold_color="#555555", leaf_font_size=7)
    palette = matplotlib.colormaps["tab10"]
    for label in ax.get_xticklabels():
        layer = int(label.get_text()[1:].split("H")[0])
        label.set_color(palette(layer % 10))
    ax.set_xlabel("head (L<layer>H<head>, coloured by layer)")
    ax.set_ylabel(f"Jensen-Shannon divergence ({method} linkage)")
    ax.set_title(title if title is not None else "heads clustered by attention distance")
    return fig


# -- time series and training figures ----------------------------------------------------------
DEFAULT_LOSS_LABEL = "MSE (normalised units)"
WINDOW_COLOUR = "C0"
WEIGHT_COLOUR = "C1"
TARGET_COLOUR = "black"
FORECAST_COLOUR = "C3"


def _history_fields(name: str, history: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, train_loss, val_loss) of one :class:`~attnbook.train.History`, validated."""
    from .train import History

    if not isinstance(history, History):
        raise bad_argument(InvalidInputError, name, "a History (attnbook.train)", history)
    steps = checks.array(f"{name}.steps", history.steps, (1,))
    val = checks.array(f"{name}.val_loss", history.val_loss, (1,))
    train = checks.array(f"{name}.train_loss", history.train_loss, (1,), allow_nan=True)
    if len(steps) == 0:
        raise bad_argument(InvalidInputError, f"{name}.steps", "at least one evaluation", "none", raw=True)
    for field_name, values in (("val_loss", val), ("train_loss", train)):
        if len(values) != len(steps):
            raise bad_argument(
                InvalidInputError, f"{name}.{field_name}", f"{len(steps)} values (one per step)", f"{len(values)} values", raw=True
            )
    return steps, train, val


def training_curves(
    histories: Mapping[str, Any] | Any,
    *,
    title: str | None = None,
    ax: Axes | None = None,
    log: bool = True,
    ylabel: str = DEFAULT_LOSS_LABEL,
) -> Figure:
    """Validation (solid) and training (dashed) loss against step, one colour per run.

    ``histories``: one :class:`~attnbook.train.History` (called 'run') or a mapping run name ->
    History. Training losses that are NaN (step 0) are skipped; a star marks each run's best
    step (``best_step``, ``best_val``). ``log``: logarithmic y axis (needs positive losses).
    """
    from matplotlib.lines import Line2D

    from .train import History

    if isinstance(histories, History):
        histories = {"run": histories}
    if not isinstance(histories, Mapping) or not histories:
        raise bad_argument(InvalidInputError, "histories", "a History or a non-empty mapping name -> History", histories)
    runs = {str(k): (h, *_history_fields(f"histories[{str(k)!r}]", h)) for k, h in histories.items()}
    if log:
        lowest = min(float(np.min(np.r_[v, t[np.isfinite(t)]])) for _, _, t, v in runs.values())
        if lowest <= 0:
            raise bad_argument(InvalidInputError, "log", "log=False for losses <= 0", f"a loss of {lowest:.3g}", raw=True)
    fig, ax = figure_and_axes(ax, (7.5, 4.2))
    for k, (name, (history, steps, train, val)) in enumerate(runs.items()):
        colour = f"C{k % 10}"
        ax.plot(steps, val, color=colour, linestyle="-", linewidth=1.6, label=name)
        seen = np.isfinite(train)
        if seen.any():
            ax.plot(steps[seen], train[seen], color=colour, linestyle="--", linewidth=1.1, alpha=0.8, label="_nolegend_")
        best_step, best_val = history.best_step, history.best_val
        if isinstance(best_val, numbers.Real) and math.isfinite(best_val) and (not log or best_val > 0):
            ax.scatter([best_step], [best_val], marker="*", s=110, color=colour, edgecolors="black", linewidths=0.6, zorder=3)
    if log:
        ax.set_yscale("log")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="grey", linestyle="-", label="validation"),
        Line2D([], [], color="grey", linestyle="--", label="training"),
        Line2D([], [], color="grey", marker="*", markersize=10, markeredgecolor="black", linestyle="none", label="best step"),
    ]
    ax.legend(handles=handles, fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "training curves")
    ax.grid(alpha=0.3, which="both" if log else "major")
    return fig


def series_overview(
    series: Mapping[str, Sequence[float]],
    *,
    families: Mapping[str, str] | None = None,
    n: int | None = None,
    ncols: int = 3,
    title: str | None = None,
) -> Figure:
    """Small multiples: one panel per series (its first ``n`` points), titled 'name (family)'."""
    if not isinstance(series, Mapping) or not series:
        raise bad_argument(InvalidInputError, "series", "a non-empty mapping name -> values", series)
    if families is not None and not isinstance(families, Mapping):
        raise bad_argument(InvalidInputError, "families", "a mapping name -> family or None", families)
    limit = None if n is None else checks.positive_int("n", n)
    ncols = min(checks.positive_int("ncols", ncols), len(series))
    data = {}
    for name, values in series.items():
        array = checks.array(f"series[{str(name)!r}]", values, (1,))
        if len(array) == 0:
            raise bad_argument(InvalidInputError, f"series[{str(name)!r}]", "at least one value", "none", raw=True)
        data[str(name)] = array[:limit]
    kinds = {} if families is None else {str(k): str(v) for k, v in families.items()}
    nrows = math.ceil(len(data) / ncols)
    fig = _new_figure((min(16.0, 4.2 * ncols), 2.3 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in list(axes.flat)[len(data):]:
        fig.delaxes(ax)
    for ax, (name, values) in zip(axes.flat, data.items()):
        ax.plot(np.arange(len(values)), values, color=WINDOW_COLOUR, linewidth=0.8)
        ax.set_title(f"{name} ({kinds[name]})" if name in kinds else name, fontsize=9)
        ax.set_xlabel("time step", fontsize=8)
        ax.set_ylabel("value", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    longest = max(len(v) for v in data.values())
    fig.suptitle(title if title is not None else f"{len(data)} series · first {longest} steps")
    return fig


def grouped_bars(
    values: Mapping[str, Sequence[float]],
    *,
    errors: Mapping[str, Sequence[float]] | None = None,
    group_labels: Sequence[str],
    title: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
    reference: float | None = None,
) -> Figure:
    """Grouped bars: one group per ``group_labels`` entry, one colour per key of ``values``.

    ``values[key]`` holds one value per group (NaN = no bar); ``errors[key]`` (optional, for any
    of the keys) the matching non-negative error bar sizes; ``reference`` draws a dashed
    horizontal line.
    """
    if not isinstance(values, Mapping) or not values:
        raise bad_argument(InvalidInputError, "values", "a non-empty mapping name -> one value per group", values)
    if isinstance(group_labels, str) or not isinstance(group_labels, Sequence) or len(group_labels) == 0:
        raise bad_argument(InvalidInputError, "group_labels", "a non-empty sequence of strings", group_labels)
    groups = [str(g) for g in group_labels]
    data = {}
    for key, row in values.items():
        array = checks.array(f"values[{str(key)!r}]", row, (1,), allow_nan=True)
        if len(array) != len(groups):
            raise bad_argument(InvalidInputError, f"values[{str(key)!r}]", f"{len(groups)} values (one per group)", f"{len(array)} values", raw=True)
        data[str(key)] = array
    err: dict[str, np.ndarray] = {}
    if errors is not None:
        if not isinstance(errors, Mapping):
            raise bad_argument(InvalidInputError, "errors", "a mapping name -> error sizes or None", errors)
        for key, row in errors.items():
            if str(key) not in data:
                raise bad_argument(InvalidInputError, "errors", f"keys among {list(data)}", repr(str(key)), raw=True)
            array = checks.array(f"errors[{str(key)!r}]", row, (1,), allow_nan=True)
            if len(array) != len(groups):
                raise bad_argument(InvalidInputError, f"errors[{str(key)!r}]", f"{len(groups)} values (one per group)", f"{len(array)} values", raw=True)
            if (array[np.isfinite(array)] < 0).any():
                raise bad_argument(InvalidInputError, f"errors[{str(key)!r}]", "non-negative values", f"minimum {np.nanmin(array):.3g}", raw=True)
            err[str(key)] = np.nan_to_num(array, nan=0.0)
    level = None if reference is None else checks.real("reference", reference)
    fig, ax = figure_and_axes(ax, (min(15.0, max(5.0, 0.45 * len(groups) * len(data) + 0.5 * len(groups) + 2)), 4.3))
    x = np.arange(len(groups))
    width = 0.8 / len(data)
    handles = []
    for k, (key, row) in enumerate(data.items()):
        handles.append(ax.bar(x - 0.4 + width * (k + 0.5), row, width=width, yerr=err.get(key),
                              capsize=3 if key in err else 0, color=f"C{k % 10}", label=key))
    ax.set_xticks(x, [g.replace("$", r"\$") for g in groups], rotation=35, ha="right", rotation_mode="anchor")
    if level is not None:
        handles.append(ax.axhline(level, linestyle="--", color="grey", linewidth=1.2, label=f"reference {level:g}"))
    ax.legend(handles=handles, fontsize=8)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    ax.set_title(title if title is not None else "comparison by group")
    ax.grid(axis="y", alpha=0.3)
    return fig


def maps_grid(maps_by_name: Mapping[str, Any], *, ncols: int = 3, title: str | None = None, **colour: Any) -> Figure:
    """One ``(queries, keys)`` map per name as small multiples with a shared colour scale.

    ``colour`` takes ``gamma``, ``robust``, ``log`` and ``cmap`` as in :func:`heatmap`.
    """
    if not maps_by_name:
        raise bad_argument(InvalidInputError, "maps_by_name", "at least one map", maps_by_name)
    arrays = {name: checks.array(f"maps_by_name[{name!r}]", m, (2,)) for name, m in maps_by_name.items()}
    n = len(arrays)
    cols = max(1, min(int(ncols), n))
    rows = math.ceil(n / cols)
    fig = _new_figure((3.6 * cols + 1.0, 3.3 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    spec = _Colour(**colour)
    norm = spec.norm(np.concatenate([a.ravel() for a in arrays.values()]))
    image = None
    for ax, (name, data) in zip(axes, arrays.items()):
        image = ax.imshow(data, cmap=spec.cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("key", fontsize=8)
        ax.set_ylabel("query", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.remove()
    fig.colorbar(image, ax=list(axes[:n]), shrink=0.8, label="attention weight")
    fig.suptitle(title if title is not None else "attention maps")
    return fig


def band_curves(
    x: Any,
    runs: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "step",
    ylabel: str | None = None,
) -> Figure:
    """Mean over runs with a ±1 standard-error band (``std / √n``, ddof 1), one colour per name.

    ``runs[name]`` is ``(n_runs, len(x))`` (or ``(len(x),)`` for a single run, drawn without a
    band). NaN values are ignored per point.
    """
    xs = checks.array("x", x, (1,))
    if not isinstance(runs, Mapping) or not runs:
        raise bad_argument(InvalidInputError, "runs", "a non-empty mapping name -> (n_runs, len(x)) array", runs)
    fig, ax = figure_and_axes(ax, (7.5, 4.2))
    for k, (name, values) in enumerate(runs.items()):
        data = checks.array(f"runs[{name!r}]", values, (1, 2), allow_nan=True)
        data = data[None] if data.ndim == 1 else data
        if data.shape[1] != len(xs):
            raise bad_argument(InvalidInputError, f"runs[{name!r}]", f"{len(xs)} points per run", f"{data.shape[1]}", raw=True)
        colour = f"C{k % 10}"
        n = np.sum(np.isfinite(data), axis=0)
        with warnings.catch_warnings():  # a point no run has (NaN everywhere) stays NaN: a gap in the line
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(data, axis=0)
        ax.plot(xs, mean, color=colour, linewidth=1.5, label=f"{name} (n={int(n.max())})")
        if data.shape[0] > 1:
            with warnings.catch_warnings():  # a point seen by a single run has no spread: NaN, no band
                warnings.simplefilter("ignore", RuntimeWarning)
                se = np.nanstd(data, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
            ax.fill_between(xs, mean - se, mean + se, color=colour, alpha=0.25, linewidth=0)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_title(title if title is not None else "mean ± standard error over runs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# -- moved to the chapters' folders (old import paths keep working, with a warning) ---------------
def __getattr__(name: str) -> Any:
    """``series_attention`` moved to :mod:`attnbook.timeseries.figures` (deprecated here)."""
    if name == "series_attention":
        import warnings

        from .timeseries.figures import series_attention

        warnings.warn("attnbook.plots.series_attention moved to attnbook.timeseries.figures.series_attention", DeprecationWarning, stacklevel=2)
        return series_attention
    raise AttributeError(f"module 'attnbook.plots' has no attribute {name!r}")
