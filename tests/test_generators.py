"""Time-series generators: each one's defining statistics, determinism, and validation errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks
from scipy.stats import kurtosis

from attnbook.errors import InvalidInputError
from attnbook.timeseries import (
    FAMILIES,
    GARCH11,
    GENERATORS,
    HeavyTailedAR1,
    JumpDiffusion,
    MultiSeasonality,
    OneOverFNoise,
    RandomWalk,
    RegimeSwitching,
    SeasonTrendOutliers,
    Series,
    TrendBreaks,
    make,
)

N = 5000


def acf1(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


def power(x: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(x - x.mean())) ** 2


def test_registry_order_families_and_series():
    assert list(GENERATORS) == [
        "HeavyTailedAR1",
        "GARCH11",
        "JumpDiffusion",
        "RegimeSwitching",
        "TrendBreaks",
        "RandomWalk",
        "SeasonTrendOutliers",
        "MultiSeasonality",
        "OneOverFNoise",
    ]
    assert set(FAMILIES.values()) == {"noise-driven", "shift-driven", "pattern-driven", "long memory"}
    for name, cls in GENERATORS.items():
        s = cls().generate(300, 1)
        assert isinstance(s, Series) and s.name == name and s.family == FAMILIES[name] == cls.family
        assert s.values.dtype == np.float64 and s.values.shape == (300,) and len(s) == 300
        assert np.isfinite(s.values).all()
        assert isinstance(make(name), cls)


@pytest.mark.parametrize("name", list(GENERATORS))
def test_same_seed_same_series_other_seed_differs(name):
    gen = make(name)
    a, b, c = gen.generate(400, 7), gen.generate(400, 7), gen.generate(400, 8)
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


def test_heavy_tailed_ar1():
    s = HeavyTailedAR1().generate(N, 0)
    eps = s.truth["innovations"]
    # excess (Fisher) kurtosis, named rather than taken from scipy's default: 0 for a Gaussian
    assert kurtosis(eps, fisher=True) > 6  # Student-t(3): heavy tails
    gaussian = HeavyTailedAR1(nu=1e6).generate(N, 0).truth["innovations"]
    assert abs(kurtosis(gaussian, fisher=True)) < 0.5
    assert abs(acf1(s.values) - 0.8) < 0.1
    # x_t − φ x_{t−1} recovers the innovations after the first step
    assert np.allclose(s.values[1:] - 0.8 * s.values[:-1], eps[1:])
    spikes = s.truth["spikes"]
    assert len(spikes) > 0
    big = np.abs(eps) > 4.0  # σ = 1
    assert np.array_equal(spikes, np.flatnonzero(big))


def test_garch11():
    s = GARCH11().generate(N, 0)
    r, vol = s.values, s.truth["volatility"]
    assert abs(acf1(r)) < 0.1
    assert acf1(r**2) > 0.05  # volatility clustering
    assert (vol > 0).all()
    high, low = vol > np.quantile(vol, 0.75), vol < np.quantile(vol, 0.25)
    assert np.abs(r[high]).mean() > 1.3 * np.abs(r[low]).mean()
    # σ_t² = ω + α r_{t−1}² + β σ_{t−1}²
    assert np.allclose(vol[1:] ** 2, 0.05 + 0.1 * r[:-1] ** 2 + 0.85 * vol[:-1] ** 2)


def test_jump_diffusion():
    s = JumpDiffusion().generate(N, 0)
    inc = np.diff(s.values, prepend=0.0)
    jumps = s.truth["jumps"]
    assert 20 <= len(jumps) <= 90  # λ = 0.01 on 5000 steps: ~50
    assert len(s.truth["jump_sizes"]) == len(jumps)
    others = np.setdiff1d(np.arange(N), jumps)
    assert np.median(np.abs(inc[jumps])) > 5 * np.median(np.abs(inc[others]))
    assert np.abs(inc[others]).max() < 1.0  # only s z_t, s = 0.2
    assert np.abs(inc[jumps] - s.truth["jump_sizes"]).max() < 1.0


def test_regime_switching():
    s = RegimeSwitching().generate(N, 0)
    regimes, switches, levels = s.truth["regimes"], s.truth["switches"], s.truth["levels"]
    assert levels == (-2.0, 0.0, 2.0)
    for k, level in enumerate(levels):
        assert (regimes == k).sum() > 200
        assert abs(s.values[regimes == k].mean() - level) < 0.2
    assert np.array_equal(switches, np.flatnonzero(np.diff(regimes)) + 1)
    runs = np.diff(np.r_[0, switches, N])
    assert 35 < runs.mean() < 70  # 1 / (1 − 0.98) = 50
    never = RegimeSwitching(stay=1.0).generate(300, 0)
    assert len(never.truth["switches"]) == 0
    always = RegimeSwitching(stay=0.0).generate(300, 0)
    assert np.array_equal(always.truth["switches"], np.arange(1, 300))


def test_trend_breaks():
    s = TrendBreaks().generate(N, 0)
    breaks, slopes, trend = s.truth["breaks"], s.truth["slopes"], s.truth["trend"]
    assert len(slopes) == len(breaks) + 1
    assert np.allclose(np.diff(trend), np.repeat(slopes, np.diff(np.r_[0, breaks, N]))[1:])
    bounds = np.r_[0, breaks, N]
    checked = 0
    for k in range(len(slopes)):
        lo, hi = bounds[k], bounds[k + 1]
        if hi - lo >= 50:
            fit = np.polyfit(np.arange(lo, hi), s.values[lo:hi], 1)[0]
            assert abs(fit - slopes[k]) < 0.02
            checked += 1
    assert checked >= 10


def test_random_walk_variance_grows_linearly():
    walks = np.stack([RandomWalk().generate(400, seed).values for seed in range(200)])
    ratio = walks[:, 399].var() / walks[:, 199].var()
    assert 1.4 < ratio < 2.6
    s = RandomWalk(drift=0.5).generate(400, 0)
    assert np.allclose(np.cumsum(s.truth["steps"]), s.values)
    assert abs(s.truth["steps"].mean() - 0.5) < 0.2


def test_season_trend_outliers():
    s = SeasonTrendOutliers().generate(N, 0)
    outliers, clean = s.truth["outliers"], s.truth["clean"]
    assert s.truth["periods"] == (25,)
    assert len(outliers) > 10
    resid = np.abs(s.values - clean)
    others = np.setdiff1d(np.arange(N), outliers)
    assert resid[outliers].min() > 3.0
    assert resid[others].max() < 2.0
    t = np.arange(N)
    detrended = s.values - np.polyval(np.polyfit(t, s.values, 1), t)
    p = power(detrended)
    assert np.argmax(p[1:]) + 1 == N // 25


def test_multi_seasonality_peaks():
    n = 3000  # a multiple of 12, 30 and 50: each period is exactly one bin
    s = MultiSeasonality().generate(n, 0)
    assert s.truth["periods"] == (12, 30, 50)
    assert len(s.truth["phases"]) == 3
    p = power(s.values)
    peaks, _ = find_peaks(p)
    top = sorted(peaks[np.argsort(p[peaks])[-3:]])
    expected = sorted(n // period for period in (12, 30, 50))
    assert all(abs(a - b) <= 1 for a, b in zip(top, expected))


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_one_over_f_spectral_slope(exponent):
    n = 4096
    f = np.fft.rfftfreq(n)[1:]
    slopes = []
    for seed in range(3):
        s = OneOverFNoise(exponent=exponent, sigma=2.0).generate(n, seed)
        assert abs(s.values.std() - 2.0) < 1e-9 and abs(s.values.mean()) < 1e-9
        assert s.truth["exponent"] == exponent
        slopes.append(np.polyfit(np.log(f), np.log(power(s.values)[1:]), 1)[0])
    assert abs(np.mean(slopes) + exponent) < 0.25


BAD_PARAMS = [
    ("HeavyTailedAR1", {"phi": 1.0}, "phi"),
    ("HeavyTailedAR1", {"phi": -1.2}, "phi"),
    ("HeavyTailedAR1", {"sigma": 0.0}, "sigma"),
    ("HeavyTailedAR1", {"sigma": -1.0}, "sigma"),
    ("HeavyTailedAR1", {"nu": 2.0}, "nu"),
    ("HeavyTailedAR1", {"nu": float("nan")}, "nu"),
    ("GARCH11", {"alpha": 0.2, "beta": 0.8}, "alpha + beta"),
    ("GARCH11", {"omega": 0.0}, "omega"),
    ("GARCH11", {"alpha": -0.1}, "alpha"),
    ("JumpDiffusion", {"sigma": -0.2}, "sigma"),
    ("JumpDiffusion", {"jump_rate": -0.1}, "jump_rate"),
    ("JumpDiffusion", {"jump_scale": 0.0}, "jump_scale"),
    ("RegimeSwitching", {"stay": 1.5}, "stay"),
    ("RegimeSwitching", {"stay": -0.1}, "stay"),
    ("RegimeSwitching", {"noise": -0.5}, "noise"),
    ("RegimeSwitching", {"levels": (1.0,)}, "levels"),
    ("TrendBreaks", {"break_rate": 2.0}, "break_rate"),
    ("TrendBreaks", {"slope_scale": 0.0}, "slope_scale"),
    ("RandomWalk", {"sigma": 0.0}, "sigma"),
    ("RandomWalk", {"drift": float("inf")}, "drift"),
    ("SeasonTrendOutliers", {"period": 0}, "period"),
    ("SeasonTrendOutliers", {"period": -25}, "period"),
    ("SeasonTrendOutliers", {"period": 2.5}, "period"),
    ("SeasonTrendOutliers", {"outlier_rate": 1.1}, "outlier_rate"),
    ("SeasonTrendOutliers", {"outlier_scale": -5.0}, "outlier_scale"),
    ("MultiSeasonality", {"periods": (12, 0, 50)}, "periods"),
    ("MultiSeasonality", {"amplitudes": (1.0, 0.8)}, "amplitudes"),
    ("MultiSeasonality", {"amplitudes": (1.0, -0.8, 0.6)}, "amplitudes"),
    ("OneOverFNoise", {"sigma": -1.0}, "sigma"),
    ("OneOverFNoise", {"exponent": -1.0}, "exponent"),
    ("RandomWalk", {"bogus": 1.0}, "bogus"),
    ("NoSuchGenerator", {}, "name"),
]


@pytest.mark.parametrize("name, params, argument", BAD_PARAMS)
def test_bad_parameters_raise_naming_the_parameter(name, params, argument):
    with pytest.raises(InvalidInputError, match=argument.replace("+", r"\+")) as info:
        make(name, **params)
    assert isinstance(info.value, ValueError)
    if name == "NoSuchGenerator":
        assert "HeavyTailedAR1" in str(info.value) and "OneOverFNoise" in str(info.value)


BAD_CALLS = [(199, 0, "n"), (0, 0, "n"), (300.0, 0, "n"), (True, 0, "n"), (300, -1, "seed"), (300, 1.5, "seed")]


@pytest.mark.parametrize("n, seed, argument", BAD_CALLS)
@pytest.mark.parametrize("name", list(GENERATORS))
def test_bad_length_or_seed(name, n, seed, argument):
    with pytest.raises(InvalidInputError, match=rf"^{argument}:"):
        make(name).generate(n, seed)
