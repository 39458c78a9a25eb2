"""Chapter 3's forecast test: held-out series, baselines, paired intervals and bars; the training-path diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from attnbook.errors import InvalidInputError
from attnbook.vitime import diagnosis, forecasting, realts
from attnbook.vitime.harmonics import repeat_last_period
from attnbook.vitime.mapping import MappingConfig
from attnbook.vitime.model import ViTimeConfig

SMALL_MAP = MappingConfig(history_len=64, future_len=64, bins=32, patch=(32, 8), blur_kernel=5)
SMALL_MODEL = ViTimeConfig(h=32, history_len=64, future_len=64, patch=(32, 8), embed_dim=32, depth=1, num_heads=2,
                           decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)
SMALL_DATA = realts.RealTSConfig(length=128, min_period=4.0, max_period=40.0, held_out_bands=((10.0, 14.0),))


def test_held_out_series_use_only_the_bands_and_state_their_noise():
    cfg = forecasting.HeldOutConfig(n=40, snr_db=10.0, trend_share=0.5, seed=7)
    x, records = forecasting.held_out_series(cfg)
    again, _ = forecasting.held_out_series(cfg)
    assert x.shape == (40, 1232) and np.array_equal(x, again) and np.isfinite(x).all()
    assert all(any(lo <= p <= hi for lo, hi in cfg.bands) for r in records for p in r["periods"])
    assert 0.3 < np.mean([r["trend"] != 0 for r in records]) < 0.7
    # noise variance = signal variance · 10^(−SNR/10): the noise of a pure-noise residual matches the record
    for row, r in zip(x[:5], records[:5]):
        assert r["noise_std"] > 0
    ratio = np.mean([r["noise_std"] ** 2 for r in records]) / np.mean([np.var(row) - r["noise_std"] ** 2 for row, r in zip(x, records)])
    assert 0.07 < ratio < 0.14


def test_pretraining_never_draws_a_test_period():
    data = realts.RealTSConfig(held_out_bands=forecasting.HeldOutConfig().bands)
    _, records = forecasting.held_out_series()
    assert all(data.held_out(p) for r in records for p in r["periods"])


def test_baselines_match_hand_computations():
    rng = np.random.default_rng(0)
    t = np.arange(200)
    x = np.stack([np.sin(2 * np.pi * t / 20 + rng.random()) + 0.1 * rng.normal(size=200) for _ in range(3)])
    out = forecasting.baseline_forecasts(x, 120)
    assert np.allclose(out["history mean"], x[:, :120].mean(1, keepdims=True))
    assert np.allclose(out["last value"], x[:, 119:120])
    assert np.allclose(out["repeat last period"][1], repeat_last_period(x[1, :120], 80))
    e = forecasting.errors(out, x[:, 120:])
    assert np.allclose(e["last value"], ((x[:, 119:120] - x[:, 120:]) ** 2).mean(1))


def test_linear_forecaster_recovers_a_linear_rule():
    """On series whose normalised future is an exact linear function of the history, ridge recovers it."""
    lin = forecasting.fit_linear(realts.RealTSConfig(length=128, periodic=1.0, trend=0.0, ifft_share=0.0, noise=0.0, max_components=1,
                                                     min_period=16.0, max_period=16.0 + 1e-9, reverse_p=0.0, flip_p=0.0),
                                 64, n=256, ridge=1e-6)
    t = np.arange(128)
    x = 3.0 + 2.0 * np.sin(2 * np.pi * t / 16 + 0.4)
    pred = lin.predict(x[:64])
    assert pred.shape == (1, 64)
    assert np.abs(pred[0] - x[64:]).max() < 1e-3  # a sine of one fixed period: the future is linear in the history
    with pytest.raises(InvalidInputError, match="history"):
        lin.predict(np.zeros((2, 10)))


def test_ratio_interval_is_paired_and_matches_scipy():
    rng = np.random.default_rng(1)
    b = rng.gamma(2.0, 1.0, 64)
    a = 0.5 * b * rng.uniform(0.9, 1.1, 64)  # paired: a tracks b series by series
    r, lo, hi = forecasting.ratio_interval(a, b, seed=3)
    assert r == pytest.approx(a.mean() / b.mean())
    assert lo < r < hi and hi - lo < 0.05  # pairing removes the between-series spread
    ref = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) / y.mean(axis), paired=True, vectorized=True, n_resamples=2000,
                          method="percentile", random_state=np.random.default_rng(3))
    assert (lo, hi) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    _, ulo, uhi = forecasting.ratio_interval(a, rng.permutation(b), seed=3)
    assert uhi - ulo > hi - lo  # unpaired: wider
    with pytest.raises(InvalidInputError, match="paired"):
        forecasting.ratio_interval(a, b[:10])


def test_bars_apply_their_thresholds():
    ones = np.ones(64)
    errs = {"model (expectation)": 0.65 * ones, "history mean": ones, "repeat last period": 0.7 * ones}
    quick = forecasting.bar_verdicts(errs, "quick")
    assert [b["holds"] for b in quick] == [True, True]
    errs["model (expectation)"] = 0.71 * ones
    assert [b["holds"] for b in forecasting.bar_verdicts(errs, "quick")] == [False, False]
    assert [b["holds"] for b in forecasting.bar_verdicts(errs, "full")] == [False]
    table = forecasting.forecast_table(errs)
    assert table.loc["history mean", "÷ history mean"] == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="profile"):
        forecasting.bar_verdicts(errs, "medium")


def test_model_forecasts_decode_both_ways():
    torch.manual_seed(0)
    from attnbook.vitime.model import ViTime

    model = ViTime(SMALL_MODEL).eval()
    x = realts.generate(5, SMALL_DATA, seed=1)
    out = forecasting.model_forecasts(model, x, SMALL_MAP, batch=2)
    assert set(out) == {"model (argmax)", "model (expectation)"}
    assert all(v.shape == (5, 64) and np.isfinite(v).all() for v in out.values())


def test_average_image_is_the_best_history_blind_predictor():
    avg = diagnosis.average_image(SMALL_DATA, SMALL_MAP, n=400, seed=0)
    assert avg.shape == (128, 32) and torch.allclose(avg.exp().sum(1), torch.ones(128))
    _, rows = realts.batch_images(realts.generate(200, SMALL_DATA, seed=9), SMALL_MAP)
    mine = diagnosis.loss_parts(avg[None, None].expand(200, 1, -1, -1), rows, SMALL_MAP)
    uniform = diagnosis.loss_parts(torch.zeros(200, 1, 128, 32), rows, SMALL_MAP)
    assert mine.ce_future < uniform.ce_future and mine.floor < mine.ce_future
    assert uniform.ce_future == pytest.approx(np.log(32), rel=1e-5)


def test_training_path_overfits_one_batch():
    """The regression test for flat forecasts: on one fixed batch, the future loss falls to within 10 % of
    its floor, far below the average image's — history reaches horizon through masking, positions and normalisation."""
    model, trace = diagnosis.overfit_batch(SMALL_MODEL, SMALL_MAP, SMALL_DATA, batch=8, steps=150, lr=3e-3)
    avg = diagnosis.average_image(SMALL_DATA, SMALL_MAP, n=400, seed=0)
    _, rows = realts.batch_images(realts.generate(8, SMALL_DATA, seed=0), SMALL_MAP)
    blind = diagnosis.loss_parts(avg[None, None].expand(8, 1, -1, -1), rows, SMALL_MAP)
    first, last = trace[0], trace[-1]
    assert len(trace) == 11
    assert last.ce_future < 1.1 * last.floor < blind.ce_future
    assert last.ce_future < 0.5 * first.ce_future


