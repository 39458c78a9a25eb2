"""ViTime's series ↔ image mapping: geometry, normalisation, binning, blur, decoding, round trips, errors."""

from __future__ import annotations

import argparse
import dataclasses
import re

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attnbook.errors import InvalidInputError
from attnbook.vitime.mapping import (
    DEFAULT,
    PRESETS,
    Mapped,
    MappingConfig,
    blur,
    crop_lookback,
    decode,
    gaussian_kernel,
    history_columns,
    image_to_series,
    normalisation,
    one_hot,
    resample,
    samples_per_column,
    samples_per_patch,
    series_to_image,
    to_bins,
)

FAST = settings(max_examples=25, deadline=None)
SMALL = MappingConfig(history_len=40, future_len=24, bins=16, patch=(4, 8), blur_kernel=5)


def blog_series(length: int, with_slow: bool = True) -> np.ndarray:
    """The seed's input: sin(n/10) + sin(n/5 + 50) + cos(n + 50) (without the first term in experiment 2)."""
    n = np.arange(length, dtype=np.float64)
    return (np.sin(n / 10) if with_slow else 0.0) + np.sin(n / 5 + 50) + np.cos(n + 50)


def smooth_series(length: int, periods: list[float], amps: list[float], phase: float, offset: float) -> np.ndarray:
    n = np.arange(length, dtype=np.float64)
    return offset + sum(a * np.sin(2 * np.pi * n / p + phase * (i + 1)) for i, (p, a) in enumerate(zip(periods, amps)))


# -- config ------------------------------------------------------------------------------------
def test_default_config_is_the_mini_strip_preset():
    c = DEFAULT
    assert (c.history_len, c.future_len, c.bins, c.patch, c.max_scal) == (512, 720, 64, (64, 16), 3.5)
    assert (c.width, c.grid_h, c.grid_w, c.n_tokens) == (1232, 1, 77, 77)
    assert c.bin_width == pytest.approx(7 / 63)
    assert c.blur_kernel == 15 and c.blur_sigma == pytest.approx(2.6) and c.blur_gain == 15.0
    assert c.decode == "argmax" and c.mu_norm is None and c.std_factor == 1.0 and c.std_eps == 1e-7
    assert PRESETS["strip"] is DEFAULT
    assert PRESETS["grid"].n_tokens == 4 * 77 and PRESETS["grid"].grid_h == 4
    off = PRESETS["official"]
    assert (off.width, off.bins, off.patch, off.grid_h, off.grid_w) == (2464, 128, (4, 32), 32, 77)
    assert off.n_tokens == 2464 and off.blur_sigma == pytest.approx(5.0) and off.blur_gain == 31.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.bins = 32  # type: ignore[misc]


def test_explicit_blur_scale_and_list_patch():
    c = MappingConfig(patch=[64, 16], blur_scale=2.5)
    assert c.patch == (64, 16) and c.blur_gain == 2.5 and hash(c) == hash(MappingConfig(blur_scale=2.5))


@pytest.mark.parametrize("container", [argparse.Namespace, dict])
def test_from_args_reads_an_official_args(container):
    fields = {"h": 128, "maxScal": 3.5, "size": [1024, 512, 1440], "patch_size": [4, 32], "dNorm": 1, "modelSize": 1}
    c = MappingConfig.from_args(argparse.Namespace(**fields) if container is argparse.Namespace else fields)
    assert c == dataclasses.replace(PRESETS["official"], blur_scale=31.0)
    assert c.blur_kernel == 31 and c.blur_gain == 31.0 and c.mu_norm is None
    expanded = MappingConfig.from_args(dict(fields, size=[256, 0, 360], expandData=2, muNorm=2, patch_size=16, h=64))
    assert (expanded.width, expanded.patch, expanded.mu_norm, expanded.bins) == (1232, (16, 16), 2.0, 64)


