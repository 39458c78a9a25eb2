"""From patch attention to time-lag attention, and the period contrast that ranks heads.

A ViTime token is patch ``(r, c)`` (value row ``r``, time column ``c``), token index
``1 + r·grid_w + c`` after CLS. The seed study's recipe turns a token map into a time map::

    A (N+1, N+1) ─drop CLS─▶ (N, N) ─reshape─▶ (grid_h, grid_w, grid_h, grid_w)
    ─average over both row axes─▶ T (grid_w, grid_w)

    T[c, c'] = mean_r Σ_r' A[(r, c), (r', c')] / Σ_c'' (same)     (rows renormalised to 1)

The seed averages over both row axes (``mean(axis=(0, 2))``); summing over the key rows and
renormalising each query column instead differs from it only by one positive factor per row
(``grid_h · (1 − attention to CLS)``), so lag peaks and contrasts are the seed's, and the time
map stays a distribution per query column (attention given that CLS is not attended).

and reads time lags off its sub-diagonals: ``profile[d] = mean_c T[c, c − d]`` (query column
``c`` attending ``d`` columns back, :func:`attnbook.metrics.lag_profile`). One column lag is
``samples_per_patch = pw·(T+H)/W`` samples of the series.

**Period contrast** of a profile for a period of ``P`` samples (``P' = P / samples_per_patch``
patches), over ``n`` multiples::

    contrast = mean_{k=1..n} profile[round(k·P')] / mean_{k=1..n} profile[round((k − ½)·P')]

the mean at the period's multiples over the mean half-way between them: ≈ 1 for a profile with
no structure at that period, ≫ 1 for a head that attends one, two, three periods back.
For sin(n/10) (P = 62.8 samples, 16 samples per patch) the lags are 4, 8, 12 patches against
2, 6, 10: a 2-patch (sin(n/5)) alternation raises both alike, so only the 63-sample family
raises the contrast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checks, metrics, plots, store
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps

__all__ = [
    "time_attention",
    "lag_profiles",
    "period_lags",
    "period_contrast",
    "peak_lags",
    "contrast_window",
    "rank_heads",
    "profile_correlation",
    "rollout_time_attention",
    "correlation_figure",
    "correlation_filename",
    "save_correlation_figure",
]


def _grid(grid_h: Any, grid_w: Any, n_tokens: int) -> tuple[int, int]:
    checks.positive_int("grid_h", grid_h)
    checks.positive_int("grid_w", grid_w)
    if grid_h * grid_w + 1 != n_tokens:
        raise bad_argument(
            InvalidInputError, "maps", f"maps over grid_h·grid_w + 1 = {grid_h * grid_w + 1} tokens (CLS first)", f"{n_tokens} tokens", raw=True
        )
    return int(grid_h), int(grid_w)


def _time_tensor(w: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    lead = w.shape[:-2]
    t = w[..., 1:, 1:].reshape(*lead, grid_h, grid_w, grid_h, grid_w).sum(-2).mean(-3)
    return t / t.sum(-1, keepdim=True).clamp_min(torch.finfo(t.dtype).tiny)


def time_attention(maps: AttentionMaps, grid_h: int, grid_w: int, *, samples_per_patch: float | None = None) -> AttentionMaps:
    """Token maps ``(L, B, H, N+1, N+1)`` (CLS first, raster order) → time maps
    ``(L, B, H, grid_w, grid_w)`` (module docstring). Labels are the columns' first sample
    (``"t<k>"``) when ``samples_per_patch`` is given, else ``"c<k>"``; the meta records the
    grid and ``samples_per_patch``. Shuffled encoder maps must be un-shuffled first
    (:func:`attnbook.vitime.unshuffle_attention`).
    """
    if not isinstance(maps, AttentionMaps):
        raise bad_argument(InvalidInputError, "maps", "AttentionMaps", type(maps).__name__, raw=True)
    if maps.n_queries != maps.n_keys:
        raise bad_argument(InvalidInputError, "maps", "square token maps", f"{maps.n_queries} × {maps.n_keys}", raw=True)
    grid_h, grid_w = _grid(grid_h, grid_w, maps.n_keys)
    if samples_per_patch is not None:
        samples_per_patch = checks.positive("samples_per_patch", samples_per_patch)
        labels = [f"t{round(c * samples_per_patch)}" for c in range(grid_w)]
    else:
        labels = [f"c{c}" for c in range(grid_w)]
    t = _time_tensor(maps.weights, grid_h, grid_w)
    b = t.shape[1]
    meta = dict(maps.meta)
    meta.update(grid_h=grid_h, grid_w=grid_w, samples_per_patch=samples_per_patch, time_attention="mean over query rows, sum over key rows, CLS dropped, rows renormalised")
    return AttentionMaps(t, maps.layer_names, [labels] * b, [labels] * b, None, meta)


def lag_profiles(time_maps: AttentionMaps, max_lag: int | None = None) -> torch.Tensor:
    """Mean attention at column lags ``0 … max_lag`` averaged over samples, ``(L, H, max_lag + 1)``
    (default ``max_lag = grid_w // 2``, so every lag averages at least half the columns)."""
    if not isinstance(time_maps, AttentionMaps):
        raise bad_argument(InvalidInputError, "time_maps", "AttentionMaps (from time_attention)", type(time_maps).__name__, raw=True)
    max_lag = time_maps.n_keys // 2 if max_lag is None else max_lag
    return metrics.lag_profile(time_maps, max_lag=max_lag).nanmean(1)


def period_lags(period: float, samples_per_patch: float, n_multiples: int = 3) -> tuple[list[int], list[int]]:
    """Column lags of the first ``n_multiples`` multiples of ``period`` samples and of the
    midpoints between them: ``round(k·P')`` and ``round((k − ½)·P')``, ``P' = period / samples_per_patch``.

    The period must span about 2 patches or more, so that multiples and midpoints are distinct lags
    (31.4 samples = 1.96 patches of 16 gives 2, 4, 6 against 1, 3, 5).
    """
    period = checks.positive("period", period)
    spp = checks.positive("samples_per_patch", samples_per_patch)
    n_multiples = checks.positive_int("n_multiples", n_multiples)
    p = period / spp
    multiples = [math.floor(k * p + 0.5) for k in range(1, n_multiples + 1)]  # round half up
    midpoints = [math.floor((k - 0.5) * p + 0.5) for k in range(1, n_multiples + 1)]
    if min(midpoints) < 1 or set(multiples) & set(midpoints):
        raise bad_argument(
            InvalidInputError, "period", f"a period of about 2 patches or more (2 × {spp:.4g} samples), so that its multiples and midpoints "
            "fall on distinct lags", f"{period:.4g} samples ({p:.3g} patches)", raw=True
        )
    return multiples, midpoints


def period_contrast(profiles: Any, period: float, samples_per_patch: float, n_multiples: int = 3) -> torch.Tensor:
    """Period contrast (module docstring) of every profile ``(..., n_lags)`` indexed by lag
    (lag 0 first, as :func:`lag_profiles` returns). Shape ``(...)``."""
    prof = torch.as_tensor(profiles, dtype=torch.float64)
    if prof.dim() < 1:
        raise bad_argument(InvalidInputError, "profiles", "profiles (..., n_lags)", tuple(prof.shape), raw=True)
    multiples, midpoints = period_lags(period, samples_per_patch, n_multiples)
    if max(multiples) >= prof.shape[-1]:
        raise bad_argument(
            InvalidInputError, "profiles", f"lags up to {max(multiples)} ({n_multiples} periods of {period:.4g} samples)", f"lags up to {prof.shape[-1] - 1}", raw=True
        )
    return prof[..., multiples].mean(-1) / prof[..., midpoints].mean(-1)


def peak_lags(profile: Any, samples_per_patch: float, n: int = 3, min_lag: int = 1, max_lag: int | None = None) -> list[float]:
    """The ``n`` highest local maxima of one profile at lags ``min_lag … max_lag`` (default: the
    whole profile), ordered by lag, in samples (``lag · samples_per_patch``). A maximum is a lag
    higher than both neighbours (the last lag of the profile counts if higher than the one before)."""
    y = np.asarray(torch.as_tensor(profile, dtype=torch.float64))
    if y.ndim != 1 or len(y) < 2:
        raise bad_argument(InvalidInputError, "profile", "one profile (n_lags,) with n_lags >= 2", y.shape, raw=True)
    spp = checks.positive("samples_per_patch", samples_per_patch)
    n = checks.positive_int("n", n)
    min_lag = checks.integer("min_lag", min_lag, minimum=0, maximum=len(y) - 1)
    top_lag = len(y) - 1 if max_lag is None else max_lag
    if isinstance(top_lag, bool) or not isinstance(top_lag, Integral) or not min_lag <= top_lag < len(y):
        raise bad_argument(InvalidInputError, "max_lag", f"an integer in [min_lag={min_lag}, {len(y) - 1}]", max_lag)
    lags = range(max(1, min_lag), top_lag + 1)
    peaks = [d for d in lags if y[d] > y[d - 1] and (d + 1 == len(y) or y[d] > y[d + 1])]
    top = sorted(sorted(peaks, key=lambda d: -y[d])[:n])
    return [d * spp for d in top]


def contrast_window(period: float, samples_per_patch: float, n_multiples: int = 3) -> int:
    """The largest lag the contrast of ``n_multiples`` periods looks at, plus half a period:
    ``floor((n_multiples + ½) · period / samples_per_patch)`` (13 for sin(n/10) at 16 samples per
    patch) — the window in which a head's peaks are compared with the period's multiples."""
    period_lags(period, samples_per_patch, n_multiples)  # validates
    return math.floor((n_multiples + 0.5) * period / samples_per_patch)


def rank_heads(contrast: Any, layer_names: Sequence[str]) -> list[dict]:
    """Heads sorted by contrast ``(L, H)``, highest first: ``{"layer", "layer_name", "head", "contrast"}``."""
    c = torch.as_tensor(contrast, dtype=torch.float64)
    if c.dim() != 2 or c.shape[0] != len(layer_names):
        raise bad_argument(InvalidInputError, "contrast", f"a (layers={len(layer_names)}, heads) table", tuple(c.shape), raw=True)
    rows = [
        {"layer": l, "layer_name": layer_names[l], "head": h, "contrast": float(c[l, h])}
        for l in range(c.shape[0])
        for h in range(c.shape[1])
    ]
    return sorted(rows, key=lambda r: -r["contrast"] if math.isfinite(r["contrast"]) else math.inf)


def profile_correlation(profiles: Any, min_lag: int = 1) -> np.ndarray:
    """Pearson correlation between every pair of heads' lag profiles ``(L, H, n_lags)`` over
    lags ≥ ``min_lag`` → ``(L·H, L·H)`` (heads in layer-major order; a flat profile gives NaN)."""
    p = np.asarray(torch.as_tensor(profiles, dtype=torch.float64))
    if p.ndim != 3 or p.shape[-1] - min_lag < 2:
        raise bad_argument(InvalidInputError, "profiles", f"profiles (layers, heads, n_lags) with at least 2 lags >= {min_lag}", p.shape, raw=True)
    x = p.reshape(-1, p.shape[-1])[:, min_lag:]
    x = x - x.mean(1, keepdims=True)
    norm = np.linalg.norm(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x @ x.T) / np.outer(norm, norm)


def rollout_time_attention(maps: AttentionMaps, grid_h: int, grid_w: int, residual: float = 0.5) -> AttentionMaps:
    """Attention rollout over all layers of ``maps`` (:func:`attnbook.metrics.rollout`, token
    maps with CLS, raster order), then the time map of the result, as one layer ``"rollout"``
    with one head: ``(1, B, 1, grid_w, grid_w)`` (so :func:`lag_profiles` applies)."""
    if not isinstance(maps, AttentionMaps):
        raise bad_argument(InvalidInputError, "maps", "AttentionMaps", type(maps).__name__, raw=True)
    grid_h, grid_w = _grid(grid_h, grid_w, maps.n_keys)
    t = _time_tensor(metrics.rollout(maps, residual=residual), grid_h, grid_w)
    meta = dict(maps.meta)
    meta.update(grid_h=grid_h, grid_w=grid_w, rollout_residual=residual, rollout_layers=list(maps.layer_names))
    return AttentionMaps(t[None, :, None], ["rollout"], None, None, None, meta)


# -- the seed study's combined figure -----------------------------------------------------------

def correlation_figure(
    time_map: Any,
    profile: Any,
    samples_per_patch: float,
    *,
    title: str = "",
    true_periods: Sequence[float] | None = None,
    powermap: bool = True,
    gamma: float = 1.0,
    robust_percentiles: tuple[float, float] | None = (5, 99),
    log: bool = False,
    top_percent: float | None = 99.99,
) -> plots.BookFigure:
    """The seed's per-head figure: the time map (patch × patch heatmap, top) and the lag profile in
    samples (below it); stacked, so the figure keeps the page's column and its labels the book's
    smallest font (the seed put them side by side, 13 inches wide).

    Options as the seed: ``powermap`` (a power-law colour scale with ``gamma``; off: linear),
    ``robust_percentiles`` (clip the colour range to these percentiles; None: full range),
    ``log`` (logarithmic colours, instead of the power map), ``top_percent`` (outline the cells
    holding the top p % of the weights; None: no outline). ``profile`` is indexed by lag
    (lag 0 first); ``true_periods`` (samples) are marked on the lag plot.
    """
    spp = checks.positive("samples_per_patch", samples_per_patch)
    tmap = np.asarray(torch.as_tensor(time_map, dtype=torch.float64))
    prof = np.asarray(torch.as_tensor(profile, dtype=torch.float64))
    if tmap.ndim != 2 or prof.ndim != 1 or len(prof) < 2:
        raise bad_argument(InvalidInputError, "time_map/profile", "a 2-D time map and a 1-D profile", (tmap.shape, prof.shape), raw=True)
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 10.0), layout="constrained")
    left, right = fig.subplots(2, 1, height_ratios=[1.7, 1.0])
    labels = [f"{round(c * spp)}" for c in range(tmap.shape[1])]
    plots.heatmap(
        tmap,
        query_labels=labels,
        key_labels=labels,
        ax=left,
        title="time × time attention (patch columns, first sample)",
        gamma=gamma if powermap and not log else None,
        robust=robust_percentiles,
        log=log,
        top_percent=top_percent,
    )
    lags = np.arange(1, len(prof)) * spp
    plots.lag_profile(prof[1:], lags=lags, true_periods=true_periods, ax=right, title="mean attention by time lag")
    right.set_xlabel("lag (samples of the series)")
    if title:
        fig.suptitle(title)
    return fig


def correlation_filename(experiment: int | str, head: int | str) -> str:
    """The seed's file name: ``experiment_<N>_head_<H>_correlations.png``."""
    for name, v in (("experiment", experiment), ("head", head)):
        text = str(v)
        if not text or any(ch in text for ch in "/\\:") or text.strip() != text:
            raise bad_argument(InvalidInputError, name, "a plain name or number (no path separators)", v)
    return f"experiment_{experiment}_head_{head}_correlations.png"


def save_correlation_figure(fig: Any, folder: str | Path, experiment: int | str, head: int | str) -> Path:
    """Save ``fig`` as ``<folder>/experiment_<N>_head_<H>_correlations.png`` (atomically)."""
    path = Path(folder) / correlation_filename(experiment, head)
    path.parent.mkdir(parents=True, exist_ok=True)
    return store.save_figure(path, fig)
