"""Chapter 3's hypotheses: what the measured lag contrasts, profile correlations, rollout and
forecasts say about the seed's statements, each with its rule fixed in advance.

A *contrast* is the attention at the input's period against the attention between its multiples
(:func:`~attnbook.vitime.lags.period_contrast`): 1 means no preference for the period.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..claims import Claim, Hypothesis, fmt

__all__ = ["chapter_hypotheses", "chapter_claims", "peak_error", "top_head_agreement"]


def chapter_hypotheses(*, exp2_contrast_p31: float, random_contrast_p31: float, held_contrasts: dict[str, float],
                       random_contrast_p63: float, top_corr: float, all_corr: float, rollout_contrast: float,
                       rollout_random: float, model_mse: float, baseline_mse: float) -> list[Hypothesis]:
    """The five hypotheses, in the chapter's order:

    1. without sin(n/10) the best head follows sin(n/5): its contrast at 31.4 samples in experiment 2
       (``exp2_contrast_p31``; control ``random_contrast_p31``) >= 1.5;
    2. the best head follows held-out periods: every contrast in ``held_contrasts`` >= 2 (control:
       the random init at 62.8);
    3. periodic heads share a lag profile: the top-3 heads' mean correlation ``top_corr`` >= 0.5 and
       above all pairs' ``all_corr``;
    4. the period survives rollout across layers: ``rollout_contrast`` >= 2 (control ``rollout_random``);
    5. attending to the period means forecasting it: ``model_mse`` < ``baseline_mse`` (repeat the last period).
    """
    return [
        Hypothesis("without sin(n/10) the best head follows sin(n/5) instead", f"contrast at 31.4 samples {fmt(exp2_contrast_p31)}",
                   f"random init {fmt(random_contrast_p31)}", "contrast at 31.4 >= 1.5", exp2_contrast_p31 >= 1.5),
        Hypothesis("the best head follows held-out periods", ", ".join(f"{n}: {fmt(v)}" for n, v in held_contrasts.items()),
                   f"random init at 62.8: {fmt(random_contrast_p63)}", "contrast at the input's period >= 2 for all three",
                   all(v >= 2 for v in held_contrasts.values())),
        Hypothesis("periodic heads share a lag profile", f"mean r of the top 3 heads {fmt(top_corr)}", f"all pairs {fmt(all_corr)}",
                   "top-3 mean r >= 0.5 and above all pairs", top_corr >= 0.5 and top_corr > all_corr),
        Hypothesis("the period survives rollout across layers", f"rollout contrast {fmt(rollout_contrast)}", f"random init {fmt(rollout_random)}",
                   "rollout contrast >= 2", rollout_contrast >= 2),
        Hypothesis("attending to the period means forecasting it", f"experiment 1 MSE {fmt(model_mse)}",
                   f"repeat last period {fmt(baseline_mse)}", "model MSE < baseline MSE", model_mse < baseline_mse),
    ]


def peak_error(peaks: list[float], period: float) -> float:
    """Largest distance (samples) of the three highest lag peaks, sorted, to ``period``, 2·``period``
    and 3·``period``; ``inf`` unless there are exactly three peaks."""
    if len(peaks) != 3:
        return float("inf")
    return max(abs(p - k * period) for k, p in enumerate(sorted(peaks), 1))


def chapter_claims(fell: float, best_contrast: float, peaks: list[float], exp2_contrast: float, random_contrasts: Any,
                   round_trip: float, shuffle_diff: float, samples_per_patch: float) -> list[Claim]:
    """Chapter 3's claims: pretraining lowered the validation loss (``fell`` = best / step 0); the best
    head of experiment 1 has a period contrast >= 2 at 62.8 samples with its three highest ``peaks``
    within half a patch of 63/126/189; the same head's contrast falls below 1.5 without sin(n/10)
    (``exp2_contrast``); every head of the random-init model stays within [0.8, 1.25]
    (``random_contrasts``); the official-format checkpoint round-trips exactly; the shuffled encoder,
    un-permuted, gives raster order's contrasts."""
    from .harmonics import PERIOD_63

    random_contrasts = np.asarray(random_contrasts, dtype=np.float64)
    return [
        Claim("pretraining: best validation loss / loss at step 0", fell, "<", 0.95),
        Claim("experiment 1: best head's period contrast (62.8 samples)", best_contrast, ">=", 2.0),
        Claim("experiment 1: best head's 3 highest peaks, max distance to 63/126/189 (samples)", peak_error(peaks, PERIOD_63), "<=",
              samples_per_patch / 2),
        Claim("experiment 2 (no sin(n/10)): the same head's contrast", exp2_contrast, "<", 1.5),
        Claim("random init: lowest contrast over all heads", float(random_contrasts.min()), ">=", 0.8),
        Claim("random init: highest contrast over all heads", float(random_contrasts.max()), "<=", 1.25),
        Claim("official-format checkpoint written and reloaded: max output difference", round_trip, "<=", 0.0),
        Claim("shuffled encoder, un-permuted: max contrast difference to raster order", shuffle_diff, "<", 1e-3),
    ]


def top_head_agreement(corr: np.ndarray, ranking: list[dict], n_heads: int, top: int = 3) -> tuple[float, float]:
    """Mean Pearson r of the lag profiles among the ``top`` heads by contrast (``ranking``, best
    first; ``corr`` from :func:`~attnbook.vitime.lags.profile_correlation`, layer-major) and over
    all pairs of heads (NaN pairs left out)."""
    heads = [r["layer"] * n_heads + r["head"] for r in ranking[:top]]
    among_top = float(np.nanmean([corr[i, j] for i in heads for j in heads if i < j]))
    return among_top, float(np.nanmean(corr[np.triu_indices_from(corr, 1)]))
