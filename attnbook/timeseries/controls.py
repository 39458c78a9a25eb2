"""Issue 31's controls for chapter 2, every comparison on independent series.

* **Baselines the forecaster should beat** (:class:`LinearAR`, :func:`baseline_units`): beside the
  naive forecasts (last value, window mean) the seasonal naive forecast at each known period, and a
  linear autoregression fitted by least squares on the run's normalised training windows (the same
  100 inputs, one linear map with an intercept per horizon step). All are scored on the **fresh
  series** of the causal section (:func:`attnbook.timeseries.causal.fresh_series`: seeds 10000 + i,
  never the training data's), one value per series: its MSE over its non-overlapping windows.
* **Q4's pseudo-switch control** (:func:`switch_windows`, :func:`pseudo_switch_windows`,
  :func:`post_switch_units`): the post-switch share ratio on fresh RegimeSwitching series whose input
  holds a switch in its last half, against the same test at a random position of fresh series of
  the **stationary twin** (the same generator with ``stay = 1``: one level, no switch), read by the
  twin's own trained forecaster (:func:`attnbook.timeseries.experiment.twin_configs`). Recency alone
  gives both the same ratio, so it cannot pass the finding.
* **Differences over independent units** (:func:`difference_interval`, :func:`paired_interval`,
  :func:`ratio_interval`): bootstrap intervals over fresh series (:mod:`attnbook.stats` for one
  sample; two independent samples resampled separately); a question whose interval holds its
  threshold is reported as not decided (:func:`undecided`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks, metrics, stats
from ..capture import capture
from ..errors import InvalidInputError, bad_argument
from .causal import EVAL_SEED, FreshSeries
from .data import make
from .windows import last_value, normalise, seasonal_naive, window_mean

__all__ = ["LinearAR", "naive_forecasts", "baseline_units", "model_units", "forecast_comparison", "SWITCH_SEED", "PSEUDO_SEED",
           "switch_windows", "pseudo_switch_windows", "post_switch_ratio", "post_switch_units", "window_maps", "window_entropy",
           "window_recency", "fresh_windows", "since_curve",
           "difference_interval", "paired_interval", "ratio_interval", "undecided"]

#: first generation seed of Q4's fresh RegimeSwitching series (series i: SWITCH_SEED + i)
SWITCH_SEED = 30_000
#: seed of the pseudo-switch positions drawn on the stationary twin's series
PSEUDO_SEED = 31_000


# -- baselines ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearAR:
    """A direct linear autoregression: ``ŷ = x · coef + intercept`` with ``coef`` ``(L, H)`` and
    ``intercept`` ``(H,)``, fitted by least squares on (normalised) training windows — one ordinary
    least-squares fit per horizon step on the same ``L`` inputs as the forecaster."""

    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def fit(cls, x, y) -> "LinearAR":
        """Least squares of ``y`` ``(N, H)`` on ``x`` ``(N, L)`` with an intercept; needs ``N > L``."""
        x = checks.array("x", np.asarray(x, dtype=np.float64), 2)
        y = checks.array("y", np.asarray(y, dtype=np.float64), 2)
        if len(y) != len(x):
            raise bad_argument(InvalidInputError, "y", f"{len(x)} rows (one per input window)", f"{len(y)} rows", raw=True)
        if len(x) <= x.shape[1]:
            raise bad_argument(InvalidInputError, "x", f"more windows than inputs ({x.shape[1]} + 1 unknowns per step)",
                               f"{len(x)} windows", raw=True)
        design = np.hstack([x, np.ones((len(x), 1))])
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        return cls(beta[:-1], beta[-1])

    def predict(self, x) -> np.ndarray:
        x = checks.array("x", np.asarray(x, dtype=np.float64), 2)
        if x.shape[1] != self.coef.shape[0]:
            raise bad_argument(InvalidInputError, "x", f"{self.coef.shape[0]} inputs per window", f"{x.shape[1]}", raw=True)
        return x @ self.coef + self.intercept


def naive_forecasts(x: np.ndarray, horizon: int, periods: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """The naive forecasts of input windows ``x``: last value, window mean and seasonal naive with each
    of ``periods`` that fits the input. All three commute with the per-window normalisation (an affine
    map of each window), so on normalised windows they give the normalised forecasts."""
    out = {"last value": last_value(x, horizon), "window mean": window_mean(x, horizon)}
    for p in periods:
        if p <= x.shape[1]:
            out[f"seasonal naive ({p})"] = seasonal_naive(x, horizon, p)
    return out


def _per_series(err: np.ndarray, fresh: FreshSeries) -> np.ndarray:
    return err.reshape(fresh.n_series, -1).mean(1)


def baseline_units(fresh: FreshSeries, periods: Sequence[int], ar: LinearAR) -> dict[str, np.ndarray]:
    """Each baseline's MSE per fresh series ``(n_series,)`` (normalised units): the naive forecasts
    (:func:`naive_forecasts`) and ``"linear AR"``."""
    x, y = fresh.x.double().numpy(), fresh.y.double().numpy()
    out = {k: _per_series((f - y) ** 2, fresh) for k, f in naive_forecasts(x, y.shape[1], periods).items()}
    out["linear AR"] = _per_series((ar.predict(x) - y) ** 2, fresh)
    return out


def model_units(model: torch.nn.Module, fresh: FreshSeries) -> np.ndarray:
    """The forecaster's MSE per fresh series (eval mode, no gradients)."""
    from .causal import series_mse

    return series_mse(model, fresh).numpy()