@pytest.mark.parametrize(
    "kwargs, argument, text",
    [
        ({"history_len": 0}, "history_len", "a positive integer"),
        ({"future_len": -1}, "future_len", "a positive integer"),
        ({"history_len": 2.0}, "history_len", "a positive integer"),
        ({"bins": 1}, "bins", "an integer >= 2"),
        ({"bins": True}, "bins", "an integer >= 2"),
        ({"patch": (3, 16)}, "patch", "dividing bins = 64"),
        ({"patch": (64, 15)}, "patch", "dividing the canvas width W = history_len + future_len = 1232"),
        ({"history_len": 500, "patch": (64, 16)}, "patch", "W = history_len + future_len = 1220"),
        ({"patch": (0, 16)}, "patch", "two positive integers"),
        ({"patch": (64, 16, 1)}, "patch", "two positive integers"),
        ({"patch": "ab"}, "patch", "two positive integers"),
        ({"patch": 16}, "patch", "two positive integers"),
        ({"max_scal": 0}, "max_scal", "a finite number > 0"),
        ({"max_scal": float("nan")}, "max_scal", "a finite number > 0"),
        ({"max_scal": -3.5}, "max_scal", "a finite number > 0"),
        ({"blur_kernel": 4}, "blur_kernel", "an odd positive integer"),
        ({"blur_kernel": 0}, "blur_kernel", "an odd positive integer"),
        ({"blur_scale": 0.0}, "blur_scale", "a finite number > 0"),
        ({"mu_norm": -2}, "mu_norm", "a finite number > 0"),
        ({"std_factor": 0}, "std_factor", "a finite number > 0"),
        ({"std_eps": 0.0}, "std_eps", "a finite number > 0"),
        ({"decode": "mean"}, "decode", "one of ('argmax', 'expectation')"),
    ],
)
def test_config_errors_name_the_argument(kwargs, argument, text):
    with pytest.raises(InvalidInputError, match=rf"^{argument}: expected .*{re.escape(text)}"):
        MappingConfig(**kwargs)


@pytest.mark.parametrize(
    "args, text",
    [
        ({"maxScal": 3.5, "size": [512, 0, 720], "patch_size": [64, 16]}, "field 'h'"),
        ({"h": 64, "maxScal": 3.5, "size": [512, 720], "patch_size": [64, 16]}, "three integers"),
        ({"h": 64, "maxScal": 3.5, "size": [512, 0, 720], "patch_size": [64, 15]}, "dividing the canvas width"),
    ],
)
def test_from_args_errors(args, text):
    with pytest.raises(InvalidInputError, match=text):
        MappingConfig.from_args(args)


# -- geometry ----------------------------------------------------------------------------------
def test_samples_per_patch_on_the_blog_task_and_elsewhere():
    # 16 samples per patch for 512 + 720 on the 1× canvas (pw 16) and the official 2× canvas (pw 32) ...
    assert samples_per_patch(512, 720) == 16.0
    assert samples_per_patch(512, 720, PRESETS["official"]) == 16.0
    # ... but not for another T + H: 96 + 720 gives 32 · 816 / 2464 ≈ 10.6.
    assert samples_per_patch(96, 720, PRESETS["official"]) == pytest.approx(10.597, abs=1e-3)
    assert series_to_image(blog_series(96), 720, PRESETS["official"]).samples_per_patch == pytest.approx(32 * 816 / 2464)
    assert samples_per_column(512, 720, PRESETS["official"]) == 0.5


@given(
    input_len=st.integers(1, 5000),
    horizon=st.integers(1, 5000),
    grid_w=st.integers(1, 40),
    pw=st.sampled_from([1, 4, 8, 16, 32]),
    history_share=st.floats(0.05, 0.95),
)
@FAST
def test_samples_per_patch_is_pw_times_t_plus_h_over_w(input_len, horizon, grid_w, pw, history_share):
    width = grid_w * pw
    assume(width >= 2)
    hist = min(width - 1, max(1, round(width * history_share)))
    c = MappingConfig(history_len=hist, future_len=width - hist, bins=8, patch=(8, pw))
    assert samples_per_patch(input_len, horizon, c) == pytest.approx(pw * (input_len + horizon) / width, rel=1e-12)
    assert samples_per_column(input_len, horizon, c) == pytest.approx((input_len + horizon) / width, rel=1e-12)
    assert history_columns(input_len, horizon, c) == int(input_len / (input_len + horizon) * width)


