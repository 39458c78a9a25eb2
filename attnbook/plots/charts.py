"""Line and bar charts: :func:`curves` and :func:`lag_profile`, :func:`metric_bars` and
:func:`grouped_bars`, :func:`training_curves`, :func:`band_curves` (mean ± standard error over
runs), :func:`series_overview` (small multiples of time series) and :func:`ablation_strips` (chosen
heads' ablation effect against random head sets).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import checks
from ..errors import InvalidInputError, bad_argument
from .base import _labels, _new_figure, _tick_text, figure_and_axes
from .legibility import BOOK_WIDTH_IN, MIN_FONT_PT


# -- curves ------------------------------------------------------------------------------------
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
        ax.legend(fontsize=MIN_FONT_PT, ncol=checks.positive_int("legend_columns", legend_columns))
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


# -- bars --------------------------------------------------------------------------------------
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
    fig, ax = figure_and_axes(ax, (min(BOOK_WIDTH_IN, max(4.5, 0.55 * len(data) + 2)), 4.0))
    x = np.arange(len(data))
    ax.bar(x, data, yerr=err, capsize=3 if err is not None else 0, color="C0")
    slanted = len(data) > 8 or max(len(n) for n in names) > 6
    ax.set_xticks(x, [_tick_text(n) for n in names], rotation=(90 if len(data) > 16 else 40) if slanted else 0,
                  ha="right" if slanted else "center", rotation_mode="anchor" if slanted else "default")
    if threshold is not None:
        level = checks.real("threshold", threshold)
        ax.axhline(level, linestyle="--", color="C3", linewidth=1.2, label=f"threshold {level:g}")
        ax.legend(fontsize=MIN_FONT_PT)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_title(title if title is not None else "metric")
    ax.grid(axis="y", alpha=0.3)
    return fig


# -- time series and training figures ----------------------------------------------------------
DEFAULT_LOSS_LABEL = "MSE (normalised units)"
WINDOW_COLOUR = "C0"
WEIGHT_COLOUR = "C1"
TARGET_COLOUR = "black"
FORECAST_COLOUR = "C3"


def _history_fields(name: str, history: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, train_loss, val_loss) of one :class:`~attnbook.train.History`, validated."""
    from ..train import History

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

    from ..train import History

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
    fig = _new_figure((min(BOOK_WIDTH_IN, 4.2 * ncols), 2.1 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in list(axes.flat)[len(data):]:
        fig.delaxes(ax)
    for ax, (name, values) in zip(axes.flat, data.items()):
        ax.plot(np.arange(len(values)), values, color=WINDOW_COLOUR, linewidth=0.8)
        ax.set_title(f"{name} ({kinds[name]})" if name in kinds else name, fontsize=9)
        ax.set_xlabel("time step", fontsize=MIN_FONT_PT)
        ax.set_ylabel("value", fontsize=MIN_FONT_PT)
        ax.tick_params(labelsize=MIN_FONT_PT)
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
    fig, ax = figure_and_axes(ax, (min(BOOK_WIDTH_IN, max(5.0, 0.45 * len(groups) * len(data) + 0.5 * len(groups) + 2)), 4.3))
    x = np.arange(len(groups))
    width = 0.8 / len(data)
    handles = []
    for k, (key, row) in enumerate(data.items()):
        handles.append(ax.bar(x - 0.4 + width * (k + 0.5), row, width=width, yerr=err.get(key),
                              capsize=3 if key in err else 0, color=f"C{k % 10}", label=key))
    ax.set_xticks(x, [g.replace("$", r"\$") for g in groups], rotation=90 if len(groups) > 12 else 35, ha="right",
                  rotation_mode="anchor", fontsize=9 if len(groups) > 12 else None)
    if level is not None:
        handles.append(ax.axhline(level, linestyle="--", color="grey", linewidth=1.2, label=f"reference {level:g}"))
    ax.legend(handles=handles, fontsize=MIN_FONT_PT)
    ax.set_ylabel(ylabel if ylabel is not None else "value")
    ax.set_title(title if title is not None else "comparison by group")
    ax.grid(axis="y", alpha=0.3)
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
    ax.legend(fontsize=MIN_FONT_PT)
    return fig


# -- ablation against random head sets ---------------------------------------------------------------
def ablation_strips(
    comparisons: Mapping[str, tuple[float, Sequence[float]]],
    *,
    xlabel: str = "effect of ablating (metric change, damage > 0)",
    title: str | None = None,
    q: float = 95.0,
    ax: Axes | None = None,
) -> Figure:
    """One row per label: the effects of the random head sets (grey dots, with their nearest-rank
    ``q``-th percentile as a black bar: a diamond right of it is above at least ``q`` % of them) and
    the chosen heads' effect (a red diamond). ``comparisons`` maps a label to ``(chosen effect,
    random effects)``."""
    if not comparisons:
        raise bad_argument(InvalidInputError, "comparisons", "at least one label -> (effect, random effects)", comparisons)
    q = checks.interval("q", q, 0, 100)
    rows = []
    for label, pair in comparisons.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise bad_argument(InvalidInputError, "comparisons", "label -> (effect, random effects)", {label: pair})
        rows.append((str(label), checks.real("effect", pair[0]), checks.array("random effects", pair[1], (1,))))
    fig, ax = figure_and_axes(ax, (7.5, 0.55 * len(rows) + 1.6))
    jitter = np.random.default_rng(0)  # fixed: the same figure on every machine
    for k, (_, effect, random) in enumerate(rows):
        y = len(rows) - 1 - k
        ax.scatter(random, y + jitter.uniform(-0.18, 0.18, len(random)), s=12, color="grey", alpha=0.6,
                   label="random head sets" if k == 0 else None)
        ax.plot([np.percentile(random, q, method="inverted_cdf")] * 2, [y - 0.3, y + 0.3], color="black", linewidth=1.5,
                label=f"{q:g}th percentile of random sets" if k == 0 else None)
        ax.scatter([effect], [y], marker="D", s=45, color="tab:red", zorder=3, label="heads attention points to" if k == 0 else None)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_tick_text(label) for label, _, _ in reversed(rows)])
    ax.set_xlabel(xlabel)
    ax.set_title(title if title is not None else "Chosen heads against random head sets of the same size")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=MIN_FONT_PT, loc="best")
    return fig
