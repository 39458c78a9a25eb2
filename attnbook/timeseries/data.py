"""Nine seeded time-series generators, each returning its series with the ground truth behind it.

A generator is a frozen dataclass of its parameters, checked on construction; ``generate(n, seed)``
draws ``n`` float64 values from ``np.random.default_rng(seed)`` (never the global RNG), so the same
parameters, ``n`` and ``seed`` always give the same series. In the formulas ``z_t ~ N(0, 1)``
i.i.d. Processes that need it (AR, GARCH) run a burn-in first, so the series starts near its
stationary distribution; the others start from 0 at ``t = -1``.

Families, in the order of ``GENERATORS``:

* noise-driven -- ``HeavyTailedAR1``, ``GARCH11``: the next value depends on the noise's size.
* shift-driven -- ``JumpDiffusion``, ``RegimeSwitching``, ``TrendBreaks``, ``RandomWalk``:
  shocks move the level (or slope) for good.
* pattern-driven -- ``SeasonTrendOutliers``, ``MultiSeasonality``: deterministic cycles plus noise.
* long memory -- ``OneOverFNoise``: power ``∝ 1/f^exponent``, correlations decay slowly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from scipy.signal import lfilter

from .. import checks
from ..errors import InvalidInputError, bad_argument

MIN_LENGTH = 200
BURN_IN = 500


@dataclass(frozen=True, eq=False)
class Series:
    """A generated series: ``values`` (float64, ``(n,)``), the generator's class ``name``, its
    ``family`` and the ``truth`` behind it (keys documented on each generator)."""

    values: np.ndarray
    name: str
    family: str
    truth: dict[str, Any]

    def __len__(self) -> int:
        return len(self.values)


# -- parameter checks --------------------------------------------------------------------------
def _period(name: str, value: Any) -> int:
    return checks.integer(name, value, minimum=2)


def _sequence(name: str, value: Any, minimum: int = 1) -> tuple:
    try:
        items = tuple(value)
    except TypeError:
        raise bad_argument(InvalidInputError, name, f"a sequence of at least {minimum} values", value) from None
    if len(items) < minimum:
        raise bad_argument(InvalidInputError, name, f"a sequence of at least {minimum} values", value)
    return items


def _check_call(n: Any, seed: Any) -> np.random.Generator:
    checks.integer("n", n, minimum=MIN_LENGTH)
    return np.random.default_rng(checks.integer("seed", seed, minimum=0))


def _positions(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


class _Generator:
    family: ClassVar[str]

    def _series(self, values: np.ndarray, **truth: Any) -> Series:
        return Series(np.asarray(values, dtype=np.float64), type(self).__name__, self.family, truth)


# -- noise-driven ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeavyTailedAR1(_Generator):
    """AR(1) with Student-t shocks: ``x_t = φ x_{t−1} + σ ε_t``, ``ε_t ~ Student-t(ν)``.

    Needs ``|φ| < 1``, ``σ > 0``, ``ν > 2`` (finite variance). Truth: ``"innovations"`` (the
    ``σ ε_t``), ``"spikes"`` (positions where ``|ε_t| > spike_threshold``).
    """

    phi: float = 0.8
    sigma: float = 1.0
    nu: float = 3.0
    spike_threshold: float = 4.0
    family: ClassVar[str] = "noise-driven"

    def __post_init__(self) -> None:
        if abs(checks.real("phi", self.phi)) >= 1:
            raise bad_argument(InvalidInputError, "phi", "|phi| < 1 (a stationary AR(1))", self.phi)
        checks.positive("sigma", self.sigma)
        if checks.real("nu", self.nu) <= 2:
            raise bad_argument(InvalidInputError, "nu", "degrees of freedom > 2 (finite variance)", self.nu)
        checks.positive("spike_threshold", self.spike_threshold)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        # burn-in until the start x_{−1} = 0 is forgotten: φ^burn < 1e-6
        burn = max(BURN_IN, math.ceil(math.log(1e-6) / math.log(abs(self.phi)))) if self.phi else BURN_IN
        eps = rng.standard_t(self.nu, size=burn + n)
        shocks = self.sigma * eps
        x = lfilter([1.0], [1.0, -self.phi], shocks)  # x_t = φ x_{t−1} + shock_t
        spikes = _positions(np.abs(eps[burn:]) > self.spike_threshold)
        return self._series(x[burn:], innovations=shocks[burn:], spikes=spikes)


@dataclass(frozen=True)
class GARCH11(_Generator):
    """GARCH(1,1) returns: ``r_t = σ_t z_t``, ``σ_t² = ω + α r_{t−1}² + β σ_{t−1}²``.

    Needs ``ω > 0``, ``α, β >= 0``, ``α + β < 1`` (finite unconditional variance
    ``ω / (1 − α − β)``, where the recursion starts before its burn-in). Truth: ``"volatility"``
    (the ``σ_t``).
    """

    omega: float = 0.05
    alpha: float = 0.1
    beta: float = 0.85
    family: ClassVar[str] = "noise-driven"

    def __post_init__(self) -> None:
        checks.positive("omega", self.omega)
        checks.non_negative("alpha", self.alpha)
        checks.non_negative("beta", self.beta)
        if self.alpha + self.beta >= 1:
            raise bad_argument(InvalidInputError, "alpha + beta", "a sum < 1 (stationary variance)", self.alpha + self.beta)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        z = rng.standard_normal(BURN_IN + n)
        r = np.empty_like(z)
        sig = np.empty_like(z)
        var = self.omega / (1 - self.alpha - self.beta)
        prev_r2 = var
        for t, zt in enumerate(z):
            var = self.omega + self.alpha * prev_r2 + self.beta * var
            sig[t] = math.sqrt(var)
            r[t] = sig[t] * zt
            prev_r2 = r[t] * r[t]
        return self._series(r[BURN_IN:], volatility=sig[BURN_IN:])


# -- shift-driven ------------------------------------------------------------------------------
@dataclass(frozen=True)
class JumpDiffusion(_Generator):
    """Random walk with rare large jumps: ``x_t = x_{t−1} + μ + s z_t + J_t``, ``x_{−1} = 0``.

    ``J_t`` is the sum of ``N_t ~ Poisson(λ)`` jumps, each ``~ N(0, jump_scale²)`` (keep
    ``jump_scale ≫ s`` so jumps stand out). Truth: ``"jumps"`` (positions with ``N_t > 0``),
    ``"jump_sizes"`` (``J_t`` at those positions).
    """

    mu: float = 0.0
    sigma: float = 0.2
    jump_rate: float = 0.01
    jump_scale: float = 3.0
    family: ClassVar[str] = "shift-driven"

    def __post_init__(self) -> None:
        checks.real("mu", self.mu)
        checks.positive("sigma", self.sigma)
        checks.non_negative("jump_rate", self.jump_rate)
        checks.positive("jump_scale", self.jump_scale)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        z = rng.standard_normal(n)
        counts = rng.poisson(self.jump_rate, size=n)
        jumps = np.sqrt(counts) * self.jump_scale * rng.standard_normal(n)  # sum of N_t normals
        x = np.cumsum(self.mu + self.sigma * z + jumps)
        where = _positions(counts > 0)
        return self._series(x, jumps=where, jump_sizes=jumps[where])


@dataclass(frozen=True)
class RegimeSwitching(_Generator):
    """Hidden Markov levels: ``x_t = levels[s_t] + noise · z_t``.

    ``s_t`` stays put with probability ``stay``, else moves to one of the other states uniformly;
    ``s_0`` is uniform. Mean run length ``1 / (1 − stay)``. ``noise = 0`` gives the bare levels.
    Truth: ``"regimes"`` (``s_t``), ``"switches"`` (positions ``t`` with ``s_t ≠ s_{t−1}``),
    ``"levels"``.
    """

    levels: tuple[float, ...] = (-2.0, 0.0, 2.0)
    stay: float = 0.98
    noise: float = 0.5
    family: ClassVar[str] = "shift-driven"

    def __post_init__(self) -> None:
        levels = _sequence("levels", self.levels, minimum=2)
        object.__setattr__(self, "levels", tuple(checks.real(f"levels[{i}]", v) for i, v in enumerate(levels)))
        checks.probability("stay", self.stay)
        checks.non_negative("noise", self.noise)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        k = len(self.levels)
        first = rng.integers(k)
        moves = rng.random(n) >= self.stay
        moves[0] = False
        offsets = rng.integers(1, k, size=n)  # a move to another state, uniformly
        regimes = ((first + np.cumsum(moves * offsets)) % k).astype(np.int64)
        x = np.asarray(self.levels)[regimes] + self.noise * rng.standard_normal(n)
        switches = _positions(np.diff(regimes, prepend=regimes[0]) != 0)
        return self._series(x, regimes=regimes, switches=switches, levels=self.levels)


@dataclass(frozen=True)
class TrendBreaks(_Generator):
    """Piecewise-linear trend with random breaks: ``x_t = trend_t + noise · z_t``.

    ``trend_0 = 0``, ``trend_t = trend_{t−1} + slope_{segment(t)}``; each step ``t >= 1`` starts a
    new segment with probability ``break_rate``, every segment's slope ``~ N(0, slope_scale²)``
    (the trend is continuous, only its slope jumps). Truth: ``"breaks"`` (first position of each
    new segment), ``"slopes"`` (one per segment, ``len(breaks) + 1``), ``"trend"``.
    """

    break_rate: float = 0.01
    slope_scale: float = 0.05
    noise: float = 0.3
    family: ClassVar[str] = "shift-driven"

    def __post_init__(self) -> None:
        checks.probability("break_rate", self.break_rate)
        checks.positive("slope_scale", self.slope_scale)
        checks.non_negative("noise", self.noise)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        is_break = rng.random(n) < self.break_rate
        is_break[0] = False
        breaks = _positions(is_break)
        slopes = self.slope_scale * rng.standard_normal(len(breaks) + 1)
        per_step = slopes[np.cumsum(is_break)]
        per_step[0] = 0.0
        trend = np.cumsum(per_step)
        x = trend + self.noise * rng.standard_normal(n)
        return self._series(x, breaks=breaks, slopes=slopes, trend=trend)


@dataclass(frozen=True)
class RandomWalk(_Generator):
    """Gaussian random walk: ``x_t = x_{t−1} + drift + σ z_t``, ``x_{−1} = 0``, so
    ``Var(x_t) = (t + 1) σ²``. Every step shifts the level for good. Truth: ``"steps"``
    (``drift + σ z_t``)."""

    sigma: float = 1.0
    drift: float = 0.0
    family: ClassVar[str] = "shift-driven"

    def __post_init__(self) -> None:
        checks.positive("sigma", self.sigma)
        checks.real("drift", self.drift)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        steps = self.drift + self.sigma * rng.standard_normal(n)
        return self._series(np.cumsum(steps), steps=steps)


# -- pattern-driven ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SeasonTrendOutliers(_Generator):
    """Season + trend + noise + outliers: ``x_t = A sin(2πt/P) + slope · t + noise · z_t + o_t``.

    ``o_t`` is 0, except with probability ``outlier_rate`` per step, where it is
    ``± outlier_scale · (1 + |N(0, 1)|)`` (random sign), so every outlier is at least
    ``outlier_scale`` away. Truth: ``"outliers"`` (positions), ``"periods"`` (``(P,)``),
    ``"clean"`` (``A sin(2πt/P) + slope · t``, without noise or outliers).
    """

    period: int = 25
    amplitude: float = 2.0
    slope: float = 0.005
    noise: float = 0.3
    outlier_rate: float = 0.01
    outlier_scale: float = 5.0
    family: ClassVar[str] = "pattern-driven"

    def __post_init__(self) -> None:
        _period("period", self.period)
        checks.positive("amplitude", self.amplitude)
        checks.real("slope", self.slope)
        checks.non_negative("noise", self.noise)
        checks.probability("outlier_rate", self.outlier_rate)
        checks.positive("outlier_scale", self.outlier_scale)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        t = np.arange(n, dtype=np.float64)
        clean = self.amplitude * np.sin(2 * np.pi * t / self.period) + self.slope * t
        noise = self.noise * rng.standard_normal(n)
        hit = rng.random(n) < self.outlier_rate
        sizes = rng.choice([-1.0, 1.0], size=n) * self.outlier_scale * (1 + np.abs(rng.standard_normal(n)))
        x = clean + noise + np.where(hit, sizes, 0.0)
        return self._series(x, outliers=_positions(hit), periods=(int(self.period),), clean=clean)


@dataclass(frozen=True)
class MultiSeasonality(_Generator):
    """Several cycles: ``x_t = Σ_k A_k sin(2πt/P_k + φ_k) + noise · z_t``, ``φ_k ~ U[0, 2π)`` from
    the seed. Truth: ``"periods"`` (tuple of ints), ``"phases"`` (the ``φ_k``)."""

    periods: tuple[int, ...] = (12, 30, 50)
    amplitudes: tuple[float, ...] = (1.0, 0.8, 0.6)
    noise: float = 0.2
    family: ClassVar[str] = "pattern-driven"

    def __post_init__(self) -> None:
        periods = tuple(_period(f"periods[{i}]", p) for i, p in enumerate(_sequence("periods", self.periods)))
        amplitudes = tuple(checks.positive(f"amplitudes[{i}]", a) for i, a in enumerate(_sequence("amplitudes", self.amplitudes)))
        if len(amplitudes) != len(periods):
            expected = f"one amplitude per period ({len(periods)})"
            raise bad_argument(InvalidInputError, "amplitudes", expected, f"{len(amplitudes)} amplitudes", raw=True)
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "amplitudes", amplitudes)
        checks.non_negative("noise", self.noise)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        t = np.arange(n, dtype=np.float64)
        phases = rng.uniform(0, 2 * np.pi, size=len(self.periods))
        x = sum(a * np.sin(2 * np.pi * t / p + ph) for a, p, ph in zip(self.amplitudes, self.periods, phases))
        x = x + self.noise * rng.standard_normal(n)
        return self._series(x, periods=self.periods, phases=phases)


# -- long memory -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneOverFNoise(_Generator):
    """Power-law noise: power spectrum ``S(f) ∝ 1 / f^exponent`` (0 white, 1 pink, 2 brown).

    ``X(f) = rfft(z)(f) · f^(−exponent/2)`` with ``X(0) = 0``, ``x = irfft(X)``, then rescaled
    to mean 0 and standard deviation ``sigma``. Truth: ``"exponent"``.
    """

    exponent: float = 1.0
    sigma: float = 1.0
    family: ClassVar[str] = "long memory"

    def __post_init__(self) -> None:
        checks.non_negative("exponent", self.exponent)
        checks.positive("sigma", self.sigma)

    def generate(self, n: int, seed: int) -> Series:
        rng = _check_call(n, seed)
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n)
        gain = np.zeros_like(f)
        gain[1:] = f[1:] ** (-self.exponent / 2)
        x = np.fft.irfft(spectrum * gain, n)
        x = self.sigma * (x - x.mean()) / x.std()
        return self._series(x, exponent=float(self.exponent))


# -- registry ----------------------------------------------------------------------------------
GENERATORS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        HeavyTailedAR1,
        GARCH11,
        JumpDiffusion,
        RegimeSwitching,
        TrendBreaks,
        RandomWalk,
        SeasonTrendOutliers,
        MultiSeasonality,
        OneOverFNoise,
    )
}
FAMILIES: dict[str, str] = {name: cls.family for name, cls in GENERATORS.items()}


def make(name: str, **params: Any):
    """The generator called ``name`` (a key of ``GENERATORS``) with ``params`` over its defaults."""
    if name not in GENERATORS:
        raise bad_argument(InvalidInputError, "name", f"one of {list(GENERATORS)}", name)
    cls = GENERATORS[name]
    known = [f.name for f in fields(cls)]
    for key in params:
        if key not in known:
            expected = f"a parameter of {name} ({', '.join(known)})"
            raise bad_argument(InvalidInputError, key, expected, f"unknown parameter {key!r}", raw=True)
    return cls(**params)
