"""Does the forecaster use the heads its attention singles out? One test pooled over the nine processes.

Each training seed has nine forecasters (one per process), each with 2 layers × 4 heads. In each
process (a **stratum**) the attention-chosen heads (:func:`attention_chosen_heads`: the most
recency-heavy and the most period-peaked head, read on the chapter's validation windows) are
mean-ablated together and tested against **every other head set with as many heads in each layer**
(the layer-matched null: 4, 6 or 16 sets, an exact test) with
:func:`~attnbook.intervene.head_set_test`. The test data are **fresh series** (:func:`fresh_series`):
``n_series`` independent series per process from the evaluation seeds ``EVAL_SEED + i`` (never the
training data's seed), each cut into non-overlapping windows; the unit is a series, its damage the
forecast MSE rise averaged over its windows. No single stratum can decide (its smallest reachable
p is 1/4 to 1/16), so the verdict is **one test pooled over the nine processes**
(:func:`~attnbook.intervene.pooled_test`, the combined rank test: ``S = Σ_s k_s / N_s`` of the chosen
sets' exact ranks, ``p = P(S_null ≤ S)``), per training seed, Holm-adjusted within the chapter's causal
family (:func:`attnbook.registry.causal_family`), then across seeds by the book's conjunction rule.

The **positive control** is pooled the same way: in each process the ``k`` heads whose single-head
mean ablation raised the MSE most on **selection series** (other fresh series, from the seeds
``SELECT_SEED + i``; ``k`` the size of that process's chosen set), tested on the fresh test series. :class:`PooledFamily` builds each seed's findings with the semantics
of :class:`attnbook.intervene.CausalFamily` (which expects one test per finding)::

    p̃ = Holm(pooled p_1 … pooled p_m)        (the positive control excluded)
    supported        p̃ < α and the mean over strata of (effect − null mean) > 0
    inconclusive     the pooled test cannot reach α / m (smallest reachable p = Π 1 / N_s stated), or the
                     positive control's pooled p ≥ α / m (the test is not shown to detect heads that matter)
    not supported    otherwise

The control of the finding is a median member of each stratum's null, ranked among the other members
of that null and pooled the same way (its p is about 0.5). The per-process effects and intervals are
shown descriptively, not as verdicts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import checks, metrics, stats
from ..claims import Finding, fmt
from ..errors import InvalidInputError, bad_argument
from ..intervene import HeadSetTest, head_effects, head_means, head_set_test, pooled_test, strongest_heads
from .data import make
from ..train import model_device
from .experiment import GeneratorRun, Settings
from .windows import normalise, windows

__all__ = ["EVAL_SEED", "SELECT_SEED", "FINDING", "SELECTION", "TEST_SPLIT", "FreshSeries", "fresh_series", "series_mse", "attention_chosen_heads",
           "TEXTS", "Stratum", "generator_tests", "PooledFamily", "CausalSection", "causal_section", "pooled_over_seeds", "verdict_frame",
           "strata_frame"]

#: the first evaluation seed: fresh test series ``i`` of every process is generated from ``EVAL_SEED + i``
#: (the training and validation data come from :data:`~attnbook.timeseries.experiment.DATA_SEED`, 0)
EVAL_SEED = 10_000
#: the first selection seed: the positive control's heads are chosen on series ``SELECT_SEED + i``
SELECT_SEED = 20_000

#: the chapter's causal finding (its family: :func:`attnbook.registry.causal_family`)
FINDING = "distribution-effects/chosen-heads-used"

#: where the heads are chosen, and where they are tested (the tables say both)
SELECTION = ("attention picks: the chapter's recorded validation windows (last 20 % of the data-seed-0 series); positive control: "
             "single-head effects on selection series from seeds 20000 + i")
#: what each test's heads are, for the records
TEXTS = {FINDING: "the attention-picked recency and period heads",
         "positive control": "the heads whose single ablation hurt most on the selection series"}
TEST_SPLIT = "fresh series from seeds 10000 + i (per process, one damage value per series: the mean over its non-overlapping windows)"


@dataclass(frozen=True)
class FreshSeries:
    """Normalised non-overlapping windows ``x`` (inputs) and ``y`` (targets) of ``n_series`` fresh
    series of one process, ``per_series`` windows each, series-major (series ``i``'s windows are rows
    ``i · per_series … (i + 1) · per_series − 1``); ``seeds`` the series' generation seeds."""

    generator: str
    x: torch.Tensor
    y: torch.Tensor
    per_series: int
    seeds: tuple[int, ...]

    @property
    def n_series(self) -> int:
        return len(self.seeds)


