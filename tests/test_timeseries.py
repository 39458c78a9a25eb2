"""The forecaster, data preparation, baselines, recording and the six question measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnbook.errors import InvalidInputError
from attnbook.maps import AttentionMaps
from attnbook.timeseries import analysis as Q
from attnbook.timeseries.experiment import RunConfig, baseline_mse, prepare, record, untrained
from attnbook.timeseries.model import Forecaster, ForecasterConfig


def test_forecaster_shapes_and_errors():
    model = Forecaster(ForecasterConfig(input_len=30, horizon=5, d_model=16, n_heads=2, d_ff=32)).eval()
    assert model(torch.randn(4, 30)).shape == (4, 5)
    with pytest.raises(InvalidInputError, match=r"x: expected windows of shape \(batch, 30\)"):
        model(torch.randn(4, 100))  # input length of another model
    with pytest.raises(InvalidInputError, match="finite"):
        model(torch.full((1, 30), float("nan")))
    for bad, match in (({"horizon": 0}, "horizon"), ({"d_model": 10, "n_heads": 4}, "d_model"), ({"dropout": 1.5}, "dropout")):
        with pytest.raises(InvalidInputError, match=match):
            ForecasterConfig(**bad)


def small_config(generator="MultiSeasonality", series_len=600):
    return RunConfig(generator, series_len=series_len, model=ForecasterConfig(input_len=40, horizon=10, d_model=16, n_heads=2, d_ff=32))


def test_prepare_splits_without_overlap():
    data = prepare(small_config())
    assert data.x_train.shape[1] == 40 and data.y_val.shape[1] == 10
    last_train_start = (len(data.x_train) - 1)
    assert data.val_starts[0] - last_train_start >= 50  # gap: no shared time step
    assert torch.allclose(data.x_val.mean(1), torch.zeros(len(data.x_val)), atol=1e-5)


def test_prepare_rejects_short_series():
    with pytest.raises(InvalidInputError, match="series_len"):
        prepare(RunConfig("RandomWalk", series_len=300))  # needs 4 x (100 + 20)


def test_baselines_include_true_periods():
    names = baseline_mse(prepare(small_config()))
    assert {"last value", "window mean", "seasonal naive (12)", "seasonal naive (30)"} <= set(names)
    assert "seasonal naive (50)" not in names  # longer than the 40-step input


def test_record_labels_and_untrained_control():
    cfg = small_config()
    data = prepare(cfg)
    maps = record(untrained(cfg), data, 5)
    assert maps.shape == (2, 5, 2, 40, 40) and maps.key_labels[0][-1] == "t0" and maps.key_labels[0][0] == "t-39"
    with pytest.raises(InvalidInputError, match="n_windows"):
        record(untrained(cfg), data, 0)


def test_lag_peak_finds_a_planted_lag():
    K = 40
    w = torch.full((1, 1, 2, K, K), 1e-3)
    for i in range(K):
        if i >= 7:
            w[0, 0, 1, i, i - 7] = 1.0
    w = w / w.sum(-1, keepdim=True)
    peak = Q.lag_peak(AttentionMaps(w))
    assert (peak["layer"], peak["head"], peak["lag"]) == (0, 1, 7) and peak["prominence"] > 10


def test_autocorrelation_rank_of_a_sinusoid():
    t = np.arange(2000)
    out = Q.autocorrelation_rank(np.sin(2 * np.pi * t / 20), 20, 30)
    assert out["rho"] > 0.95 and out["rank"] <= 2 and out["lags"] == 28
    assert Q.autocorrelation_rank(np.sin(2 * np.pi * t / 20), 10, 30)["rho"] < -0.95


def test_near_period_and_stationarity_test():
    assert Q.near_period(52, (12, 50)) and not Q.near_period(35, (12, 30, 50))
    rows = [{"generator": g, "recency": 2.0 if g in Q.NON_STATIONARY else 1.0} for g in Q.STATIONARY + Q.NON_STATIONARY]
    out = Q.stationarity_test(rows)
    assert out["non_stationary"] == 2.0 and out["stationary"] == 1.0 and out["p_value"] < 0.05


def test_profile_period_of_a_planted_oscillation():
    lags = np.arange(3, 51)
    assert abs(Q.profile_period(np.cos(2 * np.pi * lags / 12)) - 12) < 0.5
    assert abs(Q.profile_period(np.cos(2 * np.pi * lags / 7) + 0.1 * np.cos(2 * np.pi * lags / 20)) - 7) < 0.5


def test_train_forecaster_learns_caches_and_honours_precision(tmp_path, monkeypatch):
    from attnbook.train import TrainConfig
    from attnbook.timeseries.experiment import mse, train_forecaster

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    config = RunConfig("MultiSeasonality", series_len=600, model=ForecasterConfig(input_len=40, horizon=10, d_model=16, n_heads=2, d_ff=32),
                       train=TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=5, eval_every=20))
    data = prepare(config)
    model, history, loaded = train_forecaster(config, data, progress=False, precision="bf16")
    assert not loaded and (history.device, history.precision) == ("cpu", "bf16")
    assert history.best_val < history.val_loss[0] and mse(model, data.x_val, data.y_val) == pytest.approx(history.best_val, rel=1e-5)
    again, history2, loaded2 = train_forecaster(config, data, progress=False)  # precision is not part of the key: loaded
    assert loaded2 and history2.precision == "bf16" and torch.equal(again.head.weight, model.head.weight)


# --- does the model use it? -------------------------------------------------------------------------

def test_attention_chosen_heads_reads_recency_and_lag_peak():
    """Head (1, 2) puts half its weight on the last key, head (0, 3) all on the key 10 steps back: the two picks."""
    from types import SimpleNamespace

    L, H, T = 2, 4, 40
    w = torch.full((L, 1, H, T, T), 1.0 / T)
    w[1, 0, 2] = 0.5 / T
    w[1, 0, 2, :, -1] += 0.5
    w[0, 0, 3] = 0.0
    for i in range(T):
        w[0, 0, 3, i, max(i - 10, 0)] = 1.0
    maps = AttentionMaps(w, ("l0", "l1"))
    chosen = Q.attention_chosen_heads(SimpleNamespace(maps=maps))
    assert chosen == {"recency": (1, 2), "period": (0, 3)}


def test_heads_used_finding_needs_a_majority_of_generators_and_beats_a_random_set():
    from attnbook.intervene import RandomComparison

    random = tuple(0.01 * i for i in range(28))
    win = RandomComparison((("l0", 0),), 1.0, 1.0, random, True, "mean")
    lose = RandomComparison((("l0", 0),), 1.0, 0.0, random, True, "mean")
    tests = {f"g{i}": (win if i < Q.CAUSAL_MAJORITY else lose) for i in range(9)}
    # each random set against the other 27: above their 95th percentile (the 26th smallest) only for the two largest
    assert Q.random_set_count(tests) == pytest.approx(9 * 2 / 28)
    found = Q.heads_used_finding(tests)
    assert found.verdict == "supported" and found.measured == {"processes where the heads matter": float(Q.CAUSAL_MAJORITY)}
    assert found.control == {"processes where the heads matter": pytest.approx(9 * 2 / 28)}
    tests["g0"] = lose
    found = Q.heads_used_finding(tests)
    assert found.verdict == "not supported" and found.detail.startswith(f"{Q.CAUSAL_MAJORITY - 1} of 9")
    with pytest.raises(InvalidInputError, match="two random sets"):
        Q.random_set_count({"g": RandomComparison((("l0", 0),), 1.0, 1.0, (0.0,), True, "mean")})
    records = Q.causal_records({"g1": win}, {"g1": {"recency": (1, 2), "period": (0, 3)}})
    assert records[0]["finding"] == "g1: recency head L1H2, period head L0H3" and records[0]["verdict"] == "supported"


def test_chapter_runs_cover_every_generator_and_seed_on_the_same_series():
    from attnbook import profiles
    from attnbook.timeseries.data import GENERATORS
    from attnbook.timeseries.experiment import DATA_SEED, chapter_runs, configs, train_run

    settings = profiles.get("distribution-effects", "quick")
    seeds = profiles.training_seeds("quick", 2)
    runs = chapter_runs(settings, seeds)
    assert len(runs) == len(GENERATORS) * len(seeds) == 27
    assert [r.seed for r in runs[:len(GENERATORS)]] == [2] * len(GENERATORS) and {r.seed for r in runs} == {2, 3, 4}
    assert all(r.train is train_run and r.args[0].data_seed == DATA_SEED and r.args[0].train.seed == r.seed for r in runs)
    assert len({r.entries[0].folder for r in runs}) == len(runs)  # one cache entry per generator and seed
    assert runs[0].label == f"{next(iter(GENERATORS))} seed 2" and runs[0].args[1:] == ("cpu", "fp32")
    plan = configs(settings, seeds)
    assert all(len(v) == 3 and len({c.data_seed for c in v}) == 1 for v in plan.values())  # the series do not move with the seed
