"""Chapter 4's figures: the query's attention by distance, attention received per position, and
the compression sweep as bars (drawn with :mod:`attnbook.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import plots
from . import compress

__all__ = ["query_by_distance", "received_per_position", "compression_bars"]


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
