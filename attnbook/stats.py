"""The book's statistics: permutation p-values, corrections, intervals over independent units, power.

Every causal verdict of the book is a **one-sided permutation test** of one statistic ``t`` (a chosen
head set's ablation effect) against the same statistic on the other members of a null space (the head
sets it could have been: same size, by default the same number of heads per layer)::

    p = (1 + #{null ≥ t}) / (1 + n)                         n null draws (Phipson & Smyth 2010: never 0)

* **exact** — every other member of the space is drawn (``n = N − 1`` for a space of ``N`` sets), and
  ``p`` is the exact permutation p-value; its smallest reachable value is ``1 / N``;
* **Monte Carlo** with **sequential stopping** (Besag & Clifford 1991) — draws come one at a time; once
  ``h`` of them reach ``t`` the test stops at draw ``l`` with ``p = h / l`` (a clear null ends early);
  else it runs to ``n_max`` draws, ``p = (1 + #≥) / (1 + n_max)``; smallest reachable ``1 / (1 + n_max)``.

A test can only decide at level ``α / m`` (the strictest Holm threshold of a family of ``m``) when its
smallest reachable p is at most that; :func:`draws_for` gives the draws that make it so, and
:func:`can_decide` says whether a space is large enough. Families are corrected by Holm
(:func:`holm`, statsmodels' ``multipletests``); the findings page by Benjamini–Hochberg (:func:`bh`).

Several strata (generators × seeds, each with its own small null) are pooled by
:func:`combined_rank_test`: with ``k_s = 1 + #{null_s ≥ t_s}`` out of ``N_s`` (each uniform on
``1 … N_s`` under the null, independent across strata) the statistic is ``S = Σ_s k_s / N_s`` and
``p = P(S_null ≤ S)``, computed exactly by convolving the strata.

Effect sizes come with intervals over **independent units** (items, episodes, series):
:func:`bootstrap_interval` (scipy's ``bootstrap``, BCa), or :func:`block_bootstrap_interval` for one
autocorrelated series (a moving-block bootstrap of blocks of length ``b``; percentile interval).
:func:`detectable_effect` is the smallest effect a test could have declared:
``q_null(1 − α/m) + 0.84 · se`` — the null's critical value plus the effect's standard error times
``z_0.8`` (80 % power against a normal sampling error).

The permutation tests are written here rather than with ``scipy.stats.permutation_test`` because the
null spaces are stratified (layer-matched head sets) and drawn lazily with sequential stopping, which
scipy does not do; on an unstratified space the p-values equal scipy's (``tests/test_stats.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import checks
from .errors import InvalidInputError, OutOfRangeError, bad_argument

__all__ = ["ALPHA", "Z_POWER", "STOP_AFTER", "PermutationResult", "permutation_p", "exact_test", "sequential_test", "smallest_p", "draws_for",
           "can_decide", "holm", "bh", "combined_rank_test", "bootstrap_summary", "bootstrap_interval", "block_bootstrap_interval", "bootstrap_se",
           "detectable_effect"]

#: the book's level: one-sided decisions at adjusted p < 0.05
ALPHA = 0.05
#: z for 80 % power (the detectable effect's multiplier of the standard error)
Z_POWER = 0.84
#: Besag–Clifford's h: a Monte Carlo test stops once this many null draws reach the effect
STOP_AFTER = 10


def permutation_p(effect: float, null: Sequence[float]) -> float:
    """``(1 + #{null ≥ effect}) / (1 + n)``: the one-sided permutation p-value of ``effect`` among the
    ``n`` null values, the observed counted once among the values it could have been."""
    null = np.asarray(null, dtype=np.float64)
    if null.ndim != 1 or null.size == 0:
        raise bad_argument(InvalidInputError, "null", "one or more null values", null.shape, raw=True)
    return float((1 + np.sum(null >= effect)) / (1 + null.size))


@dataclass(frozen=True)
class PermutationResult:
    """One permutation test: the ``effect`` (the statistic on the chosen member), the ``null`` values
    drawn (in draw order), whether the draws were every other member (``exact``), the ``space`` (how
    many members the chosen one could have been, itself included), ``max_draws`` (the most draws the
    test was allowed; ``space − 1`` when exact), whether sequential stopping ended it (``stopped``) and
    its p-value ``p``."""

    effect: float
    null: tuple[float, ...]
    exact: bool
    space: int
    max_draws: int
    stopped: bool
    p: float

    @property
    def draws(self) -> int:
        """How many null members were measured."""
        return len(self.null)

    @property
    def smallest_p(self) -> float:
        """The smallest p this test could have given: ``1 / space`` exact, else ``1 / (1 + max_draws)``."""
        return smallest_p(self.space, self.max_draws)

    def quantile(self, q: float) -> float:
        """The null's ``q``-quantile (``0 ≤ q ≤ 1``; the nearest-rank, numpy's ``inverted_cdf``)."""
        return float(np.quantile(np.asarray(self.null), checks.interval("q", q, 0, 1), method="inverted_cdf"))


def smallest_p(space: int, max_draws: int | None = None) -> float:
    """The smallest reachable p of a test over a null space of ``space`` members (the chosen one
    included): ``1 / space`` when every other member is drawn, ``1 / (1 + max_draws)`` when fewer are."""
    space = checks.integer("space", space, minimum=2)
    if max_draws is None or max_draws >= space - 1:
        return 1.0 / space
    return 1.0 / (1 + checks.integer("max_draws", max_draws, minimum=1))


def draws_for(alpha: float = ALPHA, family: int = 1, margin: float = 2.0) -> int:
    """The fewest Monte Carlo draws whose smallest reachable p, ``1 / (1 + n)``, is at most
    ``α / (margin · m)`` — ``margin`` times below the strictest Holm threshold of a family of ``m``
    (``margin=2``: the test can decide with one exceedance to spare of resolution)."""
    alpha = checks.interval("alpha", alpha, 0, 1)
    family = checks.integer("family", family, minimum=1)
    return max(1, math.ceil(margin * family / alpha) - 1)


def can_decide(space: int, max_draws: int | None = None, alpha: float = ALPHA, family: int = 1) -> bool:
    """Whether a test over ``space`` members (at most ``max_draws`` drawn) can reach ``p ≤ α / m``."""
    return smallest_p(space, max_draws) <= alpha / checks.integer("family", family, minimum=1) + 1e-15


def exact_test(effect: float, null: Sequence[float]) -> PermutationResult:
    """The exact test: ``null`` is the statistic on every other member of the space."""
    null = tuple(float(v) for v in null)
    return PermutationResult(float(effect), null, True, len(null) + 1, len(null), False, permutation_p(effect, null))


def sequential_test(effect: float, draws: Iterable[float], max_draws: int, stop_after: int = STOP_AFTER, *,
                    space: int | None = None) -> PermutationResult:
    """A Monte Carlo test with Besag–Clifford stopping: take null values from ``draws`` (a lazy iterable:
    each value may cost a forward pass) until ``stop_after`` of them are ≥ ``effect`` (``p = h / l``,
    ``l`` draws so far) or ``max_draws`` are taken (``p = (1 + #≥) / (1 + max_draws)``). ``space``: the
    size of the null space (the chosen member included), when known; the draws are then distinct members."""
    max_draws = checks.integer("max_draws", max_draws, minimum=1)
    stop_after = checks.integer("stop_after", stop_after, minimum=1)
    effect = float(effect)
    null: list[float] = []
    reached = 0
    for value in draws:
        value = float(value)
        null.append(value)
        reached += value >= effect
        if reached >= stop_after:
            return PermutationResult(effect, tuple(null), False, space or max_draws + 1, max_draws, True, reached / len(null))
        if len(null) >= max_draws:
            break
    if len(null) < max_draws:
        raise bad_argument(InvalidInputError, "draws", f"at least max_draws = {max_draws} values", len(null), raw=True)
    return PermutationResult(effect, tuple(null), False, space or max_draws + 1, max_draws, False, (1 + reached) / (1 + max_draws))


def _adjust(p_values: Sequence[float], method: str) -> list[float]:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise bad_argument(InvalidInputError, "p_values", "p-values in [0, 1]", p_values)
    if p.size == 0:
        return []
    return [float(v) for v in multipletests(p, method=method)[1]]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (statsmodels ``multipletests(method="holm")``): with the raw p
    sorted ``p_(1) ≤ … ≤ p_(m)``, ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))``; controls the
    family-wise error rate. Decide at ``p̃ < α``."""
    return _adjust(p_values, "holm")


def bh(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (``multipletests(method="fdr_bh")``):
    ``p̃_(i) = min_{j ≥ i} min(1, m p_(j) / j)``; controls the false discovery rate."""
    return _adjust(p_values, "fdr_bh")


def combined_rank_test(exceedances: Sequence[int], spaces: Sequence[int]) -> tuple[float, float]:
    """Pool strata: stratum ``s`` has its chosen member ranked ``k_s = 1 + #{null_s ≥ t_s}`` among
    ``N_s`` (the exact test's numerator; uniform on ``1 … N_s`` under the null). Returns
    ``(p, smallest_p)`` for ``S = Σ k_s / N_s``: ``p = P(S_null ≤ S)`` with independent uniform ranks
    (exact, by convolution with rational arithmetic), and the smallest reachable ``Π 1 / N_s``."""
    ks = [checks.integer("exceedances", k, minimum=1) for k in exceedances]
    ns = [checks.integer("spaces", n, minimum=2) for n in spaces]
    if not ks or len(ks) != len(ns) or any(k > n for k, n in zip(ks, ns)):
        raise bad_argument(InvalidInputError, "exceedances", "one rank 1 ≤ k ≤ N per stratum", list(zip(ks, ns)), raw=True)
    observed = sum(Fraction(k, n) for k, n in zip(ks, ns))
    dist: dict[Fraction, Fraction] = {Fraction(0): Fraction(1)}
    for n in ns:
        step: dict[Fraction, Fraction] = {}
        for total, mass in dist.items():
            for k in range(1, n + 1):
                key = total + Fraction(k, n)
                if key <= observed:  # only the lower tail is needed
                    step[key] = step.get(key, Fraction(0)) + mass / n
        dist = step
    p = float(sum(dist.values()))
    return p, float(np.prod([1.0 / n for n in ns]))


def bootstrap_summary(units: Sequence[float], statistic: Callable = np.mean, *, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0, method: str = "BCa") -> tuple[float, float, float]:
    """``(low, high, se)`` from one ``scipy.stats.bootstrap`` run of ``statistic`` over independent
    ``units`` (one value per item, episode or series), seeded: the ``method`` interval (BCa by default)
    and the bootstrap standard error. ``(nan, nan, 0)`` for fewer than two units or when every unit is
    equal (no spread to resample)."""
    from scipy import stats

    x = np.asarray(units, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise bad_argument(InvalidInputError, "units", "a 1-D sequence of finite numbers", x.shape, raw=True)
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan, math.nan, 0.0
    res = stats.bootstrap((x,), statistic, confidence_level=checks.interval("confidence", confidence, 0, 1), n_resamples=resamples,
                          method=method, rng=np.random.default_rng(seed), vectorized=True, axis=-1)
    return float(res.confidence_interval.low), float(res.confidence_interval.high), float(res.standard_error)


def bootstrap_interval(units: Sequence[float], statistic: Callable = np.mean, *, confidence: float = 0.95, resamples: int = 2000,
                       seed: int = 0, method: str = "BCa") -> tuple[float, float]:
    """The interval of :func:`bootstrap_summary`."""
    return bootstrap_summary(units, statistic, confidence=confidence, resamples=resamples, seed=seed, method=method)[:2]


def bootstrap_se(units: Sequence[float], statistic: Callable = np.mean, *, resamples: int = 2000, seed: int = 0) -> float:
    """The bootstrap standard error of :func:`bootstrap_summary` (the resamples do not depend on the
    interval's method, so any method gives the same error)."""
    return bootstrap_summary(units, statistic, resamples=resamples, seed=seed, method="percentile")[2]


def block_bootstrap_interval(series: Sequence[float], block: int, statistic: Callable = np.mean, *, confidence: float = 0.95,
                             resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A moving-block bootstrap interval of ``statistic`` over one autocorrelated ``series`` (Künsch
    1989): each resample joins ``⌈n / b⌉`` blocks ``series[s : s + b]`` with starts drawn uniformly from
    ``0 … n − b``, cut to ``n``; the percentile interval of the statistic over ``resamples``. With
    ``b = 1`` it is the ordinary bootstrap; choose ``b`` beyond the series' correlation length."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise bad_argument(InvalidInputError, "series", "a 1-D sequence of finite numbers", x.shape, raw=True)
    block = checks.integer("block", block, minimum=1)
    if block > x.size:
        raise bad_argument(OutOfRangeError, "block", f"at most the series' length {x.size}", block)
    rng = np.random.default_rng(seed)
    count = math.ceil(x.size / block)
    starts = rng.integers(0, x.size - block + 1, size=(resamples, count))
    index = (starts[..., None] + np.arange(block)).reshape(resamples, -1)[:, :x.size]
    values = np.array([statistic(x[i]) for i in index])
    tail = (1 - checks.interval("confidence", confidence, 0, 1)) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def detectable_effect(null: Sequence[float], se: float, alpha: float = ALPHA, family: int = 1) -> float:
    """The smallest effect the test could have declared with 80 % power: the null's ``1 − α/m``
    quantile (nearest rank) plus ``0.84 · se``, ``se`` the effect's bootstrap standard error."""
    null = np.asarray(null, dtype=np.float64)
    if null.size == 0:
        raise bad_argument(InvalidInputError, "null", "one or more null values", null.size)
    q = 1 - checks.interval("alpha", alpha, 0, 1) / checks.integer("family", family, minimum=1)
    return float(np.quantile(null, q, method="inverted_cdf")) + Z_POWER * float(se)
