"""The two ablation experiments every chapter runs.

``metric(model) -> float`` runs the model on the caller's data and returns one number, oriented so
that **damage is positive** (a loss, an error, a regret, a negated margin). The effect of ablating a
set of heads ``S`` is ``Δ(S) = metric(model with S ablated) − metric(model)``.

* :func:`head_effects` — ``Δ({h})`` for every head alone, as a (layers × heads) table;
* :func:`against_random` — ``Δ(S)`` for a chosen set beside ``Δ(R_1) … Δ(R_n)`` for the *other* sets of
  the same size from the same pool of heads (every other such set when there are at most ``draws``
  of them: an exact permutation test; else ``draws`` distinct seeded draws, the chosen set never
  among them). Reported: the effect, its percentile among the random sets
  ``100 · #{Δ(R) < Δ(S)} / n``, and the permutation p-value ``(1 + #{Δ(R) ≥ Δ(S)}) / (1 + n)`` —
  the chosen set counted once among the sets it could have been (Phipson & Smyth 2010: never 0;
  exact over every set when the enumeration is exhaustive).

:func:`against_random` is a quick, descriptive look: it draws from every head (no layer matching), uses
one heads-and-data split and corrects nothing. The book's causal verdicts come from
:func:`~attnbook.intervene.head_set_test` inside a :class:`~attnbook.intervene.CausalFamily` (layer-matched
nulls, sequential stopping, intervals over units, held-out selection, a positive control, Holm).

The 95th-percentile rule the chapters used before issue 30 — the effect exceeds the 95th percentile of
the random sets — uses the nearest-rank percentile (the ⌈0.95·n⌉-th smallest random effect), so it holds
exactly when the effect is above at least 95 % of the random sets (its percentile ≥ 95). With few
heads the enumeration is small and p cannot be small (one head of 16: p ≥ 1/16); the p-value says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import checks
from ..claims import fmt
from ..errors import InvalidInputError, bad_argument
from .core import HeadMeans, HeadSpec, _layer_sites, _sites, ablate, head_means, resolve_heads

__all__ = ["head_effects", "HeadEffects", "against_random", "RandomComparison", "comparison_frame", "random_head_sets", "MIN_DRAWS"]

#: the fewest random sets a comparison may use: with n sets the smallest p-value is 1 / (n + 1)
MIN_DRAWS = 20


def _measure(metric: Callable[[nn.Module], float], model: nn.Module) -> float:
    with torch.no_grad():
        value = metric(model)
    value = float(value)
    if not math.isfinite(value):
        raise bad_argument(InvalidInputError, "metric", "a finite number", value)
    return value


def _means(model: nn.Module, how: str, reference: Any, layers: Sequence[int | str] | None) -> Any:
    """For ``how='mean'``: the head means once, for every draw (a reference given as inputs is run once)."""
    if how != "mean" or reference is None or isinstance(reference, HeadMeans):
        return reference
    return head_means(model, reference, layers)


@dataclass(frozen=True)
class HeadEffects:
    """``ablated[l, h]``: the metric with head ``h`` of layer ``l`` ablated (NaN where a layer has fewer
    heads); ``clean``: the metric untouched; ``effects = ablated − clean``."""

    clean: float
    ablated: torch.Tensor
    layer_names: tuple[str, ...]
    how: str

    @property
    def effects(self) -> torch.Tensor:
        return self.ablated - self.clean

    def ranked(self) -> list[tuple[int, int, float]]:
        """(layer, head, effect) from the largest effect down."""
        e = self.effects
        pairs = [(l, h, float(e[l, h])) for l in range(e.shape[0]) for h in range(e.shape[1]) if not math.isnan(float(e[l, h]))]
        return sorted(pairs, key=lambda p: -p[2])


def head_effects(model: nn.Module, metric: Callable[[nn.Module], float], *, layers: Sequence[int | str] | None = None,
                 how: str = "zero", reference: Any = None, progress: bool = False) -> HeadEffects:
    """The effect of ablating each head of ``layers`` (default: every attention layer) alone on
    ``metric`` (see the module docstring); one forward of ``metric`` per head plus one clean."""
    sites = _sites(model)
    chosen = sites if layers is None else [s for layer in layers for s in _layer_sites(sites, layer)]
    reference = _means(model, how, reference, [sites.index(s) for s in chosen])
    clean = _measure(metric, model)
    width = max(s.n_heads or 0 for s in chosen)
    ablated = torch.full((len(chosen), width), float("nan"), dtype=torch.float64)
    pairs = [(li, sites.index(s), h) for li, s in enumerate(chosen) for h in range(s.n_heads or 0)]
    for li, index, h in tqdm(pairs, desc=f"ablating heads ({how})", disable=not progress, leave=False):
        with ablate(model, [(index, h)], how=how, reference=reference):
            ablated[li, h] = _measure(metric, model)
    return HeadEffects(clean, ablated, tuple(s.name for s in chosen), how)


@dataclass(frozen=True)
class RandomComparison:
    """A chosen head set's effect beside the effects of random sets of the same size."""

    heads: tuple[tuple[str, int], ...]
    clean: float
    effect: float
    random_effects: tuple[float, ...]
    exact: bool  # every other set of that size was used (an exact permutation test)
    how: str

    @property
    def draws(self) -> int:
        return len(self.random_effects)

    @property
    def random_mean(self) -> float:
        """The mean effect of the random sets."""
        return float(np.mean(self.random_effects))

    @property
    def percentile(self) -> float:
        """``100 · #{random effect < effect} / n``."""
        return 100.0 * sum(r < self.effect for r in self.random_effects) / self.draws

    @property
    def p_value(self) -> float:
        """One-sided permutation p-value ``(1 + #{random effect ≥ effect}) / (1 + n)``."""
        return (1 + sum(r >= self.effect for r in self.random_effects)) / (1 + self.draws)

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q``-th percentile of the random effects: the ⌈q·n/100⌉-th smallest (numpy's
        ``method="inverted_cdf"``)."""
        return float(np.percentile(np.asarray(self.random_effects, dtype=np.float64), checks.interval("q", q, 0, 100), method="inverted_cdf"))

    def exceeds(self, q: float = 95.0) -> bool:
        """Whether the chosen set's effect is above the ``q``-th percentile of the random sets — that
        is, above at least ``q`` % of them (:attr:`percentile` ≥ ``q``)."""
        return self.effect > self.quantile(q)

    def record(self, finding: str = "", metric: str = "", q: float = 95.0) -> dict:
        """A JSON-ready summary for ``summary.json``'s ``causal`` list: what attention said (``finding``),
        the metric, heads, clean value, effect, random mean / ``q``-th percentile / max, percentile, p,
        the rule and its verdict."""
        return {"finding": finding, "metric": metric, "heads": [f"{name}:{h}" for name, h in self.heads], "how": self.how,
                "clean": self.clean, "effect": self.effect, "random_mean": self.random_mean, "random_p95": self.quantile(95),
                "random_max": max(self.random_effects), "percentile": self.percentile, "p_value": self.p_value, "draws": self.draws,
                "exact": self.exact, "rule": self.rule(q), "verdict": "supported" if self.exceeds(q) else "not supported"}

    def rule(self, q: float = 95.0) -> str:
        sets = f"all {self.draws}" if self.exact else f"{self.draws} random"
        return f"effect > {q:g}th percentile of {sets} sets of {len(self.heads)} head(s)"


def comparison_frame(comparisons: Mapping[str, RandomComparison], q: float = 95.0):
    """The comparisons as a pandas DataFrame indexed by label: heads, effect, the random sets' mean and
    ``q``-th percentile, the effect's percentile among them, p, sets, verdict (effect above that percentile)."""
    import pandas as pd

    rows = []
    for label, c in comparisons.items():
        rows.append({"heads ablated": label, "heads": len(c.heads), "effect": fmt(c.effect), "random mean": fmt(c.random_mean),
                     f"random {q:g}th pct": fmt(c.quantile(q)), "percentile": f"{c.percentile:.0f}", "p": f"{c.p_value:.3f}",
                     "sets": f"{c.draws}{' (all)' if c.exact else ''}", "verdict": "supported" if c.exceeds(q) else "not supported"})
    return pd.DataFrame(rows).set_index("heads ablated")


