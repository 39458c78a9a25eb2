"""Chapter 4's figures: the query's attention by distance, attention received per position, and
the compression sweep as bars (drawn with :mod:`attnbook.plots`)."""

from __future__ import annotations

from collections.abc import Sequence
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
    """Regret at T per strategy and kept context ``K`` (standard errors as bars; dashed: the full context)."""
    strategies = [s for s in compress.STRATEGIES if s != "full"]
    at = lambda s, k, column: float(sweep[(sweep.strategy == s) & (sweep.K == k)][column].iloc[0])  # noqa: E731
    return plots.grouped_bars({s: [at(s, k, "performance") for k in ks] for s in strategies},
                              errors={s: [at(s, k, "se") for k in ks] for s in strategies},
                              group_labels=[f"K = {k}" for k in ks], reference=float(sweep.iloc[0]["performance"]),
                              title="Cumulative regret at T by strategy and kept context (dashed: full context)",
                              ylabel="regret at T (lower is better)")