def test_history_columns_put_the_boundary_where_training_had_it_only_for_the_training_ratio():
    assert history_columns(512, 720) == 512 and history_columns(512, 720, PRESETS["official"]) == 1024
    assert history_columns(96, 720, PRESETS["official"]) == int(96 / 816 * 2464) == 289


def test_resample_aligns_end_points_and_is_exact_on_lines():
    x = 3.0 * np.arange(11) - 4.0
    out = resample(x, 41)
    assert out[0] == x[0] and out[-1] == x[-1]
    assert np.allclose(out, np.linspace(x[0], x[-1], 41))
    assert np.allclose(resample(out, 11), x)
    same = resample(x, 11)
    assert np.array_equal(same, x) and same is not x


def test_crop_lookback():
    x = np.arange(100.0)
    assert np.array_equal(crop_lookback(x, 30), x)
    assert np.array_equal(crop_lookback(x, 30, 1), x[-30:])
    assert np.array_equal(crop_lookback(x, 30, 1.5), x[-45:])
    assert np.array_equal(crop_lookback(x, 30, 10), x)


# -- normalisation and binning -------------------------------------------------------------------
@given(
    seed=st.integers(0, 10_000),
    input_len=st.integers(8, 400),
    horizon=st.integers(1, 600),
    scale=st.floats(0.01, 100.0),
    shift=st.floats(-1e3, 1e3),
)
@FAST
def test_normalisation_uses_the_history_only(seed, input_len, horizon, scale, shift):
    assume(history_columns(input_len, horizon, SMALL) >= 2)
    rng = np.random.default_rng(seed)
    history = shift + scale * np.cumsum(rng.standard_normal(input_len))
    future_a = shift + scale * rng.standard_normal(horizon)
    future_b = future_a * 50.0 + 1e4  # a wildly different future
    base = series_to_image(history, horizon, SMALL)
    a = series_to_image(history, horizon, SMALL, future=future_a)
    b = series_to_image(history, horizon, SMALL, future=future_b)
    n = base.history_columns
    hist = resample(history, n)
    for m in (a, b):
        assert (m.mu, m.sigma) == (base.mu, base.sigma) == normalisation(hist, SMALL)
        assert np.array_equal(m.image, base.image)  # the model input never sees the future
        assert np.array_equal(m.target[:n], base.target[:n]) and np.array_equal(m.z[:n], base.z[:n])
    assert base.mu == pytest.approx(hist.mean()) and base.sigma == pytest.approx(hist.std() + 1e-7)
    assert np.allclose(base.z[:n].mean(), 0, atol=1e-9) and np.std(base.z[:n]) <= 1.0
    # without a future the future columns hold the history mean, i.e. z = 0
    assert np.allclose(base.z[n:], 0.0, atol=1e-9)
    assert not np.array_equal(a.z[n:], b.z[n:])


def test_normalisation_variants():
    x = np.array([1.0, -2.0, 3.0, 4.0])
    mu, sigma = normalisation(x, MappingConfig(mu_norm=2))
    m = np.mean(np.sign(x) * x**2) + 1e-7
    assert mu == pytest.approx(np.sign(m) * np.sqrt(abs(m)))  # signed RMS location
    assert sigma == pytest.approx(x.std() + 1e-7)
    assert normalisation(x, MappingConfig(std_factor=1.2))[1] == pytest.approx((x.std() + 1e-7) * 1.2)
    assert normalisation(np.full(5, 7.0)) == (7.0, 1e-7)
    assert normalisation(np.abs(x), MappingConfig(mu_norm=1.5))[0] > 0  # non-integer powers are fine without negatives


