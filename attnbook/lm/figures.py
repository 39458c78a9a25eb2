"""Chapter 1's own figures; the maps, views and head grids it shows come from :mod:`attnbook.plots`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .. import plots
from ..plots.base import figure_and_axes
from ..maps import AttentionMaps
from .analysis import layer_label_profile

__all__ = ["layer_label_bars", "agreement_histogram"]


def layer_label_bars(maps: AttentionMaps) -> Figure:
    """Mean attention on ``[CLS]``, ``[SEP]`` and punctuation per layer (:func:`~attnbook.lm.analysis.layer_label_profile`),
    one bar per layer and label."""
    profile = layer_label_profile(maps)
    values = {f"L{layer} {label}": float(mass[layer]) for layer in range(maps.n_layers) for label, mass in profile.items()}
    return plots.metric_bars(values, title="Mean attention on [CLS], [SEP] and punctuation, per layer", ylabel="attention mass")


def agreement_histogram(agreement: Mapping[str, np.ndarray], threshold: float = 0.3) -> Figure:
    """Per-sentence Spearman ρ between rollout and gradient rollout (:func:`~attnbook.lm.controls.rollout_agreement`):
    one histogram each for the real gradients (``"gradient"``) and the permuted ones (``"permuted"``),
    a solid line at each mean and a dashed one at the rule's ``threshold``."""
    fig, ax = figure_and_axes(None, (6.5, 3.8))
    bins = np.linspace(-1, 1, 41)
    for colour, (name, label) in enumerate((("gradient", "real gradients"), ("permuted", "gradients permuted across tokens (control)"))):
        rho = np.asarray(agreement[name], dtype=float)
        rho = rho[~np.isnan(rho)]
        ax.hist(rho, bins=bins, alpha=0.55, color=f"C{colour}", label=f"{label}: mean {rho.mean():.2f}")
        ax.axvline(rho.mean(), color=f"C{colour}", linewidth=1.5)
    ax.axvline(threshold, color="C3", linestyle="--", linewidth=1.2, label=f"rule: mean ≥ {threshold:g}")
    ax.set_xlabel("Spearman ρ over a sentence's words (rollout vs gradient rollout)")
    ax.set_ylabel("sentences")
    ax.set_title("Does gradient rollout rank words like attention rollout?")
    ax.legend(fontsize=8)
    return fig
