"""Supervised windows over a series, per-window normalisation, naive baselines, a chronological split.

``windows`` cuts a series into ``(input, target)`` pairs: input ``x[s : s + L]``, target
``x[s + L : s + L + H]`` for starts ``s = 0, stride, 2·stride, ...``. ``normalise`` rescales each
pair by its *input* window's mean and standard deviation. The baselines forecast from raw input
windows and give the errors any model has to beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import checks
from ..errors import InvalidInputError, bad_argument


def windows(values: Any, input_len: int = 100, horizon: int = 20, stride: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inputs, targets, starts)``: ``inputs[i] = values[s : s + input_len]``,
    ``targets[i] = values[s + input_len : s + input_len + horizon]`` with ``s = starts[i] = i · stride``.

    Shapes ``(N, input_len)``, ``(N, horizon)``, ``(N,)`` with
    ``N = (len(values) − input_len − horizon) // stride + 1``; a tail shorter than a stride is
    dropped. Needs a finite 1-D series of at least ``input_len + horizon`` values.
    """
    input_len = checks.positive_int("input_len", input_len)
    horizon = checks.positive_int("horizon", horizon)
    stride = checks.positive_int("stride", stride)
    x = checks.array("values", values, 1)
    total = input_len + horizon
    if len(x) < total:
        raise bad_argument(InvalidInputError, "values", f"at least input_len + horizon = {total} values", f"{len(x)} values", raw=True)
    pairs = sliding_window_view(x, total)[::stride]
    starts = np.arange(0, len(x) - total + 1, stride, dtype=np.int64)
    return pairs[:, :input_len].copy(), pairs[:, input_len:].copy(), starts


def normalise(
    inputs: Any, targets: Any | None = None, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """``(x, y, mean, std)`` with ``x = (inputs − mean) / std``, ``y = (targets − mean) / std``.

    ``mean`` and ``std`` (population, floored at ``eps``) are those of each *input* window, shape
    ``(N, 1)``; ``y`` is ``None`` when ``targets`` is. Each input window then has mean 0 and
    standard deviation 1 (a constant window maps to 0), so a model sees series whose level and
    scale drift (random walks, trends) on one scale and non-stationary series can train. Errors
    measured on ``y`` are in units of each window's standard deviation; ``denormalise`` maps
    forecasts back to the series' units.
    """
    x = checks.array("inputs", inputs, 2)
    eps = checks.positive("eps", eps)
    mean = x.mean(axis=1, keepdims=True)
    std = np.maximum(x.std(axis=1, keepdims=True), eps)
    y = None
    if targets is not None:
        t = checks.array("targets", targets, 2)
        if len(t) != len(x):
            raise bad_argument(InvalidInputError, "targets", f"{len(x)} windows (one per input)", f"{len(t)} windows", raw=True)
        y = (t - mean) / std
    return (x - mean) / std, y, mean, std


def denormalise(y: Any, mean: Any, std: Any) -> np.ndarray:
    """``y · std + mean``: normalised forecasts ``(N, horizon)`` back in the series' units
    (``mean``, ``std`` as returned by ``normalise``, shape ``(N, 1)`` or ``(N,)``)."""
    y = checks.array("y", y, 2)
    out = []
    for name, value in (("mean", mean), ("std", std)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.shape != (len(y), 1):
            raise bad_argument(InvalidInputError, name, f"shape ({len(y)}, 1) or ({len(y)},)", f"shape {arr.shape}", raw=True)
        out.append(arr)
    mean, std = out
    return y * std + mean


# -- naive baselines ---------------------------------------------------------------------------
def last_value(inputs: Any, horizon: int) -> np.ndarray:
    """Persistence: ``ŷ_{t+h} = x_t`` for every step ``h`` of the horizon; shape ``(N, horizon)``."""
    x = checks.array("inputs", inputs, 2)
    horizon = checks.positive_int("horizon", horizon)
    return np.repeat(x[:, -1:], horizon, axis=1)


def seasonal_naive(inputs: Any, horizon: int, period: int) -> np.ndarray:
    """Repeat the last cycle: ``ŷ_{t+h} = x_{t − period + 1 + ((h − 1) mod period)}``, ``h = 1..horizon``.

    ``period`` must be an integer in ``[1, input_len]``; ``period = 1`` is ``last_value``.
    """
    x = checks.array("inputs", inputs, 2)
    horizon = checks.positive_int("horizon", horizon)
    length = x.shape[1]
    period = checks.integer("period", period, minimum=1, maximum=length)
    cols = length - period + np.arange(horizon) % period
    return x[:, cols]


def window_mean(inputs: Any, horizon: int) -> np.ndarray:
    """Climatology of the window: ``ŷ_{t+h} = mean(x_{t−L+1..t})``; shape ``(N, horizon)``."""
    x = checks.array("inputs", inputs, 2)
    horizon = checks.positive_int("horizon", horizon)
    return np.repeat(x.mean(axis=1, keepdims=True), horizon, axis=1)


# -- split -------------------------------------------------------------------------------------
def disjoint_gap(input_len: int, horizon: int, stride: int = 1) -> int:
    """The smallest ``gap`` (in windows) after which no validation window shares a time step
    with any training window: ``ceil((input_len + horizon) / stride) − 1``."""
    input_len = checks.positive_int("input_len", input_len)
    horizon = checks.positive_int("horizon", horizon)
    stride = checks.positive_int("stride", stride)
    return -(-(input_len + horizon) // stride) - 1


def chronological_split(n_windows: int, val_fraction: float = 0.2, gap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: the last ``round(val_fraction · n_windows)`` windows (at least one)
    validate, the ``gap`` windows before them are dropped, the earlier ones train.

    Consecutive windows overlap, so with ``gap = 0`` the first validation inputs contain the
    last training targets: the model has been fitted to values it is then asked to read. With
    ``gap >= disjoint_gap(input_len, horizon, stride)`` (``input_len + horizon − 1`` windows at
    stride 1) validation windows share no time step with training windows.
    """
    n_windows = checks.integer("n_windows", n_windows, minimum=2)
    val_fraction = checks.interval("val_fraction", val_fraction, 0, 1, lo_open=True, hi_open=True)
    gap = checks.integer("gap", gap, minimum=0)
    n_val = max(1, round(n_windows * val_fraction))
    n_train = n_windows - n_val - gap
    if n_train < 1:
        raise bad_argument(
            InvalidInputError, "gap", f"room for at least one training window ({n_windows} windows, {n_val} for validation)", gap
        )
    return np.arange(n_train, dtype=np.int64), np.arange(n_windows - n_val, n_windows, dtype=np.int64)