@given(z=st.floats(-3.5, 3.5))
@FAST
def test_argmax_decoding_of_a_one_hot_is_the_lower_edge_of_the_bin(z):
    c = DEFAULT
    r = c.bin_width
    value = decode(one_hot(np.array([z]), c), c)[0]
    assert z - r - 1e-12 < value <= z + 1e-12  # within one bin, never above: the −r/2 bias on average
    row = to_bins(z, c)
    assert value == pytest.approx(row * r - c.max_scal)
    assert one_hot(np.array([z, -z]), c).sum(axis=-1).tolist() == [1.0, 1.0]


@given(z=st.floats(3.5, 1e6), sign=st.sampled_from([-1.0, 1.0]))
@FAST
def test_clipping_at_plus_minus_max_scal(z, sign):
    c = DEFAULT
    top = c.bins - 1 if sign > 0 else 0
    assert to_bins(sign * z, c) == top == to_bins(sign * c.max_scal, c)
    assert decode(one_hot(np.array([sign * z]), c), c)[0] == pytest.approx(sign * c.max_scal)


def test_clipping_in_the_pipeline():
    x = np.sin(np.arange(200) / 10)
    x[50] = 1e3  # an outlier far beyond MS σ
    x[120] = -1e3
    m = series_to_image(x, 100, DEFAULT)
    assert m.rows.max() == DEFAULT.bins - 1 and m.rows.min() == 0
    out = (image_to_series(m.target, m) - m.mu) / m.sigma
    assert out.max() == pytest.approx(DEFAULT.max_scal) and out.min() == pytest.approx(-DEFAULT.max_scal)


# -- blur --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5, 7, 9, 11, 15, 31])
def test_gaussian_kernel_is_opencvs(k):
    g = gaussian_kernel(k)
    assert g.shape == (k,) and g.sum() == pytest.approx(1.0) and np.allclose(g, g[::-1])
    if k > 9:  # OpenCV's sigma-0 rule: σ = 0.3·((k−1)/2 − 1) + 0.8 (5.0 px for the official 31)
        sigma = MappingConfig(blur_kernel=k).blur_sigma
        i = np.arange(k) - (k - 1) / 2
        assert np.allclose(g, np.exp(-(i**2) / (2 * sigma**2)) / np.exp(-(i**2) / (2 * sigma**2)).sum())
    assert MappingConfig(blur_kernel=31).blur_sigma == pytest.approx(5.0)


def _reference_blur(img: np.ndarray, k: int, gain: float) -> np.ndarray:
    """Direct 2-D correlation with the outer-product kernel on a reflect-101 padded image."""
    g = gaussian_kernel(k)
    kernel = np.outer(g, g)
    pad = k // 2
    padded = np.pad(img, pad, mode="reflect")  # numpy's "reflect" is OpenCV's BORDER_REFLECT_101
    out = np.zeros_like(img)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            out[i, j] = (padded[i : i + k, j : j + k] * kernel).sum()
    return out * gain


@pytest.mark.parametrize("k", [3, 5, 9, 13])
def test_blur_equals_a_direct_2d_reflect101_convolution(k):
    c = MappingConfig(history_len=20, future_len=12, bins=16, patch=(4, 4), blur_kernel=k)
    img = np.random.default_rng(k).random((c.width, c.bins))
    assert np.allclose(blur(img, c), _reference_blur(img, k, float(k)), atol=1e-12)
    batch = np.stack([img, 2 * img])
    assert np.allclose(blur(batch, c)[1], 2 * blur(img, c))  # any leading axes, linear


