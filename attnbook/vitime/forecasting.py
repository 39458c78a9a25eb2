"""Does the mini ViTime forecast? Held-out series, baselines and a forecast table with intervals.

The test set is drawn from periods the pretraining never produced
(:attr:`~attnbook.vitime.realts.RealTSConfig.held_out_bands`); every series is scored by its mean
squared error over the horizon, and methods are compared **paired** over series (the same series
under every method), with a bootstrap interval over series for each ratio of mean errors.

Held-out series (:class:`HeldOutConfig`), at canvas resolution (one sample per column)::

    x(t) = Σ_k a_k · wave_k(t / P_k + φ_k)  [+ trend]  + ε,   P_k ~ U(band),  a_k ~ U(0.3, 1),  φ_k ~ U(0, 1)
    trend (share ``trend_share``): b · std(periodic) · t / W,  b ~ U(−2, 2)
    ε ~ N(0, σ_ε²),  σ_ε² = var(signal) · 10^(−snr_db / 10)

Baselines, each a function of the history alone:

- ``history mean``: the history's mean, flat;
- ``last value``: the history's last sample, flat;
- ``repeat last period``: the last ``P̂`` samples repeated, ``P̂`` the history's highest
  autocorrelation peak (:func:`attnbook.vitime.seasonal.estimate_period`);
- ``seasonal average``: the history's last ``⌊T/P̂⌋`` whole periods averaged and repeated
  (:func:`attnbook.vitime.seasonal.seasonal_average`) — the draft a ``"seasonal average"`` canvas
  gives the model, so a model that only copied its draft would score exactly this;
- ``linear``: one linear map from the normalised history to the normalised horizon (Zeng et al.
  2023), ridge least squares on pretraining series, ``ŷ = μ + σ · (W_lin (x − μ)/σ + b)``; the
  targets are clipped to ``±clip`` history standard deviations, the range the ViT's value bins
  cover (a random walk's far future would otherwise dominate the fit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .. import checks
from ..errors import InvalidInputError, bad_argument
from .seasonal import repeat_last_period, seasonal_average
from .mapping import MappingConfig, decode, normalisation
from .model import ViTime
from .realts import RealTSConfig, WAVES, _wave, batch_images, generate

__all__ = ["HeldOutConfig", "held_out_series", "LinearForecaster", "fit_linear", "baseline_forecasts", "model_forecasts",
           "errors", "CURVE", "held_out_monitor", "ratio_interval", "forecast_table", "BAR_FINDINGS", "BARS", "bar_verdicts", "bar_finding", "curve_levels"]


@dataclass(frozen=True)
class HeldOutConfig:
    """The held-out test set: ``n`` series with 1–``max_components`` waves whose periods lie in
    ``bands`` (samples), a ``trend_share`` of them with a linear trend, and white noise at
    ``snr_db`` (signal-to-noise ratio in dB). Drawn from ``seed``; ``length`` is the canvas width."""

    n: int = 64
    bands: tuple[tuple[float, float], ...] = ((42.0, 56.0), (76.0, 104.0))
    max_components: int = 2
    trend_share: float = 0.25
    snr_db: float = 10.0
    length: int = 1232
    seed: int = 20_250

    def __post_init__(self) -> None:
        checks.positive_int("n", self.n)
        checks.positive_int("max_components", self.max_components)
        checks.probability("trend_share", self.trend_share)
        checks.real("snr_db", self.snr_db)
        checks.integer("length", self.length, minimum=8)
        checks.integer("seed", self.seed, minimum=0)
        if not self.bands or any(len(b) != 2 or not 2.0 <= b[0] < b[1] for b in self.bands):
            raise bad_argument(InvalidInputError, "bands", "a non-empty tuple of (low, high) periods with 2 <= low < high", self.bands)

    def to_dict(self) -> dict:
        return asdict(self)


def held_out_series(config: HeldOutConfig | None = None) -> tuple[np.ndarray, list[dict]]:
    """``(config.n, config.length)`` float64 series and one record per series (periods, waves,
    trend, noise std) — reproducible from ``config.seed``."""
    config = HeldOutConfig() if config is None else config
    if not isinstance(config, HeldOutConfig):
        raise bad_argument(InvalidInputError, "config", "a HeldOutConfig", type(config).__name__, raw=True)
    rng = np.random.default_rng(config.seed)
    t = np.arange(config.length, dtype=np.float64)
    out, records = np.zeros((config.n, config.length)), []
    for i in range(config.n):
        periods, waves = [], []
        for _ in range(int(rng.integers(1, config.max_components + 1))):
            lo, hi = config.bands[int(rng.integers(0, len(config.bands)))]
            period = float(rng.uniform(lo, hi))
            kind = WAVES[int(rng.integers(0, len(WAVES)))] if rng.random() < 0.3 else "sine"
            out[i] += rng.uniform(0.3, 1.0) * _wave(kind, t / period + rng.random())
            periods.append(period)
            waves.append(kind)
        trend = 0.0
        if rng.random() < config.trend_share:
            trend = float(rng.uniform(-2.0, 2.0))
            out[i] += trend * out[i].std() * t / config.length
        noise = float(np.sqrt(out[i].var() * 10 ** (-config.snr_db / 10)))
        out[i] += rng.normal(0.0, noise, config.length)
        records.append({"periods": periods, "waves": waves, "trend": trend, "noise_std": noise})
    return out, records


def _split(series: Any, history_len: int) -> tuple[np.ndarray, np.ndarray]:
    x = checks.array("series", series)
    if x.ndim != 2 or not 8 <= history_len < x.shape[1]:
        raise bad_argument(InvalidInputError, "series", f"an array (n, length > history_len={history_len})", x.shape, raw=True)
    return x[:, :history_len], x[:, history_len:]


def _normalise(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = history.mean(1, keepdims=True)
    return mu, history.std(1, keepdims=True) + 1e-7


@dataclass
class LinearForecaster:
    """``ŷ = μ + σ · (W (x − μ)/σ + b)``: one linear map from the normalised history (``history_len``
    samples) to the horizon; ``weight`` ``(horizon, history_len)``, ``bias`` ``(horizon,)``."""

    weight: np.ndarray
    bias: np.ndarray
    n_train: int
    ridge: float

    def predict(self, history: Any) -> np.ndarray:
        x = checks.array("history", history)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.weight.shape[1]:
            raise bad_argument(InvalidInputError, "history", f"(n, {self.weight.shape[1]}) samples", x.shape, raw=True)
        mu, sd = _normalise(x)
        return mu + sd * ((x - mu) / sd @ self.weight.T + self.bias)


def fit_linear(data: RealTSConfig, history_len: int, *, n: int = 8192, ridge: float = 100.0, clip: float = 3.5,
               seed: int = 0) -> LinearForecaster:
    """Ridge least squares of the normalised horizon (clipped to ``±clip``) on the normalised
    history, over ``n`` pretraining series (``data``, seed ``seed``): ``W = Yᵀ X (XᵀX + ridge·I)⁻¹``
    (with a bias column)."""
    checks.positive("ridge", ridge)
    checks.positive("clip", clip)
    series = generate(checks.positive_int("n", n), data, seed=seed)
    hist, fut = _split(series, history_len)
    mu, sd = _normalise(hist)
    x = np.concatenate([(hist - mu) / sd, np.ones((len(hist), 1))], axis=1)
    y = np.clip((fut - mu) / sd, -clip, clip)
    gram = x.T @ x + float(ridge) * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, x.T @ y)  # (history_len + 1, horizon)
    return LinearForecaster(coef[:-1].T.copy(), coef[-1].copy(), int(n), float(ridge))


def baseline_forecasts(series: Any, history_len: int, linear: LinearForecaster | None = None) -> dict[str, np.ndarray]:
    """Each baseline's ``(n, horizon)`` forecast of ``series[:, history_len:]`` from its history."""
    hist, fut = _split(series, history_len)
    horizon = fut.shape[1]
    out = {
        "history mean": np.repeat(hist.mean(1, keepdims=True), horizon, 1),
        "last value": np.repeat(hist[:, -1:], horizon, 1),
        "repeat last period": np.stack([repeat_last_period(h, horizon) for h in hist]),
        "seasonal average": np.stack([seasonal_average(h, horizon) for h in hist]),
    }
    if linear is not None:
        out["linear"] = linear.predict(hist)
    return out


