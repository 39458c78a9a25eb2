"""Chapter 3's controls that could make its findings false (issue 31).

1. **Aperiodic inputs** (:func:`aperiodic_inputs`): white noise, a straight trend and a random walk, seeded, the
   probes' length (512 samples) and the probes' normalisation (rescaled to experiment 1's mean and standard
   deviation). They have no period by construction, so a lag peak that reads the input's period must vanish
   on them. Every lag-peak finding measures the *same* contrast at the *same* lag of the *same* head on each of
   them (:func:`aperiodic_measures`), and the control's value is the one of the three most favourable to the
   rule (:func:`strongest`: the largest for ``>``/``>=``, the smallest for ``<``/``<=``): if any aperiodic
   input passes the rule, the finding is not supported.
2. **The forecaster gate** (:func:`gate_on_bar`): the attention findings are about a forecaster, so on a seed
   whose model does not meet the profile's forecast bar (its ``forecasts-held-out-series`` finding is not
   supported) they are inconclusive, with that reason, whatever their values.
3. **Training to the bar** (:func:`train_to_bar`, :class:`BarTraining`): in ``full``, each layout preset is
   pretrained on a ladder of step budgets until its model meets the forecast bar on a tuning draw of held-out
   series (never the test set), or the ladder's last budget is reached (reported), so that the presets are
   compared at the same forecast bar, not at equal steps (:func:`preset_comparison`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import checks
from ..claims import AcrossSeeds, Finding, Rule
from ..errors import InvalidInputError, bad_argument
from . import analysis, harmonics as hm, lags
from .model import PRESETS

__all__ = ["APERIODIC_KINDS", "APERIODIC_SEED", "LAG_PEAK_KEYS", "ATTENTION_KEYS", "aperiodic_inputs", "acf", "strongest",
           "aperiodic_measures", "gate_on_bar", "rule_table", "BarTraining", "bar_met", "train_to_bar", "preset_comparison"]

#: the three aperiodic inputs, in order
APERIODIC_KINDS = ("noise", "trend", "random walk")
#: their seed (the same for every training seed: a control input, like the probes)
APERIODIC_SEED = 60_000
_C = "vitime-harmonics/"
#: the findings that read a peak or a contrast at a period: each gets the aperiodic inputs as control
LAG_PEAK_KEYS = tuple(_C + k for k in ("period-head", "follows-sin-n-5", "follows-held-out-periods", "heads-share-profile",
                                       "rollout-keeps-period"))
#: the findings about attention, read only on a seed whose model meets its forecast bar (the causal one among them)
ATTENTION_KEYS = (*LAG_PEAK_KEYS, _C + "period-head-vanishes", analysis.PERIOD_HEADS_KEY)


def aperiodic_inputs(length: int = 512, *, reference: Any = None, seed: int = APERIODIC_SEED) -> dict[str, np.ndarray]:
    """``{"noise", "trend", "random walk"}``, ``length`` samples each (float64), seeded by ``seed``: standard
    normal white noise, a straight line, and the cumulative sum of a second standard normal draw; each is then
    standardised and rescaled to ``reference``'s mean and standard deviation (default: experiment 1's input,
    :data:`attnbook.vitime.harmonics.EXPERIMENTS`), the probes' normalisation. None has a period."""
    length = checks.integer("length", length, minimum=8)
    seed = checks.integer("seed", seed, minimum=0)
    ref = hm.signal(hm.EXPERIMENTS[1], length) if reference is None else np.asarray(reference, dtype=np.float64)
    if ref.ndim != 1 or len(ref) < 2 or not np.all(np.isfinite(ref)) or not ref.std() > 0:
        raise bad_argument(InvalidInputError, "reference", "a finite, non-constant 1-D series", getattr(ref, "shape", ref), raw=True)
    rng = np.random.default_rng(seed)
    raw = {"noise": rng.standard_normal(length), "trend": np.linspace(-1.0, 1.0, length),
           "random walk": np.cumsum(rng.standard_normal(length))}
    return {k: (v - v.mean()) / v.std() * ref.std() + ref.mean() for k, v in raw.items()}


