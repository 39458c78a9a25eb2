"""The forecaster, data preparation, baselines, recording and the six question measurements."""

from __future__ import annotations

import math

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

    from attnbook.timeseries.causal import attention_chosen_heads

    L, H, T = 2, 4, 40
    w = torch.full((L, 1, H, T, T), 1.0 / T)
    w[1, 0, 2] = 0.5 / T
    w[1, 0, 2, :, -1] += 0.5
    w[0, 0, 3] = 0.0
    for i in range(T):
        w[0, 0, 3, i, max(i - 10, 0)] = 1.0
    maps = AttentionMaps(w, ("l0", "l1"))
    chosen = attention_chosen_heads(SimpleNamespace(maps=maps))
    assert chosen == {"recency": (1, 2), "period": (0, 3)}


def test_fresh_series_are_independent_non_overlapping_and_not_the_training_data():
    from attnbook.timeseries.causal import EVAL_SEED, SELECT_SEED, fresh_series
    from attnbook.timeseries.data import make
    from attnbook.timeseries.experiment import DATA_SEED, PROFILES

    fresh = fresh_series("RandomWalk", 5, 3, 40, 10)
    assert fresh.x.shape == (15, 40) and fresh.y.shape == (15, 10) and fresh.n_series == 5
    assert fresh.seeds == tuple(range(EVAL_SEED, EVAL_SEED + 5)) and DATA_SEED not in fresh.seeds
    # series 2's windows: its own generated series, cut at stride input + horizon (no shared step), normalised by the input
    values = make("RandomWalk").generate(200, EVAL_SEED + 2).values
    for j in range(3):
        inputs, targets = values[50 * j : 50 * j + 40], values[50 * j + 40 : 50 * j + 50]
        mean, std = inputs.mean(), inputs.std()
        assert np.allclose(fresh.x[6 + j].numpy(), (inputs - mean) / std, atol=1e-5)
        assert np.allclose(fresh.y[6 + j].numpy(), (targets - mean) / std, atol=1e-4)
    again = fresh_series("RandomWalk", 5, 3, 40, 10)
    assert torch.equal(again.x, fresh.x)  # seeded
    chooser = fresh_series("RandomWalk", 5, 3, 40, 10, seed=SELECT_SEED)
    assert not set(chooser.seeds) & set(fresh.seeds) and not torch.equal(chooser.x, fresh.x)  # selection and test splits are disjoint
    with pytest.raises(InvalidInputError, match="seed"):
        fresh_series("RandomWalk", 5, 3, 40, 10, seed=0)  # the training data's seed
    for settings in PROFILES.values():  # the floor: at least 64 series per process
        assert settings.eval_series >= 64
    with pytest.raises(InvalidInputError, match="eval_series"):
        type(PROFILES["quick"])(**{**vars(PROFILES["quick"]), "eval_series": 32})


def test_series_mse_is_one_value_per_series():
    from attnbook.timeseries.causal import fresh_series, series_mse

    model = Forecaster(ForecasterConfig(input_len=40, horizon=10, d_model=16, n_heads=4, d_ff=32)).eval()
    fresh = fresh_series("GARCH11", 6, 2, 40, 10)
    per_series = series_mse(model, fresh)
    with torch.no_grad():
        err = ((model(fresh.x) - fresh.y) ** 2).numpy()
    expected = [err[2 * i : 2 * i + 2].mean() for i in range(6)]  # the mean over the series' two windows and the horizon
    assert per_series.shape == (6,) and np.allclose(per_series.numpy(), expected, rtol=1e-5)


def _exact(effect, null, heads=(("l0", 0),), family=1, units=(0.1, 0.2, 0.3)):
    from attnbook import stats
    from attnbook.intervene import HeadSetTest

    return HeadSetTest(heads, "layer-matched", "", 1.0, units, stats.exact_test(effect, null), 0.05, family, (0.0, 1.0), 0.01, "mean")


