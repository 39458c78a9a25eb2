"""Chapter 3's checks and findings: what the measured lag contrasts, profile correlations, rollout
and forecasts say about the seed's statements, each against its control under the rule declared in
:mod:`attnbook.registry`; and the causal test of the period heads (does ablating them change the
forecast, more than random heads, and more when the period is in the input?).

A *contrast* is the attention at the input's period against the attention between its multiples
(:func:`~attnbook.vitime.lags.period_contrast`): 1 means no preference for the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import checks
from ..capture import find_attention
from ..claims import Check, Finding, FindingSpec, fmt
from ..errors import InvalidInputError, bad_argument
from ..intervene import HeadMeans, RandomComparison, against_random, head_means
from ..intervene.effects import random_head_sets
from ..registry import spec

__all__ = ["attention_findings", "forecast_findings", "forecast_reading", "FLAT_PERCENT", "chapter_checks", "peak_error",
           "top_head_agreement", "CAUSAL_STARTS", "period_heads",
           "experiment_images", "reference_images", "ForecastChange", "RatioComparison", "PeriodHeadTest", "period_head_tests",
           "causal_frame", "CAUSAL_KEYS", "causal_findings", "causal_records", "causal_reading", "strips"]


def attention_findings(*, best_contrast: float, peak_err: float, random_best_contrast: float, random_peak_err: float,
                       exp2_contrast: float, exp2_contrast_p31: float, random_contrast_p31: float, held_contrasts: Mapping[str, float],
                       random_contrast_p63: float, top_corr: float, all_corr: float, rollout_contrast: float,
                       rollout_random: float) -> list[Finding]:
    """The chapter's attention findings (:mod:`attnbook.registry`, ``vitime-harmonics/…``), each
    measured on the pretrained model and on its control:

    1. ``period-head``: experiment 1's best head, contrast ``best_contrast`` and ``peak_err``
       (:func:`peak_error`); control: the random-init network's best head (``random_…``);
    2. ``period-head-vanishes``: the same head on experiment 2 (``exp2_contrast``); control: on experiment 1;
    3. ``follows-sin-n-5``: its contrast at 31.4 samples on experiment 2; control: random init's;
    4. ``follows-held-out-periods``: the lowest of ``held_contrasts``; control: random init at 62.8;
    5. ``heads-share-profile``: the top-3 heads' mean r ``top_corr``; control: all pairs' ``all_corr``;
    6. ``rollout-keeps-period``: ``rollout_contrast``; control: random init's ``rollout_random``.
    """
    c = "vitime-harmonics/"
    held = ", ".join(f"{n}: {fmt(v)}" for n, v in held_contrasts.items())
    return [
        spec(c + "period-head").result({"period contrast": best_contrast, "peak error (samples)": peak_err},
                                       {"period contrast": random_best_contrast, "peak error (samples)": random_peak_err}),
        spec(c + "period-head-vanishes").result(exp2_contrast, best_contrast),
        spec(c + "follows-sin-n-5").result(exp2_contrast_p31, random_contrast_p31),
        spec(c + "follows-held-out-periods").result(min(held_contrasts.values()), random_contrast_p63, detail=held),
        spec(c + "heads-share-profile").result(top_corr, all_corr),
        spec(c + "rollout-keeps-period").result(rollout_contrast, rollout_random),
    ]


#: a forecast whose error is within this many per cent of the history mean's on every input is "flat"
FLAT_PERCENT = 5.0


def _held_out_ratios(scores):
    """Per held-out input (``scores`` rows named ``"held out …"``): the model's argmax MSE over the
    better baseline's (the lower of the history mean's and repeat-last-period's)."""
    rows = scores[[str(name).startswith("held out") for name in scores.index]]
    if rows.empty or not {"model_argmax", "history_mean", "repeat_last_period"} <= set(rows.columns):
        raise bad_argument(InvalidInputError, "scores", "forecast_scores rows named 'held out …' with model_argmax, history_mean, repeat_last_period",
                           f"index {list(scores.index)}, columns {list(scores.columns)}", raw=True)
    return rows["model_argmax"] / rows[["history_mean", "repeat_last_period"]].min(axis=1)


