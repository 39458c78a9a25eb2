"""RealTS-style data, the batched image mapping, the pretraining loss and the cached pretraining."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook.errors import InvalidInputError
from attnbook.train import TrainConfig
from attnbook.vitime import realts
from attnbook.vitime.mapping import MappingConfig, normalisation, series_to_image, to_bins
from attnbook.vitime.model import ViTime, ViTimeConfig
from attnbook.vitime.seasonal import seasonal_average

SMALL_MAP = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=5)
SMALL_MODEL = ViTimeConfig(h=16, history_len=24, future_len=40, patch=(16, 8), embed_dim=16, depth=2, num_heads=2,
                           decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2)
SMALL_DATA = realts.RealTSConfig(length=64, min_period=4.0, max_period=30.0)


def test_generate_is_seeded_finite_and_shaped():
    a = realts.generate(16, SMALL_DATA, seed=3)
    b = realts.generate(16, SMALL_DATA, seed=3)
    c = realts.generate(16, SMALL_DATA, seed=4)
    assert a.shape == (16, 64) and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (a.std(1) > 0).all()


def test_shares_pick_the_kinds():
    periodic = realts.generate(40, realts.RealTSConfig(length=400, periodic=1.0, trend=0.0, noise=0.0, ifft_share=0.0, min_period=8, max_period=40), seed=0)
    trend = realts.generate(40, realts.RealTSConfig(length=400, periodic=0.0, trend=1.0, noise=0.0), seed=0)

    def lag1_autocorr_of_diffs(x):
        d = np.diff(x, axis=1)
        d = d - d.mean(1, keepdims=True)
        return (d[:, 1:] * d[:, :-1]).sum(1) / (d * d).sum(1)

    # periodic series return to their values (strong ACF at some lag <= 40); trends do not oscillate:
    # the mean crosses of a trend are few, those of a 8-40-sample periodic series many
    crossings = lambda x: (np.diff(np.sign(x - x.mean(1, keepdims=True)), axis=1) != 0).sum(1)
    assert np.median(crossings(periodic)) >= 15
    assert np.median(crossings(trend)) < np.median(crossings(periodic))
    assert np.isfinite(lag1_autocorr_of_diffs(trend)).all()


def test_periods_of_pure_sines_lie_in_the_range():
    cfg = realts.RealTSConfig(length=2048, periodic=1.0, trend=0.0, ifft_share=0.0, max_components=1, noise=0.0,
                              min_period=20.0, max_period=60.0)
    x = realts.generate(30, cfg, seed=1)
    freqs = np.fft.rfftfreq(2048)
    for row in x:
        f = freqs[np.argmax(np.abs(np.fft.rfft(row - row.mean()))[1:]) + 1]
        assert 20.0 * 0.9 <= 1.0 / f <= 60.0 * 1.1


def test_ifft_series_have_their_spectrum_in_the_period_range():
    cfg = realts.RealTSConfig(length=512, periodic=1.0, trend=0.0, ifft_share=1.0, noise=0.0, reverse_p=0.0, flip_p=0.0,
                              min_period=16.0, max_period=64.0)
    x = realts.generate(10, cfg, seed=2)
    freqs = np.fft.rfftfreq(512)
    for row in x:
        power = np.abs(np.fft.rfft(row)) ** 2
        inside = (freqs >= 1 / 64) & (freqs <= 1 / 16)
        assert power[inside].sum() / power.sum() > 0.999


def test_held_out_bands_never_reach_the_pretraining_series():
    """Every wave and every sparse spectrum avoids the held-out bands; with no bands the data is what it was."""
    bands = ((20.0, 28.0), (40.0, 50.0))
    waves = realts.RealTSConfig(length=4096, periodic=1.0, trend=0.0, ifft_share=0.0, max_components=1, noise=0.0,
                                min_period=16.0, max_period=64.0, held_out_bands=bands)
    spectra = realts.RealTSConfig(length=1024, periodic=1.0, trend=0.0, ifft_share=1.0, noise=0.0, reverse_p=0.0, flip_p=0.0,
                                  min_period=16.0, max_period=64.0, held_out_bands=bands)
    freqs = np.fft.rfftfreq(4096)
    dominant = [1.0 / freqs[np.argmax(np.abs(np.fft.rfft(row - row.mean()))[1:]) + 1] for row in realts.generate(60, waves, seed=3)]
    # a sine's FFT peak is within one bin (≈ P²/4096 samples of period) of its period
    assert not any(lo + p * p / 4096 < p < hi - p * p / 4096 for p in dominant for lo, hi in bands)
    assert any(28 < p < 40 for p in dominant) and any(p < 20 for p in dominant)  # the rest of the range is drawn
    f = np.fft.rfftfreq(1024)
    with np.errstate(divide="ignore"):
        banned = spectra.held_out(1.0 / f)
    for row in realts.generate(20, spectra, seed=4):
        power = np.abs(np.fft.rfft(row)) ** 2
        assert power[banned].sum() / power.sum() < 1e-12
    plain = realts.RealTSConfig(length=256)
    assert np.array_equal(realts.generate(8, plain, seed=5), realts.generate(8, realts.RealTSConfig(length=256, held_out_bands=()), seed=5))
    assert waves.held_out(24.0) and not waves.held_out(30.0)
    assert waves.held_out(np.array([19.0, 20.0, 50.0, 51.0])).tolist() == [False, True, True, False]


@pytest.mark.parametrize("mapping", [SMALL_MAP, MappingConfig(history_len=24, future_len=40, bins=16, patch=(4, 8), blur_kernel=1),
                                     MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=9, mu_norm=2.0, std_factor=1.2),
                                     MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=5, future_fill="seasonal average"),
                                     MappingConfig(history_len=24, future_len=40, bins=16, patch=(4, 8), blur_kernel=1, mu_norm=2.0,
                                                   future_fill="seasonal average")])
def test_batch_images_equals_series_to_image(mapping):
    x = realts.generate(6, SMALL_DATA, seed=5)
    images, rows = realts.batch_images(x, mapping)
    assert images.shape == (6, 1, 64, 16) and images.dtype == torch.float32 and rows.dtype == torch.int64
    for i in range(6):
        ref = series_to_image(x[i, :24], 40, mapping, future=x[i, 24:])
        assert np.allclose(images[i, 0].numpy(), ref.image, atol=1e-5 * mapping.blur_gain)
        assert np.array_equal(rows[i].numpy(), ref.rows)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=64, max_size=64))
def test_batch_images_matches_reference_on_any_finite_series(values):
    x = np.asarray(values)[None]
    if np.std(x[0, :24]) < 1e-6:
        x = x + np.linspace(0, 1, 64)[None]  # a constant history has sigma = eps; keep the check meaningful
    images, rows = realts.batch_images(x, SMALL_MAP)
    ref = series_to_image(x[0, :24], 40, SMALL_MAP, future=x[0, 24:])
    assert np.array_equal(rows[0].numpy(), ref.rows)
    assert np.allclose(images[0, 0].numpy(), ref.image, atol=1e-4)


def test_the_seasonal_draft_fills_the_input_future_and_leaves_the_target_alone():
    x = realts.generate(4, SMALL_DATA, seed=2)
    drafted = MappingConfig(history_len=24, future_len=40, bins=16, patch=(16, 8), blur_kernel=1, future_fill="seasonal average")
    blank_images, blank_rows = realts.batch_images(x, dataclasses.replace(drafted, future_fill="blank"))
    images, rows = realts.batch_images(x, drafted)
    assert torch.equal(rows, blank_rows)  # the target is the truth either way
    assert torch.equal(images[:, 0, :24], blank_images[:, 0, :24]) and float(blank_images[:, 0, 24:].abs().max()) == 0.0
    for i in range(4):  # blur 1: each future column is the one-hot of the binned seasonal average, scaled by the gain
        mu, sigma = normalisation(x[i, :24], drafted)
        lit = to_bins((seasonal_average(x[i, :24], 40) - mu) / sigma, drafted)
        assert np.array_equal(images[i, 0, 24:].argmax(-1).numpy(), lit)
        assert np.allclose(images[i, 0, 24:].sum(-1).numpy(), drafted.blur_gain)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 63)), "W=64"),
    (np.zeros(64), "batch"),
    (np.full((1, 64), np.nan), "finite"),
])
def test_batch_images_rejects_bad_input(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        realts.batch_images(bad, SMALL_MAP)


def test_loss_matches_a_direct_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 64, 16)
    rows = torch.randint(0, 16, (2, 64))
    lc = realts.LossConfig(sigma=1.5, emd=0.3, history_weight=0.25)
    got = realts.pretraining_loss(logits, rows, SMALL_MAP, lc)
    total = 0.0
    for b in range(2):
        num = den = 0.0
        for c in range(64):
            p = torch.softmax(logits[b, 0, c].double(), -1).numpy()
            j = np.arange(16)
            q = np.exp(-0.5 * ((j - int(rows[b, c])) / 1.5) ** 2)
            q /= q.sum()
            ce = -(q * np.log(p)).sum()
            emd = (p * np.abs(j - int(rows[b, c]))).sum()
            w = 0.25 if c < 24 else 1.0
            num += w * (ce + 0.3 * emd)
            den += w
        total += num / den
    assert math.isclose(float(got), total / 2, rel_tol=1e-5)


def test_loss_is_smallest_at_the_truth_and_emd_counts_bins():
    rows = torch.full((1, 64), 7)
    perfect = torch.full((1, 1, 64, 16), -30.0)
    perfect[..., 7] = 30.0
    off = torch.full((1, 1, 64, 16), -30.0)
    off[..., 10] = 30.0
    assert realts.pretraining_loss(perfect, rows, SMALL_MAP) < realts.pretraining_loss(off, rows, SMALL_MAP)
    probs = torch.softmax(off, -1)
    assert torch.allclose(realts.future_emd(probs, rows, SMALL_MAP), torch.tensor([3.0]))


@pytest.mark.parametrize("kwargs, match", [
    ({"periodic": 0.8, "trend": 0.4}, "shares"),
    ({"noise": 1.5}, "probability"),
    ({"min_period": 1.0}, "min_period"),
    ({"min_period": 50.0, "max_period": 40.0}, "min_period"),
    ({"length": 4}, "length"),
    ({"max_components": 0}, "max_components"),
    ({"held_out_bands": ((30.0, 20.0),)}, "held_out_bands"),
    ({"held_out_bands": ((1.0,),)}, "held_out_bands"),
    ({"held_out_bands": 5}, "held_out_bands"),
    ({"held_out_bands": ((5.0, 500.0),)}, "held_out_bands"),
])
def test_bad_realts_config(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        realts.RealTSConfig(**kwargs)


@pytest.mark.parametrize("kwargs, match", [({"sigma": 0}, "sigma"), ({"emd": -1}, "emd"), ({"history_weight": float("nan")}, "history_weight")])
def test_bad_loss_config(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        realts.LossConfig(**kwargs)


def test_generate_rejects_bad_arguments():
    with pytest.raises(InvalidInputError, match="n"):
        realts.generate(0, SMALL_DATA)
    with pytest.raises(InvalidInputError, match="RealTSConfig"):
        realts.generate(2, {"length": 64})


def test_pretrain_learns_caches_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    train = TrainConfig(steps=30, batch_size=16, lr=3e-3, warmup=3, eval_every=10, seed=1)
    model, history, loaded = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=16, progress=False)
    assert isinstance(model, ViTime) and not loaded and not model.training
    assert history.best_val < history.val_loss[0]  # it learned something
    again, history2, loaded2 = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=16, progress=False)
    assert loaded2 and history2.val_loss == history.val_loss
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    other, _, loaded3 = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, TrainConfig(steps=31, batch_size=16, lr=3e-3, warmup=3, eval_every=10, seed=1),
                                        val_size=16, progress=False)
    assert not loaded3  # another config, another cache entry


def test_pretrain_checks_that_the_pieces_fit():
    train = TrainConfig(steps=2, batch_size=2, warmup=0, eval_every=1)
    with pytest.raises(InvalidInputError, match="canvas"):
        realts.pretrain(SMALL_MODEL, MappingConfig(), SMALL_DATA, train)
    with pytest.raises(InvalidInputError, match="data.length"):
        realts.pretrain(SMALL_MODEL, SMALL_MAP, realts.RealTSConfig(length=65), train)
    with pytest.raises(InvalidInputError, match="val_size"):
        realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=0)


def test_pretrain_in_bf16(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    train = TrainConfig(steps=20, batch_size=16, lr=3e-3, warmup=3, eval_every=10, seed=2)
    model, history, _ = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=16, progress=False, precision="bf16")
    assert (history.device, history.precision) == ("cpu", "bf16") and history.best_val < history.val_loss[0]
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