def test_pooled_family_decides_on_the_combined_rank_with_a_positive_control():
    from attnbook import stats
    from attnbook.claims import summary_record
    from attnbook.timeseries.causal import FINDING, PooledFamily

    null5 = [0.1, 0.2, 0.3, 0.4, 0.5]  # spaces of 6 sets: the chosen one and five others
    top = {f"g{i}": _exact(1.0, null5) for i in range(4)}  # rank 1 of 6 in four strata
    middle = {f"g{i}": _exact(0.35, null5) for i in range(4)}  # rank 3 of 6
    fam = PooledFamily({FINDING: top}, top)
    p, smallest = fam.pooled(FINDING)
    # four independent uniform ranks on 1..6 all equal to 1: (1/6)^4
    assert p == pytest.approx(6.0 ** -4) and smallest == pytest.approx(6.0 ** -4)
    assert fam.adjusted == {FINDING: pytest.approx(p)} and fam.control_detected and fam.verdict(FINDING) == "supported"
    assert fam.effect(FINDING) == pytest.approx(1.0 - 0.3)
    (found,) = fam.findings()
    assert found.verdict == "supported" and found.measured == {"effect − null mean": pytest.approx(0.7), "Holm-adjusted p": pytest.approx(p)}
    assert found.control["effect − null mean"] == 0.0 and found.control["Holm-adjusted p"] > 0.05  # a median null member, pooled

    fam = PooledFamily({FINDING: middle}, top)
    assert fam.pooled(FINDING)[0] == pytest.approx(stats.combined_rank_test([3] * 4, [6] * 4)[0]) and fam.verdict(FINDING) == "not supported"

    fam = PooledFamily({FINDING: top}, middle)  # the positive control is not detected: nothing can be concluded
    assert not fam.control_detected and fam.verdict(FINDING) == "inconclusive"
    assert fam.findings()[0].verdict == "inconclusive" and "positive control" in fam.findings()[0].inconclusive

    few = {"g0": _exact(1.0, [0.1, 0.2, 0.3])}  # one stratum of 4 sets cannot reach 0.05
    fam = PooledFamily({FINDING: few}, few)
    assert fam.verdict(FINDING) == "inconclusive" and "smallest reachable p = 0.25" in fam.inconclusive(FINDING)

    records = PooledFamily({FINDING: top}, top).records("forecast MSE rise", seed=3)
    assert [r["role"] for r in records] == ["stratum"] * 4 + ["pooled"] + ["stratum"] * 4 + ["positive control (pooled)"]
    assert records[4]["verdict"] == "supported" and records[4]["p_value"] == pytest.approx(p) and records[4]["seed"] == 3
    summary_record(causal=records)  # the summary schema takes them
    with pytest.raises(InvalidInputError, match="family"):
        PooledFamily({FINDING: {"g0": _exact(1.0, null5, family=2)}}, top)


def test_the_tables_show_each_seed_pooled_and_each_process_with_its_null():
    from attnbook.timeseries.causal import FINDING, CausalSection, PooledFamily, Stratum, pooled_over_seeds, strata_frame, verdict_frame

    heads = (("encoder.blocks.0.attn", 1), ("encoder.blocks.1.attn", 2))
    t = _exact(1.0, [0.1, 0.2, 0.3, 0.4, 0.5], heads=heads)
    strata = {g: Stratum(g, {"recency": (0, 1), "period": (1, 2)}, t, t, 20) for g in ("g0", "g1")}
    section = CausalSection(PooledFamily({FINDING: {g: s.chosen for g, s in strata.items()}}, {g: s.control for g, s in strata.items()}),
                            strata, 1.0, 40, 20)
    assert section.cost(7) == {"seed": 7, "seconds": 1.0, "forwards": 40, "draws": 20}
    sections = {0: section, 1: section}
    p, smallest = pooled_over_seeds(sections)
    assert p == pytest.approx(6.0 ** -4) and smallest == pytest.approx(6.0 ** -4)  # four strata of rank 1 in 6
    frame = verdict_frame(sections)
    assert list(frame.index) == [("0", "attention-picked heads"), ("0", "positive control"), ("1", "attention-picked heads"),
                                 ("1", "positive control"), ("all (descriptive)", "attention-picked heads"), ("all (descriptive)", "positive control")]
    assert frame.loc[("0", "attention-picked heads"), "pooled p"] == f"{1 / 36:.3g}" and frame.loc[("0", "positive control"), "verdict"] == "detected"
    assert {"chosen on", "tested on", "Holm p", "smallest p", "null"} <= set(frame.columns)
    table = strata_frame(sections)
    assert table.loc[(0, "g1"), "picked heads"] == "L0H1, L1H2" and table.loc[(0, "g1"), "null"] == "layer-matched, 6 sets"
    assert table.loc[(0, "g1"), "rank"] == "1 of 6" and table.loc[(0, "g1"), "effect [95 % CI]"] == "1.000 [0.000, 1.000]"


