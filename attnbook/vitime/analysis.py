"""Chapter 3's hypotheses: what the measured lag contrasts, profile correlations, rollout and
forecasts say about the seed's statements, each with its rule fixed in advance.

A *contrast* is the attention at the input's period against the attention between its multiples
(:func:`~attnbook.vitime.lags.period_contrast`): 1 means no preference for the period.
"""

from __future__ import annotations

from ..claims import Hypothesis, fmt

__all__ = ["chapter_hypotheses"]


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
