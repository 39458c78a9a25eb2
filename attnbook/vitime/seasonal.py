"""Seasonal forecasts from one history: the period estimate and the two seasonal baselines.

The period ``P`` is the lag of the highest peak of the history's sample autocorrelation
(:func:`estimate_period`). From it, :func:`repeat_last_period` repeats the last ``P`` samples
(seasonal naive) and :func:`seasonal_average` repeats the average of the history's last
``k = ⌊T/P⌋`` whole periods. The second is also the draft that a ``future_fill="seasonal average"``
canvas draws into its future columns (:mod:`attnbook.vitime.mapping`).
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np

from .. import checks
from ..errors import InvalidInputError, bad_argument

__all__ = ["estimate_period", "repeat_last_period", "seasonal_average"]


def estimate_period(history: Any, min_period: int = 2, max_period: int | None = None) -> int:
    """The lag of the highest autocorrelation peak of ``history`` in ``[min_period, max_period]``
    (default half its length): a local maximum of the sample ACF; the largest ACF value when
    there is no local maximum."""
    x = np.asarray(history, dtype=np.float64)
    if x.ndim != 1 or len(x) < 8 or not np.isfinite(x).all():
        raise bad_argument(InvalidInputError, "history", "a finite 1-D series of at least 8 samples", x.shape, raw=True)
    max_period = len(x) // 2 if max_period is None else int(max_period)
    if isinstance(min_period, bool) or not isinstance(min_period, Integral) or not 1 <= min_period < max_period < len(x):
        raise bad_argument(InvalidInputError, "min_period/max_period", f"1 <= min_period < max_period < {len(x)}", (min_period, max_period), raw=True)
    x = x - x.mean()
    denom = float(x @ x) or 1.0
    acf = np.array([float(x[:-k] @ x[k:]) / denom for k in range(1, max_period + 2)])  # acf[k-1] = lag k
    candidates = [k for k in range(min_period, max_period + 1) if acf[k - 1] >= acf[k - 2] and acf[k - 1] >= acf[k]]
    if not candidates:
        candidates = list(range(min_period, max_period + 1))
    return max(candidates, key=lambda k: acf[k - 1])


def _period(x: np.ndarray, horizon: Any, period: int | None) -> tuple[int, int]:
    horizon = checks.positive_int("horizon", horizon)
    period = estimate_period(x) if period is None else period
    return horizon, checks.integer("period", period, minimum=1, maximum=len(x))


def repeat_last_period(history: Any, horizon: int, period: int | None = None) -> np.ndarray:
    """Seasonal-naive forecast: the last ``period`` samples of the history repeated
    (``period`` None: :func:`estimate_period` of the history)."""
    x = np.asarray(history, dtype=np.float64)
    horizon, period = _period(x, horizon, period)
    return np.resize(x[-period:], horizon)


def seasonal_average(history: Any, horizon: int, period: int | None = None) -> np.ndarray:
    """Seasonal-average forecast: the last ``k = ⌊T/P⌋`` whole periods of the ``T``-sample history
    averaged phase by phase, ``s_j = (1/k) Σ_{i=1..k} x[T − i·P + j]`` (``j < P``), and repeated:
    ``ŷ[h] = s[h mod P]`` (``period`` None: :func:`estimate_period`). With ``k = 1`` it is
    :func:`repeat_last_period`; averaging ``k`` periods divides white noise's variance by ``k``."""
    x = np.asarray(history, dtype=np.float64)
    horizon, period = _period(x, horizon, period)
    k = len(x) // period
    return np.resize(x[len(x) - k * period:].reshape(k, period).mean(0), horizon)