def fresh_series(generator: str, n_series: int, per_series: int, input_len: int = 100, horizon: int = 20, *,
                 seed: int = EVAL_SEED) -> FreshSeries:
    """``n_series`` independent series of ``generator`` (its default parameters), series ``i`` from
    generation seed ``seed + i`` and ``per_series · (input_len + horizon)`` steps long (at least the
    generators' 200), cut into ``per_series`` non-overlapping windows (stride ``input_len + horizon``),
    each normalised by its input's mean and standard deviation as in training."""
    n_series = checks.positive_int("n_series", n_series)
    per_series = checks.positive_int("per_series", per_series)
    seed = checks.integer("seed", seed, minimum=1)  # 0 is the training data's seed
    total = input_len + horizon
    length = max(per_series * total, 200)
    xs, ys = [], []
    for i in range(n_series):
        values = make(generator).generate(length, seed + i).values
        inputs, targets, _ = windows(values, input_len, horizon, stride=total)
        x, y, _, _ = normalise(inputs[:per_series], targets[:per_series])
        xs.append(x)
        ys.append(y)
    as_tensor = lambda a: torch.tensor(np.concatenate(a), dtype=torch.float32)  # noqa: E731
    return FreshSeries(generator, as_tensor(xs), as_tensor(ys), per_series, tuple(range(seed, seed + n_series)))


def series_mse(model: torch.nn.Module, fresh: FreshSeries) -> torch.Tensor:
    """The forecast MSE of each fresh series (mean over its windows and horizon): ``(n_series,)``,
    one value per independent unit."""
    model.eval()
    with torch.no_grad():
        err = (model(fresh.x.to(model_device(model))).cpu() - fresh.y) ** 2
    return err.reshape(fresh.n_series, fresh.per_series * fresh.y.shape[1]).mean(1).double()


def attention_chosen_heads(run: GeneratorRun) -> dict[str, tuple[int, int]]:
    """The heads attention points to in ``run``'s forecaster, read on its recorded validation windows
    (the selection split): the most recency-heavy (largest :func:`~attnbook.metrics.recency_ratio`,
    window mean) and the most period-peaked (:func:`~attnbook.timeseries.analysis.lag_peak`), as (layer, head)."""
    from .analysis import lag_peak

    recency = metrics.recency_ratio(run.maps).nanmean(1)  # (L, H)
    layer, head = divmod(int(recency.argmax()), run.maps.n_heads)
    peak = lag_peak(run.maps)
    return {"recency": (layer, head), "period": (peak["layer"], peak["head"])}


@dataclass(frozen=True)
class Stratum:
    """One process's tests on one seed: the attention-chosen heads' (``chosen``, with the picks'
    roles in ``picks``) and the positive control's (``control``), both on the fresh series."""

    generator: str
    picks: dict[str, tuple[int, int]]
    chosen: HeadSetTest
    control: HeadSetTest
    forwards: int


def _counted(metric: Callable[[torch.nn.Module], Any], counter: list[int]) -> Callable[[torch.nn.Module], Any]:
    def wrapped(model):
        counter[0] += 1
        return metric(model)

    return wrapped


