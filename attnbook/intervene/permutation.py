"""Does a model use a chosen head set? One permutation test against head sets of the same shape.

``metric(model)`` runs the model on the caller's test data and returns the damage per independent unit
(items, episodes, series, windows that share nothing; a 1-D array) or one number; damage is positive.
The effect of ablating a head set ``S`` is the mean over units of ``metric(ablated S) − metric(model)``.

:func:`head_set_test` compares the chosen set's effect with the effects of the **other sets of the
same shape** (the null space):

* ``null="layer-matched"`` (default) — as many heads in each layer as the chosen set: the space has
  ``Π_l C(H_l, k_l)`` members, so a last-layer set is compared with last-layer sets;
* ``null="unmatched"`` — any ``k`` heads of the pool: ``C(Σ H_l, k)`` members.

When the layer-matched space is too small to decide at ``α / m`` (:func:`attnbook.stats.can_decide`)
the test falls back to the unmatched space and says so (``null_note``); when that is too small as
well it still measures but is **not decidable** (:attr:`HeadSetTest.decidable`; a chapter reports it
inconclusive with its smallest reachable p). Spaces with at most ``max_draws + 1`` members are
enumerated (an exact test); larger ones are drawn with Besag–Clifford stopping
(:func:`attnbook.stats.sequential_test`). The chosen set's per-unit effects give a bootstrap interval
over units and the :func:`~attnbook.stats.detectable_effect`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import checks, stats
from ..errors import InvalidInputError, bad_argument
from .core import HeadSpec, _layer_sites, _sites, ablate, resolve_heads
from .effects import _means

__all__ = ["NULLS", "HeadSetTest", "head_set_test", "null_space_size", "null_sets", "per_layer_effects", "strongest_heads", "pooled_test"]

#: the null spaces a test can draw from
NULLS = ("layer-matched", "unmatched")

Pair = tuple[int, int]


def _units(metric: Callable[[nn.Module], Any], model: nn.Module) -> np.ndarray:
    with torch.no_grad():
        value = metric(model)
    if isinstance(value, torch.Tensor):
        value = value.detach().double().cpu().numpy()
    x = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise bad_argument(InvalidInputError, "metric", "a finite number or a 1-D array of finite per-unit values", x.shape, raw=True)
    return x


def _by_layer(pairs: Sequence[Pair]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for layer, _ in pairs:
        counts[layer] = counts.get(layer, 0) + 1
    return counts


def null_space_size(pool: Sequence[Pair], chosen: Sequence[Pair], null: str = "layer-matched") -> int:
    """How many head sets the chosen one could have been (itself included): ``Π_l C(H_l, k_l)``
    layer-matched, ``C(|pool|, k)`` unmatched, ``H_l`` the pool's heads in layer ``l``."""
    checks.choice("null", null, NULLS)
    if null == "unmatched":
        return math.comb(len(pool), len(chosen))
    heads = _by_layer(pool)
    return math.prod(math.comb(heads.get(layer, 0), k) for layer, k in _by_layer(chosen).items())


def null_sets(pool: Sequence[Pair], chosen: Sequence[Pair], null: str = "layer-matched", *, seed: int = 0,
              exhaustive: bool = False) -> Iterator[tuple[Pair, ...]]:
    """The other members of the null space, never the chosen set: all of them in a fixed order
    (``exhaustive``), or an endless seeded stream of distinct random members (stops when the space is used up)."""
    checks.choice("null", null, NULLS)
    pool = sorted(pool)
    chosen_key = tuple(sorted(chosen))
    if null == "unmatched":
        groups = [(pool, len(chosen_key))]
    else:
        groups = [([p for p in pool if p[0] == layer], k) for layer, k in sorted(_by_layer(chosen_key).items())]
    size = null_space_size(pool, chosen_key, null)
    if exhaustive:
        for parts in product(*(combinations(heads, k) for heads, k in groups)):
            s = tuple(sorted(p for part in parts for p in part))
            if s != chosen_key:
                yield s
        return
    rng = random.Random(seed)
    seen = {chosen_key}
    while len(seen) < size:
        s = tuple(sorted(p for heads, k in groups for p in rng.sample(heads, k)))
        if s not in seen:
            seen.add(s)
            yield s