def forecast_findings(scores) -> list[Finding]:
    """The forecasts of the chapter's own inputs (``scores``: :func:`attnbook.vitime.harmonics.forecast_scores`
    per input, rows "experiment 1" and "held out …"): ``experiment-1-forecast`` (the model's argmax MSE
    ÷ repeat-last-period's on experiment 1) and ``held-out-probes-forecast`` (the largest, over the
    held-out inputs, of the model's MSE ÷ the better of the history mean's and repeat-last-period's);
    each control is the baseline itself, ratio 1."""
    ratio = _held_out_ratios(scores)
    if "experiment 1" not in scores.index:
        raise bad_argument(InvalidInputError, "scores", "a row 'experiment 1'", list(scores.index), raw=True)
    e1 = scores.loc["experiment 1"]
    c = "vitime-harmonics/"
    return [spec(c + "experiment-1-forecast").result(float(e1["model_argmax"] / e1["repeat_last_period"]), 1.0,
                                                     detail=f"MSE {fmt(float(e1['model_argmax']))} against {fmt(float(e1['repeat_last_period']))}"),
            spec(c + "held-out-probes-forecast").result(float(ratio.max()), 1.0,
                                                        detail=", ".join(f"{n.removeprefix('held out ')}: {fmt(float(r))}" for n, r in ratio.items()))]


def forecast_reading(scores) -> str:
    """What the forecasting table says, in one sentence computed from it (Markdown): the model beats
    both baselines on every held-out input (by at least how much), or its forecast is flat (error
    within :data:`FLAT_PERCENT` % of the history mean's on every input), or neither."""
    ratio = _held_out_ratios(scores)
    deviation = float((scores["model_argmax"] / scores["history_mean"] - 1).abs().max() * 100)
    if (ratio < 1).all():
        return (f"On every held-out input the model beats both baselines, by at least {fmt(float(100 * (1 - ratio.max())))} % "
                f"of the better one's error: it forecasts periods it was never probed with")
    if deviation < FLAT_PERCENT:
        return (f"On every input the forecast's error is within {fmt(deviation)} % of the history mean's: the model paints a "
                f"nearly flat line. Where it \"beats\" repeat-last-period it is because that baseline repeats an integer period "
                f"that drifts against a non-integer one, not because the model forecasts. The model has learned where to look before "
                f"it has learned what to paint; its periodic heads show the input's self-similarity, not a forecasting mechanism")
    worse = [name.removeprefix("held out ") for name, r in ratio.items() if r >= 1]
    return (f"The forecast is not flat (up to {fmt(deviation)} % from the history mean's error), but it loses to the better baseline "
            f"on {', '.join(worse)}")


def peak_error(peaks: list[float], period: float) -> float:
    """Largest distance (samples) of the three highest lag peaks, sorted, to ``period``, 2·``period``
    and 3·``period``; ``inf`` unless there are exactly three peaks."""
    if len(peaks) != 3:
        return float("inf")
    return max(abs(p - k * period) for k, p in enumerate(sorted(peaks), 1))


def chapter_checks(fell: float, random_contrasts: Any, round_trip: float, shuffle_diff: float,
                   forecast_ratio: float | None = None) -> list[Check]:
    """Chapter 3's checks — what the findings rely on, not findings: pretraining lowered the validation
    loss (``fell`` = best / step 0); with ``forecast_ratio`` (the model's mean MSE on the held-out test ÷
    the history mean's), the model forecasts better than the history's mean — its task, which a cheaper
    pretraining must keep; the lag measure reads flat on the random-init network (every
    head's contrast in [0.8, 1.25], ``random_contrasts``); the official-format checkpoint round-trips
    exactly; the shuffled encoder, un-permuted, gives raster order's contrasts. Over several seeds, pass
    the worst seed's values (:func:`attnbook.vitime.seeds.seed_checks`)."""
    random_contrasts = np.asarray(random_contrasts, dtype=np.float64)
    task = [] if forecast_ratio is None else [
        Check("held-out test: the model's mean MSE ÷ the history mean's (it forecasts better than a flat line)", float(forecast_ratio), "<", 1.0)]
    return [
        Check("pretraining: best validation loss / loss at step 0", fell, "<", 0.95),
        *task,
        Check("random init: lowest contrast over all heads (the measure reads flat)", float(random_contrasts.min()), ">=", 0.8),
        Check("random init: highest contrast over all heads (the measure reads flat)", float(random_contrasts.max()), "<=", 1.25),
        Check("official-format checkpoint written and reloaded: max output difference", round_trip, "<=", 0.0),
        Check("shuffled encoder, un-permuted: max contrast difference to raster order", shuffle_diff, "<", 1e-3),
    ]


