"""Chapter 4's figures: the query's attention by distance, attention received per position,
the compression sweep as bars, the recency log-ratio of AD and its controls, and every head's
recency against its sharpness (drawn with :mod:`attnbook.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import plots
from . import compress

__all__ = ["query_by_distance", "received_per_position", "compression_bars", "recency_by_model", "recency_and_sharpness"]


def query_by_distance(query: torch.Tensor) -> Figure:
    """Each head's query-row attention ``(layers, tasks, heads, L + 1)`` (:func:`~attnbook.rl.model.query_attention`),
    averaged over tasks, by distance into the past (0 = the newest transition; the query itself left out)."""
    rows = query[:, :, :, :-1].mean(1)  # (layers, heads, L)
    labels = [f"L{layer}H{head}" for layer in range(rows.shape[0]) for head in range(rows.shape[1])]
    return plots.lag_profile(rows.reshape(-1, rows.shape[-1]).flip(-1), labels=labels,
                             title="The query's attention by distance into the past (mean over tasks)",
                             xlabel="transitions back from the query (0 = newest)", ylabel="attention weight", legend_columns=4)


def received_per_position(weights: torch.Tensor) -> Figure:
    """Attention each position receives ``Σ_q w[q, k]``, averaged over layers, heads and tasks (``weights``
    ``(layers, tasks, heads, n, n)``)."""
    received = weights.mean((0, 2)).sum(-2).mean(0)
    return plots.curves(received[None], x=np.arange(len(received)),
                        title=f"Attention received per position ({weights.shape[1]} held-out tasks, mean over layers and heads)",
                        xlabel="position (0 = start token)", ylabel="attention received (sum over queries)")


def compression_bars(sweep: Any, ks: Sequence[int]) -> Figure:
    """Regret at T per strategy and kept context ``K`` (dashed: the full context). ``sweep``: one sweep
    (error bars: standard errors over tasks) or ``{seed: sweep}`` of several training seeds (bars: the
    mean over seeds; error bars: the standard deviation over seeds)."""
    strategies = [s for s in compress.STRATEGIES if s != "full"]
    sweeps = dict(sweep) if isinstance(sweep, Mapping) else {None: sweep}
    at = lambda sw, s, k, column: float(sw[(sw.strategy == s) & (sw.K == k)][column].iloc[0])  # noqa: E731
    per_seed = {s: np.array([[at(sw, s, k, "performance") for k in ks] for sw in sweeps.values()]) for s in strategies}
    if len(sweeps) == 1:
        only = next(iter(sweeps.values()))
        errors = {s: [at(only, s, k, "se") for k in ks] for s in strategies}
        title = "Cumulative regret at T by strategy and kept context (dashed: full context)"
    else:
        errors = {s: list(v.std(0, ddof=1)) for s, v in per_seed.items()}
        title = f"Cumulative regret at T by strategy and kept context, mean of {len(sweeps)} training seeds (dashed: full context)"
    reference = float(np.mean([float(sw.iloc[0]["performance"]) for sw in sweeps.values()]))
    return plots.grouped_bars({s: list(v.mean(0)) for s, v in per_seed.items()}, errors=errors,
                              group_labels=[f"K = {k}" for k in ks], reference=reference, title=title,
                              ylabel="regret at T (lower is better)")



def recency_by_model(recency: Mapping[int, Mapping[str, float]], names: Mapping[str, str], bar: float) -> Figure:
    """The recency log-ratio of every model (``recency``: ``{seed: {model: value}}``; ``names``: model →
    label, in the bars' order), one group per training seed; dashed: the finding's ``bar``."""
    seeds = list(recency)
    return plots.grouped_bars({label: [recency[s][model] for s in seeds] for model, label in names.items()},
                              group_labels=[f"seed {s}" for s in seeds], reference=bar,
                              title="Recency log-ratio of the query's attention (mean over heads; dashed: the finding's bar, log 2)",
                              ylabel="log(mass on newest k ÷ k/L)")


def recency_and_sharpness(profiles: Mapping[str, Mapping[int, Sequence[dict]]], recency_bar: float, sharp_bar: float) -> Figure:
    """Every head of every training seed: its sharpness (x, 1 − entropy ÷ log L) against its recency
    log-ratio (y), one colour per model (``profiles``: ``{model label: {seed: head_profile rows}}``);
    dotted lines: the recency-head and sharp-head bars. Heads that never look at the newest k (−inf)
    are drawn at the bottom edge."""
    from ..plots.base import figure_and_axes

    fig, ax = figure_and_axes(None, (7.5, 4.8))
    finite = [r["recency_log_ratio"] for rows in profiles.values() for seed_rows in rows.values() for r in seed_rows
              if np.isfinite(r["recency_log_ratio"])]
    floor = min(finite + [0.0]) - 0.5
    markers = "o^s"
    for i, (label, rows) in enumerate(profiles.items()):
        for j, (seed, seed_rows) in enumerate(rows.items()):
            x = [r["sharpness"] for r in seed_rows]
            y = [r["recency_log_ratio"] if np.isfinite(r["recency_log_ratio"]) else floor for r in seed_rows]
            ax.scatter(x, y, s=22, alpha=0.75, color=f"C{i}", marker=markers[j % len(markers)],
                       label=f"{label}, seed {seed}")
    ax.axhline(recency_bar, color="0.3", linestyle=":", linewidth=1)
    ax.axvline(sharp_bar, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("sharpness (1 − entropy ÷ log L)")
    ax.set_ylabel("recency log-ratio, log(mass on newest k ÷ k/L)")
    ax.set_title("Recency heads and sharp heads: every head of every training seed")
    ax.legend(fontsize=plots.MIN_FONT_PT, ncol=len(profiles), loc="best")
    return fig
