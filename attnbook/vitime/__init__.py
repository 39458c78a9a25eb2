"""Chapter 3 (vitime-harmonics): ViTime — the series ↔ image mapping, the MAE-style ViT, official checkpoints.

Both ``mapping`` and ``model`` define their own ``PRESETS``; use them through their modules.
Pretraining data (``realts``), the lag analysis (``lags``), the seed's experiments
(``harmonics``), the period estimate and seasonal baselines (``seasonal``), the held-out forecast test (``forecasting``), the training-path diagnostics
(``diagnosis``), figures and the signal explorer are submodules.

Every room is a submodule (``vitime.model``, ``vitime.experiment``, ``vitime.analysis`` …); the names
below are re-exported for short calls and old imports.
"""

from . import analysis, diagnosis, experiment, explorer, figures, forecasting, harmonics, lags, mapping, model, realts, seasonal, seeds, weights  # noqa: F401 - the rooms, as submodules

from .mapping import (
    DECODINGS, Mapped, MappingConfig, blur, crop_lookback, decode, gaussian_kernel, history_columns,
    image_to_series, normalisation, one_hot, resample, samples_per_column, samples_per_patch, series_to_image,
    to_bins
)
from .model import ViTime, ViTimeConfig, preset, unshuffle_attention
from .weights import load_official, read_official, save_official

__all__ = [
    "analysis", "diagnosis", "experiment", "explorer", "figures", "forecasting", "harmonics", "lags", "mapping", "model", "realts", "seasonal", "seeds",
    "weights", "DECODINGS", "Mapped", "MappingConfig", "blur", "crop_lookback", "decode", "gaussian_kernel",
    "history_columns", "image_to_series", "normalisation", "one_hot", "resample", "samples_per_column",
    "samples_per_patch", "series_to_image", "to_bins", "ViTime", "ViTimeConfig", "preset",
    "unshuffle_attention", "load_official", "read_official", "save_official"
]