def random_head_sets(pool: Sequence[tuple[int, int]], size: int, draws: int, seed: int,
                     exclude: Sequence[tuple[int, int]] | None = None) -> tuple[list[tuple[tuple[int, int], ...]], bool]:
    """``draws`` distinct sets of ``size`` heads from ``pool`` (seeded), or every such set when there
    are at most ``draws``; never the set ``exclude`` (the chosen one); and whether the list is exhaustive."""
    pool = sorted(pool)
    if not 0 < size <= len(pool):
        raise bad_argument(InvalidInputError, "heads", f"between 1 and {len(pool)} heads (the pool to draw from)", size, raw=True)
    skip = tuple(sorted(exclude)) if exclude is not None else None
    if math.comb(len(pool), size) - (skip is not None) <= draws:
        every = [s for s in combinations(pool, size) if s != skip]
        if not every:
            raise bad_argument(InvalidInputError, "heads", f"a set smaller than the whole pool of {len(pool)} heads (no other set to compare with)",
                               size, raw=True)
        return every, True
    rng = random.Random(seed)
    sets: list[tuple[tuple[int, int], ...]] = []
    seen = {skip}
    while len(sets) < draws:
        s = tuple(sorted(rng.sample(pool, size)))
        if s not in seen:
            seen.add(s)
            sets.append(s)
    return sets, False


def against_random(model: nn.Module, metric: Callable[[nn.Module], float], heads: HeadSpec, *, draws: int = 50, seed: int = 0,
                   how: str = "zero", reference: Any = None, layers: Sequence[int | str] | None = None,
                   progress: bool = False) -> RandomComparison:
    """The effect of ablating ``heads`` together on ``metric`` beside random sets of as many heads,
    drawn from every head of ``layers`` (default: all attention layers) other than the chosen set;
    ``draws`` ≥ 20 (see the module docstring for the percentile, the p-value and the rule)."""
    draws = checks.integer("draws", draws, minimum=MIN_DRAWS)
    sites = _sites(model)
    chosen = resolve_heads(model, heads, sites)
    pairs = [(i, h) for i, hs in chosen.items() for h in hs]
    pool_sites = sites if layers is None else [s for layer in layers for s in _layer_sites(sites, layer)]
    pool = [(sites.index(s), h) for s in pool_sites for h in range(s.n_heads or 0)]
    outside = [p for p in pairs if p not in pool]
    if outside:
        raise bad_argument(InvalidInputError, "heads", "heads inside the pool of layers drawn from", outside, raw=True)
    reference = _means(model, how, reference, sorted({i for i, _ in pool}))
    sets, exact = random_head_sets(pool, len(pairs), draws, seed, exclude=pairs)
    clean = _measure(metric, model)

    def effect(head_set: Sequence[tuple[int, int]]) -> float:
        with ablate(model, list(head_set), how=how, reference=reference):
            return _measure(metric, model) - clean

    chosen_effect = effect(pairs)
    random_effects = tuple(effect(s) for s in tqdm(sets, desc=f"random head sets ({how})", disable=not progress, leave=False))
    return RandomComparison(tuple((sites[i].name, h) for i, h in pairs), clean, chosen_effect, random_effects, exact, how)
