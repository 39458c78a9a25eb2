"""The seed study's harmonic experiments: signals, attention per head, forecasts and baselines.

Experiment 1 feeds ``sin(n/10) + sin(n/5 + 50) + cos(n + 50)`` (``n = 0 … 511``) with a horizon
of 720; experiment 2 removes ``sin(n/10)``. The periods are ``2π·10 ≈ 62.8``, ``2π·5 ≈ 31.4``
and ``2π ≈ 6.3`` samples. :func:`analyse` runs a model on one signal, captures every block's
attention (un-shuffled when the encoder shuffles), converts it to time-lag profiles
(:mod:`attnbook.vitime.lags`) and ranks heads by their period contrast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import checks
from ..capture import capture
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from . import lags
from .mapping import Mapped, MappingConfig, image_to_series, series_to_image
from .model import ViTime, unshuffle_attention
from .seasonal import estimate_period, repeat_last_period, seasonal_average  # noqa: F401 - hm.repeat_last_period in the chapter

__all__ = [
    "Harmonic",
    "signal",
    "EXPERIMENTS",
    "HELD_OUT",
    "HELD_OUT_MIXTURE",
    "PERIOD_63",
    "Analysis",
    "analyse",
    "forecast",
    "forecast_scores",
]

PERIOD_63 = 20.0 * math.pi  # sin(n/10): 62.83 samples


@dataclass(frozen=True)
class Harmonic:
    """``amplitude · sin(2π n / period + phase)`` (``kind="cos"``: cos). Period in samples."""

    amplitude: float = 1.0
    period: float = PERIOD_63
    phase: float = 0.0
    kind: str = "sin"

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase"):
            checks.real(name, getattr(self, name))
        checks.positive("period", self.period)
        if self.kind not in ("sin", "cos"):
            raise bad_argument(InvalidInputError, "kind", "'sin' or 'cos'", self.kind)

    def __call__(self, n: np.ndarray) -> np.ndarray:
        f = np.sin if self.kind == "sin" else np.cos
        return self.amplitude * f(2.0 * math.pi * n / self.period + self.phase)

    def describe(self) -> str:
        amp = "" if self.amplitude == 1 else f"{self.amplitude:g}·"
        phase = f" + {self.phase:g}" if self.phase else ""
        return f"{amp}{self.kind}(2πn/{self.period:.4g}{phase})"


def signal(harmonics: Sequence[Harmonic], length: int = 512, start: int = 0) -> np.ndarray:
    """``Σ_k harmonic_k(n)`` for ``n = start … start + length − 1`` (float64)."""
    length = checks.positive_int("length", length)
    if isinstance(harmonics, Harmonic) or not isinstance(harmonics, Sequence) or not harmonics:
        raise bad_argument(InvalidInputError, "harmonics", "a non-empty sequence of Harmonic", harmonics)
    for h in harmonics:
        if not isinstance(h, Harmonic):
            raise bad_argument(InvalidInputError, "harmonics", "Harmonic items", type(h).__name__, raw=True)
    n = np.arange(start, start + int(length), dtype=np.float64)
    return np.sum([h(n) for h in harmonics], axis=0)


# The seed's inputs: sin(n/10) = sin(2πn/(20π)), sin(n/5 + 50), cos(n + 50).
_SIN10 = Harmonic(1.0, 20.0 * math.pi, 0.0, "sin")
_SIN5 = Harmonic(1.0, 10.0 * math.pi, 50.0, "sin")
_COS1 = Harmonic(1.0, 2.0 * math.pi, 50.0, "cos")
EXPERIMENTS: dict[int, tuple[Harmonic, ...]] = {1: (_SIN10, _SIN5, _COS1), 2: (_SIN5, _COS1)}

# Periods the two experiments do not contain (samples), each with the seed's fast components.
HELD_OUT: dict[str, tuple[Harmonic, ...]] = {
    "P=48": (Harmonic(1.0, 48.0), _COS1),
    "P=80": (Harmonic(1.0, 80.0), Harmonic(0.5, 21.0, 1.0)),
    "P=100": (Harmonic(1.0, 100.0), _SIN5),
}

# A held-out mixture for the forecasting test: periods 57.5 and 41.3 (neither in the experiments) are
# incommensurate, so no whole number of samples repeats the sum — repeat-last-period cannot be exact
# (any mixture of whole-number periods would repeat exactly within the history, a baseline no model beats).
HELD_OUT_MIXTURE: tuple[Harmonic, ...] = (Harmonic(1.0, 57.5), Harmonic(0.6, 41.3, 1.0))


@dataclass
class Analysis:
    """One model on one input: maps in raster order, time maps, profiles and contrasts.

    ``maps`` ``(L, 1, H, N+1, N+1)``; ``time_maps`` ``(L, 1, H, grid_w, grid_w)``; ``profiles``
    ``(L, H, max_lag + 1)`` indexed by column lag; ``contrast`` ``(L, H)`` for ``period``;
    ``ranking`` from :func:`attnbook.vitime.lags.rank_heads`; ``probs`` the output
    ``(1, 1, W, h)``; ``mapped`` the input mapping.
    """

    maps: AttentionMaps
    time_maps: AttentionMaps
    profiles: torch.Tensor
    contrast: torch.Tensor
    ranking: list[dict]
    probs: torch.Tensor
    mapped: Mapped
    period: float

    @property
    def samples_per_patch(self) -> float:
        return self.mapped.samples_per_patch

    @property
    def best(self) -> dict:
        return self.ranking[0]

    def head_contrast(self, layer: int, head: int) -> float:
        return float(self.contrast[layer, head])

    def peaks(self, layer: int, head: int, n: int = 3) -> list[float]:
        """The ``n`` highest profile peaks of one head within the contrast's lag window
        (:func:`attnbook.vitime.lags.contrast_window`: three periods and a half), in samples."""
        window = min(lags.contrast_window(self.period, self.samples_per_patch), self.profiles.shape[-1] - 1)
        return lags.peak_lags(self.profiles[layer, head], self.samples_per_patch, n=n, max_lag=window)


def _mapping_of(model: ViTime, mapping: MappingConfig | None) -> MappingConfig:
    if not isinstance(model, ViTime):
        raise bad_argument(InvalidInputError, "model", "a ViTime model", type(model).__name__, raw=True)
    return model.config.mapping(mapping)


def _predict(model: ViTime, history: Any, horizon: int, mapping: MappingConfig | None) -> tuple[torch.Tensor, Mapped]:
    """One forward on ``history``: (output probabilities ``(1, 1, W, h)``, its mapping)."""
    mapped = series_to_image(history, horizon, _mapping_of(model, mapping))
    image = torch.as_tensor(mapped.image, dtype=torch.float32)[None, None]
    model.eval()
    with torch.no_grad():
        return model(image), mapped


def analyse(
    model: ViTime,
    history: Any,
    horizon: int = 720,
    *,
    period: float = PERIOD_63,
    mapping: MappingConfig | None = None,
    max_lag: int | None = None,
    n_multiples: int = 3,
) -> Analysis:
    """Run ``model`` on ``history`` (horizon ``horizon``), capture every encoder and decoder
    block, put shuffled encoder maps back into raster order, and measure each head's lag
    profile and period contrast for ``period`` samples (``max_lag`` column lags, default
    ``grid_w // 2``)."""
    mapping = _mapping_of(model, mapping)  # checks the model before capture looks at it
    with capture(model) as cap:
        probs, mapped = _predict(model, history, horizon, mapping)
    maps = cap.maps
    if model.last_permutation is not None:
        maps = unshuffle_attention(maps, model.last_permutation)
    c = model.config
    tmaps = lags.time_attention(maps, c.grid_h, c.grid_w, samples_per_patch=mapped.samples_per_patch)
    profiles = lags.lag_profiles(tmaps, max_lag=max_lag)
    contrast = lags.period_contrast(profiles, period, mapped.samples_per_patch, n_multiples)
    return Analysis(maps, tmaps, profiles, contrast, lags.rank_heads(contrast, maps.layer_names), probs, mapped, float(period))


def forecast(model: ViTime, history: Any, horizon: int = 720, *, mapping: MappingConfig | None = None, method: str | None = None) -> np.ndarray:
    """The model's forecast of the next ``horizon`` samples (decoding ``method``: the mapping's
    default, ``"argmax"`` or ``"expectation"``)."""
    probs, mapped = _predict(model, history, horizon, mapping)
    return image_to_series(probs.numpy(), mapped, method=method)[mapped.input_len:]


def forecast_scores(model: ViTime, harmonics: Sequence[Harmonic], *, length: int = 512, horizon: int = 720,
                    mapping: MappingConfig | None = None) -> dict:
    """MSE over the horizon of the model (argmax and expectation decoding), the repeat-last-period
    and seasonal-average baselines (period from the history's ACF) and the history-mean baseline, against the true
    continuation of ``harmonics``; plus the truth's variance and the model/baseline ratio."""
    history = signal(harmonics, length)
    truth = signal(harmonics, horizon, start=length)
    out = {"period_used": estimate_period(history), "truth_var": float(np.var(truth))}
    probs, mapped = _predict(model, history, horizon, mapping)  # one forward, two decodings
    for method in ("argmax", "expectation"):
        predicted = image_to_series(probs.numpy(), mapped, method=method)[length:]
        out[f"model_{method}"] = float(np.mean((predicted - truth) ** 2))
    out["repeat_last_period"] = float(np.mean((repeat_last_period(history, horizon) - truth) ** 2))
    out["seasonal_average"] = float(np.mean((seasonal_average(history, horizon) - truth) ** 2))
    out["history_mean"] = float(np.mean((history.mean() - truth) ** 2))
    out["ratio"] = out["model_argmax"] / max(out["repeat_last_period"], 1e-12)
    return out
