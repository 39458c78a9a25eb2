"""Does the model use the heads its attention singles out? Chapter 5's causal section (issue 30).

On one training seed's tiny Shakespeare run, at its **last snapshot** (the stored weights of its best
validation loss, normally the last step) and at **one earlier snapshot** (the middle one, whose weights
the run stores too: :func:`attnbook.charlm.experiment.load_model`):

1. **Units.** Validation windows of ``T + 1`` characters (``T`` inputs, the same shifted by one as
   targets) cut from the validation split at multiples of ``T + 1`` share no character
   (:func:`independent_windows`); a seeded draw of them is split into a **selection split** and a
   disjoint **test split** (the same windows for every training seed). A window's damage is the rise of
   its mean cross-entropy (nats per character) under ablation: :class:`WindowLoss` returns one value per
   window.
2. **Selection** (selection split only, :func:`select_heads`): every head's mass on the previous
   character and its distinctness (:func:`attnbook.charlm.analysis.head_distinctness`) choose the
   **previous-token heads** (the ``previous_count`` = 2 heads with the most mass on the previous
   character: one head among 16 cannot reach any corrected threshold, its smallest p is 1/16) and the
   **most distinct heads** (a quarter of the heads); every head's single mean-ablation effect chooses
   the **positive control**, the ``previous_count`` heads whose ablation hurt most.
3. **Test** (test split, last snapshot): each chosen set against the head sets of its shape
   (:func:`attnbook.intervene.head_set_test`, layer-matched null unless it cannot reach α/m, mean
   ablation with head means over training windows), in one :class:`attnbook.intervene.CausalFamily` of
   ``m = len(registry.causal_family("charlm-evolution"))`` = 2 tests under Holm, with the positive
   control beside it. A null space of at most ``exact_up_to + 1`` sets (the 120 pairs of 16 heads) is
   enumerated, an exact test; larger ones are drawn, and the draws stop early (Besag–Clifford) once the
   null has reached the effect 10 times, so a set the model does not need costs few forwards.
4. **Earlier snapshot** (descriptive): the sets the same selection picks at the middle snapshot, and its
   positive control, ablated on the same test windows: effects with intervals over windows, no null
   draws and no verdicts (they are not in the family: testing them too would double the family and the
   forwards; see :data:`EARLIER_NOTE`).

:func:`use_test` runs all of it for one seed on already trained weights (``benchmarks/ablation.py`` times it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import checks
from ..claims import Finding, fmt
from ..errors import InvalidInputError, bad_argument

__all__ = ["PREVIOUS", "DISTINCT", "CONTROL", "USE_KEYS", "EARLIER_NOTE", "CausalSettings", "independent_windows", "WindowLoss", "use_tests",
           "Selection", "select_heads", "EarlierEffect", "UseTest", "use_test", "uses_table", "earlier_table", "uses_strips",
           "use_glue", "USE_GLUE", "causal_cost"]

#: the head sets the test asks about, by name (and the positive control's)
#: issue 31: the pair is named by what selects it, "previous-character heads"; the chapter calls a head a previous-token head only
#: where its own rule holds (``charlm-evolution/previous-token-head``; :func:`attnbook.charlm.analysis.previous_token_heads`)
PREVIOUS, DISTINCT, CONTROL = "previous-character heads", "most distinct heads", "positive control"
#: each chosen set's registered causal finding (:mod:`attnbook.registry`): the family, in table order
USE_KEYS = {PREVIOUS: "charlm-evolution/previous-token-head-used", DISTINCT: "charlm-evolution/distinct-heads-used"}
#: why the earlier snapshot is described and not tested (summary.json, the chapter's prose)
EARLIER_NOTE = ("the earlier (middle) snapshot is described, not tested: its sets' effects with intervals over the same test windows; "
                "testing them too would double the family (m = 4) and the section's forwards (each pair test enumerates the 119 other "
                "pairs of 16 heads, with no early stopping)")


@dataclass(frozen=True)
class CausalSettings:
    """The causal section of a chapter-5 profile: the ``corpus`` it runs on; ``test_windows`` and
    ``selection_windows`` independent validation windows (disjoint); ``reference_windows`` training
    windows for the head means; ``previous_count`` previous-token heads (also the positive control's
    size); ``distinct_count`` most distinct heads (None: a quarter of the heads); ``max_draws`` null
    draws at most (None: :func:`attnbook.stats.draws_for` ``(α, m)``); spaces of at most
    ``exact_up_to + 1`` sets (or ``max_draws + 1``) are enumerated; ``prefix_cache``: reuse the clean
    residual stream below the lowest ablated layer (:class:`WindowLoss`); ``window``: characters per
    window (None: the model's context)."""

    corpus: str = "tinyshakespeare"
    test_windows: int = 512
    selection_windows: int = 256
    reference_windows: int = 64
    previous_count: int = 2
    distinct_count: int | None = None
    max_draws: int | None = None
    exact_up_to: int = 256
    prefix_cache: bool = True
    window: int | None = None

    def __post_init__(self) -> None:
        if self.window is not None:
            checks.positive_int("window", self.window)
        for name in ("test_windows", "selection_windows", "reference_windows"):
            checks.positive_int(name, getattr(self, name))
        checks.integer("previous_count", self.previous_count, minimum=2)
        if self.distinct_count is not None:
            checks.integer("distinct_count", self.distinct_count, minimum=2)
        if self.max_draws is not None:
            checks.integer("max_draws", self.max_draws, minimum=1)
        checks.integer("exact_up_to", self.exact_up_to, minimum=0)


def independent_windows(data: np.ndarray, block_size: int, counts: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    """Start positions of ``len(counts)`` disjoint sets of windows that share no character.

    Window ``k`` of the split covers ``data[k(T+1) : (k+1)(T+1)]`` (``T`` inputs and their targets, the
    same shifted by one; ``T = block_size``), so two windows never overlap; ``sum(counts)`` of the
    ``⌊len(data) / (T+1)⌋`` windows are drawn without replacement (seeded) and dealt out in order, each
    set sorted. Returns one array of starts per count (for :func:`attnbook.charlm.experiment.windows`)."""
    T = checks.positive_int("block_size", block_size)
    counts = [checks.positive_int("counts", c) for c in counts]
    slots = len(data) // (T + 1)
    if sum(counts) > slots:
        raise bad_argument(InvalidInputError, "counts", f"at most {slots} windows of {T + 1} characters in all (the split has {len(data)})",
                           sum(counts))
    drawn = np.random.default_rng(seed).permutation(slots)[:sum(counts)] * (T + 1)
    bounds = np.cumsum([0, *counts])
    return [np.sort(drawn[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _hooked(module: torch.nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


class WindowLoss:
    """``metric(model)``: each window's mean cross-entropy (nats per character), a float64 tensor of
    shape ``(B,)`` — one damage value per independent window — for the windows ``x`` → ``y`` ((B, T) ids).

    With ``prefix_cache`` the clean residual stream entering every block is computed once for ``model``;
    a call starts from the entry of the lowest block that carries a hook (an ablation), so blocks below
    it are not recomputed — the same numbers as a full forward (``tests/test_charlm.py``). The model's own
    hooks run around the shortened pass as around a full one (:func:`attnbook.intervene.ablate` checks
    there that every chosen layer ran its ablation); a hook on the embeddings or the output head, a global
    hook, a keyword hook or another model falls back to the full forward.

    With ``memo`` a call first runs the model on the first two windows (a probe, 1/256 of a 512-window
    forward) and returns the stored losses when an earlier call's probe logits were bit-identical: the
    same model state, so the same ablation — two tests that share a null space (the previous-token pair
    and the positive control, both against the 120 pairs) measure each head set once, with the same
    numbers. ``calls`` counts the calls, ``forwards`` the full passes actually run."""

    def __init__(self, model, x: torch.Tensor, y: torch.Tensor, *, prefix_cache: bool = True, memo: bool = True) -> None:
        if x.ndim != 2 or x.shape != y.shape:
            raise bad_argument(InvalidInputError, "x/y", "two (windows, T) id tensors of one shape", (tuple(x.shape), tuple(y.shape)), raw=True)
        self.model, self.x, self.y, self.calls, self.forwards = model, x, y, 0, 0
        self.memo: dict[bytes, torch.Tensor] | None = {} if memo else None
        self.entries: list[torch.Tensor] | None = None
        if prefix_cache and not _hooked(model):
            with torch.no_grad():
                h = model.drop(model.wte(x.long()) + model.wpe(torch.arange(x.shape[1], device=x.device)))
                self.entries = [h]
                for block in model.blocks[:-1]:
                    h = block(h)
                    self.entries.append(h)

    def _losses(self, logits: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.y.reshape(-1).long(), reduction="none")
        return ce.reshape(self.y.shape).double().mean(1)

    def __call__(self, model) -> torch.Tensor:
        self.calls += 1
        if self.memo is None or model is not self.model:
            self.forwards += 1
            return self._forward(model)
        with torch.no_grad():
            key = model(self.x[:2])[0].detach().float().numpy().tobytes()
        if key not in self.memo:
            self.forwards += 1
            self.memo[key] = self._forward(model)
        return self.memo[key].clone()

    def _forward(self, model) -> torch.Tensor:
        with torch.no_grad():
            blocks = list(model.blocks)
            module = torch.nn.modules.module
            outside = (model._forward_hooks_with_kwargs or model._forward_pre_hooks_with_kwargs or _hooked(model.wte) or _hooked(model.wpe)
                       or _hooked(model.ln_f) or _hooked(model.lm_head) or module._global_forward_hooks or module._global_forward_pre_hooks)
            if self.entries is None or model is not self.model or outside or model.training:
                return self._losses(model(self.x)[0])
            # the model's own hooks (ablate's bookkeeping: every chosen layer must run its ablation) run as model(x) would run them
            for hook in list(model._forward_pre_hooks.values()):
                if hook(model, (self.x,)) is not None:  # a hook that changes the input: the full forward
                    return self._losses(model(self.x)[0])
            first = next((i for i, b in enumerate(blocks) if _hooked(b)), len(blocks) - 1)
            h = self.entries[first]
            for block in blocks[first:]:
                h = block(h)
            out = (model.lm_head(model.ln_f(h)), None)
            for hook in list(model._forward_hooks.values()):
                changed = hook(model, (self.x,), out)
                out = out if changed is None else changed
            return self._losses(out[0])

Pair = tuple[int, int]


@dataclass(frozen=True)
class Selection:
    """What the selection split chose at one snapshot (``"last"`` or ``"middle"``, training ``step``):
    per head (``(L, H)``) its ``previous_token`` mass and ``distinctness``, every head's single-head
    mean-ablation ``single`` effect (:class:`attnbook.intervene.HeadEffects`, mean over the selection
    windows), and the ``heads`` of :data:`PREVIOUS`, :data:`DISTINCT` and :data:`CONTROL`."""

    snapshot: str
    step: int
    previous_token: np.ndarray
    distinctness: np.ndarray
    single: object
    heads: dict[str, list[Pair]]

    def statistic(self, name: str) -> str:
        """The chosen heads' attention statistic (or, for the control, their single-head effect)."""
        if name == CONTROL:
            e = self.single.effects
            return "single-head effect: " + ", ".join(fmt(float(e[l, h])) for l, h in self.heads[name])
        values, what = (self.previous_token, "mass on i−1") if name == PREVIOUS else (self.distinctness, "JS to layer-mates")
        return f"{what}: " + ", ".join(fmt(float(values[l, h])) for l, h in self.heads[name])


def _label(pairs: Sequence[Pair]) -> str:
    return ", ".join(f"L{l}H{h}" for l, h in pairs)


def select_heads(model, x: torch.Tensor, y: torch.Tensor, means, settings: CausalSettings, *, snapshot: str = "last", step: int = 0,
                 metric: Callable | None = None) -> Selection:
    """Choose the head sets on the selection windows ``x`` → ``y`` (module docstring, step 2): attention
    statistics from one captured forward, then every head mean-ablated alone (head ``means`` from
    :func:`attnbook.intervene.head_means`) on ``metric`` (default a :class:`WindowLoss` of these windows)."""
    from .. import metrics
    from ..intervene import head_effects, strongest_heads
    from .analysis import choose_heads, head_distinctness
    from .tracking import causal_maps

    model.eval()
    with torch.no_grad():
        maps = causal_maps(model, x)
        previous = torch.nanmean(metrics.previous_token_mass(maps), dim=1).double().numpy()  # (L, H), as the tracker averages
    distinct = head_distinctness(maps)
    del maps
    heads = choose_heads(previous, distinct, settings.distinct_count, previous_count=settings.previous_count)
    metric = metric or WindowLoss(model, x, y, prefix_cache=settings.prefix_cache)
    single = head_effects(model, lambda m: float(metric(m).mean()), how="mean", reference=means)
    heads[CONTROL] = sorted(strongest_heads(single, settings.previous_count))
    return Selection(snapshot, int(step), previous, distinct, single, heads)


@dataclass(frozen=True)
class EarlierEffect:
    """A head set's effect at the earlier snapshot on the test windows: mean over windows with its
    bootstrap interval (descriptive, no null)."""

    heads: tuple[Pair, ...]
    clean: float
    effect: float
    interval: tuple[float, float]
    units: int


@dataclass(frozen=True)
class UseTest:
    """One seed's causal section (module docstring): the ``last`` and ``earlier`` :class:`Selection`,
    the last snapshot's :class:`attnbook.intervene.CausalFamily` (``family``), the earlier snapshot's
    descriptive effects (``earlier_effects``, name → :class:`EarlierEffect`), the numbers of windows,
    and the cost: wall ``seconds``, ``forwards`` (full passes run, repeats served by the memo excluded: ``test_forwards`` on the test split,
    ``selection_forwards`` on the selection split) and null ``draws`` used after stopping."""

    run: str
    seed: int
    last: Selection
    earlier: Selection
    family: object
    earlier_effects: dict[str, EarlierEffect]
    windows: int
    selection_windows: int
    reference_windows: int
    seconds: float
    test_forwards: int
    selection_forwards: int
    settings: CausalSettings = field(default_factory=CausalSettings)

    @property
    def forwards(self) -> int:
        return self.test_forwards + self.selection_forwards

    @property
    def draws(self) -> int:
        """Null draws actually measured (after sequential stopping), the family's tests and the positive control."""
        return sum(t.result.draws for t in (*self.family.tests.values(), self.family.control))

    def texts(self) -> dict[str, str]:
        """What each test's heads are, for tables and records."""
        d = self.settings.distinct_count or len(self.last.heads[DISTINCT])
        return {USE_KEYS[PREVIOUS]: f"the {self.settings.previous_count} heads with the most mass on the previous character",
                USE_KEYS[DISTINCT]: f"the {d} heads farthest (JS) from the other heads of their layer",
                CONTROL: f"positive control: the {self.settings.previous_count} heads whose single ablation hurt most on the selection split"}

    def metric_text(self) -> str:
        return f"rise in validation loss, nats/char, per window ({self.windows} test windows; {self.run}, step {self.last.step})"

    def findings(self) -> list[Finding]:
        """The family's registered causal findings (:data:`USE_KEYS`), in table order."""
        return self.family.findings()

    def records(self) -> list[dict]:
        """summary.json's ``causal`` records: the family's tests and the positive control."""
        return self.family.records(self.metric_text(), self.seed, self.texts())

    def earlier_records(self) -> list[dict]:
        """The earlier snapshot's descriptive effects (summary.json's ``causal_earlier``)."""
        return [{"seed": self.seed, "set": name, "snapshot": "middle", "step": self.earlier.step, "heads": _label(e.heads), "clean": e.clean,
                 "effect": e.effect, "interval": [None if math.isnan(v) else v for v in e.interval], "units": e.units,
                 "last_snapshot_heads": _label(self.last.heads[name])} for name, e in self.earlier_effects.items()]

    def table(self) -> pd.DataFrame:
        """The family's table (:meth:`CausalFamily.frame`) with each set's attention statistic."""
        frame = self.family.frame(self.texts())
        stats = {self.texts()[USE_KEYS[n]]: self.last.statistic(n) for n in (PREVIOUS, DISTINCT)} | {self.texts()[CONTROL]: self.last.statistic(CONTROL)}
        frame.insert(1, "selection statistic", [stats.get(i, "") for i in frame.index])
        return frame

    def cost(self) -> dict:
        """``{"seed", "seconds", "forwards", "draws"}`` (summary.json's ``causal_cost``), with the split of the forwards."""
        return {"seed": self.seed, "seconds": self.seconds, "forwards": self.forwards, "draws": self.draws,
                "test_forwards": self.test_forwards, "selection_forwards": self.selection_forwards,
                "test_windows": self.windows, "selection_windows": self.selection_windows}


def _earlier(model, metric: WindowLoss, heads: Sequence[Pair], means, seed: int, resamples: int = 2000) -> EarlierEffect:
    from .. import stats
    from ..intervene import ablate

    clean = metric(model).numpy()
    with ablate(model, list(heads), how="mean", reference=means):
        damaged = metric(model).numpy()
    units = damaged - clean
    return EarlierEffect(tuple(heads), float(clean.mean()), float(units.mean()), stats.bootstrap_interval(units, seed=seed, resamples=resamples),
                         units.size)


def use_test(run, corpus, settings: CausalSettings | None = None, *, models: Mapping[str, object] | None = None, seed: int = 0,
             progress: bool = False) -> UseTest:
    """The causal section for one training seed's ``run`` (module docstring) on ``corpus`` (the run's):
    ``models`` ``{"last": …, "middle": …}`` (default: the run's stored weights,
    :func:`attnbook.charlm.experiment.load_model`); ``seed`` draws the windows and the null sets (the
    chapter passes its evaluation seed, so every training seed gets the same windows and draws)."""
    from ..intervene import CausalFamily, head_means, head_set_test
    from ..registry import causal_family
    from .experiment import load_model, windows

    settings = settings or CausalSettings()
    family_keys = causal_family("charlm-evolution")
    if tuple(family_keys) != tuple(USE_KEYS.values()):
        raise bad_argument(InvalidInputError, "registry", f"the causal family {tuple(USE_KEYS.values())}", family_keys, raw=True)
    m = len(family_keys)
    start = time.perf_counter()
    models = dict(models) if models is not None else {s: load_model(run.spec, s) for s in ("last", "middle")}
    T = settings.window or models["last"].config.block_size
    selection, test = independent_windows(corpus.val, T, [settings.selection_windows, settings.test_windows], seed=seed)
    xs, ys = windows(corpus.val, T, selection)
    xt, yt = windows(corpus.val, T, test)
    reference, _ = windows(corpus.train, T, np.random.default_rng(seed).integers(0, len(corpus.train) - T, settings.reference_windows))
    steps = {"last": int(run.history.best_step), "middle": int(run.middle_step)}
    chosen: dict[str, Selection] = {}
    metrics_used: list[WindowLoss] = []
    test_metrics: list[WindowLoss] = []
    means = {}
    for snapshot, model in models.items():
        model.eval()
        means[snapshot] = head_means(model, reference)
        sel = WindowLoss(model, xs, ys, prefix_cache=settings.prefix_cache)
        metrics_used.append(sel)
        chosen[snapshot] = select_heads(model, xs, ys, means[snapshot], settings, snapshot=snapshot, step=steps[snapshot], metric=sel)
    # the last snapshot: the family and its positive control, on the test windows
    last = models["last"]
    metric = WindowLoss(last, xt, yt, prefix_cache=settings.prefix_cache)
    test_metrics.append(metric)
    kw = dict(family=m, max_draws=settings.max_draws, seed=seed, how="mean", reference=means["last"], exact_up_to=settings.exact_up_to,
              progress=progress)
    tests = {USE_KEYS[name]: head_set_test(last, metric, chosen["last"].heads[name], **kw) for name in (PREVIOUS, DISTINCT)}
    control = head_set_test(last, metric, chosen["last"].heads[CONTROL], **kw)
    T_sel, T_test = settings.selection_windows, settings.test_windows
    family = CausalFamily(tests, control,
                          selection=f"{T_sel} independent validation windows of {T} characters (selection split; step {steps['last']})",
                          test_split=f"{T_test} other independent validation windows (test split, disjoint from the selection split)")
    # the earlier snapshot: described, on the same test windows
    middle = models["middle"]
    early_metric = WindowLoss(middle, xt, yt, prefix_cache=settings.prefix_cache)
    test_metrics.append(early_metric)
    earlier = {name: _earlier(middle, early_metric, chosen["middle"].heads[name], means["middle"], seed) for name in (PREVIOUS, DISTINCT, CONTROL)}
    return UseTest(run.spec.name, int(run.spec.seed), chosen["last"], chosen["middle"], family, earlier, T_test, T_sel, settings.reference_windows,
                   time.perf_counter() - start, sum(x.forwards for x in test_metrics), sum(x.forwards for x in metrics_used), settings)


def use_tests(runs: Mapping[int, object], corpus, settings: CausalSettings | None = None, *, seed: int = 0) -> dict[int, UseTest]:
    """:func:`use_test` for every training seed's run (``{seed: run}``), each a task of its own
    (:func:`attnbook.runs.map_tasks`: two at once on 2 cores, one torch thread each; the stored weights
    travel with the task). The same numbers as one after the other: a test depends only on its run, corpus and seed,
    so a test already computed by this code (:mod:`attnbook.memo`: the build's execution, read again by the tests') is
    read back instead."""
    from dataclasses import asdict

    from .. import memo
    from ..runs import map_tasks
    from .experiment import load_model

    order = list(runs.values())
    configs = [{"run": run.spec.to_dict(), "settings": asdict(settings) if settings is not None else None, "seed": seed} for run in order]

    def compute(missing: list[int]) -> list[UseTest]:
        calls = [((order[i], corpus, settings), {"models": {s: load_model(order[i].spec, s) for s in ("last", "middle")}, "seed": seed})
                 for i in missing]
        return map_tasks(use_test, calls)

    return dict(zip(runs, memo.cached_map("charlm/use-test", configs, compute)))


# -- tables, figure, glue over seeds -------------------------------------------------------------------

def uses_table(uses: Mapping[int, UseTest]) -> pd.DataFrame:
    """:meth:`UseTest.table` of every seed, one above the other, indexed by (seed, test)."""
    if not uses:
        return pd.DataFrame()
    return pd.concat({seed: u.table() for seed, u in uses.items()}, names=["seed", "test"])


def earlier_table(uses: Mapping[int, UseTest]) -> pd.DataFrame:
    """Per seed and set: the heads chosen at the middle snapshot (and at the last), the effect there
    [95 % interval over test windows], and the same-named set's effect at the last snapshot."""
    rows = []
    for seed, u in uses.items():
        for name, e in u.earlier_effects.items():
            t = u.family.control if name == CONTROL else u.family.tests[USE_KEYS[name]]
            low, high = e.interval
            rows.append({"seed": seed, "set": name, "step": u.earlier.step, "heads": _label(e.heads), "effect [95 % CI]":
                         f"{fmt(e.effect)} [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else fmt(e.effect),
                         "heads at the last snapshot": _label(u.last.heads[name]), "effect at the last snapshot": fmt(t.effect)})
    return pd.DataFrame(rows).set_index(["seed", "set"]) if rows else pd.DataFrame()


def uses_strips(uses: Mapping[int, UseTest]) -> dict[str, tuple[float, list[float]]]:
    """``{"<set> s<seed>": (effect, null effects)}`` for :func:`attnbook.plots.ablation_strips` (short labels)."""
    short = {USE_KEYS[PREVIOUS]: "prev-char", USE_KEYS[DISTINCT]: "distinct"}
    out = {}
    for seed, u in uses.items():
        for key, t in u.family.tests.items():
            out[f"{short[key]} s{seed}"] = (t.effect, list(t.result.null))
        out[f"control s{seed}"] = (u.family.control.effect, list(u.family.control.result.null))
    return out


def causal_cost(uses: Mapping[int, UseTest]) -> list[dict]:
    """summary.json's ``causal_cost``: :meth:`UseTest.cost` per seed."""
    return [u.cost() for u in uses.values()]


#: the glue keys of the causal section (``use_`` + these); "not run" when the test did not run
USE_GLUE = ("step", "middle_step", "windows", "selection_windows", "reference_windows", "max_draws", "prev_heads", "distinct_heads",
            "control_heads", "prev_verdict", "distinct_verdict", "control", "reading", "earlier_reading", "cost")


def _per_seed(values: Mapping[int, str]) -> str:
    vals = list(values.values())
    return vals[0] if len(set(vals)) == 1 else "; ".join(f"seed {s}: {v}" for s, v in values.items())


def _test_sentence(name: str, t, heads: Sequence[Pair], adjusted: float | None, verdict: str) -> str:
    low, high = t.interval
    interval = f" [{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else ""
    holm = f", Holm p = {adjusted:.3g}" if adjusted is not None else ""
    return (f"the {name} ({_label(heads)}) raise the loss by {fmt(t.effect)}{interval} nats per character, "
            f"their {t.null} null by {fmt(t.null_mean)} on average ({t.result.draws} of {t.result.space - 1} sets{', exact' if t.result.exact else ''}); "
            f"p = {t.p:.3g}{holm}, smallest reachable p = {t.smallest_p:.3g}: {verdict}")


def use_glue(uses: Mapping[int, UseTest] | None) -> dict[str, str]:
    """The causal section's glue values (keys ``use_`` + :data:`USE_GLUE`), formatted: a value the same
    on every seed once, else per seed; the verdicts across seeds (:func:`attnbook.claims.across_seeds`)
    with how many seeds support them; the readings per seed. "not run" for every key without a test."""
    from .. import stats
    from ..claims import across_seeds

    if not uses:
        return {f"use_{k}": "not run" for k in USE_GLUE}
    first = next(iter(uses.values()))
    out = {"use_step": _per_seed({s: str(u.last.step) for s, u in uses.items()}),
           "use_middle_step": _per_seed({s: str(u.earlier.step) for s, u in uses.items()}),
           "use_windows": str(first.windows), "use_selection_windows": str(first.selection_windows),
           "use_reference_windows": str(first.reference_windows),
           "use_max_draws": _per_seed({s: str(u.settings.max_draws or stats.draws_for(u.family.alpha, u.family.m)) for s, u in uses.items()}),
           "use_prev_heads": _per_seed({s: _label(u.last.heads[PREVIOUS]) for s, u in uses.items()}),
           "use_distinct_heads": _per_seed({s: _label(u.last.heads[DISTINCT]) for s, u in uses.items()}),
           "use_control_heads": _per_seed({s: _label(u.last.heads[CONTROL]) for s, u in uses.items()})}
    found = {a.spec.key: a for a in across_seeds({s: u.findings() for s, u in uses.items()})}
    for k, name in (("prev", PREVIOUS), ("distinct", DISTINCT)):
        a = found[USE_KEYS[name]]
        out[f"use_{k}_verdict"] = f"**{a.verdict}** ({sum(v == 'supported' for v in a.per_seed)} of {len(a.seeds)} seeds)"
    detected = sum(u.family.control_detected for u in uses.values())
    out["use_control"] = f"detected on {detected} of {len(uses)} seeds"
    readings, earlier, costs = [], [], []
    for s, u in uses.items():
        adj = u.family.adjusted
        parts = [_test_sentence(name, u.family.tests[USE_KEYS[name]], u.last.heads[name], adj[USE_KEYS[name]],
                                u.family.verdict(USE_KEYS[name])) for name in (PREVIOUS, DISTINCT)]
        c = u.family.control
        parts.append(_test_sentence("positive-control heads", c, u.last.heads[CONTROL], None, "detected" if u.family.control_detected else
                                    f"not detected (p ≥ α/m = {u.family.alpha / u.family.m:.3g}), so the family is inconclusive"))
        readings.append(f"*Seed {s}:* " + "; ".join(parts) + ".")
        e = u.earlier_effects
        earlier.append(f"*Seed {s}* (step {u.earlier.step}): " + "; ".join(
            f"{name} {_label(e[name].heads)} {fmt(e[name].effect)}" + (f" [{fmt(e[name].interval[0])}, {fmt(e[name].interval[1])}]"
                                                                       if math.isfinite(e[name].interval[0]) else "")
            for name in (PREVIOUS, DISTINCT, CONTROL)) + ".")
        costs.append(f"seed {s}: {u.seconds:.0f} s, {u.forwards} forwards ({u.test_forwards} on the test split), {u.draws} null draws")
    out["use_reading"] = " ".join(readings).replace("_", r"\_")
    out["use_earlier_reading"] = " ".join(earlier)
    out["use_cost"] = "; ".join(costs)
    return out