def generator_tests(run: GeneratorRun, fresh: FreshSeries, selection: FreshSeries, *, family: int = 1, max_draws: int | None = None,
                    seed: int = 0, reference_windows: int = 256, resamples: int = 2000) -> Stratum:
    """One process's stratum: the attention-chosen heads (one head when both picks coincide) and the
    positive control (the ``k`` heads of largest single-head effect on the ``selection`` series' MSE,
    ``k`` as many as chosen), each mean-ablated (each head's output replaced by its mean over the first
    ``reference_windows`` training windows) and tested on ``fresh`` against its layer-matched null
    (every other set with as many heads per layer; no fallback: the pooled test decides)."""
    picks = attention_chosen_heads(run)
    heads = sorted(set(picks.values()))
    means = head_means(run.model, run.data.x_train[:reference_windows])
    calls = [0]
    metric = _counted(lambda m: series_mse(m, fresh), calls)
    select = _counted(lambda m: float(series_mse(m, selection).mean()), calls)
    top = strongest_heads(head_effects(run.model, select, how="mean", reference=means), len(heads))
    test = lambda hs: head_set_test(run.model, metric, hs, null="layer-matched", fallback=False, family=family,  # noqa: E731
                                    max_draws=max_draws, seed=seed, how="mean", reference=means, resamples=resamples)
    return Stratum(run.name, picks, test(heads), test(top), calls[0])


def _pooled_median_p(tests: Sequence[HeadSetTest]) -> float:
    """The pooled p of a median member of each stratum's null, ranked among the other members of that
    null (the finding's control)."""
    ks, ns = [], []
    for t in tests:
        n = t.result.draws
        ks.append(max(1, round(t.null_median_p * n)))
        ns.append(n)
    return stats.combined_rank_test(ks, ns)[0]


