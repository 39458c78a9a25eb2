"""Seasonal forecasts (period estimate, repeat-last-period, seasonal average) and the draft a canvas is given."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook.errors import InvalidInputError
from attnbook.vitime.mapping import MappingConfig, future_draft, series_to_image, to_bins
from attnbook.vitime.model import ViTimeConfig
from attnbook.vitime.seasonal import repeat_last_period, seasonal_average


def test_seasonal_average_by_hand():
    x = np.array([9.0, 1, 2, 3, 5, 6, 7])  # period 3: the last two whole periods are (1, 2, 3) and (5, 6, 7)
    assert np.allclose(seasonal_average(x, 7, period=3), [3, 4, 5, 3, 4, 5, 3])
    assert np.allclose(seasonal_average(x, 3, period=4), [3, 5, 6])  # one whole period of 4: (3, 5, 6, 7)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(1, 10), st.integers(1, 200), st.integers(0, 2**31 - 1))
def test_seasonal_average_continues_an_exactly_periodic_series(period, extra, horizon, seed):
    rng = np.random.default_rng(seed)
    cycle = rng.normal(size=period)
    x = np.resize(cycle, period * 3 + extra)  # whole periods plus a partial one: the phase must follow the end
    future = np.resize(np.roll(cycle, -(len(x) % period)), horizon)
    assert np.allclose(seasonal_average(x, horizon, period=period), future)
    assert np.allclose(repeat_last_period(x, horizon, period=period), future)


def test_seasonal_average_divides_noise_by_the_number_of_periods():
    rng = np.random.default_rng(0)
    period, k = 20, 25
    clean = np.sin(2 * np.pi * np.arange(period * k) / period)
    errs_avg, errs_last = [], []
    for _ in range(50):
        x = clean + rng.normal(scale=0.5, size=clean.size)
        errs_avg.append(np.mean((seasonal_average(x, period, period=period) - clean[:period]) ** 2))
        errs_last.append(np.mean((repeat_last_period(x, period, period=period) - clean[:period]) ** 2))
    assert np.mean(errs_last) == pytest.approx(0.25, rel=0.2)
    assert np.mean(errs_avg) == pytest.approx(0.25 / k, rel=0.3)


def test_seasonal_average_estimates_the_period_and_equals_repeat_last_period_with_one_whole_period():
    n = np.arange(600)
    x = np.sin(2 * np.pi * n / 50)
    assert np.allclose(seasonal_average(x, 120), np.sin(2 * np.pi * np.arange(600, 720) / 50), atol=1e-9)
    y = np.random.default_rng(1).normal(size=30)
    assert np.allclose(seasonal_average(y, 9, period=20), repeat_last_period(y, 9, period=20))  # ⌊30/20⌋ = 1 period


@pytest.mark.parametrize("kwargs, match", [({"horizon": 0}, "horizon"), ({"period": 0}, "period"), ({"period": 101}, "period")])
def test_seasonal_average_errors(kwargs, match):
    x = np.sin(np.arange(100.0))
    with pytest.raises(InvalidInputError, match=match):
        seasonal_average(x, **{"horizon": 5, **kwargs})


def test_future_draft():
    blank = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=5)
    drafted = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=5, future_fill="seasonal average")
    x = np.sin(2 * np.pi * np.arange(24) / 6)
    assert future_draft(x, 40, blank) is None
    assert np.allclose(future_draft(x, 40, drafted), seasonal_average(x, 40))
    assert np.allclose(future_draft([1.0, 2.0, 4.0], 5, drafted), np.full(5, 7 / 3))  # too short for a period: the mean
    with pytest.raises(InvalidInputError, match="columns"):
        future_draft(x, 0, drafted)


def test_series_to_image_draws_the_draft_into_the_input_only():
    drafted = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=1, future_fill="seasonal average")
    blank = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=1)
    x = np.sin(2 * np.pi * np.arange(24) / 8)
    a, b = series_to_image(x, 40, drafted), series_to_image(x, 40, blank)
    assert np.array_equal(a.target, b.target) and np.array_equal(a.image[:24], b.image[:24])
    assert not b.image[24:].any()
    lit = to_bins((seasonal_average(x, 40) - a.mu) / a.sigma, drafted)
    assert np.array_equal(a.image[24:].argmax(-1), lit) and np.allclose(a.image[24:].sum(-1), drafted.blur_gain)


@pytest.mark.parametrize("make", [lambda: MappingConfig(future_fill="zeros"), lambda: ViTimeConfig(future_fill="mean")])
def test_unknown_future_fill_is_refused(make):
    with pytest.raises(InvalidInputError, match="future_fill"):
        make()


def test_a_model_refuses_a_mapping_with_another_future_fill():
    config = ViTimeConfig(future_fill="seasonal average")
    assert config.mapping().future_fill == "seasonal average"
    with pytest.raises(InvalidInputError, match="mapping"):
        config.mapping(MappingConfig())