@pytest.mark.parametrize("config", [DEFAULT, PRESETS["official"]])
def test_blurred_input_columns_carry_mass_k_not_1_and_leak_into_the_future(config):
    x = 0.8 * np.sin(np.arange(512) / 40)  # slow: every lit row stays far from the value edges
    m = series_to_image(x, 720, config)
    n, radius, k = m.history_columns, config.blur_kernel // 2, config.blur_gain
    img = m.image
    assert (img >= 0).all() and np.abs(m.rows - config.bins / 2).max() < config.bins / 2 - radius
    sums = img.sum(axis=1)
    # not a distribution per column: interior history columns hold exactly k (kernel sums to 1)
    assert np.allclose(sums[radius : n - radius], k)
    # the blur leaks (k−1)/2 columns of history into the zeroed future, decaying, then nothing
    assert (sums[n : n + radius] > 0).all() and np.all(np.diff(sums[n - 1 : n + radius + 1]) < 0)
    assert np.array_equal(img[n + radius :], np.zeros_like(img[n + radius :]))
    # the target is one-hot everywhere, the input before blurring is the target with the future zeroed
    assert np.array_equal(m.target.sum(axis=1), np.ones(config.width))
    assert np.allclose(blur(np.where(np.arange(config.width)[:, None] < n, m.target, 0.0), config), img)


def test_blur_is_symmetric_under_flips():
    img = np.random.default_rng(3).random((SMALL.width, SMALL.bins))
    assert np.allclose(blur(img[::-1, ::-1], SMALL), blur(img, SMALL)[::-1, ::-1])


# -- decoding ----------------------------------------------------------------------------------
def test_argmax_and_expectation_on_hand_made_columns():
    c = MappingConfig(history_len=2, future_len=2, bins=8, patch=(8, 2))
    r, ms = c.bin_width, c.max_scal
    img = np.zeros((4, 8))
    img[0, 3] = 1.0  # one-hot: both give the row
    img[1, [2, 3]] = 0.5  # split evenly: argmax takes the lower row, expectation the middle
    img[2, [1, 6]] = [0.6, 0.4]  # bimodal: argmax the mode, expectation in between
    img[3, [4, 5]] = [2.0, 6.0]  # unnormalised weights: expectation divides by the column's mass
    arg = decode(img, c)
    exp = decode(img, c, method="expectation")
    assert np.allclose(arg, np.array([3, 2, 1, 5]) * r - ms)
    assert np.allclose(exp, np.array([3, 2.5, 0.6 * 1 + 0.4 * 6, 4.75]) * r - ms)
    assert np.allclose(decode(img, dataclasses.replace(c, decode="expectation")), exp)  # config switch
    assert np.allclose(decode(img, c, method="argmax"), arg)
    assert decode(np.zeros((1, 8)), c, method="expectation")[0] == -ms  # an empty column reads row 0
    assert np.allclose(decode(torch.tensor(img[None, None]), c), arg[None, None])  # torch, any leading axes


@given(
    rows=st.lists(st.floats(12.0, 51.0), min_size=1, max_size=30),
    width=st.floats(1.0, 2.0),
)
@FAST
def test_expectation_recovers_soft_columns_argmax_their_mode(rows, width):
    """A model-like column p_i ∝ exp(−(i − u)² / 2w²): expectation → u, argmax → the nearest row."""
    c = DEFAULT
    u = np.array(rows)
    i = np.arange(c.bins)
    p = np.exp(-((i[None, :] - u[:, None]) ** 2) / (2 * width**2))
    p /= p.sum(axis=1, keepdims=True)
    exp_rows = (decode(p, c, method="expectation") + c.max_scal) / c.bin_width
    arg_rows = (decode(p, c) + c.max_scal) / c.bin_width
    assert np.allclose(exp_rows, u, atol=1e-6)
    assert np.all(np.abs(arg_rows - u) <= 0.5 + 1e-9)