def model_forecasts(model: ViTime, series: Any, mapping: MappingConfig, *, batch: int = 16,
                    temperatures: Sequence[float] = ()) -> dict[str, np.ndarray]:
    """The model's ``(n, horizon)`` forecasts of canvas-resolution ``series`` ``(n, W)`` (one
    forward per series, history statistics as at inference): ``"model (argmax)"`` and ``"model
    (expectation)"``, plus ``"model (expectation, T=τ)"`` for each of ``temperatures`` (the softmax
    over value bins at ``logits / τ``; argmax does not depend on τ)."""
    hist, _ = _split(series, mapping.history_len)
    x, _ = batch_images(series, mapping)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model.logits(x[i:i + batch]) for i in range(0, len(x), batch)])[:, 0]
    mu, sd = np.array([normalisation(h, mapping) for h in hist]).T[:, :, None]  # the mapping's own μ, σ per series

    def series_of(probs: torch.Tensor, method: str) -> np.ndarray:
        return (decode(probs.numpy(), mapping, method=method) * sd + mu)[:, mapping.history_len:]

    probs = logits.softmax(-1)
    out = {"model (argmax)": series_of(probs, "argmax"), "model (expectation)": series_of(probs, "expectation")}
    for tau in temperatures:
        out[f"model (expectation, T={checks.positive('temperature', tau):g})"] = series_of((logits / tau).softmax(-1), "expectation")
    return out