def top_head_agreement(corr: np.ndarray, ranking: list[dict], n_heads: int, top: int = 3) -> tuple[float, float]:
    """Mean Pearson r of the lag profiles among the ``top`` heads by contrast (``ranking``, best
    first; ``corr`` from :func:`~attnbook.vitime.lags.profile_correlation`, layer-major) and over
    all pairs of heads (NaN pairs left out)."""
    heads = [r["layer"] * n_heads + r["head"] for r in ranking[:top]]
    among_top = float(np.nanmean([corr[i, j] for i in heads for j in heads if i < j]))
    return among_top, float(np.nanmean(corr[np.triu_indices_from(corr, 1)]))


# -- does the model use the period heads? ----------------------------------------------------------

#: start samples of the windows the causal test forecasts from: 0 (the chapter's input) to 56 in
#: steps of 8, phase shifts across one period of sin(n/10), so no single phase decides the test
CAUSAL_STARTS: tuple[int, ...] = tuple(range(0, 64, 8))


def period_heads(ranking: Sequence[Mapping], top: int = 1) -> list[tuple[int, int]]:
    """The heads the chapter's attention analysis points to, as ``(layer, head)`` pairs: the first
    ``top`` of ``ranking`` (:func:`~attnbook.vitime.lags.rank_heads`, best period contrast first).
    ``layer`` is capture's layer index, which :func:`attnbook.intervene.ablate` reads the same way."""
    top = checks.integer("top", top, minimum=1)
    if len(ranking) < top:
        raise bad_argument(InvalidInputError, "ranking", f"at least {top} ranked heads", len(ranking), raw=True)
    return [(int(r["layer"]), int(r["head"])) for r in ranking[:top]]


def experiment_images(harmonics: Sequence[Any], mapping: Any, *, starts: Sequence[int] = CAUSAL_STARTS, length: int = 512,
                      horizon: int = 720) -> tuple[torch.Tensor, list]:
    """The model inputs ``(len(starts), 1, W, h)`` of the windows ``signal(harmonics, length, start)``
    for each start, mapped as the chapter maps its input (:func:`~attnbook.vitime.mapping.series_to_image`,
    horizon ``horizon``), and their :class:`~attnbook.vitime.mapping.Mapped` (for decoding)."""
    from .harmonics import signal
    from .mapping import series_to_image

    if isinstance(starts, (str, bytes)) or not isinstance(starts, Sequence) or not starts:
        raise bad_argument(InvalidInputError, "starts", "a non-empty sequence of start samples", starts)
    mapped = [series_to_image(signal(harmonics, length, start=checks.integer("starts", s, minimum=0)), horizon, mapping) for s in starts]
    return torch.as_tensor(np.stack([m.image for m in mapped]), dtype=torch.float32)[:, None], mapped


def reference_images(data: Any, mapping: Any, n: int, seed: int) -> torch.Tensor:
    """``n`` pretraining-distribution series (RealTS, ``seed``) as model inputs ``(n, 1, W, h)``: the
    reference a head's mean output is taken over for ``how="mean"``."""
    from .realts import batch_images, generate

    return batch_images(generate(checks.positive_int("n", n), data, seed=seed), mapping)[0]