# -- round trips -------------------------------------------------------------------------------
def test_round_trip_of_the_blog_task_is_within_one_bin():
    """512 + 720 on the 1× canvas: T + H = W, so resampling is the identity and only binning remains."""
    full = blog_series(512 + 720)
    m = series_to_image(full[:512], 720, future=full[512:])
    assert m.history_columns == 512 and np.array_equal(m.canvas, full)
    z_true = (full - m.mu) / m.sigma
    assert np.abs(z_true).max() < DEFAULT.max_scal
    r = DEFAULT.bin_width
    for method in ("argmax", "expectation"):  # identical on a one-hot
        err = (image_to_series(m.target, m, method=method) - full) / m.sigma
        assert np.abs(err).max() <= r + 1e-9 and err.max() <= 1e-9  # the lower edge: never above
        assert err.mean() == pytest.approx(-r / 2, abs=0.1 * r)  # the argmax −r/2 bias
    # the model's output shape (1, C, W, h), as a torch tensor
    out = image_to_series(torch.tensor(m.target[None, None], dtype=torch.float32), m)
    assert np.abs((out - full) / m.sigma).max() <= r + 1e-6


def test_expectation_reads_the_blurred_canvas_back_within_one_bin():
    """Blur the whole one-hot target and decode it by expectation: for a smooth series the
    symmetric value blur averages out, and the time blur (σ = 2.6 columns) barely touches it,
    except within its radius of the canvas ends, where the reflect-101 border folds the slope."""
    n = np.arange(1232)
    full = np.sin(n / 40) + 0.5 * np.sin(n / 25 + 1)  # (sin(n/10) would lose 3 % of its amplitude: 0.04 σ)
    m = series_to_image(full[:512], 720, future=full[512:])
    r, k = DEFAULT.bin_width, DEFAULT.blur_kernel // 2
    soft = blur(m.target, DEFAULT)
    exp = (image_to_series(soft, m, method="expectation") - full) / m.sigma
    assert np.abs(exp[k:-k]).max() <= r
    assert exp[k:-k].mean() == pytest.approx(-r / 2, abs=0.1 * r)  # rows still mean lower edges
    arg = (image_to_series(soft, m, method="argmax") - full) / m.sigma
    assert np.abs(arg[k:-k]).max() <= 1.5 * r
    hist = (image_to_series(m.image, m, method="expectation")[k : 512 - 2 * k] - full[k : 512 - 2 * k]) / m.sigma
    assert np.abs(hist).max() <= r  # the model input's history columns decode too


def _history_shift(input_len: int, horizon: int, columns: int, width: int) -> float:
    """The most (in samples) the round trip can move a history sample: the history is resampled
    onto n columns end to end (sample T − 1 ↦ column n − 1), the canvas back onto T + H samples
    end to end (column n − 1 ↦ sample (n − 1)(T + H − 1)/(W − 1)); they agree only when T + H = W."""
    return abs((columns - 1) * (input_len + horizon - 1) / (width - 1) - (input_len - 1))


@given(input_len=st.integers(2, 3000), horizon=st.integers(1, 3000), preset=st.sampled_from(["strip", "official"]))
@FAST
def test_resampling_round_trip_of_a_ramp_moves_history_samples_by_at_most_the_shift(input_len, horizon, preset):
    c = PRESETS[preset]
    n = history_columns(input_len, horizon, c)
    assume(n >= 2)
    full = np.arange(input_len + horizon, dtype=np.float64)
    m = series_to_image(full[:input_len], horizon, c, future=full[input_len:])
    err = np.abs(resample(m.canvas, input_len + horizon) - full)  # linear interpolation is exact on a line
    assert err.max() <= _history_shift(input_len, horizon, n, c.width) + 1e-9


def test_history_shift_of_the_blog_task():
    full = np.arange(1232, dtype=np.float64)
    strip = series_to_image(full[:512], 720, future=full[512:])
    assert _history_shift(512, 720, strip.history_columns, 1232) == 0.0  # 1× canvas: T + H = W, none
    assert np.allclose(resample(strip.canvas, 1232), full, atol=1e-9)
    off = PRESETS["official"]
    twice = series_to_image(full[:512], 720, off, future=full[512:])
    assert _history_shift(512, 720, twice.history_columns, off.width) == pytest.approx(0.2923, abs=1e-4)  # 2×
    assert np.abs(resample(twice.canvas, 1232) - full).max() == pytest.approx(0.2921, abs=1e-4)