@dataclass(frozen=True)
class PooledFamily:
    """One seed's causal family, each finding one test pooled over strata: ``tests`` (finding key →
    {process: :class:`HeadSetTest`}), the positive ``control`` ({process: HeadSetTest}, pooled the
    same way, not in the family); the semantics of :class:`attnbook.intervene.CausalFamily` (module docstring)."""

    tests: Mapping[str, Mapping[str, HeadSetTest]]
    control: Mapping[str, HeadSetTest]
    selection: str = SELECTION
    test_split: str = TEST_SPLIT
    alpha: float = stats.ALPHA

    def __post_init__(self) -> None:
        if not self.tests or not all(s and all(isinstance(t, HeadSetTest) and t.result.exact for t in s.values())
                                     for s in (*self.tests.values(), self.control)):
            raise bad_argument(InvalidInputError, "tests", "one or more findings of exact HeadSetTests per stratum, and a control",
                               self.tests, raw=True)
        sizes = {t.family for s in self.tests.values() for t in s.values()} | {t.family for t in self.control.values()}
        if sizes != {len(self.tests)}:
            raise bad_argument(InvalidInputError, "tests", f"tests sized for a family of {len(self.tests)}", sorted(sizes), raw=True)

    @property
    def m(self) -> int:
        return len(self.tests)

    def pooled(self, key: str) -> tuple[float, float]:
        """``(p, smallest reachable p)`` of finding ``key`` pooled over its strata."""
        return pooled_test(list(self.tests[key].values()))

    @property
    def control_pooled(self) -> tuple[float, float]:
        return pooled_test(list(self.control.values()))

    @property
    def adjusted(self) -> dict[str, float]:
        """Holm-adjusted pooled p of each finding."""
        return dict(zip(self.tests, stats.holm([self.pooled(k)[0] for k in self.tests])))

    @property
    def control_detected(self) -> bool:
        p, smallest = self.control_pooled
        return smallest <= self.alpha / self.m + 1e-15 and p < self.alpha / self.m

    def effect(self, key: str) -> float:
        """The mean over strata of the chosen set's effect minus its null's mean."""
        return float(np.mean([t.effect - t.null_mean for t in self.tests[key].values()]))

    def median_p(self, key: str) -> float:
        """The finding's control: the pooled p of a median member of each stratum's null, ranked among
        the other members of that null (about 0.5)."""
        return _pooled_median_p(list(self.tests[key].values()))

    def inconclusive(self, key: str) -> str:
        p, smallest = self.pooled(key)
        if smallest > self.alpha / self.m + 1e-15:
            return f"smallest reachable p = {smallest:.3g} > α/m = {self.alpha / self.m:.3g}"
        if not self.control_detected:
            return f"the positive control was not detected (pooled p = {self.control_pooled[0]:.3g}, α/m = {self.alpha / self.m:.3g})"
        return ""

    def verdict(self, key: str) -> str:
        if self.inconclusive(key):
            return "inconclusive"
        return "supported" if self.adjusted[key] < self.alpha and self.effect(key) > 0 else "not supported"

    def findings(self) -> list[Finding]:
        """Each pooled test as its registered finding (:data:`attnbook.registry.CAUSAL_RULE`): measured the
        mean effect above the null's mean and the Holm-adjusted pooled p; control a median null member's."""
        from ..registry import CAUSAL, CAUSAL_P, spec

        out = []
        adjusted = self.adjusted
        for key, strata in self.tests.items():
            p, smallest = self.pooled(key)
            ranks = ", ".join(f"{g} {round(t.p * t.result.space)}/{t.result.space}" for g, t in strata.items())
            detail = (f"pooled over {len(strata)} processes (ranks {ranks}; layer-matched nulls, exact); mean effect − null mean "
                      f"{fmt(self.effect(key))}; pooled p = {p:.3g}, Holm p = {adjusted[key]:.3g}, smallest reachable p = {smallest:.3g}; "
                      f"positive control pooled p = {self.control_pooled[0]:.3g}")
            out.append(spec(key).result({CAUSAL: self.effect(key), CAUSAL_P: adjusted[key]},
                                        {CAUSAL: 0.0, CAUSAL_P: min(1.0, self.median_p(key) * self.m)},
                                        detail=detail, inconclusive=self.inconclusive(key)))
        return out

    def records(self, metric: str, seed: int, texts: Mapping[str, str] | None = None) -> list[dict]:
        """``summary.json`` ``causal`` records: each stratum's test (``role`` "stratum", descriptive) and
        each pooled test (``role`` "pooled", with the verdict), for the findings and the positive control."""
        texts = dict(texts or {})
        adjusted = self.adjusted
        out = []
        for key, strata, role_p, verdict, p_adj in [
                *[(k, s, self.pooled(k), self.verdict(k), adjusted[k]) for k, s in self.tests.items()],
                ("positive control", self.control, self.control_pooled, "detected" if self.control_detected else "not detected", None)]:
            name = texts.get(key, key)
            for g, t in strata.items():
                out.append({**t.record(f"seed {seed}, {g}: {name}", metric, role="stratum", selection=self.selection, test_split=self.test_split,
                                       verdict="— (a stratum of the pooled test)"), "key": key, "seed": seed, "stratum": g})
            p, smallest = role_p
            ts = list(strata.values())
            out.append({"finding": f"seed {seed}: {name}, pooled over {len(ts)} processes", "role": "pooled" if p_adj is not None else "positive control (pooled)",
                        "metric": metric, "heads": [f"{g}/{n}:{h}" for g, t in strata.items() for n, h in t.heads], "how": ts[0].how,
                        "null": "layer-matched (per process, exact); combined rank test", "effect": float(np.mean([t.effect for t in ts])),
                        "random_mean": float(np.mean([t.null_mean for t in ts])),
                        "percentile": float(np.mean([100.0 * np.mean(np.asarray(t.result.null) < t.effect) for t in ts])),
                        "interval": [None, None], "space": None, "detectable": None,  # per process only (the strata's records)
                        "p_value": p, "p_adjusted": p_adj, "smallest_p": smallest, "draws": sum(t.result.draws for t in ts),
                        "strata": len(ts), "selection": self.selection, "test_split": self.test_split, "family": self.m, "alpha": self.alpha,
                        "rule": f"Holm-adjusted pooled p < {self.alpha:g} (one-sided)", "verdict": verdict, "key": key, "seed": seed})
        return out