def forecast_comparison(model: np.ndarray, baselines: Mapping[str, np.ndarray], *, seed: int = 0) -> dict:
    """The forecaster (per-series MSE ``model``) and the linear AR against the best naive baseline
    (the naive entry of ``baselines`` with the lowest mean): for each, the ratio of mean MSEs with its
    bootstrap interval over the series (:func:`ratio_interval`) and the paired per-series difference
    (forecast − best naive) with its interval (:func:`paired_interval`); ``beats``: the difference's
    interval lies below 0. Also the forecaster ÷ linear AR ratio (shown, not a rule)."""
    naive = {k: v for k, v in baselines.items() if k != "linear AR"}
    best = min(naive, key=lambda k: float(np.mean(naive[k])))
    out = {"best naive": best, "best naive mse": float(np.mean(naive[best])), "series": int(len(model))}
    for who, units in (("forecaster", np.asarray(model, dtype=np.float64)), ("linear AR", np.asarray(baselines["linear AR"]))):
        ratio = float(units.mean() / naive[best].mean())
        low, high = ratio_interval(units, naive[best], seed=seed)
        dlow, dhigh = paired_interval(units - naive[best], seed=seed)
        out[who] = {"mse": float(units.mean()), "ratio": ratio, "ratio_low": low, "ratio_high": high,
                    "difference": float((units - naive[best]).mean()), "difference_low": dlow, "difference_high": dhigh,
                    "beats": bool(dhigh < 0)}
    out["forecaster ÷ linear AR"] = out["forecaster"]["mse"] / out["linear AR"]["mse"]
    return out


# -- intervals over independent units ----------------------------------------------------------------
def paired_interval(differences, *, seed: int = 0) -> tuple[float, float]:
    """95 % BCa bootstrap interval of the mean of per-series ``differences`` (:func:`attnbook.stats.bootstrap_interval`)."""
    return stats.bootstrap_interval(np.asarray(differences, dtype=np.float64), seed=seed)