class ForecastChange:
    """``metric(model) -> float``: the mean squared change of the model's decoded forecast (the
    ``horizon`` samples after the history, series units, ``method`` decoding) from the clean model's,
    averaged over the windows ``images`` (``mapped`` from :func:`experiment_images`):
    ``mean_{b,t} (ŷ_b,t(model) − ŷ_b,t(clean))²``; 0 for the clean model, damage > 0.

    Expectation decoding by default: argmax moves in whole value bins, so a small change reads as
    none and ties the random head sets."""

    def __init__(self, model: torch.nn.Module, images: torch.Tensor, mapped: Sequence[Any], method: str = "expectation") -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] != len(mapped):
            raise bad_argument(InvalidInputError, "images", f"a tensor (B, 1, W, h) with B = len(mapped) = {len(mapped)}",
                               getattr(images, "shape", type(images).__name__), raw=True)
        self.images, self.mapped, self.method = images, list(mapped), method
        self.clean = self.forecasts(model)

    def forecasts(self, model: torch.nn.Module) -> np.ndarray:
        """The decoded forecasts ``(B, horizon)`` of ``model`` on the windows."""
        from .mapping import image_to_series

        model.eval()
        with torch.no_grad():
            probs = model(self.images).numpy()
        return np.stack([image_to_series(probs[b], m, method=self.method)[m.input_len:] for b, m in enumerate(self.mapped)])

    def __call__(self, model: torch.nn.Module) -> float:
        return float(np.mean((self.forecasts(model) - self.clean) ** 2))


def _ratio(a: float, b: float) -> float:
    return a / max(b, 1e-12)


@dataclass(frozen=True)
class RatioComparison:
    """The chosen heads' effect on experiment 1 over their effect on experiment 2, beside the same
    ratio for each random head set (paired: ``exp1`` and ``exp2`` used the same sets, in order).
    Percentile, permutation p-value and the rule's percentile are :class:`~attnbook.intervene.RandomComparison`'s,
    computed on the ratios."""

    exp1: RandomComparison
    exp2: RandomComparison

    def __post_init__(self) -> None:
        if self.exp1.heads != self.exp2.heads or self.exp1.draws != self.exp2.draws or self.exp1.exact != self.exp2.exact:
            raise bad_argument(InvalidInputError, "exp2", "a comparison of the same heads against the same random sets as exp1",
                               f"heads {self.exp2.heads}, {self.exp2.draws} sets", raw=True)

    @property
    def heads(self) -> tuple[tuple[str, int], ...]:
        return self.exp1.heads

    @property
    def effect(self) -> float:
        """``effect on experiment 1 / effect on experiment 2`` (denominator floored at 1e-12)."""
        return _ratio(self.exp1.effect, self.exp2.effect)

    @property
    def random_effects(self) -> tuple[float, ...]:
        return tuple(_ratio(a, b) for a, b in zip(self.exp1.random_effects, self.exp2.random_effects))

    @property
    def draws(self) -> int:
        return self.exp1.draws

    def _as_comparison(self) -> RandomComparison:
        """The ratios in a :class:`RandomComparison`, so percentile, p and the rule's percentile follow its conventions."""
        return RandomComparison(self.heads, 1.0, self.effect, self.random_effects, self.exp1.exact, self.exp1.how)

    @property
    def percentile(self) -> float:
        return self._as_comparison().percentile

    @property
    def p_value(self) -> float:
        return self._as_comparison().p_value

    def quantile(self, q: float) -> float:
        return self._as_comparison().quantile(q)

    def exceeds(self, q: float = 95.0) -> bool:
        return self._as_comparison().exceeds(q)

    def rule(self, q: float = 95.0) -> str:
        sets = f"all {self.draws}" if self.exp1.exact else f"{self.draws} random"
        return f"ratio exp1/exp2 > {q:g}th percentile of the ratios of {sets} sets of {len(self.heads)} head(s)"

    def record(self, finding: str = "", metric: str = "", q: float = 95.0) -> dict:
        """The same fields as :meth:`RandomComparison.record`, for the ratio (``clean``: None)."""
        r = np.asarray(self.random_effects, dtype=np.float64)
        return {"finding": finding, "metric": metric, "heads": [f"{name}:{h}" for name, h in self.heads], "how": self.exp1.how,
                "clean": None, "effect": self.effect, "random_mean": float(r.mean()), "random_p95": self.quantile(95),
                "random_max": float(r.max()), "percentile": self.percentile, "p_value": self.p_value, "draws": self.draws,
                "exact": self.exp1.exact, "rule": self.rule(q), "verdict": "supported" if self.exceeds(q) else "not supported"}

    def finding(self, finding_spec: FindingSpec) -> Finding:
        """The ratio comparison as the registered causal finding ``finding_spec`` (:meth:`RandomComparison.finding` on the ratios)."""
        return self._as_comparison().finding(finding_spec)