def errors(forecasts: Mapping[str, np.ndarray], truth: Any) -> dict[str, np.ndarray]:
    """Per series, the mean squared error over the horizon of each forecast: ``{name: (n,)}``."""
    y = checks.array("truth", truth)
    return {name: ((np.asarray(f) - y) ** 2).mean(axis=1) for name, f in forecasts.items()}


#: the name of :func:`held_out_monitor`'s learning curve in ``History.monitors``
CURVE = "held-out MSE ÷ history mean"


def held_out_monitor(config: HeldOutConfig, mapping: MappingConfig) -> dict[str, Callable[[ViTime], float]]:
    """A learning-curve monitor for :func:`attnbook.vitime.realts.pretrain`, ``{CURVE: fn}``: on
    the series of ``config``, the model's expectation-decoded mean squared error over the horizon
    divided by the history mean's, ``Σ_i MSE_i(model) / Σ_i MSE_i(history mean)``. Any other
    baseline's level on the same curve is ``Σ MSE(baseline) / Σ MSE(history mean)``, a constant.
    One forward per series per evaluation."""
    series, _ = held_out_series(config)
    truth = series[:, mapping.history_len:]
    reference = float(errors(baseline_forecasts(series, mapping.history_len), truth)["history mean"].mean())

    def ratio(model: ViTime) -> float:
        return float(errors(model_forecasts(model, series, mapping), truth)["model (expectation)"].mean()) / reference

    return {CURVE: ratio}


def ratio_interval(a: np.ndarray, b: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``mean(a) / mean(b)`` and its paired percentile-bootstrap interval over series
    (:func:`scipy.stats.bootstrap`, ``paired=True``: the same resampled series in both means)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise bad_argument(InvalidInputError, "a, b", "two paired 1-D arrays of per-series errors", (a.shape, b.shape), raw=True)
    res = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) / y.mean(axis), paired=True, vectorized=True,
                          n_resamples=resamples, confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    return float(a.mean() / b.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)


