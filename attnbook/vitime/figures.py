"""Figures of ViTime's visual space: the input canvas and the predicted distributions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import plots
from ..errors import InvalidInputError, bad_argument
from .mapping import Mapped, image_to_series

__all__ = ["canvas_figure", "forecast_panels", "learning_curve"]


def canvas_figure(mapped: Mapped, probs: Any = None, *, truth: Any = None, baseline: Any = None, title: str = "") -> plots.BookFigure:
    """The model input (blurred one-hot history, future zeroed) and, with ``probs`` ``(1, 1, W, h)``,
    the predicted per-column distributions with the argmax-decoded series; ``truth`` and
    ``baseline`` (``T + H`` or ``H`` samples, series units) are drawn over the decoded series.
    Value rows run upwards (row 0, the most negative value, at the bottom)."""
    if not isinstance(mapped, Mapped):
        raise bad_argument(InvalidInputError, "mapped", "the Mapped of series_to_image", type(mapped).__name__, raw=True)
    c = mapped.config
    panels = 1 if probs is None else 2
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 2.6 * panels + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(panels, 1, sharex=True))
    extent = (0, c.width, 0, c.bins)
    axes[0].imshow(mapped.image.T, origin="lower", aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
    axes[0].axvline(mapped.history_columns, color="white", linestyle="--", linewidth=1)
    axes[0].set_ylabel("value bin")
    axes[0].set_title("input: blurred one-hot of the normalised history (future columns empty)")
    if probs is not None:
        p = np.asarray(torch.as_tensor(probs, dtype=torch.float32).reshape(-1, c.width, c.bins)[0])
        axes[1].imshow(p.T, origin="lower", aspect="auto", cmap="viridis", extent=extent, interpolation="nearest")
        axes[1].axvline(mapped.history_columns, color="white", linestyle="--", linewidth=1)
        axes[1].set_ylabel("value bin")
        axes[1].set_title("output: predicted distribution over value bins per column")
        total = mapped.input_len + mapped.horizon
        cols = np.linspace(0, c.width - 1, total) + 0.5

        def to_rows(values: Any) -> np.ndarray:
            v = np.asarray(values, dtype=np.float64)
            if len(v) == mapped.horizon:
                v = np.concatenate([np.full(mapped.input_len, np.nan), v])
            if len(v) != total:
                raise bad_argument(InvalidInputError, "truth/baseline", f"{mapped.horizon} or {total} values", f"{len(v)} values", raw=True)
            return ((v - mapped.mu) / mapped.sigma + c.max_scal) / c.bin_width

        decoded = image_to_series(p, mapped, method="argmax")
        axes[1].plot(cols, to_rows(decoded) + 0.5, color="white", linewidth=0.8, label="decoded (argmax)")
        if truth is not None:
            axes[1].plot(cols, to_rows(truth), color="#4daf4a", linewidth=0.8, label="truth")
        if baseline is not None:
            axes[1].plot(cols, to_rows(baseline), color="#e41a1c", linewidth=0.8, linestyle=":", label="repeat last period")
        axes[1].set_ylim(0, c.bins)
        axes[1].legend(fontsize=plots.MIN_FONT_PT, loc="upper left")
    axes[-1].set_xlabel("canvas column (history | future)")
    if title:
        fig.suptitle(title)
    return fig


#: line styles of :func:`forecast_panels`, by method name (others get the default cycle)
FORECAST_STYLES: dict[str, dict[str, Any]] = {
    "truth": {"color": "black", "linewidth": 1.0},
    "model (expectation)": {"color": "#377eb8", "linewidth": 1.2},
    "model (argmax)": {"color": "#377eb8", "linewidth": 0.8, "linestyle": "--"},
    "repeat last period": {"color": "#e41a1c", "linewidth": 0.8, "linestyle": ":"},
    "seasonal average": {"color": "#984ea3", "linewidth": 0.8, "linestyle": "--"},
    "history mean": {"color": "#999999", "linewidth": 0.8},
    "last value": {"color": "#a65628", "linewidth": 0.8, "linestyle": "-."},
    "linear": {"color": "#4daf4a", "linewidth": 0.8},
}


def forecast_panels(panels: dict[str, tuple[Any, Any, dict[str, Any]]], *, show_history: int = 256, title: str = "") -> plots.BookFigure:
    """One panel per ``name → (history, truth, {method: forecast})``: the last ``show_history``
    history samples, the true continuation and every method's forecast (series units, time in
    samples from the end of the history)."""
    if not isinstance(panels, dict) or not panels:
        raise bad_argument(InvalidInputError, "panels", "a non-empty dict name → (history, truth, forecasts)", type(panels).__name__, raw=True)
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 2.0 * len(panels) + 1.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    for ax, (name, (history, truth, forecasts)) in zip(axes, panels.items()):
        h, y = np.asarray(history, dtype=np.float64), np.asarray(truth, dtype=np.float64)
        k = min(show_history, len(h))
        ax.plot(np.arange(-k, 0), h[-k:], color="black", linewidth=0.8, alpha=0.6, label="history")
        t = np.arange(len(y))
        ax.plot(t, y, label="truth", **FORECAST_STYLES["truth"])
        for method, f in forecasts.items():
            ax.plot(t, np.asarray(f, dtype=np.float64), label=method, **FORECAST_STYLES.get(method, {"linewidth": 0.8}))
        ax.axvline(0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("value")
    axes[-1].set_xlabel("samples after the end of the history")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=plots.MIN_FONT_PT)
    if title:
        fig.suptitle(title)
    return fig


def learning_curve(history: Any, levels: dict[str, float], *, curve: str = "held-out MSE ÷ history mean",
                   bars: dict[str, float] | None = None, title: str = "") -> plots.BookFigure:
    """The monitored ``history.monitors[curve]`` against step (markers at each validation, the
    best-validation step circled) with a horizontal line per ``levels`` ``{method: ratio}`` (a
    baseline's level on the same scale) and, dotted, each of ``bars`` ``{label: level}``.
    ``history``: one History, or ``{label: History}`` (one line per run, e.g. per training seed)."""
    from collections.abc import Mapping

    from ..train import History

    histories = {"model (expectation)": history} if isinstance(history, History) else history
    if not isinstance(histories, Mapping) or not histories:
        raise bad_argument(InvalidInputError, "history", "a History or a non-empty mapping label -> History", type(history).__name__, raw=True)
    for h in histories.values():
        if not isinstance(h, History) or not h.monitors.get(curve):
            raise bad_argument(InvalidInputError, "history", f"a History with monitors[{curve!r}] (pretrained with curve=)",
                               type(h).__name__ if not isinstance(h, History) else sorted(h.monitors), raw=True)
    fig = plots.BookFigure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    style = dict(FORECAST_STYLES["model (expectation)"])
    for k, (label, h) in enumerate(histories.items()):
        steps, values = np.asarray(h.steps), np.asarray(h.monitors[curve], dtype=np.float64)
        line_style = style if len(histories) == 1 else {**{k_: v for k_, v in style.items() if k_ != "color"}, "color": f"C{k}"}
        ax.plot(steps, values, marker="o", markersize=3, label=str(label), **line_style)
        best = np.flatnonzero(steps == h.best_step)
        if best.size:
            ax.plot(steps[best[0]], values[best[0]], "o", markersize=9, markerfacecolor="none", color="black",
                    label="best validation loss (kept)" if k == 0 else None)
    for method, level in levels.items():
        ax.axhline(float(level), label=f"{method} ({float(level):.3f})", **FORECAST_STYLES.get(method, {"linewidth": 0.8}))
    for k, (label, level) in enumerate((bars or {}).items()):
        ax.axhline(float(level), color="black", linestyle=[(0, (1, 3)), (0, (4, 2, 1, 2))][k % 2], linewidth=1.0, label=f"{label} ({float(level):.3f})")
    ax.set_xlabel("pretraining step")
    ax.set_ylabel(curve)
    ax.legend(fontsize=plots.MIN_FONT_PT, loc="upper right")
    if title:
        ax.set_title(title)
    return fig