@dataclass(frozen=True)
class PeriodHeadTest:
    """One head set the attention analysis picked (``label``, ``heads`` as (layer, head)), ablated
    against random sets of its size on experiment 1, on experiment 2, and their ratio."""

    label: str
    heads: tuple[tuple[int, int], ...]
    exp1: RandomComparison
    exp2: RandomComparison
    random_sets: tuple[tuple[tuple[int, int], ...], ...] = ()  # the sets behind random_effects, in order

    @property
    def ratio(self) -> RatioComparison:
        return RatioComparison(self.exp1, self.exp2)

    def most_damaging(self, experiment: int = 1) -> tuple[tuple[tuple[int, int], ...], float]:
        """The random set (as (layer, head) pairs) whose ablation changed ``experiment``'s forecast
        most, and that change."""
        c = {1: self.exp1, 2: self.exp2}.get(experiment)
        if c is None:
            raise bad_argument(InvalidInputError, "experiment", "1 or 2", experiment)
        if len(self.random_sets) != c.draws:
            raise bad_argument(InvalidInputError, "random_sets", f"the {c.draws} sets behind the random effects", len(self.random_sets), raw=True)
        i = int(np.argmax(c.random_effects))
        return self.random_sets[i], c.random_effects[i]


def period_head_tests(model: torch.nn.Module, head_sets: Mapping[str, Sequence[tuple[int, int]]], metrics: Mapping[int, Any],
                      reference: Any, *, how: str = "mean", draws: int = 50, seed: int = 0,
                      progress: bool = False) -> list[PeriodHeadTest]:
    """For each ``label -> heads`` of ``head_sets``: :func:`~attnbook.intervene.against_random` on
    ``metrics[1]`` (experiment 1) and ``metrics[2]`` (experiment 2) with the same ``draws`` and
    ``seed``, hence the same random sets in the same order (pool: every head of every layer).
    ``reference`` for ``how="mean"``: inputs, computed into :class:`~attnbook.intervene.HeadMeans` once."""
    if set(metrics) != {1, 2}:
        raise bad_argument(InvalidInputError, "metrics", "metrics for experiments 1 and 2", sorted(metrics), raw=True)
    if how == "mean" and not isinstance(reference, HeadMeans):
        reference = head_means(model, reference)
    pool = [(i, h) for i, site in enumerate(find_attention(model)) for h in range(site.n_heads or 0)]  # against_random's pool
    tests = []
    for label, heads in head_sets.items():
        heads = tuple((int(layer), int(h)) for layer, h in heads)
        runs = [against_random(model, metrics[k], list(heads), draws=draws, seed=seed, how=how, reference=reference,
                               progress=progress) for k in (1, 2)]
        sets, _ = random_head_sets(pool, len(heads), draws, seed, exclude=list(heads))  # as against_random draws them
        tests.append(PeriodHeadTest(str(label), heads, *runs, random_sets=tuple(tuple(s) for s in sets)))
    return tests


