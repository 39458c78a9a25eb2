"""Chapter 2 (distribution-effects): synthetic time series with known ground truth, the windows a forecaster trains on, the forecaster and its questions.

Every room is a submodule (``timeseries.model``, ``timeseries.experiment``, ``timeseries.analysis`` …); the names
below are re-exported for short calls and old imports.
"""

from . import analysis, causal, controls, data, experiment, explorer, figures, model, results  # noqa: F401 - the rooms, as submodules (windows: the module is attnbook.timeseries.windows; the name is its function)

from .data import (
    FAMILIES, GARCH11, GENERATORS, HeavyTailedAR1, JumpDiffusion, MultiSeasonality, OneOverFNoise, RandomWalk,
    RegimeSwitching, SeasonTrendOutliers, Series, TrendBreaks, make
)
from .windows import (
    chronological_split, denormalise, disjoint_gap, last_value, normalise, seasonal_naive, window_mean,
    windows
)

__all__ = [
    "analysis", "causal", "controls", "data", "experiment", "explorer", "figures", "model", "results", "FAMILIES",
    "GARCH11", "GENERATORS", "HeavyTailedAR1", "JumpDiffusion", "MultiSeasonality", "OneOverFNoise",
    "RandomWalk", "RegimeSwitching", "SeasonTrendOutliers", "Series", "TrendBreaks", "chronological_split",
    "denormalise", "disjoint_gap", "last_value", "make", "normalise", "seasonal_naive", "window_mean",
    "windows"
]