def test_generator_tests_choose_on_selection_series_and_test_on_fresh_ones_against_layer_matched_nulls():
    from types import SimpleNamespace

    from attnbook.timeseries.causal import SELECT_SEED, fresh_series, generator_tests

    cfg = RunConfig("MultiSeasonality", series_len=600, model=ForecasterConfig(input_len=40, horizon=10, d_model=16, n_heads=4, d_ff=32))
    data = prepare(cfg)
    model = untrained(cfg)
    run = SimpleNamespace(name="MultiSeasonality", model=model, data=data, maps=record(model, data, 4))
    fresh = fresh_series("MultiSeasonality", 6, 2, 40, 10)
    chooser = fresh_series("MultiSeasonality", 6, 1, 40, 10, seed=SELECT_SEED)
    stratum = generator_tests(run, fresh, chooser, resamples=200)
    for t in (stratum.chosen, stratum.control):
        assert t.null == "layer-matched" and t.result.exact and t.units == 6  # one damage value per fresh series
        per_layer = [sum(1 for name, _ in t.heads if name == layer) for layer in ("encoder.blocks.0.attn", "encoder.blocks.1.attn")]
        assert t.result.space == np.prod([math.comb(4, k) for k in per_layer])  # the sets with as many heads in each layer
    assert len(stratum.control.heads) == len(stratum.chosen.heads) == len(set(stratum.picks.values()))
    # forwards: 8 single heads + clean on the selection series, then clean + chosen + every other set for each test
    assert stratum.forwards == 9 + sum(2 + t.result.draws for t in (stratum.chosen, stratum.control))


def test_chapter_runs_cover_every_generator_and_seed_on_the_same_series():
    from attnbook import profiles
    from attnbook.timeseries.data import GENERATORS
    from attnbook.timeseries.experiment import DATA_SEED, chapter_runs, configs, train_run

    settings = profiles.get("distribution-effects", "quick")
    seeds = profiles.training_seeds("quick", 2)
    runs = chapter_runs(settings, seeds)
    assert len(runs) == (len(GENERATORS) + 1) * len(seeds) == 30  # the nine processes and the stationary twin (issue 31)
    twins, runs = runs[27:], runs[:27]
    assert [r.seed for r in twins] == [2, 3, 4] and all(r.args[0].params == (("stay", 1.0),) and r.args[0].generator == "RegimeSwitching"
                                                           for r in twins)
    assert all("params" not in r.args[0].to_dict() for r in runs)  # the nine processes keep issue 30's cache keys
    assert not {r.entries[0].folder for r in twins} & {r.entries[0].folder for r in runs}
    assert [r.seed for r in runs[:len(GENERATORS)]] == [2] * len(GENERATORS) and {r.seed for r in runs} == {2, 3, 4}
    assert all(r.train is train_run and r.args[0].data_seed == DATA_SEED and r.args[0].train.seed == r.seed for r in runs)
    assert len({r.entries[0].folder for r in runs}) == len(runs)  # one cache entry per generator and seed
    assert runs[0].label == f"{next(iter(GENERATORS))} seed 2" and runs[0].args[1:] == ("cpu", "fp32")
    plan = configs(settings, seeds)
    assert all(len(v) == 3 and len({c.data_seed for c in v}) == 1 for v in plan.values())  # the series do not move with the seed


# -- issue 31's controls ----------------------------------------------------------------------------------
from attnbook.timeseries import controls as K  # noqa: E402


def test_linear_ar_is_the_least_squares_fit_by_the_normal_equations():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((200, 3))
    ar = K.LinearAR.fit(x, y)
    design = np.hstack([x, np.ones((200, 1))])
    beta = np.linalg.solve(design.T @ design, design.T @ y)  # the normal equations, by hand
    assert np.allclose(ar.coef, beta[:-1]) and np.allclose(ar.intercept, beta[-1])
    assert np.allclose(ar.predict(x), design @ beta)
    # an AR(2) without noise is recovered exactly: x_t = 0.5 x_{t-1} - 0.3 x_{t-2} + 1
    series = [0.3, -0.2]
    for _ in range(300):
        series.append(0.5 * series[-1] - 0.3 * series[-2] + 1.0 + 0.0)
    series = np.array(series) + 0.0
    series[::7] += 0.0
    noisy = series + np.r_[rng.standard_normal(2), np.zeros(300)]  # excitation at the start only
    inputs = np.lib.stride_tricks.sliding_window_view(noisy[:-1], 4)[:-1]
    targets = noisy[4:][: len(inputs), None]
    fit = K.LinearAR.fit(inputs, targets)
    assert np.allclose(fit.predict(inputs), targets, atol=1e-8)