def causal_frame(tests: Sequence[PeriodHeadTest], q: float = 95.0):
    """One row per test and experiment (and the ratio): heads, effect, random mean and ``q``-th
    percentile, percentile of the effect among the random sets, p, sets, verdict (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for t in tests:
        for what, c in (("experiment 1", t.exp1), ("experiment 2", t.exp2), ("ratio exp 1 / exp 2", t.ratio)):
            r = np.asarray(c.random_effects, dtype=np.float64)
            rows.append({"heads": t.label, "measure": what, "chosen": c.effect, "random mean": float(r.mean()),
                         "random median": float(np.median(r)), f"random {q:g}th pct": c.quantile(q), "percentile": c.percentile,
                         "p": c.p_value, "sets": c.draws, "verdict": "supported" if c.exceeds(q) else "not supported"})
    return pd.DataFrame(rows).set_index(["heads", "measure"])


#: the registry's name of each head set the chapter tests (keys ``vitime-harmonics/<name>-used-…``)
CAUSAL_KEYS = {"best head": "best-head", "top-3 heads": "top3"}


def causal_findings(tests: Sequence[PeriodHeadTest]) -> list[Finding]:
    """Three registered findings per test (``<set>-used-exp1``, ``-exp2``, ``-for-period``): ablating
    the heads changes the experiment-1 forecast more than random heads; the experiment-2 forecast too;
    the change is larger with the period present (ratio exp1/exp2 against the random sets' ratios)."""
    out = []
    for t in tests:
        if t.label not in CAUSAL_KEYS:
            raise bad_argument(InvalidInputError, "tests", f"head sets labelled {list(CAUSAL_KEYS)}", t.label)
        key = f"vitime-harmonics/{CAUSAL_KEYS[t.label]}-used"
        out += [t.exp1.finding(spec(key + "-exp1")), t.exp2.finding(spec(key + "-exp2")), t.ratio.finding(spec(key + "-for-period"))]
    return out


def causal_records(tests: Sequence[PeriodHeadTest], metric: str, q: float = 95.0) -> list[dict]:
    """The tests' ``summary.json`` records (the ``causal`` list), three per test."""
    out = []
    for t in tests:
        finding = f"{t.label}: attention one period of sin(n/10) back (period contrast)"
        out += [t.exp1.record(f"{finding}; experiment 1", metric, q), t.exp2.record(f"{finding}; experiment 2 (no sin(n/10))", metric, q),
                t.ratio.record(f"{finding}; experiment 1 over experiment 2", f"ratio of {metric}", q)]
    return out


def causal_reading(tests: Sequence[PeriodHeadTest], q: float = 95.0) -> str:
    """One sentence for the prose, from the verdicts of ``tests`` (rule: above the ``q``-th
    percentile of the random sets): do the heads attention points to matter for the experiment-1
    forecast, and more with the period present?"""
    used = [t.label for t in tests if t.exp1.exceeds(q)]
    more = [t.label for t in tests if t.ratio.exceeds(q)]
    if not used:
        return ("none of the head sets attention points to moves the experiment-1 forecast more than random heads do: "
                "the model attends to the period with heads its forecast depends on no more than on any other")
    text = f"ablating the {' and the '.join(used)} moves the experiment-1 forecast more than random heads do"
    if more:
        return text + f", and the {' and the '.join(more)} more so with the period present than without"
    return text + ", but not more so with the period present than without (relative to random heads)"


def _short(t: PeriodHeadTest) -> str:
    return f"L{t.heads[0][0]}H{t.heads[0][1]}" if len(t.heads) == 1 else f"{len(t.heads)} heads"


def strips(tests: Sequence[PeriodHeadTest], measure: str) -> dict[str, tuple[float, tuple[float, ...]]]:
    """``{row: (chosen, random)}`` for :func:`attnbook.plots.ablation_strips`: ``measure`` "effects"
    (rows "L<layer>H<head>, exp 1", "…, exp 2" per test; a set of n heads reads "n heads") or "ratio"."""
    if measure == "effects":
        return {f"{_short(t)}, exp {k}": (c.effect, c.random_effects) for t in tests for k, c in ((1, t.exp1), (2, t.exp2))}
    if measure == "ratio":
        return {_short(t): (t.ratio.effect, t.ratio.random_effects) for t in tests}
    raise bad_argument(InvalidInputError, "measure", "'effects' or 'ratio'", measure)
