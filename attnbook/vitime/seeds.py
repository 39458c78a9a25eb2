"""Chapter 3 over training seeds: each seed's pretraining as a :class:`attnbook.runs.Run`, and everything
the chapter measures on one seed's model (:func:`analyse_seed`, a :class:`SeedResult`).

A seed draws the initial weights and the pretraining batches. What the model is evaluated on is the
same for every seed: the experiments' signals and the held-out probes (deterministic), the 64-series
forecast test (:class:`~attnbook.vitime.forecasting.HeldOutConfig`'s own seed), pretraining's validation
series (:data:`~attnbook.vitime.experiment.VALIDATION_SEED`, also the reference of the mean ablations),
the causal section's two splits of paired series (:func:`attnbook.vitime.analysis.causal_data`), the
linear forecaster and the average image (:class:`Fixed`, built once).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import runs
from ..claims import Check, Finding
from ..errors import InvalidInputError, bad_argument
from ..train import History
from . import analysis, controls, diagnosis, forecasting, harmonics as hm, lags, realts
from .experiment import VALIDATION_SEED, Settings, pretrained, pretraining_entry
from .model import ViTime
from .weights import load_official, save_official

__all__ = ["CHAPTER", "LINEAR_SEED", "AVERAGE_SEED", "bar_settings", "train_pretrained", "pretraining_run", "pretraining_runs", "execute_and_analyse",
           "Fixed", "fixed", "SeedResult", "analyse_seed", "seed_checks", "per_seed_text", "verdict_text", "verdicts_sentence"]

CHAPTER = "vitime-harmonics"
#: the linear forecaster's fit and the average image: drawn once, the same baselines for every seed
LINEAR_SEED, AVERAGE_SEED = 20_000, 30_000


def bar_settings(settings: Settings, data: realts.RealTSConfig, seeds: Sequence[int], *, profile: str, preset: str | None = None,
                 curve: forecasting.HeldOutConfig | None = None) -> tuple[dict[int, Settings], list[dict] | None]:
    """Each seed's settings: ``settings`` itself when it does not train to the bar (``settings.to_bar`` None: the
    quick profile), else the budget at which seed's model of ``preset`` (default the chapter's) meets the
    forecast bar (:func:`attnbook.vitime.controls.train_to_bar`, in this process, cached). Returns
    ``({seed: settings}, records or None)``."""
    if settings.to_bar is None:
        return {s: (settings if preset is None else dataclasses.replace(settings, preset=preset, to_bar=None)) for s in seeds}, None
    out, records = {}, []
    for s in seeds:
        out[s], record = controls.train_to_bar(settings, data, s, settings.to_bar, profile=profile, preset=preset, curve=curve)
        records.append(record)
    return out, records


def train_pretrained(settings: Settings, data: realts.RealTSConfig, seed: int, curve: forecasting.HeldOutConfig | None) -> None:
    """A run's task: pretrain (or load) the model of ``seed`` (:func:`attnbook.vitime.experiment.pretrained`)."""
    pretrained(settings, data, seed, curve=curve, progress=False)


def pretraining_run(settings: Settings, data: realts.RealTSConfig, seed: int, curve: forecasting.HeldOutConfig | None = None) -> runs.Run:
    """The pretraining of ``seed`` as a run (one torch thread)."""
    return runs.Run(CHAPTER, f"pretraining seed {seed}", seed, train_pretrained, (settings, data, seed, curve),
                    entries=(pretraining_entry(settings, data, seed, curve=curve),))


def pretraining_runs(settings: Settings, data: realts.RealTSConfig, seeds: Sequence[int],
                     curve: forecasting.HeldOutConfig | None = None) -> list[runs.Run]:
    """One :func:`pretraining_run` per seed, in order."""
    return [pretraining_run(settings, data, s, curve) for s in seeds]