def test_linear_ar_errors():
    with pytest.raises(InvalidInputError, match="more windows than inputs"):
        K.LinearAR.fit(np.zeros((5, 5)), np.zeros((5, 2)))
    with pytest.raises(InvalidInputError, match="one per input window"):
        K.LinearAR.fit(np.zeros((10, 3)), np.zeros((9, 2)))
    ar = K.LinearAR.fit(np.random.default_rng(1).standard_normal((20, 3)), np.zeros((20, 2)))
    with pytest.raises(InvalidInputError, match="3 inputs per window"):
        ar.predict(np.zeros((2, 4)))


def test_naive_forecasts_commute_with_the_per_window_normalisation():
    from attnbook.timeseries.windows import normalise

    raw = np.random.default_rng(2).standard_normal((5, 30)).cumsum(1) * 3 + 10
    x, _, mean, std = normalise(raw)
    on_raw, on_norm = K.naive_forecasts(raw, 7, (12, 40)), K.naive_forecasts(x, 7, (12, 40))
    assert set(on_raw) == {"last value", "window mean", "seasonal naive (12)"}  # 40 > the input: left out
    for k in on_raw:
        assert np.allclose((on_raw[k] - mean) / std, on_norm[k])


def _fresh(n_series=6, per_series=2, L=8, H=3, seed=0):
    from attnbook.timeseries.causal import FreshSeries

    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((n_series * per_series, L)), dtype=torch.float32)
    y = torch.tensor(rng.standard_normal((n_series * per_series, H)), dtype=torch.float32)
    return FreshSeries("X", x, y, per_series, tuple(range(1, n_series + 1)))


def test_baseline_units_are_one_mse_per_series_by_hand():
    fresh = _fresh()
    ar = K.LinearAR(np.zeros((8, 3)), np.zeros(3))  # forecasts 0
    units = K.baseline_units(fresh, (4,), ar)
    x, y = fresh.x.double().numpy(), fresh.y.double().numpy()
    last = ((x[:, -1:] - y) ** 2).mean(1)  # per window
    assert np.allclose(units["last value"], last.reshape(6, 2).mean(1))
    assert np.allclose(units["linear AR"], (y ** 2).mean(1).reshape(6, 2).mean(1))
    assert set(units) == {"last value", "window mean", "seasonal naive (4)", "linear AR"}


def test_forecast_comparison_decides_each_process_by_its_interval():
    rng = np.random.default_rng(3)
    naive = {"last value": 1.0 + 0.1 * rng.random(64), "window mean": 2.0 + rng.random(64)}
    better, tie = naive["last value"] * (0.5 + 0.01 * rng.standard_normal(64)), naive["last value"] + 0.02 * rng.standard_normal(64)
    out = K.forecast_comparison(better, {**naive, "linear AR": tie})
    assert out["best naive"] == "last value" and out["series"] == 64
    assert out["forecaster"]["beats"] and out["forecaster"]["ratio"] == pytest.approx(0.5, abs=0.01)
    assert out["forecaster"]["ratio_low"] <= out["forecaster"]["ratio"] <= out["forecaster"]["ratio_high"] < 0.52
    assert not out["linear AR"]["beats"]  # a difference inside its interval is not a win
    assert out["forecaster ÷ linear AR"] == pytest.approx(better.mean() / tie.mean())


