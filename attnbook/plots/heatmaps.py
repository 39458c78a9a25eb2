"""Heatmap-family figures of attention maps: one map (:func:`heatmap`, :func:`head_map`), the
heads of a layer (:func:`head_view`), every layer x head (:func:`model_view`), maps side by side
(:func:`maps_grid`), a metric per layer and head (:func:`layer_head_grid`), heads clustered by
distance (:func:`head_dendrogram`) and tokens coloured by a score (:func:`token_highlight`).

Keys are on x and queries on y.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps, check_index
from .base import (
    GRID_MAX_TICKS,
    MAX_ANNOTATED_CELLS,
    TOP_COLOUR,
    _as_mask,
    _Colour,
    _colormap,
    _labels,
    _new_figure,
    _set_ticks,
    figure_and_axes,
)
from .legibility import BOOK_WIDTH_IN, MIN_FONT_PT


# -- drawing helpers ---------------------------------------------------------------------------

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
    side = min(3.2, (BOOK_WIDTH_IN - 1.2) / ncols)  # the column's width: the page shows it at its own size
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
    """Small multiples of every (chosen) layer x head (rows = layers ``L<i>``, columns = heads ``H<j>``).

    One shared colour scale, no tick labels, cropped to the sample's unpadded length when
    ``crop``. ``colour``: ``gamma``, ``robust``, ``log``, ``top_percent``, ``cmap``. The figure is at
    most :data:`~attnbook.plots.legibility.BOOK_WIDTH_IN` wide (the page's column) and its text at
    least :data:`~attnbook.plots.legibility.MIN_FONT_PT`, so the page shows it at its own size with
    every label readable.
    """
    b = check_index("sample", sample, maps.batch_size)
    ls, hs = _layer_indices(maps, layers), _head_indices(maps, heads)
    style = _Colour(**colour)
    rows, cols, allowed = _valid_cells(maps, b, crop)
    panels = _panels(maps, ls, b, hs, rows, cols)
    side = min(1.6, (BOOK_WIDTH_IN - 1.3) / len(hs))
    fig = _new_figure((side * len(hs) + 1.3, side * len(ls) + 1.1))
    axes = fig.subplots(len(ls), len(hs), squeeze=False)
    norm = style.norm(panels[:, :, allowed])
    for i, l in enumerate(ls):
        for j, h in enumerate(hs):
            ax = axes[i, j]
            image = _draw(ax, panels[i, j], allowed, norm, style)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"H{h}", fontsize=MIN_FONT_PT, pad=2)
            if j == 0:
                ax.set_ylabel(f"L{l}", fontsize=MIN_FONT_PT, rotation=0, ha="right", va="center")
    bar = fig.colorbar(image, ax=axes, shrink=0.8)
    bar.set_label("attention weight", fontsize=MIN_FONT_PT)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
    fig.supxlabel("key (columns of each panel); H<j>: head j", fontsize=MIN_FONT_PT)
    fig.supylabel("query (rows of each panel); L<i>: layer i", fontsize=MIN_FONT_PT)
    fig.suptitle(title if title is not None else f"every layer x head · sample {b} · {len(rows)}x{len(cols)} tokens",
                 fontsize=MIN_FONT_PT + 1)
    return fig


# -- tokens coloured by score ------------------------------------------------------------------
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


# -- a metric per head, heads clustered, maps side by side -------------------------------------
def _annotate(ax: Axes, data: np.ndarray, image, fmt: str) -> None:
    for (i, j), v in np.ndenumerate(data):
        if np.isnan(v):
            ax.text(j, i, "–", ha="center", va="center", fontsize=MIN_FONT_PT, color="black")
            continue
        ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=MIN_FONT_PT, color=_ink(image.cmap(image.norm(v))))


def _cells_fit(data: np.ndarray, fmt: str, cell_in: float) -> bool:
    """Whether every value written with ``fmt`` at :data:`MIN_FONT_PT` (about 0.6 em a character)
    fits a cell ``cell_in`` inches wide."""
    finite = data[np.isfinite(data)]
    longest = max((len(format(v, fmt)) for v in finite.ravel()), default=1)
    return longest * 0.6 * MIN_FONT_PT / 72 <= 0.9 * cell_in


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

    NaN marks a missing value (grey cell). Cells are annotated when ``annotate``, there are at
    most ``MAX_ANNOTATED_CELLS`` of them and the values fit their cells at the book's smallest font
    (the figure is at most the column's width, so the page shows it at its own size).
    """
    data = checks.array("values", values, (2,), allow_nan=True)
    n_layers, n_heads = data.shape
    names = _labels("layer_names", layer_names, n_layers)
    try:
        format(0.5, fmt)
    except (TypeError, ValueError):
        raise bad_argument(InvalidInputError, "fmt", "a float format spec such as '.2f'", fmt) from None
    width = min(BOOK_WIDTH_IN, 2.8 + 0.6 * n_heads)
    fig, ax = figure_and_axes(ax, (width, min(12.0, 1.6 + 0.45 * n_layers)))
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(data), cmap=_colormap(cmap), aspect="auto", interpolation="nearest",
                      norm=mcolors.Normalize(lo, hi if hi > lo else lo + 1.0))
    _set_ticks(ax, "x", [str(h) for h in range(n_heads)])
    _set_ticks(ax, "y", names if names is not None else [str(i) for i in range(n_layers)])
    ax.tick_params(axis="x", labelrotation=0)
    if annotate and data.size <= MAX_ANNOTATED_CELLS and _cells_fit(data, fmt, (fig.get_figwidth() - 2.6) / n_heads):
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
    and coloured by layer, so runs of one colour are heads of one layer that attend alike. The
    leaves run down the figure (``orientation="left"``), so it keeps the column's width and its
    labels the book's smallest font for any number of heads.
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
    fig, ax = figure_and_axes(ax, (min(BOOK_WIDTH_IN, 6.0), max(3.0, 1.2 + 0.13 * n)))
    names = [f"L{i // n_heads}H{i % n_heads}" for i in range(n)]
    dendrogram(tree, labels=names, ax=ax, orientation="left", color_threshold=0, above_threshold_color="#555555",
               leaf_font_size=MIN_FONT_PT)
    palette = matplotlib.colormaps["tab10"]
    for label in ax.get_yticklabels():
        layer = int(label.get_text()[1:].split("H")[0])
        label.set_color(palette(layer % 10))
    ax.set_ylabel("head (L<layer>H<head>, coloured by layer)")
    ax.set_xlabel(f"Jensen-Shannon divergence ({method} linkage)")
    ax.set_title(title if title is not None else "heads clustered by attention distance")
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
    side = min(3.6, (BOOK_WIDTH_IN - 1.0) / cols)
    fig = _new_figure((side * cols + 1.0, side * 0.92 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    spec = _Colour(**colour)
    norm = spec.norm(np.concatenate([a.ravel() for a in arrays.values()]))
    image = None
    for ax, (name, data) in zip(axes, arrays.items()):
        image = ax.imshow(data, cmap=spec.cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("key", fontsize=MIN_FONT_PT)
        ax.set_ylabel("query", fontsize=MIN_FONT_PT)
        ax.tick_params(labelsize=MIN_FONT_PT)
    for ax in axes[n:]:
        ax.remove()
    fig.colorbar(image, ax=list(axes[:n]), shrink=0.8, label="attention weight")
    fig.suptitle(title if title is not None else "attention maps")
    return fig