def acf(x: Any, lags_: Sequence[int]) -> np.ndarray:
    """The sample autocorrelation of ``x`` at each of ``lags_`` (biased estimator: ``Σ x̃_t x̃_{t+k} / Σ x̃_t²``)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2 or not x.std() > 0:
        raise bad_argument(InvalidInputError, "x", "a non-constant 1-D series", getattr(x, "shape", x), raw=True)
    d = x - x.mean()
    out = []
    for k in lags_:
        k = checks.integer("lag", k, minimum=0, maximum=len(x) - 1)
        out.append(float(np.dot(d[: len(d) - k], d[k:]) / np.dot(d, d)))
    return np.asarray(out)


def strongest(values: Mapping[str, Mapping[str, float]], rule: Rule) -> dict[str, float]:
    """Of several control inputs' values ``{input: {measure: value}}``, per measure of ``rule`` the one most
    favourable to it: the largest for ``>``/``>=``, the smallest for ``<``/``<=`` (non-finite values left out;
    NaN when none is finite). One control value per measure, the strongest world the finding had to beat."""
    if not isinstance(values, Mapping) or not values:
        raise bad_argument(InvalidInputError, "values", "a non-empty mapping {input: {measure: value}}", values)
    out = {}
    for cond in rule.conditions:
        xs = []
        for name, v in values.items():
            if not isinstance(v, Mapping) or cond.measure not in v:
                raise bad_argument(InvalidInputError, "values", f"every input with a value of {cond.measure!r}", name, raw=True)
            xs.append(float(v[cond.measure]))
        finite = [x for x in xs if math.isfinite(x)]
        out[cond.measure] = (max(finite) if cond.op in (">", ">=") else min(finite)) if finite else math.nan
    return out


def aperiodic_measures(model, layer: int, head: int, top_heads: Sequence[tuple[int, int]], *, held_periods: Sequence[float],
                       horizon: int = 720, inputs: Mapping[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Every lag-peak measure of the chapter on each aperiodic input (:func:`aperiodic_inputs` unless ``inputs``),
    on ``model``, the same head (``layer``, ``head``: experiment 1's best) and the same top heads (``top_heads``,
    experiment 1's top three) as on the probes: ``{input: {measure: value}}`` with ``"contrast 62.8"``,
    ``"peak error"`` (:func:`attnbook.vitime.analysis.peak_error` of its three highest peaks within the contrast's
    window), ``"contrast 31.4"``, ``"lowest held-out contrast"`` (the lowest of its contrasts at ``held_periods``),
    ``"top-3 mean r"`` and ``"rollout contrast"``. One captured forward per input."""
    inputs = aperiodic_inputs() if inputs is None else inputs
    if not isinstance(inputs, Mapping) or not inputs:
        raise bad_argument(InvalidInputError, "inputs", "a non-empty mapping {name: series}", inputs)
    if not held_periods:
        raise bad_argument(InvalidInputError, "held_periods", "one or more periods", held_periods)
    top_heads = [tuple(map(int, h)) for h in top_heads]
    if len(top_heads) < 2:
        raise bad_argument(InvalidInputError, "top_heads", "two or more (layer, head) pairs", top_heads)
    c = model.config
    p31 = hm.EXPERIMENTS[2][0].period
    out = {}
    for name, x in inputs.items():
        a = hm.analyse(model, x, horizon)  # contrast at 62.8 samples
        spp = a.samples_per_patch
        prof = a.profiles
        corr = lags.profile_correlation(prof)
        idx = [lh[0] * a.maps.n_heads + lh[1] for lh in top_heads]
        roll = lags.lag_profiles(lags.rollout_time_attention(a.maps, c.grid_h, c.grid_w))[0, 0]
        out[name] = {
            "contrast 62.8": a.head_contrast(layer, head),
            "peak error": analysis.peak_error(a.peaks(layer, head), hm.PERIOD_63),
            "contrast 31.4": float(lags.period_contrast(prof[layer, head], p31, spp)),
            "lowest held-out contrast": min(float(lags.period_contrast(prof[layer, head], p, spp)) for p in held_periods),
            "top-3 mean r": float(np.nanmean([corr[i, j] for i in idx for j in idx if i < j])),
            "rollout contrast": float(lags.period_contrast(roll, hm.PERIOD_63, spp)),
        }
    return out


_GATE, _GATE_SEP = "the model does not meet its forecast bar on this seed", "; "