def execute_and_analyse(run_list: Sequence[runs.Run], analyse: Callable[[int, Any], Any], *, prepare: Callable[[], Any] | None = None,
                        desc: str | None = None, poll: float = 0.2) -> tuple[list[runs.RunTiming], Any, dict[int, Any]]:
    """:func:`attnbook.runs.execute` ``run_list`` (one call, one progress bar) and, while it runs, in this
    process: ``prepare()`` once, then ``analyse(seed, prepared)`` for each run as soon as its cache entries are
    complete (runs that are cached at once first), so that the analysis of finished seeds overlaps the
    training of the others. Returns the timings, ``prepared`` and ``{seed: analyse(seed, prepared)}`` in ``run_list``'s order.
    A run that fails raises its :class:`~attnbook.runs.RunFailedError` here."""
    run_list = list(run_list)
    if len({r.seed for r in run_list}) != len(run_list):
        raise bad_argument(InvalidInputError, "run_list", "one run per seed", [r.name for r in run_list], raw=True)
    if runs.use_ray() and not all(r.cached for r in run_list):
        runs.connect()  # in this thread: the executor's thread only submits and waits
    outcome: dict[str, Any] = {}
    done: dict[int, Any] = {}

    def work() -> None:
        try:
            outcome["timings"] = runs.execute(run_list, desc=desc)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=work, name="runs.execute", daemon=True)
    worker.start()
    try:
        prepared = prepare() if prepare is not None else None
        while len(done) < len(run_list):
            ready = [r for r in run_list if r.seed not in done and r.cached]
            if not ready:
                if "error" in outcome:
                    raise outcome["error"]
                if not worker.is_alive() and "timings" in outcome:
                    missing = [r.name for r in run_list if r.seed not in done and not r.cached]
                    raise RuntimeError(f"runs.execute finished but left {missing} without cache entries")
                time.sleep(poll)
                continue
            run = ready[0]
            done[run.seed] = analyse(run.seed, prepared)
    finally:
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["timings"], prepared, {r.seed: done[r.seed] for r in run_list}


@dataclass(frozen=True)
class Fixed:
    """What every seed is evaluated on, built once: the held-out test (``test_x``, ``test_records``), its
    baselines' forecasts (``baselines``, the linear forecaster ``linear`` among them), the validation
    series as images (``val_x``, ``val_rows``), the average image, the causal section's inputs
    (``causal``: its selection and test splits of paired series; ``reference``: the validation series), and the
    one-batch diagnosis (``overfit_trace``: a fresh network fitted to one batch of 8, drawn from ``overfit_seed``)."""

    test_set: forecasting.HeldOutConfig
    test_x: np.ndarray
    test_records: list
    linear: Any
    baselines: dict
    val_x: torch.Tensor
    val_rows: torch.Tensor
    average: torch.Tensor
    causal: analysis.CausalData
    reference: torch.Tensor
    overfit_trace: list
    overfit_seed: int


def fixed(settings: Settings, data: realts.RealTSConfig, test_set: forecasting.HeldOutConfig, horizon: int = 720, *,
          overfit_seed: int = 0, overfit_steps: int = 120) -> Fixed:
    """The evaluation data of every seed and the one-batch diagnosis (:class:`Fixed`)."""
    mapping = settings.mapping
    test_x, test_records = forecasting.held_out_series(test_set)
    linear = forecasting.fit_linear(data, 512, seed=LINEAR_SEED)
    val_x, val_rows = realts.batch_images(realts.generate(settings.val_size, data, seed=VALIDATION_SEED), mapping)
    return Fixed(test_set, test_x, test_records, linear, forecasting.baseline_forecasts(test_x, 512, linear), val_x, val_rows,
                 diagnosis.average_image(data, mapping, n=2000, seed=AVERAGE_SEED),
                 analysis.causal_data(settings.causal.selection_pairs, settings.causal.test_pairs, mapping, noise=settings.causal.noise,
                                      horizon=horizon),
                 analysis.reference_images(data, mapping, settings.val_size, seed=VALIDATION_SEED),
                 diagnosis.overfit_batch(settings.model, mapping, data, batch=8, steps=overfit_steps, seed=overfit_seed)[1], overfit_seed)


@dataclass
class SeedResult:
    """Everything the chapter measures on one seed's pretrained model (the names of the chapter's cells)."""

    seed: int
    model: ViTime
    untrained: ViTime
    history: History
    exp1: Any
    exp2: Any
    rand1: Any
    held: dict
    corr: np.ndarray
    top_corr: float
    all_corr: float
    roll: Any
    roll_profile: Any
    roll_contrast: float
    roll_random: float
    scores: pd.DataFrame
    test_errors: dict
    forecast_table: pd.DataFrame
    bars: pd.DataFrame
    parts: dict
    round_trip: float
    shuffle_diff: float
    causal: analysis.CausalSection
    found: list[Finding]
    #: issue 31: every lag-peak measure on each aperiodic input ({input: {measure: value}}, controls.aperiodic_measures)
    aperiodic: dict = dataclasses.field(default_factory=dict)
    #: issue 31: whether this seed's model meets its forecast bar (its attention findings are inconclusive otherwise)
    bar_met: bool = False

    @property
    def best(self) -> dict:
        return self.exp1.best

    @property
    def L(self) -> int:  # noqa: N802 - the chapter's name
        return int(self.best["layer"])

    @property
    def H(self) -> int:  # noqa: N802
        return int(self.best["head"])

    @property
    def held_contrasts(self) -> dict[str, float]:
        return {n: a.head_contrast(self.L, self.H) for n, a in self.held.items()}

    @property
    def p31_contrast(self) -> float:
        """The best head's contrast at 31.4 samples (``sin(n/5)``) on experiment 2."""
        return float(lags.period_contrast(self.exp2.profiles[self.L, self.H], hm.EXPERIMENTS[2][0].period, self.exp2.mapped.samples_per_patch))

    @property
    def error_ratio(self) -> float:
        """The model's (expectation) mean MSE on the held-out test ÷ the history mean's."""
        return float(self.forecast_table.loc["model (expectation)", "÷ history mean"])


