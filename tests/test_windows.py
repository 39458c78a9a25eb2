"""Supervised windows, per-window normalisation, naive baselines and the chronological split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attnbook.errors import InvalidInputError
from attnbook.timeseries import (
    chronological_split,
    denormalise,
    disjoint_gap,
    last_value,
    normalise,
    seasonal_naive,
    window_mean,
    windows,
)

FAST = settings(max_examples=30, deadline=None)


def test_windows_small_example_by_hand():
    x = np.arange(10.0)
    inputs, targets, starts = windows(x, input_len=4, horizon=2, stride=2)
    assert inputs.shape == (3, 4) and targets.shape == (3, 2) and starts.shape == (3,)
    assert inputs.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert targets.tolist() == [[4, 5], [6, 7], [8, 9]]
    assert starts.tolist() == [0, 2, 4]
    assert inputs.dtype == np.float64 and inputs.flags.writeable


@given(n=st.integers(5, 60), input_len=st.integers(1, 10), horizon=st.integers(1, 5), stride=st.integers(1, 4))
@FAST
def test_windows_shapes_and_contents(n, input_len, horizon, stride):
    if n < input_len + horizon:
        return
    x = np.random.default_rng(n).standard_normal(n)
    inputs, targets, starts = windows(x, input_len, horizon, stride)
    count = (n - input_len - horizon) // stride + 1
    assert inputs.shape == (count, input_len) and targets.shape == (count, horizon)
    assert np.array_equal(starts, np.arange(count) * stride)
    for i, s in enumerate(starts):
        assert np.array_equal(inputs[i], x[s : s + input_len])
        assert np.array_equal(targets[i], x[s + input_len : s + input_len + horizon])


def test_windows_defaults():
    inputs, targets, starts = windows(np.zeros(130))
    assert inputs.shape == (11, 100) and targets.shape == (11, 20) and starts[-1] == 10


@pytest.mark.parametrize(
    "values, kwargs, argument, text",
    [
        (np.r_[np.zeros(20), np.nan, np.nan, np.nan], {}, "values", "3 NaN"),
        (np.r_[np.zeros(20), np.inf], {}, "values", "1 inf"),
        (np.zeros(9), {"input_len": 6, "horizon": 4}, "values", "10"),
        (np.zeros((4, 5)), {}, "values", "1-D"),
        (np.zeros(20), {"input_len": 0}, "input_len", "positive integer"),
        (np.zeros(20), {"input_len": 2.5}, "input_len", "positive integer"),
        (np.zeros(20), {"horizon": -1}, "horizon", "positive integer"),
        (np.zeros(20), {"stride": 0}, "stride", "positive integer"),
        (np.zeros(20), {"stride": True}, "stride", "positive integer"),
    ],
)
def test_windows_errors_name_the_argument(values, kwargs, argument, text):
    kwargs = {"input_len": 5, "horizon": 2, **kwargs}
    with pytest.raises(InvalidInputError, match=rf"^{argument}:") as info:
        windows(values, **kwargs)
    assert text in str(info.value)


def test_nan_message_exactly():
    with pytest.raises(InvalidInputError) as info:
        windows(np.r_[np.zeros(20), [np.nan] * 3], 5, 2)
    assert str(info.value) == "values: expected finite values, got 3 NaN"


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(
    inputs=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 12)), elements=finite),
    scale=st.floats(1e-3, 1e3),
)
@FAST
def test_normalise_round_trip(inputs, scale):
    targets = inputs[:, :1] * scale + 1.0
    x, y, mean, std = normalise(inputs, targets)
    assert mean.shape == std.shape == (len(inputs), 1) and (std >= 1e-8).all()
    assert np.allclose(denormalise(x, mean, std), inputs, rtol=1e-9, atol=1e-6)
    assert np.allclose(denormalise(y, mean, std), targets, rtol=1e-9, atol=1e-6)
    assert np.allclose(denormalise(y, mean[:, 0], std[:, 0]), targets, rtol=1e-9, atol=1e-6)


def test_normalised_windows_have_mean_zero_std_one():
    walk = np.cumsum(np.random.default_rng(0).standard_normal(600)) + 50.0
    inputs, targets, _ = windows(walk, 50, 10, 5)
    x, y, _, _ = normalise(inputs, targets)
    assert np.allclose(x.mean(axis=1), 0, atol=1e-12)
    assert np.allclose(x.std(axis=1, ddof=0), 1)  # the population std (ddof=0) is the one normalise divides by
    assert np.allclose(y, (targets - inputs.mean(1, keepdims=True)) / inputs.std(1, ddof=0, keepdims=True))
    assert normalise(inputs)[1] is None


def test_normalise_constant_window_and_errors():
    x, _, mean, std = normalise(np.full((2, 5), 3.0))
    assert np.array_equal(x, np.zeros((2, 5))) and np.all(std == 1e-8) and np.all(mean == 3.0)
    with pytest.raises(InvalidInputError, match="^inputs:"):
        normalise(np.zeros(5))
    with pytest.raises(InvalidInputError, match="^targets:"):
        normalise(np.zeros((2, 5)), np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match="^targets:.*NaN"):
        normalise(np.zeros((2, 5)), np.full((2, 2), np.nan))
    with pytest.raises(InvalidInputError, match="^eps:"):
        normalise(np.zeros((2, 5)), eps=0.0)
    with pytest.raises(InvalidInputError, match="^std:"):
        denormalise(np.zeros((2, 3)), np.zeros((2, 1)), np.ones((3, 1)))


def test_baselines_by_hand():
    inputs = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 7.0, 7.0]])
    assert last_value(inputs, 3).tolist() == [[4, 4, 4], [7, 7, 7]]
    assert window_mean(inputs, 2).tolist() == [[2.5, 2.5], [6, 6]]
    assert seasonal_naive(inputs, 5, 2).tolist() == [[3, 4, 3, 4, 3], [7, 7, 7, 7, 7]]
    assert seasonal_naive(inputs, 3, 4).tolist() == [[1, 2, 3], [5, 5, 7]]
    assert np.array_equal(seasonal_naive(inputs, 3, 1), last_value(inputs, 3))


def test_seasonal_naive_is_exact_on_a_periodic_series():
    period = 7
    x = np.tile(np.random.default_rng(0).standard_normal(period), 30)
    inputs, targets, _ = windows(x, input_len=21, horizon=10, stride=3)
    assert np.array_equal(seasonal_naive(inputs, 10, period), targets)
    assert np.abs(last_value(inputs, 10) - targets).mean() > 0.1


@pytest.mark.parametrize("period", [0, 5, 2.0, True])
def test_seasonal_naive_bad_period(period):
    with pytest.raises(InvalidInputError, match="^period:"):
        seasonal_naive(np.zeros((2, 4)), 3, period)


@pytest.mark.parametrize("fn", [last_value, window_mean])
def test_baseline_bad_horizon(fn):
    with pytest.raises(InvalidInputError, match="^horizon:"):
        fn(np.zeros((2, 4)), 0)


@given(n=st.integers(2, 500), frac=st.floats(0.01, 0.99), gap=st.integers(0, 50))
@FAST
def test_chronological_split(n, frac, gap):
    n_val = max(1, round(n * frac))
    if n - n_val - gap < 1:
        with pytest.raises(InvalidInputError, match="^gap:"):
            chronological_split(n, frac, gap)
        return
    train, val = chronological_split(n, frac, gap)
    assert len(val) == n_val and len(train) == n - n_val - gap
    assert np.array_equal(train, np.arange(len(train)))
    assert np.array_equal(val, np.arange(n - n_val, n))
    assert not set(train) & set(val)
    assert val[0] - train[-1] == gap + 1


def test_disjoint_gap_separates_train_and_val_in_time():
    x = np.arange(300.0)
    for stride in (1, 3, 7):
        inputs, targets, starts = windows(x, 20, 5, stride)
        train, val = chronological_split(len(starts), 0.3, disjoint_gap(20, 5, stride))
        seen = set(np.r_[inputs[train].ravel(), targets[train].ravel()])
        assert not seen & set(inputs[val].ravel())
        # one window less would overlap
        train, val = chronological_split(len(starts), 0.3, disjoint_gap(20, 5, stride) - 1)
        assert set(targets[train].ravel()) & set(inputs[val].ravel())
    assert disjoint_gap(100, 20) == 119


@pytest.mark.parametrize(
    "args, argument",
    [((1,), "n_windows"), ((10, 0.0), "val_fraction"), ((10, 1.0), "val_fraction"), ((10, 0.2, -1), "gap"), ((10, 0.2, 9), "gap")],
)
def test_chronological_split_errors(args, argument):
    with pytest.raises(InvalidInputError, match=rf"^{argument}:"):
        chronological_split(*args)