def gate_on_bar(found: Sequence[Finding], bar: Finding, keys: Sequence[str] = ATTENTION_KEYS) -> list[Finding]:
    """``found`` with every finding of ``keys`` made inconclusive when ``bar`` (the seed's forecast-bar finding,
    :func:`attnbook.vitime.forecasting.bar_finding`) is not supported: the attention findings are about a
    forecaster, and this seed's model is not one by the profile's bar. Values are kept; the reason says why."""
    if not isinstance(bar, Finding):
        raise bad_argument(InvalidInputError, "bar", "the seed's forecast-bar Finding", type(bar).__name__, raw=True)
    if bar.verdict == "supported":
        return list(found)
    name = bar.spec.key.removeprefix(_C)
    reason = f"{_GATE} ({name}: {bar.verdict})"
    return [dataclasses.replace(f, inconclusive=f"{reason}{_GATE_SEP}{f.inconclusive}" if f.inconclusive else reason)
            if f.spec.key in keys else f for f in found]


# -- training to the forecast bar (full profile) ---------------------------------------------------------------

@dataclass(frozen=True)
class BarTraining:
    """Train until the forecast bar is met: a ``ladder`` of step budgets (increasing; each a complete pretraining
    with its own cosine schedule, cached), tried in order until the model meets every bar of the profile on a
    tuning draw of held-out series (``tuning_seed``, not the test set's); the last budget is the maximum. Done
    for each of ``presets`` (the chapter's own first: the one its settings were tuned on)."""

    ladder: tuple[int, ...]
    presets: tuple[str, ...] = ("strip", "grid4")
    tuning_seed: int = 777
    tuning_n: int = 64

    def __post_init__(self) -> None:
        if not self.ladder or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in self.ladder) \
                or list(self.ladder) != sorted(set(self.ladder)):
            raise bad_argument(InvalidInputError, "ladder", "increasing positive step counts", self.ladder)
        if not self.presets or len(set(self.presets)) != len(self.presets):
            raise bad_argument(InvalidInputError, "presets", "distinct preset names", self.presets)
        for p in self.presets:
            checks.choice("presets", p, PRESETS)
        checks.integer("tuning_seed", self.tuning_seed, minimum=0)
        checks.positive_int("tuning_n", self.tuning_n)


def bar_met(model, tuning, mapping, profile: str) -> tuple[bool, dict[str, float]]:
    """Whether ``model`` meets every forecast bar of ``profile`` on the series of ``tuning`` (a
    :class:`~attnbook.vitime.forecasting.HeldOutConfig`): ``(met, {bar: ratio})``."""
    from . import forecasting

    series, _ = forecasting.held_out_series(tuning)
    h = mapping.history_len
    errs = forecasting.errors({**forecasting.model_forecasts(model, series, mapping), **forecasting.baseline_forecasts(series, h)},
                              series[:, h:])
    bars = forecasting.bar_verdicts(errs, profile)
    return all(b["holds"] for b in bars), {b["bar"]: float(b["ratio"]) for b in bars}


def train_to_bar(settings, data, seed: int, bar_training: BarTraining, *, profile: str, preset: str | None = None,
                 curve=None) -> tuple[Any, dict]:
    """Pretrain seed ``seed`` with ``settings`` (its ``preset`` replaced by ``preset``) on each budget of
    ``bar_training.ladder`` in turn until the model meets ``profile``'s forecast bar on the tuning series
    (:func:`bar_met`), or the ladder ends. ``curve`` as in :func:`attnbook.vitime.experiment.pretrained`
    (the chapter's, so that its analysis finds the same cache entry). Returns ``(settings at the budget
    reached, record)``; the record has ``preset``, ``seed``, ``steps``, ``met``, ``max_reached`` (the last
    budget without meeting the bar), ``tried`` ([{steps, met, ratios}])."""
    from .experiment import pretrained
    from .forecasting import HeldOutConfig

    if not isinstance(bar_training, BarTraining):
        raise bad_argument(InvalidInputError, "bar_training", "a BarTraining", type(bar_training).__name__, raw=True)
    preset = settings.preset if preset is None else checks.choice("preset", preset, PRESETS)
    tuning = HeldOutConfig(n=bar_training.tuning_n, seed=bar_training.tuning_seed)
    tried = []
    s = settings
    for steps in bar_training.ladder:
        warmup = min(settings.train.warmup, steps - 1)
        s = dataclasses.replace(settings, preset=preset, to_bar=None, train=dataclasses.replace(settings.train, steps=steps, warmup=warmup))
        model, _, _ = pretrained(s, data, seed, curve=curve, progress=False)
        met, ratios = bar_met(model, tuning, s.mapping, profile)
        tried.append({"steps": steps, "met": met, "ratios": ratios})
        if met:
            break
    last = tried[-1]
    return s, {"preset": preset, "seed": seed, "steps": last["steps"], "met": last["met"],
               "max_reached": not last["met"], "tried": tried}