def analyse_seed(settings: Settings, data: realts.RealTSConfig, seed: int, fix: Fixed, *, profile: str, horizon: int = 720,
                 progress: bool = False) -> SeedResult:
    """Load seed ``seed``'s pretrained model (its run must have finished) and measure everything the
    chapter reports on it: the harmonic experiments and their controls, profile agreement and rollout,
    forecasts (the examples and the held-out test against ``fix``'s baselines), the loss split, the
    official-format round trip, the causal section (:func:`attnbook.vitime.analysis.causal_section`), and
    the seed's findings."""
    config, mapping = settings.model, settings.mapping
    model, history, _ = pretrained(settings, data, seed, curve=fix.test_set, progress=False)
    torch.manual_seed(seed)
    untrained = ViTime(config).eval()  # the same initial weights, before pretraining
    x1, x2 = hm.signal(hm.EXPERIMENTS[1]), hm.signal(hm.EXPERIMENTS[2])
    exp1, exp2 = hm.analyse(model, x1, horizon), hm.analyse(model, x2, horizon)
    best = exp1.best
    L, H = best["layer"], best["head"]
    spp = exp1.mapped.samples_per_patch
    rand1 = hm.analyse(untrained, x1, horizon)
    held = {name: hm.analyse(model, hm.signal(h), horizon, period=h[0].period) for name, h in hm.HELD_OUT.items()}
    # agreement of the top heads, and rollout
    corr = lags.profile_correlation(exp1.profiles)
    top_corr, all_corr = analysis.top_head_agreement(corr, exp1.ranking, exp1.maps.n_heads)
    roll = lags.rollout_time_attention(exp1.maps, config.grid_h, config.grid_w)
    roll_profile = lags.lag_profiles(roll)[0, 0]
    roll_contrast = float(lags.period_contrast(roll_profile, hm.PERIOD_63, spp))
    roll_random = float(lags.period_contrast(lags.lag_profiles(lags.rollout_time_attention(rand1.maps, config.grid_h, config.grid_w))[0, 0],
                                             hm.PERIOD_63, spp))
    # forecasts: the examples, then the held-out test
    forecast_inputs = {"experiment 1": hm.EXPERIMENTS[1], "experiment 2": hm.EXPERIMENTS[2],
                       **{f"held out {k}": v for k, v in hm.HELD_OUT.items()}, "held out mixture 57.5+41.3": hm.HELD_OUT_MIXTURE}
    scores = pd.DataFrame({name: hm.forecast_scores(model, h, horizon=horizon) for name, h in forecast_inputs.items()}).T
    blank = dataclasses.replace(mapping, future_fill="blank")  # the same model, its draft taken away
    test_forecasts = {**forecasting.model_forecasts(model, fix.test_x, mapping, temperatures=(0.5, 2.0)),
                      "model (expectation), blank future": forecasting.model_forecasts(model, fix.test_x, blank)["model (expectation)"],
                      **fix.baselines}
    test_errors = forecasting.errors(test_forecasts, fix.test_x[:, 512:])
    forecast_table = forecasting.forecast_table(test_errors)
    bars = pd.DataFrame(forecasting.bar_verdicts(test_errors, profile)).set_index("bar")
    # the loss split on the validation series
    n = len(fix.val_x)
    with torch.no_grad():
        parts = {"average image (ignores the history)": diagnosis.loss_parts(fix.average[None, None].expand(n, 1, -1, -1), fix.val_rows, mapping),
                 "random init": diagnosis.loss_parts(untrained.logits(fix.val_x), fix.val_rows, mapping),
                 "pretrained": diagnosis.loss_parts(model.logits(fix.val_x), fix.val_rows, mapping)}
    # the official checkpoint format and the shuffled encoder
    image = torch.as_tensor(exp1.mapped.image, dtype=torch.float32)[None, None]
    with tempfile.TemporaryDirectory() as tmp:
        path = save_official(model, None, Path(tmp) / "ViTime_Model.pth")
        reloaded = load_official(path)
        shuffled = load_official(path, token_order="shuffle", seed=seed)
    with torch.no_grad():
        round_trip = float((model(image) - reloaded(image)).abs().max())
    shuffle_diff = float((hm.analyse(shuffled, x1, horizon).contrast - exp1.contrast).abs().max())
    # do the period heads matter for the harmonic? (paired series, held-out selection, layer-matched null, positive control)
    causal = analysis.causal_section(model, fix.reference, fix.causal, heads=settings.causal.heads, max_draws=settings.causal.max_draws,
                                     seed=seed, profile=profile, progress=progress)
    # the seed's findings; the lag-peak findings' control: the same measures on aperiodic inputs (issue 31)
    p31 = hm.EXPERIMENTS[2][0].period
    held_contrasts = {n_: a.head_contrast(L, H) for n_, a in held.items()}
    aperiodic = controls.aperiodic_measures(model, L, H, [(r["layer"], r["head"]) for r in exp1.ranking[:3]],
                                            held_periods=[h[0].period for h in hm.HELD_OUT.values()], horizon=horizon)
    found = analysis.attention_findings(
        best_contrast=best["contrast"], peak_err=analysis.peak_error(exp1.peaks(L, H), hm.PERIOD_63),
        exp2_contrast=exp2.head_contrast(L, H), exp2_contrast_p31=float(lags.period_contrast(exp2.profiles[L, H], p31, spp)),
        held_contrasts=held_contrasts, top_corr=top_corr, rollout_contrast=roll_contrast, aperiodic=aperiodic, all_corr=all_corr,
        random_best_contrast=rand1.best["contrast"])
    found += analysis.forecast_findings(scores)
    bar = forecasting.bar_finding(test_errors, profile)
    found.append(bar)
    found += causal.family.findings()
    found = controls.gate_on_bar(found, bar)  # the attention findings are read on a model that meets its forecast bar (issue 31)
    return SeedResult(seed, model, untrained, history, exp1, exp2, rand1, held, corr, top_corr, all_corr, roll, roll_profile, roll_contrast,
                      roll_random, scores, test_errors, forecast_table, bars, parts, round_trip, shuffle_diff, causal, found, aperiodic,
                      bar.verdict == "supported")