def ratio_interval(a, b, *, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``mean(a) / mean(b)`` over paired units (series ``i`` gives ``a[i]``
    and ``b[i]``), resampling the series: :func:`attnbook.stats.bootstrap_interval` over the unit
    indices, the statistic reading both arrays at the resampled indices."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise bad_argument(InvalidInputError, "b", f"one value per unit of a ({a.shape})", b.shape, raw=True)

    def statistic(idx, axis=-1):
        i = np.asarray(idx).astype(int)
        return a[i].mean(axis=axis) / b[i].mean(axis=axis)

    return stats.bootstrap_interval(np.arange(len(a), dtype=np.float64), statistic, seed=seed, method="percentile")


def difference_interval(a, b, *, seed: int = 0, resamples: int = 2000, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a) − mean(b)`` for two independent samples of units
    (each resampled with replacement within itself, ``scipy.stats.bootstrap`` with two samples)."""
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or len(a) < 2 or len(b) < 2:
        raise bad_argument(InvalidInputError, "a, b", "two 1-D samples of at least 2 units each", (a.shape, b.shape), raw=True)
    res = bootstrap((a, b), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis), n_resamples=resamples,
                    confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed), vectorized=True, paired=False)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def undecided(low: float, high: float, threshold: float = 0.0, what: str = "difference") -> str:
    """The inconclusive reason when the interval ``[low, high]`` holds ``threshold`` (else "")."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"the {what}'s interval could not be computed"
    if low <= threshold <= high:
        return f"not decided: the {what}'s 95 % interval [{low:.3g}, {high:.3g}] holds {threshold:g}"
    return ""


# -- fresh windows with their truth ------------------------------------------------------------------
def fresh_windows(generator: str, n_series: int, seed: int, input_len: int = 100, horizon: int = 20,
                  **params) -> tuple[np.ndarray, list]:
    """The first input window (normalised, ``(n_series, input_len)``) of ``n_series`` independent
    series of ``generator`` (with ``params``), series ``i`` from seed ``seed + i``; and each series'
    generated :class:`~attnbook.timeseries.data.Series` (its truth)."""
    n_series = checks.positive_int("n_series", n_series)
    seed = checks.integer("seed", seed, minimum=1)
    length = max(input_len + horizon, 200)
    made = [make(generator, **params).generate(length, seed + i) for i in range(n_series)]
    x = normalise(np.stack([s.values[:input_len] for s in made]))[0]
    return x, made


def switch_windows(n_series: int, seed: int = SWITCH_SEED, input_len: int = 100) -> dict:
    """Q4's units: fresh RegimeSwitching series whose first input window holds a switch in its last half;
    ``x`` (those windows, normalised), ``switch`` (the last switch's key index, ``≥ input_len // 2``),
    ``seeds`` (their generation seeds) and ``drawn`` (series generated)."""
    x, made = fresh_windows("RegimeSwitching", n_series, seed, input_len)
    keep, where = [], []
    for i, s in enumerate(made):
        inside = s.truth["switches"][s.truth["switches"] < input_len]
        if len(inside) and inside.max() >= input_len // 2:
            keep.append(i)
            where.append(int(inside.max()))
    return {"x": x[keep], "switch": np.array(where, dtype=int), "seeds": [seed + i for i in keep], "drawn": n_series}


def pseudo_switch_windows(n_series: int, seed: int = EVAL_SEED, position_seed: int = PSEUDO_SEED, input_len: int = 100,
                          params: Mapping[str, float] | None = None) -> dict:
    """The pseudo-switch control's units: the first input window of ``n_series`` fresh series of the
    stationary twin (RegimeSwitching with ``params``, default ``stay = 1``: no switch, checked), each
    with a pseudo-switch at a random key in the last half of the window (uniform over
    ``input_len // 2 … input_len − 1``, from ``position_seed``), as :func:`switch_windows` returns them."""
    params = dict(params or {"stay": 1.0})
    x, made = fresh_windows("RegimeSwitching", n_series, seed, input_len, **params)
    if any(len(s.truth["switches"]) for s in made):
        raise bad_argument(InvalidInputError, "params", "a RegimeSwitching twin without switches (stay = 1)", params)
    where = np.random.default_rng(position_seed).integers(input_len // 2, input_len, size=n_series)
    return {"x": x, "switch": where.astype(int), "seeds": [seed + i for i in range(n_series)], "drawn": n_series}


def post_switch_ratio(last_row: torch.Tensor, switch: np.ndarray) -> np.ndarray:
    """Per window: the attention share of the last query (``last_row`` ``(windows, keys)``, rows sum
    to 1) on keys at or after ``switch``, divided by the post-switch share of keys (1 = no preference)."""
    K = last_row.shape[-1]
    switch = np.asarray(switch, dtype=int)
    if len(switch) != len(last_row) or np.any(switch < 1) or np.any(switch >= K):
        raise bad_argument(InvalidInputError, "switch", f"one key index in 1 … {K - 1} per window", switch, raw=True)
    post = torch.arange(K)[None, :] >= torch.as_tensor(switch)[:, None]
    return ((last_row * post).sum(1) / (post.sum(1) / K)).double().numpy()


def _last_row(model: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    from .experiment import attention

    w = attention(model, torch.tensor(x, dtype=torch.float32))  # (layers, windows, heads, queries, keys)
    return w[:, :, :, -1, :].mean(dim=(0, 2))


def post_switch_units(model: torch.nn.Module, units: Mapping) -> dict:
    """Q4's measure on ``units`` (:func:`switch_windows` or :func:`pseudo_switch_windows`): the
    per-window post-switch share ratios (one per series), their mean and its bootstrap interval."""
    ratios = post_switch_ratio(_last_row(model, units["x"]), units["switch"])
    low, high = paired_interval(ratios)
    return {"ratio": float(ratios.mean()), "low": low, "high": high, "series": int(len(ratios)), "ratios": ratios.tolist(),
            "since": (units["x"].shape[1] - np.asarray(units["switch"])).tolist()}


def window_maps(model: torch.nn.Module, x: np.ndarray):
    """The :class:`~attnbook.maps.AttentionMaps` of ``model`` on normalised windows ``x``."""
    with torch.no_grad(), capture(model) as cap:
        model(torch.tensor(x, dtype=torch.float32))
    return cap.to_maps()


def window_entropy(maps) -> np.ndarray:
    """Normalised entropy per window (mean over layers, heads and queries)."""
    return metrics.entropy(maps, normalized=True).mean(dim=(0, 2)).double().numpy()


def window_recency(maps) -> np.ndarray:
    """Recency ratio per window (:func:`attnbook.metrics.recency_ratio`, mean over layers and heads)."""
    return metrics.recency_ratio(maps).nanmean(dim=(0, 2)).double().numpy()


def since_curve(result: Mapping, bins: Sequence[tuple[int, int]] = ((1, 10), (11, 25), (26, 50))) -> list[tuple[str, float, int]]:
    """Q4's ratios (:func:`post_switch_units`) binned by steps since the (pseudo-)switch:
    ``(label, mean ratio or nan, windows)`` per bin ``(first, last)``, both ends included."""
    ratios, since = np.asarray(result["ratios"], dtype=np.float64), np.asarray(result["since"])
    out = []
    for a, b in bins:
        inside = (since >= a) & (since <= b)
        out.append((f"{a}-{b}", float(ratios[inside].mean()) if inside.any() else float("nan"), int(inside.sum())))
    return out