def test_intervals_and_undecided():
    lo, hi = K.difference_interval(np.full(20, 1.0) + np.linspace(0, 0.1, 20), np.linspace(0, 0.1, 20))
    assert 0.9 < lo <= 1.0 <= hi < 1.1
    with pytest.raises(InvalidInputError, match="two 1-D samples"):
        K.difference_interval([1.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError, match="one value per unit"):
        K.ratio_interval([1.0, 2.0], [1.0])
    lo, hi = K.ratio_interval(np.arange(1.0, 21.0), np.arange(1.0, 21.0) * 2)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    assert K.undecided(-0.1, 0.2).startswith("not decided") and K.undecided(0.1, 0.2) == ""
    assert K.undecided(0.7, 0.9, 0.8, "ratio").endswith("holds 0.8") and "could not" in K.undecided(math.nan, 1.0)


def test_pseudo_switch_series_do_not_switch_and_their_positions_lie_in_the_last_half():
    units = K.pseudo_switch_windows(20, seed=5, input_len=100)
    assert units["x"].shape == (20, 100) and len(units["switch"]) == 20
    assert np.all((units["switch"] >= 50) & (units["switch"] < 100))
    from attnbook.timeseries.data import make

    for s in units["seeds"]:
        series = make("RegimeSwitching", stay=1.0).generate(200, s)
        assert len(series.truth["switches"]) == 0 and len(set(series.truth["regimes"].tolist())) == 1  # one level, no switch
    with pytest.raises(InvalidInputError, match="without switches"):
        K.pseudo_switch_windows(20, params={"stay": 0.5})


def test_switch_windows_hold_a_true_switch_in_their_last_half():
    from attnbook.timeseries.data import make

    units = K.switch_windows(40, seed=7)
    assert 0 < len(units["x"]) < 40 and units["drawn"] == 40
    for s, k in zip(units["seeds"], units["switch"]):
        regimes = make("RegimeSwitching").generate(200, s).truth["regimes"]
        assert 50 <= k < 100 and regimes[k] != regimes[k - 1] and len(set(regimes[k:100].tolist())) == 1  # the window's last switch


def test_post_switch_ratio_by_hand():
    rows = torch.tensor([[0.1, 0.1, 0.3, 0.5], [0.25, 0.25, 0.25, 0.25]])
    assert np.allclose(K.post_switch_ratio(rows, np.array([2, 3])), [0.8 / 0.5, 0.25 / 0.25])
    with pytest.raises(InvalidInputError, match="one key index"):
        K.post_switch_ratio(rows, np.array([0, 2]))
    with pytest.raises(InvalidInputError, match="one key index"):
        K.post_switch_ratio(rows, np.array([2]))
    curve = K.since_curve({"ratios": [1.0, 2.0, 4.0], "since": [3, 5, 30]})
    assert curve == [("1-10", 1.5, 2), ("11-25", pytest.approx(math.nan, nan_ok=True), 0), ("26-50", 4.0, 1)]


def test_post_switch_units_of_a_uniform_model_are_one():
    class Uniform(torch.nn.Module):
        pass

    units = K.pseudo_switch_windows(8, seed=9, input_len=40)
    from unittest import mock

    with mock.patch.object(K, "_last_row", lambda model, x: torch.full((len(x), 40), 1 / 40)):
        out = K.post_switch_units(Uniform(), units)
    assert out["series"] == 8 and out["ratio"] == pytest.approx(1.0) and out["since"] == (40 - units["switch"]).tolist()


def test_persistence_and_turbulence_on_fresh_units_by_hand():
    p = Q.persistence_fresh(np.array([1.2, 1.4, 1.3]), np.array([1.0, 1.1]))
    assert p["separation"] == pytest.approx(1.3 - 1.05) and p["series"] == 3 and p["low"] <= p["separation"] <= p["high"]
    vol = np.arange(8.0)
    ent = np.array([0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.7, 0.7])
    t = Q.turbulence_fresh(ent, vol)  # quartiles 1.75 and 5.25: bottom = windows 0, 1; top = 6, 7
    assert t["entropy_turbulent"] == pytest.approx(0.7) and t["entropy_calm"] == pytest.approx(0.9) and t["windows"] == 4


def test_spike_units_hold_spikes_and_their_clean_twins_do_not():
    from attnbook.timeseries.data import make
    from attnbook.timeseries.windows import normalise

    for g in Q.SPIKE_KEYS:
        units = Q.spike_units(g, 30, seed=50, limit=5)
        assert len(units["keys"]) == 5 == len(units["raw"]) == len(units["clean"])
        for raw, clean, keys, s in zip(units["raw"], units["clean"], units["keys"], units["seeds"]):
            series = make(g).generate(200, s)
            truth = np.asarray(series.truth[Q.SPIKE_KEYS[g]])
            assert set(keys.tolist()) == set(truth[truth < 100].tolist()) and len(keys)
            assert np.allclose(raw, normalise(series.values[None, :100])[0][0])
            expected = Q.remove_spikes(g, series.truth, series.values[:100], 0, keys)
            assert np.allclose(clean, normalise(expected[None])[0][0]) and not np.allclose(raw, clean)


def test_spike_preference_fresh_of_uniform_attention_is_one():
    from unittest import mock

    units = Q.spike_units("JumpDiffusion", 20, seed=60, limit=6)
    uniform = lambda model, x: torch.full((1, len(x), 1, 100, 100), 1 / 100)  # noqa: E731
    with mock.patch.object(Q, "attention", uniform):
        out = Q.spike_preference_fresh(None, units)
    assert out["windows"] == 6 and out["preference"] == pytest.approx(1.0) and out["control"] == pytest.approx(1.0)
    assert math.isnan(Q.spike_preference_fresh(None, {"keys": [], "raw": np.zeros((0, 100))})["preference"])
