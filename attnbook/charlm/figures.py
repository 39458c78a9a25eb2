"""Figures of the char-LM chapter: losses with error bands, metrics over training per layer,
layer-similarity matrices at chosen snapshots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .. import plots
from ..errors import InvalidInputError, bad_argument
from .analysis import by_dataset, layer_series
from .experiment import RunResult

__all__ = ["loss_curves", "metric_evolution", "layer_similarity", "window_maps", "nothing_trained"]

LABELS = {"entropy": "entropy (nats)", "entropy_norm": "entropy / ln(prefix)", "span": "mean distance (chars)",
          "span90": "90 % span (chars)", "previous_token": "mass on i−1", "induction": "induction score",
          "sink": "mass on position 0", "diversity": "head diversity (JS, nats)"}


def nothing_trained(title: str) -> Figure:
    """The figure a chapter shows in place of ``title`` when no corpus was available to train on."""
    fig = plots.BookFigure(figsize=(6.0, 1.6), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, "no corpus was available, so no model was trained\n(the corpus table above says which file to put where)",
            ha="center", va="center", fontsize=10)
    ax.set_title(title)
    return fig


def _first_run(results: Sequence[RunResult], position: int) -> RunResult:
    """The first seed's run of the dataset at ``position`` in first-seen order (0 first, -1 last)."""
    groups = list(by_dataset(results).values())
    if not -len(groups) <= position < len(groups):
        raise bad_argument(InvalidInputError, "position", f"an index into the {len(groups)} datasets", position)
    return groups[position][0]


def loss_curves(results: Sequence[RunResult], floors: dict[str, float] | None = None) -> Figure:
    """Training and validation loss per dataset (one panel each, stacked), mean ± standard error
    over seeds; ``floors[dataset]`` (the bigram loss) as a dotted line."""
    groups = by_dataset(results)
    if not groups:
        return nothing_trained("char-LM losses")
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 3.2 * len(groups) + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(groups), 1))
    for ax, (dataset, runs) in zip(axes, groups.items()):
        steps = np.asarray(runs[0].history.steps)
        val = np.stack([r.history.val_loss for r in runs])
        train = np.stack([r.history.train_loss for r in runs])
        plots.band_curves(steps, {"validation": val, "training (mean since the last evaluation)": train}, ax=ax, ylabel="loss (nats / char)")
        if floors and dataset in floors:
            ax.axhline(floors[dataset], color="grey", linestyle=":", label=f"bigram floor {floors[dataset]:.2f}")
        ax.legend(fontsize=plots.MIN_FONT_PT)
        ax.set_title(f"{dataset}: loss over training")
    fig.suptitle("char-LM losses, mean ± standard error over seeds")
    return fig


def metric_evolution(results: Sequence[RunResult], metrics: Sequence[str] = ("entropy", "span", "diversity", "previous_token")) -> Figure:
    """One panel per (metric, dataset): the metric per layer over training, mean ± s.e. over seeds."""
    groups = by_dataset(results)
    if not metrics:
        raise bad_argument(InvalidInputError, "metrics", "at least one metric", metrics)
    if not groups:
        return nothing_trained("attention over training")
    fig = plots.BookFigure(figsize=(min(plots.BOOK_WIDTH_IN, 5.2 * len(groups)), 2.7 * len(metrics) + 0.6), layout="constrained")
    axes = np.asarray(fig.subplots(len(metrics), len(groups), squeeze=False))
    for col, (dataset, runs) in enumerate(groups.items()):
        steps = np.asarray(runs[0].steps)
        for row, metric in enumerate(metrics):
            data = layer_series(runs, metric)  # (runs, snapshots, L)
            curves = {f"layer {l}": data[:, :, l] for l in range(data.shape[-1])}
            plots.band_curves(steps, curves, ax=axes[row, col], ylabel=LABELS.get(metric, metric))
            axes[row, col].set_title(f"{dataset}: {metric}", fontsize=10)
            if row or col:
                axes[row, col].get_legend().remove()
    fig.suptitle("attention over training, per layer (mean over heads; band = s.e. over seeds)")
    return fig


def layer_similarity(runs: RunResult | Sequence[RunResult], metric: str = "layer_js", snapshots: Sequence[int] | None = None,
                     position: int = 0) -> Figure:
    """The (L, L) matrix of ``metric`` ('layer_js' or 'layer_cosine') at chosen snapshot indices
    (two panels a row), for one run or, given several, the first seed of the dataset at
    ``position`` (0 first, -1 last)."""
    if metric not in ("layer_js", "layer_cosine"):
        raise bad_argument(InvalidInputError, "metric", "'layer_js' or 'layer_cosine'", metric)
    if not isinstance(runs, RunResult):
        if not runs:
            return nothing_trained("similarity between layers")
        runs = _first_run(runs, position)
    run = runs
    n = len(run.steps)
    picked = list(snapshots) if snapshots is not None else sorted({0, n // 4, n // 2, n - 1})
    mats = run.snapshots[metric]
    ncols = min(2, len(picked))
    nrows = -(-len(picked) // ncols)
    fig = plots.BookFigure(figsize=(min(plots.BOOK_WIDTH_IN, 3.3 * ncols + 1.0), 3.0 * nrows + 0.5), layout="constrained")
    grid = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in grid[len(picked):]:
        ax.remove()
    axes = grid[: len(picked)]
    vmax = float(np.nanmax(mats[picked])) if metric == "layer_js" else 1.0
    image = None
    for ax, k in zip(axes, picked):
        image = ax.imshow(mats[k], vmin=0.0, vmax=max(vmax, 1e-6), cmap="magma" if metric == "layer_js" else "viridis")
        L = mats.shape[-1]
        ax.set_xticks(range(L))
        ax.set_yticks(range(L))
        ax.set_xlabel("layer")
        ax.set_ylabel("layer")
        ax.set_title(f"step {run.steps[k]}", fontsize=10)
        for i in range(L):
            for j in range(L):
                dark = mats[k][i, j] < 0.6 * max(vmax, 1e-6)  # light text on the dark end of the colour map
                ax.text(j, i, f"{mats[k][i, j]:.2f}", ha="center", va="center", fontsize=plots.MIN_FONT_PT,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="JS divergence (nats)" if metric == "layer_js" else "cosine similarity")
    fig.suptitle(f"{run.spec.name}: {'JS divergence' if metric == 'layer_js' else 'cosine similarity'} between layers over training")
    return fig


def window_maps(results: Sequence[RunResult], position: int = 0) -> Figure:
    """Head-averaged maps on the stored validation window of the first seed of the dataset at
    ``position``: columns the start, a quarter in and the end of training, rows the layers."""
    if not results:
        return nothing_trained("head-averaged attention on one validation window")
    run = _first_run(results, position)
    ks = [0, len(run.steps) // 4, len(run.steps) - 1]
    panels = {f"layer {l} · step {run.steps[k]}": run.maps[k, l].astype(np.float32).mean(0) for l in range(run.maps.shape[1]) for k in ks}
    return plots.maps_grid(panels, ncols=len(ks), title=f"{run.spec.name}: head-averaged attention on one validation window", gamma=0.5)