@dataclass(frozen=True)
class HeadSetTest:
    """A chosen head set's permutation test (module docstring): the ``heads`` (layer name, head), the
    ``null`` space drawn from and why (``null_note``, empty unless the layer-matched space was too
    small), the clean metric's unit mean, the chosen set's per-unit effects (``unit_effects``), the
    :class:`~attnbook.stats.PermutationResult` (``result``), the level ``alpha`` and family size it
    was sized for, the interval over units (``interval``), the bootstrap standard error (``se``) and
    the ablation ``how``."""

    heads: tuple[tuple[str, int], ...]
    null: str
    null_note: str
    clean: float
    unit_effects: tuple[float, ...]
    result: stats.PermutationResult
    alpha: float
    family: int
    interval: tuple[float, float]
    se: float
    how: str

    @property
    def effect(self) -> float:
        """The mean over units of the chosen set's effect."""
        return self.result.effect

    @property
    def p(self) -> float:
        return self.result.p

    @property
    def smallest_p(self) -> float:
        return self.result.smallest_p

    @property
    def decidable(self) -> bool:
        """Whether the test could reach ``α / m`` (else it must be reported inconclusive)."""
        return self.smallest_p <= self.alpha / self.family + 1e-15

    @property
    def null_mean(self) -> float:
        return float(np.mean(self.result.null))

    @property
    def null_median_p(self) -> float:
        """The p a median member of the null gets against the other draws (the control: about 0.5)."""
        null = np.sort(np.asarray(self.result.null))
        median = null[(len(null) - 1) // 2]
        rest = np.delete(null, (len(null) - 1) // 2)
        return stats.permutation_p(float(median), rest) if rest.size else 1.0

    @property
    def detectable(self) -> float:
        """:func:`attnbook.stats.detectable_effect` at this test's level and family."""
        return stats.detectable_effect(self.result.null, self.se, self.alpha, self.family)

    @property
    def units(self) -> int:
        return len(self.unit_effects)

    def record(self, finding: str, metric: str, *, role: str = "finding", p_adjusted: float | None = None, selection: str = "",
               test_split: str = "", verdict: str = "") -> dict:
        """A JSON-ready record for ``summary.json``'s ``causal`` list."""
        low, high = self.interval
        r = self.result
        return {"finding": finding, "role": role, "metric": metric, "heads": [f"{name}:{h}" for name, h in self.heads], "how": self.how,
                "null": self.null, "null_note": self.null_note, "clean": self.clean, "effect": self.effect,
                "interval": [None if math.isnan(low) else low, None if math.isnan(high) else high], "units": self.units,
                "random_mean": self.null_mean, "percentile": 100.0 * float(np.mean(np.asarray(r.null) < r.effect)), "p_value": self.p,
                "p_adjusted": p_adjusted, "smallest_p": self.smallest_p, "draws": r.draws, "max_draws": r.max_draws, "space": r.space,
                "exact": r.exact, "stopped": r.stopped, "detectable": self.detectable, "family": self.family, "alpha": self.alpha,
                "selection": selection, "test_split": test_split, "rule": f"Holm-adjusted p < {self.alpha:g} (one-sided)",
                "verdict": verdict}


def head_set_test(model: nn.Module, metric: Callable[[nn.Module], Any], heads: HeadSpec, *, null: str = "layer-matched",
                  alpha: float = stats.ALPHA, family: int = 1, max_draws: int | None = None, stop_after: int = stats.STOP_AFTER,
                  seed: int = 0, how: str = "mean", reference: Any = None, layers: Sequence[int | str] | None = None,
                  fallback: bool = True, exact_up_to: int = 256, resamples: int = 2000, progress: bool = False) -> HeadSetTest:
    """Test whether ablating ``heads`` together damages ``metric`` more than the other head sets of the
    same shape (module docstring). ``max_draws`` defaults to :func:`attnbook.stats.draws_for` ``(alpha,
    family)``; a space with at most ``max(max_draws, exact_up_to) + 1`` members is enumerated (exact). ``fallback``: use the
    unmatched space when the layer-matched one cannot reach ``α / family``. ``layers``: the pool
    (default every attention layer). ``how`` and ``reference`` as in :func:`~attnbook.intervene.ablate`."""
    null = checks.choice("null", null, NULLS)
    family = checks.integer("family", family, minimum=1)
    alpha = checks.interval("alpha", alpha, 0, 1, lo_open=True)
    max_draws = stats.draws_for(alpha, family) if max_draws is None else checks.integer("max_draws", max_draws, minimum=1)
    sites = _sites(model)
    chosen = resolve_heads(model, heads, sites)
    pairs = sorted((i, h) for i, hs in chosen.items() for h in hs)
    pool_sites = sites if layers is None else [s for layer in layers for s in _layer_sites(sites, layer)]
    pool = [(sites.index(s), h) for s in pool_sites for h in range(s.n_heads or 0)]
    outside = [p for p in pairs if p not in pool]
    if outside:
        raise bad_argument(InvalidInputError, "heads", "heads inside the pool of layers drawn from", outside, raw=True)
    note = ""
    space = null_space_size(pool, pairs, null)
    exact_up_to = checks.integer("exact_up_to", exact_up_to, minimum=0)
    if null == "layer-matched" and fallback and not stats.can_decide(space, max(max_draws, exact_up_to), alpha, family):
        wide = null_space_size(pool, pairs, "unmatched")
        note = (f"the layer-matched space has {space} set(s) (smallest reachable p {stats.smallest_p(space, max(max_draws, exact_up_to)):.3g} > "
                f"α/m = {alpha / family:.3g}); the unmatched space of {wide} is used")
        null, space = "unmatched", wide
    if space < 2:
        raise bad_argument(InvalidInputError, "heads", "a set with at least one other set of its shape in the pool", pairs, raw=True)
    reference = _means(model, how, reference, sorted({i for i, _ in pool}))
    clean = _units(metric, model)

    def effects(head_set: Sequence[Pair]) -> np.ndarray:
        with ablate(model, list(head_set), how=how, reference=reference):
            damaged = _units(metric, model)
        if damaged.shape != clean.shape:
            raise bad_argument(InvalidInputError, "metric", f"the same {clean.size} unit(s) on every call", damaged.size)
        return damaged - clean

    chosen_units = effects(pairs)
    effect = float(chosen_units.mean())
    bar = tqdm(total=space - 1 if space - 1 <= max(max_draws, exact_up_to) else max_draws, desc=f"null head sets ({null})", disable=not progress, leave=False)

    def values(sets: Iterator[tuple[Pair, ...]]) -> Iterator[float]:
        for s in sets:
            bar.update()
            yield float(effects(s).mean())

    if space - 1 <= max(max_draws, exact_up_to):
        result = stats.exact_test(effect, list(values(null_sets(pool, pairs, null, exhaustive=True))))
    else:
        result = stats.sequential_test(effect, values(null_sets(pool, pairs, null, seed=seed)), max_draws, stop_after, space=space)
    bar.close()
    low, high, se = stats.bootstrap_summary(chosen_units, seed=seed, resamples=resamples)  # one resampling for both
    interval = (low, high)
    return HeadSetTest(tuple((sites[i].name, h) for i, h in pairs), null, note, float(clean.mean()), tuple(map(float, chosen_units)), result,
                       alpha, family, interval, se, how)


def per_layer_effects(effects: Any) -> dict[str, float]:
    """The mean single-head effect of each layer (from :func:`~attnbook.intervene.head_effects`): how
    much a head's layer alone predicts its effect, shown beside an unmatched null."""
    e = effects.effects
    return {name: float(torch.nanmean(e[i])) for i, name in enumerate(effects.layer_names)}


def strongest_heads(effects: Any, k: int) -> list[Pair]:
    """The ``k`` heads whose single-head ablation hurt most (a :class:`~attnbook.intervene.HeadEffects`
    over every attention layer, measured on the selection split): the positive control's heads."""
    k = checks.integer("k", k, minimum=1)
    return [(layer, head) for layer, head, _ in effects.ranked()[:k]]


def pooled_test(tests: Sequence[HeadSetTest]) -> tuple[float, float]:
    """One p for several exact tests of independent strata (generators, seeds):
    :func:`attnbook.stats.combined_rank_test` of their ranks ``k_s = p_s · N_s``. Returns ``(p, smallest_p)``."""
    if not tests or not all(isinstance(t, HeadSetTest) and t.result.exact for t in tests):
        raise bad_argument(InvalidInputError, "tests", "one or more exact HeadSetTest", [getattr(t, "null", t) for t in tests], raw=True)
    return stats.combined_rank_test([round(t.p * t.result.space) for t in tests], [t.result.space for t in tests])