def _parts(history: float, future: float, floor: float = 1.0) -> diagnosis.LossParts:
    return diagnosis.LossParts(total=history + future, ce_history=history, ce_future=future, emd_future=0.0, floor=floor)


def test_the_diagnosis_reading_follows_its_numbers():
    blind = _parts(3.0, 4.0)
    broken = diagnosis.reading(blind, _parts(2.0, 3.9), _parts(1.2, 3.0), forecasts=False)  # 3.0 > 4.0 − 0.5·(4.0 − 1.0)
    assert "broken" in broken
    works = diagnosis.reading(blind, _parts(2.0, 3.7), _parts(1.2, 2.0), forecasts=False)
    assert works.startswith("the path from history to horizon works") and "closed 10 %" in works and "does not pass" in works
    assert "closed 40 %" in diagnosis.reading(blind, _parts(2.0, 2.8), _parts(1.2, 2.0), forecasts=True)
    assert "(the bars hold)" in diagnosis.reading(blind, _parts(2.0, 2.8), _parts(1.2, 2.0), forecasts=True)


def test_held_out_monitor_is_the_forecast_tables_ratio():
    from attnbook.vitime.model import ViTime

    torch.manual_seed(0)
    model = ViTime(SMALL_MODEL).eval()
    test_set = forecasting.HeldOutConfig(n=6, bands=((10.0, 14.0),), length=128, seed=3)
    (name, monitor), = forecasting.held_out_monitor(test_set, SMALL_MAP).items()
    x, _ = forecasting.held_out_series(test_set)
    errs = forecasting.errors({**forecasting.model_forecasts(model, x, SMALL_MAP), **forecasting.baseline_forecasts(x, 64)}, x[:, 64:])
    assert name == forecasting.CURVE
    assert monitor(model) == pytest.approx(errs["model (expectation)"].mean() / errs["history mean"].mean(), rel=1e-9)