def _per_seed(found: AcrossSeeds | Sequence[Finding]) -> tuple[str, str]:
    if isinstance(found, AcrossSeeds):
        return found.verdict, "".join(v[0].upper() for v in found.per_seed)
    verdicts = [f.verdict for f in found]
    return ("supported" if all(v == "supported" for v in verdicts) else "seed-dependent" if "supported" in verdicts else
            "inconclusive" if "inconclusive" in verdicts else "not supported"), "".join(v[0].upper() for v in verdicts)


def preset_comparison(verdicts: Mapping[str, Sequence[AcrossSeeds]], records: Mapping[str, Sequence[Mapping]], tuned: str) -> pd.DataFrame:
    """The layout presets compared at the same forecast bar: one row per finding, per preset its verdict across
    seeds and per-seed letters, and a ``note`` saying where a finding holds only on the preset it was tuned on
    (``tuned``) or only on another; the last row, ``steps to bar``, gives each preset's budgets per seed (``max``
    marks a seed that reached the ladder's end without meeting the bar). ``verdicts`` ``{preset: across-seeds
    findings}``; ``records`` ``{preset: train_to_bar records}``."""
    if tuned not in verdicts or len(verdicts) < 2 or set(verdicts) != set(records):
        raise bad_argument(InvalidInputError, "verdicts, records", f"two or more presets, {tuned!r} among them, the same in both",
                           (sorted(verdicts), sorted(records)), raw=True)
    by = {p: {a.spec.key: a for a in fs} for p, fs in verdicts.items()}
    keys = list(dict.fromkeys(k for p in verdicts for k in by[p]))
    rows = []
    for k in keys:
        row = {"finding": k.removeprefix(_C)}
        held = {}
        for p in verdicts:
            if k in by[p]:
                v, letters = _per_seed(by[p][k])
                row[p] = f"{v} ({letters})"
                held[p] = v == "supported"
            else:
                row[p] = "—"
        others = [p for p in held if p != tuned]
        if held.get(tuned) and not any(held[p] for p in others):
            note = f"holds only on {tuned}, the preset it was tuned on"
        elif not held.get(tuned) and any(held[p] for p in others):
            note = "holds only on " + ", ".join(p for p in others if held[p])
        elif held and all(held.values()):
            note = "holds on every preset"
        else:
            note = "holds on no preset"
        row["note"] = note
        rows.append(row)
    rows.append({"finding": "steps to bar", **{p: ", ".join(f"{r['steps']}{' (max)' if r['max_reached'] else ''}" for r in records[p])
                                               for p in verdicts}, "note": "per seed; (max): the ladder's end, bar not met"})
    return pd.DataFrame(rows).set_index("finding")


def rule_table(found_by_seed: Mapping[int, Sequence[Finding]], keys: Sequence[str] = ATTENTION_KEYS) -> pd.DataFrame:
    """What the rule says on the values alone, before the forecaster gate: per finding of ``keys`` (rows) and seed
    (columns), ``"model passes, control fails"``-style text from each :class:`~attnbook.claims.Finding`'s
    ``model_passes`` and ``control_passes``, and the verdict those two would give (S or N; I for a value that is
    not finite or a finding inconclusive for a reason of its own, such as an undetected positive control). A description of what the heads do, not a verdict: the verdict is the gated one."""
    if not isinstance(found_by_seed, Mapping) or not found_by_seed:
        raise bad_argument(InvalidInputError, "found_by_seed", "a non-empty mapping {seed: findings}", found_by_seed)
    rows = {}
    for k in keys:
        row = {}
        for s, found in found_by_seed.items():
            f = next((x for x in found if x.spec.key == k), None)
            if f is None:
                continue
            values = [*f.measured.values(), *f.control.values()]
            own = f.inconclusive.partition(_GATE_SEP)[2] if f.inconclusive.startswith(_GATE) else f.inconclusive  # its own reason
            letter = ("I" if own or not all(math.isfinite(v) for v in values) else
                      "S" if f.model_passes and not f.control_passes else "N")
            row[f"seed {s}"] = (f"{letter} (model {'passes' if f.model_passes else 'fails'}, "
                                f"control {'passes' if f.control_passes else 'fails'})")
        if row:
            rows[k.removeprefix(_C)] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("finding")