@dataclass(frozen=True)
class CausalSection:
    """One seed's causal section: its :class:`PooledFamily`, the strata (process → :class:`Stratum`)
    and its cost (``seconds``; ``forwards``: metric calls; ``draws``: null sets measured)."""

    family: PooledFamily
    strata: Mapping[str, Stratum]
    seconds: float
    forwards: int
    draws: int

    def cost(self, seed: int) -> dict:
        return {"seed": seed, "seconds": self.seconds, "forwards": self.forwards, "draws": self.draws}


def causal_section(one: Mapping[str, GeneratorRun], settings: Settings, *, draw_seed: int = 0, family: int | None = None,
                   fresh: Mapping[str, FreshSeries] | None = None, progress: bool = False) -> CausalSection:
    """Chapter 2's causal section for one training seed on its already trained forecasters (``one``:
    process → run): the fresh test series (``settings.eval_series`` × ``settings.eval_windows`` per
    process, or ``fresh``) and selection series (``settings.eval_series`` × ``settings.select_windows``
    from :data:`SELECT_SEED`), every process's stratum (:func:`generator_tests`, null draws capped at
    ``settings.causal_draws``; every space here is enumerated), and the pooled family of size ``family``
    (default: the chapter's :func:`~attnbook.registry.causal_family`). Timed: benchmarks call it as
    ``causal_section(seed_runs(load_runs(settings, seeds), i), settings)``. A section this code already
    computed for the same forecasters, settings, series and seeds is read back (:mod:`attnbook.memo`: the
    build's execution, read again by the tests')."""
    import hashlib
    from dataclasses import asdict

    from .. import memo
    from ..registry import causal_family

    family = len(causal_family(FINDING.split("/")[0])) if family is None else family
    digest = hashlib.sha256()
    for g, series in sorted((fresh or {}).items()):
        digest.update(g.encode() + series.x.numpy().tobytes() + series.y.numpy().tobytes() + repr(series.seeds).encode())
    config = {"runs": {g: run.config.to_dict() for g, run in sorted(one.items())}, "settings": asdict(settings), "draw_seed": draw_seed,
              "family": family, "fresh": digest.hexdigest() if fresh else None}
    return memo.cached("timeseries/causal-section", config, lambda: _causal_section(one, settings, draw_seed, family, fresh, progress))


def _causal_section(one: Mapping[str, GeneratorRun], settings: Settings, draw_seed: int, family: int,
                    fresh: Mapping[str, FreshSeries] | None, progress: bool) -> CausalSection:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    config = next(iter(one.values())).config.model
    strata = {}
    for g, run in tqdm(one.items(), desc="causal tests", disable=not progress):
        series = (fresh or {}).get(g) or fresh_series(g, settings.eval_series, settings.eval_windows, config.input_len, config.horizon)
        chooser = fresh_series(g, settings.eval_series, settings.select_windows, config.input_len, config.horizon, seed=SELECT_SEED)
        strata[g] = generator_tests(run, series, chooser, family=family, max_draws=settings.causal_draws, seed=draw_seed)
    pooled = PooledFamily({FINDING: {g: s.chosen for g, s in strata.items()}}, {g: s.control for g, s in strata.items()})
    draws = sum(s.chosen.result.draws + s.control.result.draws for s in strata.values())
    return CausalSection(pooled, strata, time.perf_counter() - start, sum(s.forwards for s in strata.values()), draws)


def _heads(t: HeadSetTest) -> str:
    return ", ".join(f"L{name.split('.')[-2] if name.count('.') >= 2 else name}H{h}" for name, h in t.heads)


def _ci(t: HeadSetTest) -> str:
    low, high = t.interval
    return f"{fmt(t.effect)} [{fmt(low)}, {fmt(high)}]" if np.isfinite(low) else fmt(t.effect)


def _rank(t: HeadSetTest) -> str:
    return f"{round(t.p * t.result.space)} of {t.result.space}"


