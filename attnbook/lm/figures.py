"""Chapter 1's own figure; the maps, views and head grids it shows come from :mod:`attnbook.plots`."""

from __future__ import annotations

from matplotlib.figure import Figure

from .. import plots
from ..maps import AttentionMaps
from .analysis import layer_label_profile

__all__ = ["layer_label_bars"]


def layer_label_bars(maps: AttentionMaps) -> Figure:
    """Mean attention on ``[CLS]``, ``[SEP]`` and punctuation per layer (:func:`~attnbook.lm.analysis.layer_label_profile`),
    one bar per layer and label."""
    profile = layer_label_profile(maps)
    values = {f"L{layer} {label}": float(mass[layer]) for layer in range(maps.n_layers) for label, mass in profile.items()}
    return plots.metric_bars(values, title="Mean attention on [CLS], [SEP] and punctuation, per layer", ylabel="attention mass")
