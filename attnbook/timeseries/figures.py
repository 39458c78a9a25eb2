"""Chapter 2's figures: an input window with one query row's attention as bars."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import checks, plots
from ..errors import InvalidInputError, bad_argument

__all__ = ["series_attention"]


def _query_position(query: Any, size: int) -> int:
    if isinstance(query, bool) or not isinstance(query, numbers.Integral) or not -size <= query < size:
        raise bad_argument(InvalidInputError, "query", f"an integer in [0, {size})", query)
    return int(query) % size


def series_attention(
    window: Sequence[float],
    weights: Sequence[float],
    *,
    target: Sequence[float] | None = None,
    forecast: Sequence[float] | None = None,
    query: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """One input window (a line) with one query row's attention weights as bars on a twin y axis.

    ``window`` and ``weights`` have one value per input step ``0 .. L-1``; ``target`` (the true
    future, solid) and ``forecast`` (dashed) follow at steps ``L .. L+H-1``. A dotted vertical
    line marks the query position ``query`` (default ``L-1``; up to ``L+H-1`` when a horizon is
    drawn, for queries that sit in the horizon).
    """
    from matplotlib.ticker import MaxNLocator

    values = checks.array("window", window, (1,))
    attn = checks.array("weights", weights, (1,))
    if len(values) == 0:
        raise bad_argument(InvalidInputError, "window", "at least one step", "none", raw=True)
    if len(attn) != len(values):
        raise bad_argument(InvalidInputError, "weights", f"{len(values)} values (one per window step)", f"{len(attn)} values", raw=True)
    truth = None if target is None else checks.array("target", target, (1,))
    guess = None if forecast is None else checks.array("forecast", forecast, (1,))
    if truth is not None and guess is not None and len(guess) != len(truth):
        raise bad_argument(InvalidInputError, "forecast", f"{len(truth)} values (as many as target)", f"{len(guess)} values", raw=True)
    size = len(values)
    horizon = len(truth) if truth is not None else (len(guess) if guess is not None else 0)
    position = size - 1 if query is None else _query_position(query, size + horizon)
    fig, ax = plots.figure_and_axes(ax, (plots.BOOK_WIDTH_IN, 3.8))
    twin = ax.twinx()
    steps = np.arange(size)
    twin.bar(steps, attn, width=0.8, color=plots.WEIGHT_COLOUR, alpha=0.45, label=f"attention weight (query {position})")
    top = float(attn.max()) if attn.size and attn.max() > 0 else 1.0
    twin.set_ylim(min(0.0, float(attn.min()) * 1.1), top * 1.6)  # bars fill the lower part, under the line
    twin.set_ylabel("attention weight")
    ax.set_zorder(twin.get_zorder() + 1)  # the series is drawn over the bars
    ax.patch.set_visible(False)
    ax.plot(steps, values, color=plots.WINDOW_COLOUR, linewidth=1.5, marker="o" if size <= 60 else None, markersize=2.5, label="input window")
    after = np.arange(size, size + horizon)
    if horizon:
        ax.axvspan(size - 0.5, size + horizon - 0.5, color="grey", alpha=0.08, linewidth=0)
    if truth is not None:
        ax.plot(after, truth, color=plots.TARGET_COLOUR, linewidth=1.3, label="true future")
    if guess is not None:
        ax.plot(after, guess, color=plots.FORECAST_COLOUR, linestyle="--", linewidth=1.5, label="forecast")
    ax.axvline(position, color="grey", linestyle=":", linewidth=1.3, label=f"query t={position}")
    ax.set_xlim(-0.8, size + horizon - 0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=8, loc="best")
    ax.set_xlabel("time step (input window, then horizon)")
    ax.set_ylabel("value")
    ax.set_title(title if title is not None else f"input window and attention of query {position}")
    ax.grid(alpha=0.3)
    return fig