def pooled_over_seeds(sections: Mapping[int, CausalSection], which: str = "chosen") -> tuple[float, float]:
    """``(p, smallest reachable p)`` of the attention-picked heads' (``which="chosen"``) or the positive
    control's (``"control"``) tests pooled over every process and seed (descriptive: the seeds share the
    fresh series, so their strata are not independent; the verdicts are per seed)."""
    checks.choice("which", which, ("chosen", "control"))
    return pooled_test([getattr(st, which) for sec in sections.values() for st in sec.strata.values()])


def verdict_frame(sections: Mapping[int, CausalSection]):
    """The verdicts, one row per seed and test (the attention-picked heads, the positive control), each
    pooled over the nine processes: strata, null, the mean effect − null mean, pooled p, Holm p,
    smallest reachable p, verdict, where the heads were chosen and tested; then the same pooled over
    processes × seeds (descriptive: the seeds share the fresh series, and the book's verdict is per seed)."""
    import pandas as pd

    rows = []
    for seed, sec in sections.items():
        fam = sec.family
        for key in fam.tests:
            p, smallest = fam.pooled(key)
            rows.append({"seed": str(seed), "test": "attention-picked heads", "strata": len(fam.tests[key]),
                         "null": "layer-matched per process (exact); combined rank", "effect − null mean": fmt(fam.effect(key)),
                         "pooled p": f"{p:.3g}", "Holm p": f"{fam.adjusted[key]:.3g}", "smallest p": f"{smallest:.3g}",
                         "verdict": fam.verdict(key) + (f" ({fam.inconclusive(key)})" if fam.inconclusive(key) else ""),
                         "chosen on": "validation windows (attention)", "tested on": "fresh series"})
        p, smallest = fam.control_pooled
        rows.append({"seed": str(seed), "test": "positive control", "strata": len(fam.control),
                     "null": "layer-matched per process (exact); combined rank",
                     "effect − null mean": fmt(float(np.mean([t.effect - t.null_mean for t in fam.control.values()]))),
                     "pooled p": f"{p:.3g}", "Holm p": "— (not in the family)", "smallest p": f"{smallest:.3g}",
                     "verdict": "detected" if fam.control_detected else "not detected",
                     "chosen on": "selection series (single-head effects)", "tested on": "fresh series"})
    for test, which in (("attention-picked heads", "chosen"), ("positive control", "control")):
        ts = [getattr(st, which) for sec in sections.values() for st in sec.strata.values()]
        p, smallest = pooled_over_seeds(sections, which)
        rows.append({"seed": "all (descriptive)", "test": test, "strata": len(ts), "null": "layer-matched per process (exact); combined rank",
                     "effect − null mean": fmt(float(np.mean([t.effect - t.null_mean for t in ts]))), "pooled p": f"{p:.3g}",
                     "Holm p": "—", "smallest p": f"{smallest:.3g}", "verdict": "— (seeds share the fresh series; verdicts are per seed)",
                     "chosen on": rows[0]["chosen on"] if which == "chosen" else rows[1]["chosen on"], "tested on": "fresh series"})
    return pd.DataFrame(rows).set_index(["seed", "test"])


def strata_frame(sections: Mapping[int, CausalSection]):
    """Per seed and process (descriptive, not verdicts): the attention-picked heads and the positive
    control's, each with its null (layer-matched: how many sets), effect [95 % bootstrap interval over
    the fresh series], the null's mean, the chosen set's rank in its null and its exact p, and the
    detectable effect."""
    import pandas as pd

    rows = []
    for seed, sec in sections.items():
        for g, st in sec.strata.items():
            c, pc = st.chosen, st.control
            rows.append({"seed": seed, "process": g, "picked heads": _heads(c), "null": f"{c.null}, {c.result.space} sets",
                         "effect [95 % CI]": _ci(c), "null mean": fmt(c.null_mean), "rank": _rank(c), "p": f"{c.p:.3g}",
                         "detectable": fmt(c.detectable), "control heads": _heads(pc), "control null": f"{pc.null}, {pc.result.space} sets",
                         "control effect [95 % CI]": _ci(pc), "control null mean": fmt(pc.null_mean), "control rank": _rank(pc)})
    return pd.DataFrame(rows).set_index(["seed", "process"])