@given(
    input_len=st.integers(40, 2000),
    horizon=st.integers(1, 2000),
    periods=st.lists(st.floats(30.0, 600.0), min_size=1, max_size=2),
    amps=st.lists(st.floats(0.2, 5.0), min_size=2, max_size=2),
    phases=st.lists(st.floats(0.0, 6.28), min_size=2, max_size=2),
    offset=st.floats(-100.0, 100.0),
    preset=st.sampled_from(["strip", "official"]),
)
@FAST
def test_round_trip_of_smooth_series_is_within_one_bin_plus_the_resampling_error(input_len, horizon, periods, amps, phases, offset, preset):
    """Decoding a one-hot lands in (z − r, z] per column and resampling back is a convex
    combination, so every sample comes back within one bin of its *resampled* value; the two
    linear resamplings add at most |x'|·shift + (1 + D²)/8·|x''| (D the widest sample spacing)."""
    c = PRESETS[preset]
    total = input_len + horizon
    n_samples = np.arange(total, dtype=np.float64)
    waves = list(zip(periods, amps, phases))
    full = offset + sum(a * np.sin(2 * np.pi * n_samples / p + q) for p, a, q in waves)
    m = series_to_image(full[:input_len], horizon, c, future=full[input_len:])
    n = m.history_columns
    assume(n >= 16)
    z_true = (full - m.mu) / m.sigma
    assume(np.abs(m.z).max() < c.max_scal and np.abs(z_true).max() < c.max_scal)  # nothing clipped
    r = c.bin_width
    slope = sum(a * 2 * np.pi / p for p, a, _ in waves) / m.sigma  # bounds of |z'| and |z''|
    curvature = sum(a * (2 * np.pi / p) ** 2 for p, a, _ in waves) / m.sigma
    spacing = max(1.0, (total - 1) / (c.width - 1), (input_len - 1) / (n - 1))
    shift = _history_shift(input_len, horizon, n, c.width)
    z_interp = resample(m.z, total)  # the round trip without binning
    interp_err = np.abs(z_interp - z_true)
    assert interp_err.max() <= slope * shift + (1 + spacing**2) / 8 * curvature + 1e-9
    for method in ("argmax", "expectation"):
        z_back = (image_to_series(m.target, m, method=method) - m.mu) / m.sigma
        assert np.all(z_back - z_interp <= 1e-9) and np.all(z_back - z_interp > -r - 1e-9)
        assert np.all(np.abs(z_back - z_true) <= r + interp_err + 1e-9)
    if total == c.width:  # the canvas holds the samples themselves: within one bin, exactly
        assert np.abs(z_back - z_true).max() <= r + 1e-9


# -- errors ------------------------------------------------------------------------------------
def _raises(argument: str, text: str):
    return pytest.raises(InvalidInputError, match=rf"^{argument}: expected .*{text}")


@pytest.mark.parametrize(
    "history, horizon, kwargs, argument, text",
    [
        (np.zeros((10, 2)), 5, {}, "history", r"a 1-D array \(T,\)"),
        (np.zeros(()), 5, {}, "history", "a 1-D array"),
        (np.r_[np.zeros(20), np.nan, np.nan], 5, {}, "history", "finite values, got 2 NaN"),
        (np.r_[np.zeros(20), np.inf], 5, {}, "history", "finite values, got 1 inf"),
        (np.zeros(1), 5, {}, "history", "at least 2 values, got 1 values"),
        (np.zeros(2), 10_000, {}, "history", r"at least 2 of the W = 1232 canvas columns.*got 2 values with horizon 10000 \(0 columns\)"),
        (["a", "b"], 5, {}, "history", "an array of numbers"),
        (np.zeros(20), 0, {}, "horizon", "a positive integer, got 0"),
        (np.zeros(20), -3, {}, "horizon", "a positive integer, got -3"),
        (np.zeros(20), 2.5, {}, "horizon", "a positive integer"),
        (np.zeros(20), True, {}, "horizon", "a positive integer"),
        (np.zeros(20), 5, {"future": np.zeros(4)}, "future", "horizon = 5 values, got 4 values"),
        (np.zeros(20), 5, {"future": np.full(5, np.nan)}, "future", "finite values"),
        (np.zeros(20), 5, {"future": np.zeros((5, 1))}, "future", "a 1-D array"),
        (np.zeros(20), 5, {"config": {"bins": 64}}, "config", "a MappingConfig"),
    ],
)
def test_series_to_image_errors(history, horizon, kwargs, argument, text):
    with _raises(argument, text):
        series_to_image(history, horizon, **kwargs)