def forecast_table(errs: Mapping[str, np.ndarray], references: Sequence[str] = ("history mean", "repeat last period"), **kwargs: Any):
    """One row per method: mean MSE over series and, for each reference, the ratio of mean errors
    with its paired bootstrap interval (``kwargs`` go to :func:`ratio_interval`)."""
    import pandas as pd

    rows = []
    for name, e in errs.items():
        row: dict[str, Any] = {"method": name, "MSE": float(np.mean(e))}
        for ref in references:
            r, lo, hi = ratio_interval(e, errs[ref], **kwargs)
            row[f"÷ {ref}"], row[f"÷ {ref}, 95% CI"] = r, f"[{lo:.3f}, {hi:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


#: The issue's bars, fixed before results: quick ≤ 0.7 × history mean and < repeat last period;
#: full ≤ 0.8 × repeat last period (point ratios of mean MSE over the held-out series).
#: the registered finding that holds each profile's bars (:mod:`attnbook.registry`)
BAR_FINDINGS = {"quick": "vitime-harmonics/forecasts-held-out-series", "full": "vitime-harmonics/forecasts-held-out-series-full"}


def _bars(profile: str) -> tuple[tuple[str, str, float], ...]:
    from ..registry import spec

    return tuple((c.measure.removeprefix("÷ "), c.op, c.threshold) for c in spec(BAR_FINDINGS[profile]).rule.conditions)


#: each profile's bars as ``(reference, op, limit)``: the model's mean MSE ÷ the reference's, read from the registry
BARS: dict[str, tuple[tuple[str, str, float], ...]] = {profile: _bars(profile) for profile in BAR_FINDINGS}


def bar_verdicts(errs: Mapping[str, np.ndarray], profile: str, model: str = "model (expectation)") -> list[dict]:
    """Each bar of ``profile`` for ``model``: the measured ratio, its interval, and whether it holds."""
    if profile not in BARS:
        raise bad_argument(InvalidInputError, "profile", f"one of {sorted(BARS)}", profile)
    out = []
    for ref, op, limit in BARS[profile]:
        r, lo, hi = ratio_interval(errs[model], errs[ref])
        holds = r <= limit if op == "<=" else r < limit
        out.append({"bar": f"{model} ÷ {ref} {op} {limit:g}", "ratio": r, "low": lo, "high": hi, "holds": bool(holds)})
    return out


def bar_finding(errs: Mapping[str, np.ndarray], profile: str, model: str = "model (expectation)", control: str = "seasonal average"):
    """The bars of ``profile`` as their registered finding (:data:`BAR_FINDINGS`): the model's ratios to
    each bar's reference, against the same ratios of ``control`` (the seasonal-average draft the model
    is given: if it passed alone, the model passing would say nothing); the detail gives the model's
    paired 95 % bootstrap intervals."""
    from ..claims import fmt
    from ..registry import spec

    bars = bar_verdicts(errs, profile, model)  # refuses an unknown profile
    measures = [f"÷ {ref}" for ref, _, _ in BARS[profile]]
    control_ratio = {m: float(np.mean(errs[control])) / float(np.mean(errs[ref])) for m, (ref, _, _) in zip(measures, BARS[profile])}
    detail = "; ".join(f"{m} [{fmt(b['low'])}, {fmt(b['high'])}]" for m, b in zip(measures, bars)) + f" (paired 95 % CI, {len(errs[model])} series)"
    return spec(BAR_FINDINGS[profile]).result({m: b["ratio"] for m, b in zip(measures, bars)}, control_ratio, detail=detail)


def curve_levels(errs: Mapping[str, np.ndarray], profile: str, methods: Sequence[str] = ("repeat last period", "seasonal average")
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """On :data:`CURVE`'s scale (mean MSE ÷ the history mean's): each of ``methods``' level (those in
    ``errs``) and each bar of ``profile`` (``limit × Σ MSE(reference) / Σ MSE(history mean)``),
    as ``(levels, bars)``."""
    if profile not in BARS:
        raise bad_argument(InvalidInputError, "profile", f"one of {sorted(BARS)}", profile)
    scale = float(np.mean(errs["history mean"]))
    levels = {m: float(np.mean(errs[m])) / scale for m in methods if m in errs}
    bars = {f"bar: {op} {limit:g} × {ref}": limit * float(np.mean(errs[ref])) / scale for ref, op, limit in BARS[profile]}
    return levels, bars