def test_curve_levels_put_baselines_and_bars_on_the_history_mean_scale():
    ones = np.ones(8)
    errs = {"history mean": 2 * ones, "repeat last period": 1.5 * ones, "seasonal average": ones, "last value": 3 * ones}
    levels, bars = forecasting.curve_levels(errs, "quick")
    assert levels == {"repeat last period": 0.75, "seasonal average": 0.5}  # "last value" not asked
    assert forecasting.curve_levels(errs, "quick", methods=("last value", "linear"))[0] == {"last value": 1.5}  # "linear" absent
    assert bars == {"bar: <= 0.7 × history mean": pytest.approx(0.7), "bar: < 1 × repeat last period": pytest.approx(0.75)}
    _, full = forecasting.curve_levels(errs, "full")
    assert full == {"bar: <= 0.8 × repeat last period": pytest.approx(0.6)}
    with pytest.raises(InvalidInputError, match="profile"):
        forecasting.curve_levels(errs, "medium")


def test_pretrain_records_the_held_out_curve_and_keys_the_cache_by_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    from attnbook.train import TrainConfig
    from attnbook.vitime.figures import learning_curve

    test_set = forecasting.HeldOutConfig(n=4, bands=((10.0, 14.0),), length=128, seed=3)
    monitors = forecasting.held_out_monitor(test_set, SMALL_MAP)
    train = TrainConfig(steps=4, batch_size=4, warmup=0, eval_every=2)
    with pytest.raises(InvalidInputError, match="monitor_key"):
        realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=4, monitors=monitors, progress=False)
    model, history, loaded = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=4, monitors=monitors,
                                             monitor_key=test_set.to_dict(), progress=False)
    curve = history.monitors[forecasting.CURVE]
    assert not loaded and history.steps == [0, 2, 4] and len(curve) == 3 and all(np.isfinite(curve))
    assert realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=4, monitors=monitors,
                           monitor_key=test_set.to_dict(), progress=False)[2]  # same key: loaded
    _, plain, loaded = realts.pretrain(SMALL_MODEL, SMALL_MAP, SMALL_DATA, train, val_size=4, progress=False)
    assert not loaded and plain.monitors == {} and plain.val_loss == history.val_loss  # another key; the same training
    fig = learning_curve(history, {"repeat last period": 0.8}, bars={"bar": 0.7}, title="t")
    assert len(fig.axes[0].lines) == 1 + 1 + 2  # the curve, the best step, a level, a bar
    with pytest.raises(InvalidInputError, match="history"):
        learning_curve(plain, {})


def test_the_bars_are_the_registered_finding_against_the_draft_alone():
    from attnbook.registry import spec

    assert forecasting.BARS["quick"] == (("history mean", "<=", 0.7), ("repeat last period", "<", 1.0))  # read from the registry
    assert forecasting.BARS["full"] == (("repeat last period", "<=", 0.8),)
    assert spec(forecasting.BAR_FINDINGS["full"]).profiles == ("full",)
    ones = np.ones(64)
    errs = {"model (expectation)": 0.6 * ones, "history mean": ones, "repeat last period": 0.7 * ones, "seasonal average": 0.75 * ones}
    found = forecasting.bar_finding(errs, "quick")
    assert found.verdict == "supported" and found.measured == {"÷ history mean": pytest.approx(0.6), "÷ repeat last period": pytest.approx(0.6 / 0.7)}
    assert found.control == {"÷ history mean": pytest.approx(0.75), "÷ repeat last period": pytest.approx(0.75 / 0.7)}
    assert "paired 95 % CI, 64 series" in found.detail
    errs["seasonal average"] = 0.65 * ones  # the draft alone would meet the bars: the model meeting them says nothing
    assert forecasting.bar_finding(errs, "quick").verdict == "not supported"
    assert forecasting.bar_finding(errs, "full").verdict == "not supported"  # 0.6 / 0.7 > 0.8
    with pytest.raises(InvalidInputError, match="profile"):
        forecasting.bar_finding(errs, "medium")