def seed_checks(results: Sequence[SeedResult]) -> list[Check]:
    """The chapter's checks (:func:`attnbook.vitime.analysis.chapter_checks`) over every seed: each
    holds only if it holds on every seed's model (the worst seed's value is the one checked), the
    model's held-out forecast error below the history mean's among them."""
    results = list(results)
    return analysis.chapter_checks(max(r.history.best_val / r.history.val_loss[0] for r in results),
                                   np.concatenate([np.asarray(r.rand1.contrast, dtype=np.float64).ravel() for r in results]),
                                   max(r.round_trip for r in results), max(r.shuffle_diff for r in results),
                                   forecast_ratio=max(r.error_ratio for r in results))


def per_seed_text(values: dict[int, Any], form: Callable[[Any], str] | None = None) -> str:
    """``"4.1 (seed 0), 1.5 (seed 1), …"``: one value per seed, for the prose."""
    from ..claims import fmt

    form = fmt if form is None else form
    return ", ".join(f"{form(v)} (seed {s})" for s, v in values.items())


_LETTERS = {"supported": "S", "not supported": "N", "inconclusive": "I"}


def verdict_text(finding: Any) -> str:
    """An :class:`~attnbook.claims.AcrossSeeds` finding's verdict for the prose: ``"**seed-dependent** (S N S on seeds 0, 1, 2)"``."""
    letters = " ".join(_LETTERS[v] for v in finding.per_seed)
    return f"**{finding.verdict}** ({letters} on seeds {', '.join(map(str, finding.seeds))})"


def verdicts_sentence(found: Sequence[Any], keys: Sequence[str]) -> str:
    """``"<statement>: **verdict** (S N S on seeds …); …"`` for the findings ``keys`` (registry keys) of ``found``."""
    by_key = {f.spec.key: f for f in found}
    return "; ".join(f"{by_key[k].spec.statement}: {verdict_text(by_key[k])}" for k in keys)