def test_decode_and_image_to_series_errors():
    m = series_to_image(np.sin(np.arange(100) / 5), 50, SMALL)
    good = m.target
    with _raises("image", r"an array \(\.\.\., W, h\) with h = bins = 16"):
        decode(np.zeros(16), SMALL)
    with _raises("image", "h = bins = 16 rows last"):
        decode(np.zeros((64, 8)), SMALL)
    with_nan = good.copy()
    with_nan[5, 3] = np.nan
    with _raises("image", "finite values, got 1 NaN"):
        decode(with_nan, SMALL)
    with _raises("method", r"one of \('argmax', 'expectation'\), got 'mean'"):
        decode(good, SMALL, method="mean")
    with _raises("image", "non-negative column weights"):
        decode(good - 0.5, SMALL, method="expectation")
    with _raises("mapped", "the Mapped returned by series_to_image"):
        image_to_series(good, {"mu": 0})
    for bad in (good[:-1], good[None, None, None], np.stack([good, good])[:, None], good[:, :8]):
        with _raises("image", r"shape \(W, h\) = \(64, 16\), \(C, W, h\) or \(1, C, W, h\)"):
            image_to_series(bad, m)
    assert image_to_series(np.stack([good, np.zeros_like(good)]), m).shape == (150,)  # channel 0 only
    assert isinstance(m, Mapped)


@pytest.mark.parametrize(
    "call, argument, text",
    [
        (lambda: samples_per_patch(0, 720), "input_len", "a positive integer"),
        (lambda: samples_per_patch(512, 0), "horizon", "a positive integer"),
        (lambda: samples_per_patch(512, 720, PRESETS), "config", "a MappingConfig"),
        (lambda: history_columns(512, -1), "horizon", "a positive integer"),
        (lambda: samples_per_column(512, -1), "horizon", "a positive integer"),
        (lambda: resample([1.0], 4), "values", "at least 2 values"),
        (lambda: resample([1.0, 2.0], 0), "length", "a positive integer"),
        (lambda: crop_lookback(np.zeros(50), 10, 0.0), "ratio", "a finite number > 0"),
        (lambda: crop_lookback(np.zeros(50), 10, 0.1), "ratio", "keeping at least 2 samples"),
        (lambda: crop_lookback(np.zeros(50), 0, 1.0), "horizon", "a positive integer"),
        (lambda: blur(np.zeros(5)), "image", r"an array \(\.\.\., W, h\)"),
        (lambda: blur(np.full((4, 4), np.inf)), "image", "finite values, got 16 inf"),
        (lambda: gaussian_kernel(4), "ksize", "an odd positive integer"),
        (lambda: to_bins(np.array([0.0, np.nan])), "z", "finite values"),
        (lambda: normalisation(np.array([1.0, -2.0]), MappingConfig(mu_norm=1.5)), "mu_norm", "a power defined"),
        (lambda: normalisation(np.zeros((3, 3))), "history", "a 1-D array"),
    ],
)
def test_helper_errors(call, argument, text):
    with _raises(argument, text) as info:
        call()
    assert isinstance(info.value, ValueError)  # also catchable without knowing attnbook
