"""Patch attention → time attention → lag profiles, period contrast, the seed's figure;
the harmonic experiments and the signal explorer on a small model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbook import metrics
from attnbook.errors import InvalidInputError, OutOfRangeError
from attnbook.maps import AttentionMaps
from attnbook.vitime import harmonics as hm
from attnbook.vitime import lags
from attnbook.vitime.explorer import SignalExplorer, render_signal
from attnbook.vitime.model import ViTime, ViTimeConfig


def token_maps(L=2, B=2, H=3, grid_h=2, grid_w=5, seed=0) -> AttentionMaps:
    g = torch.Generator().manual_seed(seed)
    n = grid_h * grid_w + 1
    w = torch.softmax(torch.randn(L, B, H, n, n, generator=g) * 2, -1)
    return AttentionMaps(w, [f"model.blocks.{i}" for i in range(L)])


# --- time attention ------------------------------------------------------------------------------

def test_time_attention_is_the_seed_recipe_up_to_a_row_factor():
    m = token_maps(grid_h=3, grid_w=4)
    t = lags.time_attention(m, 3, 4).weights
    w = m.weights[..., 1:, 1:].numpy()
    seed = w.reshape(2, 2, 3, 3, 4, 3, 4).mean(axis=(3, 5))  # the seed: mean over both row axes
    ratio = t.numpy() / seed
    assert np.allclose(ratio, ratio[..., :1])  # one positive factor per query column
    explicit = np.zeros_like(seed)
    for c in range(4):
        for c2 in range(4):
            explicit[..., c, c2] = sum(w[..., r * 4 + c, r2 * 4 + c2] for r in range(3) for r2 in range(3)) / 3
    explicit /= explicit.sum(-1, keepdims=True)
    assert np.allclose(t.numpy(), explicit, atol=1e-6)
    assert torch.allclose(t.sum(-1), torch.ones(()), atol=1e-5)


def test_time_attention_of_a_strip_is_the_renormalised_token_map():
    m = token_maps(grid_h=1, grid_w=6)
    t = lags.time_attention(m, 1, 6, samples_per_patch=16.0)
    w = m.weights[..., 1:, 1:]
    assert torch.allclose(t.weights, w / w.sum(-1, keepdim=True), atol=1e-6)
    assert list(t.key_labels[0][:3]) == ["t0", "t16", "t32"]
    assert t.meta["grid_w"] == 6 and t.meta["samples_per_patch"] == 16.0


@pytest.mark.parametrize("grid, match", [((2, 4), "tokens"), ((0, 5), "grid_h"), ((2, True), "grid_w")])
def test_time_attention_rejects_a_wrong_grid(grid, match):
    with pytest.raises(InvalidInputError, match=match):
        lags.time_attention(token_maps(grid_h=2, grid_w=5), *grid)


def test_time_attention_rejects_non_maps():
    with pytest.raises(InvalidInputError, match="AttentionMaps"):
        lags.time_attention(torch.ones(1, 1, 1, 3, 3), 1, 2)


def test_lag_profiles_are_means_of_sub_diagonals():
    tm = lags.time_attention(token_maps(grid_h=1, grid_w=8), 1, 8)
    prof = lags.lag_profiles(tm, max_lag=5)
    w = tm.weights.numpy()
    for d in range(6):
        for l in range(2):
            for h in range(3):
                ref = np.mean([np.diagonal(w[l, b, h], offset=-d).mean() for b in range(2)])
                assert math.isclose(float(prof[l, h, d]), ref, rel_tol=1e-5)
    assert lags.lag_profiles(tm).shape[-1] == 8 // 2 + 1


# --- period contrast -----------------------------------------------------------------------------

def test_period_lags_of_sin_n_over_10_at_16_samples_per_patch():
    assert lags.period_lags(20 * math.pi, 16.0) == ([4, 8, 12], [2, 6, 10])
    assert lags.period_lags(10 * math.pi, 16.0, n_multiples=2) == ([2, 4], [1, 3])


def test_contrast_of_peaks_flat_and_alternating_profiles():
    spikes = torch.ones(14)
    spikes[[4, 8, 12]] = 5.0
    assert math.isclose(float(lags.period_contrast(spikes, 20 * math.pi, 16.0)), 5.0)
    assert math.isclose(float(lags.period_contrast(torch.full((14,), 0.3), 20 * math.pi, 16.0)), 1.0)
    alternating = torch.tensor([1.0 if d % 2 == 0 else 0.2 for d in range(14)])  # a 2-patch (31-sample) rhythm
    assert math.isclose(float(lags.period_contrast(alternating, 20 * math.pi, 16.0)), 1.0)
    batch = torch.stack([spikes, alternating])
    assert lags.period_contrast(batch, 20 * math.pi, 16.0).shape == (2,)


@settings(max_examples=40, deadline=None)
@given(st.floats(2.0, 6.0), st.floats(0.1, 10.0), st.floats(1.0, 50.0))
def test_contrast_is_scale_free(period_patches, scale, spp):
    g = torch.Generator().manual_seed(0)
    prof = torch.rand(int(3 * period_patches) + 3, generator=g, dtype=torch.float64) + 0.1
    a = lags.period_contrast(prof, period_patches * spp, spp)
    b = lags.period_contrast(prof * scale, period_patches * spp, spp)
    assert torch.allclose(a, b)


@pytest.mark.parametrize("args, match", [
    ((torch.ones(14), 20.0, 16.0), "2 patches or more"),
    ((torch.ones(10), 20 * math.pi, 16.0), "lags up to 12"),
    ((torch.ones(14), -1.0, 16.0), "period"),
    ((torch.ones(14), 20 * math.pi, 0.0), "samples_per_patch"),
    ((torch.tensor(1.0), 20 * math.pi, 16.0), "n_lags"),
])
def test_contrast_errors(args, match):
    with pytest.raises(InvalidInputError, match=match):
        lags.period_contrast(*args)


def test_peak_lags_in_samples():
    y = torch.tensor([9.0, 0.1, 0.2, 0.1, 3.0, 0.1, 0.1, 0.2, 2.0, 0.1, 0.3, 0.2, 1.0])
    assert lags.peak_lags(y, 16.0) == [64.0, 128.0, 192.0]
    assert lags.peak_lags(y, 16.0, n=1) == [64.0]
    with pytest.raises(InvalidInputError, match="profile"):
        lags.peak_lags(torch.ones(2, 3), 16.0)
    with pytest.raises(InvalidInputError, match="min_lag"):
        lags.peak_lags(y, 16.0, min_lag=20)


def test_rank_heads_orders_by_contrast_with_nan_last():
    c = torch.tensor([[1.0, float("nan")], [3.0, 2.0]])
    r = lags.rank_heads(c, ["a", "b"])
    assert [(x["layer_name"], x["head"]) for x in r] == [("b", 0), ("b", 1), ("a", 0), ("a", 1)]
    with pytest.raises(InvalidInputError, match="layers=3"):
        lags.rank_heads(c, ["a", "b", "c"])


def test_profile_correlation_equals_numpy():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(2, 3, 9, generator=g)
    got = lags.profile_correlation(p)
    assert np.allclose(got, np.corrcoef(p.reshape(6, 9)[:, 1:].numpy()), atol=1e-6)
    with pytest.raises(InvalidInputError, match="profiles"):
        lags.profile_correlation(torch.rand(3, 9))


def test_rollout_time_attention_of_one_layer_without_residual_is_its_head_mean():
    m = token_maps(L=1, grid_h=2, grid_w=4)
    got = lags.rollout_time_attention(m, 2, 4, residual=0.0)
    mean = AttentionMaps(m.weights.mean(2, keepdim=True), m.layer_names)
    ref = lags.time_attention(mean, 2, 4).weights
    assert list(got.layer_names) == ["rollout"] and got.weights.shape == (1, 2, 1, 4, 4)
    assert torch.allclose(got.weights, ref, atol=1e-5)
    assert lags.lag_profiles(got).shape == (1, 1, 3)
    assert torch.allclose(metrics.rollout(m, residual=0.0), m.weights[0].mean(1), atol=1e-6)


def test_correlation_figure_and_the_seed_file_name(tmp_path):
    tm = lags.time_attention(token_maps(L=1, grid_h=1, grid_w=16), 1, 16, samples_per_patch=16.0)
    prof = lags.lag_profiles(tm)[0, 0]
    fig = lags.correlation_figure(tm.weights[0, 0, 0], prof, 16.0, title="exp 1", true_periods=[62.8])
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert [a.get_xlabel() for a in axes[:2]] == ["key (attended to)", "lag (samples of the series)"]
    assert fig.get_suptitle() == "exp 1"  # the public accessor, not matplotlib's private Figure._suptitle
    assert list(axes[1].lines[0].get_xdata()) == [16.0 * d for d in range(1, len(prof))]
    path = lags.save_correlation_figure(fig, tmp_path, 1, 7)
    assert path.name == "experiment_1_head_7_correlations.png" and path.read_bytes()[:4] == b"\x89PNG"
    for opts in ({"powermap": False}, {"log": True}, {"robust_percentiles": None, "top_percent": None}, {"gamma": 0.5}):
        lags.correlation_figure(tm.weights[0, 0, 0], prof, 16.0, **opts)
    with pytest.raises(InvalidInputError, match="experiment"):
        lags.correlation_filename("../x", 1)
    with pytest.raises(InvalidInputError, match="time_map"):
        lags.correlation_figure(prof, prof, 16.0)


# --- harmonics on a small model ----------------------------------------------------------------------

SMALL = ViTimeConfig(h=16, history_len=64, future_len=96, patch=(8, 8), embed_dim=16, depth=2, num_heads=2,
                     decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2)


def small_model(**kw) -> ViTime:
    torch.manual_seed(0)
    return ViTime(SMALL, **kw).eval()


def test_the_seed_signals():
    n = np.arange(512)
    assert np.allclose(hm.signal(hm.EXPERIMENTS[1]), np.sin(n / 10) + np.sin(n / 5 + 50) + np.cos(n + 50))
    assert np.allclose(hm.signal(hm.EXPERIMENTS[2]), np.sin(n / 5 + 50) + np.cos(n + 50))
    assert np.allclose(hm.signal(hm.EXPERIMENTS[1], 10, start=512), hm.signal(hm.EXPERIMENTS[1], 522)[512:])
    assert hm.Harmonic(2.0, 48.0, 1.0, "cos").describe() == "2·cos(2πn/48 + 1)"


@pytest.mark.parametrize("kwargs, match", [({"period": 0}, "period"), ({"kind": "tan"}, "kind"), ({"amplitude": float("inf")}, "amplitude")])
def test_bad_harmonics(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        hm.Harmonic(**kwargs)


def test_bad_signals():
    with pytest.raises(InvalidInputError, match="harmonics"):
        hm.signal([])
    with pytest.raises(InvalidInputError, match="length"):
        hm.signal(hm.EXPERIMENTS[1], 0)


def test_estimate_period_and_repeat_last_period():
    n = np.arange(600)
    assert hm.estimate_period(np.sin(2 * np.pi * n / 50)) == 50
    assert hm.estimate_period(hm.signal(hm.EXPERIMENTS[1])) == 63
    x = np.sin(2 * np.pi * np.arange(500) / 25)
    future = np.sin(2 * np.pi * np.arange(500, 600) / 25)
    assert np.allclose(hm.repeat_last_period(x, 100), future, atol=1e-9)
    assert np.allclose(hm.repeat_last_period(np.arange(6.0), 5, period=2), [4, 5, 4, 5, 4])
    with pytest.raises(InvalidInputError, match="horizon"):
        hm.repeat_last_period(x, 0)
    with pytest.raises(InvalidInputError, match="period"):
        hm.repeat_last_period(x, 5, period=501)
    with pytest.raises(InvalidInputError, match="history"):
        hm.estimate_period(np.ones(5))


def test_analyse_shapes_and_ranking():
    x = hm.signal([hm.Harmonic(1.0, 24.0)], 64)
    a = hm.analyse(small_model(), x, 96, period=24.0)
    assert a.maps.weights.shape == (3, 1, 2, 41, 41) and a.time_maps.weights.shape == (3, 1, 2, 20, 20)
    assert a.samples_per_patch == 8.0 and a.profiles.shape == (3, 2, 11) and a.contrast.shape == (3, 2)
    assert a.best["contrast"] == max(r["contrast"] for r in a.ranking)
    assert a.probs.shape == (1, 1, 160, 16)


def test_shuffled_encoder_gives_the_raster_analysis():
    x = hm.signal([hm.Harmonic(1.0, 24.0), hm.Harmonic(0.5, 40.0)], 64)
    raster = hm.analyse(small_model(), x, 96, period=24.0)
    shuffled_model = small_model(token_order="shuffle", seed=3)
    shuffled = hm.analyse(shuffled_model, x, 96, period=24.0)
    assert shuffled_model.last_permutation is not None
    assert torch.allclose(raster.maps.weights, shuffled.maps.weights, atol=1e-5)
    assert torch.allclose(raster.contrast, shuffled.contrast, atol=1e-4)


def test_forecast_and_scores():
    model = small_model()
    harmonics = [hm.Harmonic(1.0, 16.0)]
    f = hm.forecast(model, hm.signal(harmonics, 64), 96)
    assert f.shape == (96,) and np.isfinite(f).all()
    s = hm.forecast_scores(model, harmonics, length=64, horizon=96)
    assert s["period_used"] == 16 and s["repeat_last_period"] < 1e-12
    assert set(s) == {"period_used", "truth_var", "model_argmax", "model_expectation", "repeat_last_period", "seasonal_average", "history_mean", "ratio"}
    with pytest.raises(InvalidInputError, match="canvas"):
        hm.forecast(model, np.ones(64), 96, mapping=hm.MappingConfig())


def test_analyse_rejects_bad_input():
    model = small_model()
    with pytest.raises(InvalidInputError, match="finite"):
        hm.analyse(model, np.array([1.0, np.nan] * 32), 96, period=24.0)
    with pytest.raises(InvalidInputError, match="horizon"):
        hm.analyse(model, np.ones(64), 0, period=24.0)
    with pytest.raises(InvalidInputError, match="history"):
        hm.analyse(model, np.ones(1), 96, period=24.0)
    with pytest.raises(InvalidInputError, match="ViTime"):
        hm.analyse(torch.nn.Linear(2, 2), np.ones(64), 96)


def test_signal_explorer_reanalyses_on_signal_change_only():
    ex = SignalExplorer(small_model(), length=64, horizon=96, components=((1.0, 24.0), (0.5, 20.0), (0.0, 30.0)))
    assert ex.n_analyses == 1 and ex.n_renders == 1 and "contrast at 24.0 samples" in ex.info.value
    ex.head.value = 1
    ex.layer.value = 2
    assert ex.n_analyses == 1 and ex.n_renders == 3 and "decoder_blocks.0.attn head 1" in ex.info.value
    ex.periods[0].value = 26.0
    assert ex.n_analyses == 2 and "contrast at 26.0 samples" in ex.info.value
    ex.amps[0].value = 0.0  # the first active harmonic is now the 20-sample one
    assert "contrast at 20.0 samples" in ex.info.value
    ex.periods[1].value = 8.0  # one patch: too short for a contrast -> a message, no crash
    assert ex.analysis is None and "2 patches or more" in ex.output.outputs[0]["data"]["text/plain"]
    ex.close()


def test_render_signal_and_explorer_errors():
    model = small_model()
    a = hm.analyse(model, hm.signal([hm.Harmonic(1.0, 24.0)], 64), 96, period=24.0)
    fig, info = render_signal(model, a, "model.blocks.1.attn", 0)
    assert "model.blocks.1.attn head 0" in info and fig.axes
    with pytest.raises(OutOfRangeError, match="head"):
        render_signal(model, a, 0, 5)
    with pytest.raises(InvalidInputError, match="components"):
        SignalExplorer(model, components=((1.0, 24.0),))
    with pytest.raises(InvalidInputError, match="ViTime"):
        SignalExplorer(torch.nn.Linear(1, 1))


def test_presets_view_holds_every_block_and_head_of_each_input():
    from attnbook.vitime.explorer import presets_view
    from attnbook.views import read

    model = small_model()
    presets = {"one": ((1.0, 24.0),), "two": [hm.Harmonic(1.0, 20.0), hm.Harmonic(0.5, 40.0, kind="cos")]}
    data = read(presets_view(model, presets, length=64, horizon=96).to_html())[0]
    assert data["facets"] == [{"name": "signal", "values": ["one", "two"]}]
    one, two = data["entries"]
    a = hm.analyse(model, hm.signal([hm.Harmonic(1.0, 24.0)], 64), 96, period=24.0)
    assert one["layers"] == list(a.time_maps.layer_names) and one["heads"] == a.time_maps.n_heads
    assert np.abs(one["weights"][0] - a.time_maps.weights[:, 0].numpy()).max() < 0.005
    assert one["head_notes"][0][1].startswith(f"contrast at 24.0 samples {a.head_contrast(0, 1):.2f}")
    assert "cos(2πn/40)" in two["note"] and two["head_notes"][0][0].startswith("contrast at 20.0 samples")
    with pytest.raises(InvalidInputError, match="presets"):
        presets_view(model, {})
    with pytest.raises(InvalidInputError, match="ViTime"):
        presets_view(torch.nn.Linear(1, 1), presets)


def test_canvas_figure():
    from attnbook.vitime.figures import canvas_figure

    model = small_model()
    x = hm.signal([hm.Harmonic(1.0, 24.0)], 64)
    a = hm.analyse(model, x, 96, period=24.0)
    fig = canvas_figure(a.mapped, a.probs, truth=hm.signal([hm.Harmonic(1.0, 24.0)], 96, start=64), baseline=hm.repeat_last_period(x, 96), title="t")
    assert len(fig.axes) == 2 and fig.axes[1].get_legend() is not None
    assert len(canvas_figure(a.mapped).axes) == 1
    with pytest.raises(InvalidInputError, match="truth/baseline"):
        canvas_figure(a.mapped, a.probs, truth=np.ones(5))
    with pytest.raises(InvalidInputError, match="mapped"):
        canvas_figure(x)


def test_peak_window():
    y = torch.tensor([9.0, 0.1, 0.2, 0.1, 3.0, 0.1, 0.1, 0.2, 2.0, 0.1, 0.3, 0.2, 1.0, 0.1, 0.1, 8.0, 0.1])
    assert lags.peak_lags(y, 16.0) == [64.0, 128.0, 240.0]
    assert lags.peak_lags(y, 16.0, max_lag=13) == [64.0, 128.0, 192.0]
    assert lags.contrast_window(20 * math.pi, 16.0) == 13
    with pytest.raises(InvalidInputError, match="max_lag"):
        lags.peak_lags(y, 16.0, max_lag=40)
    with pytest.raises(InvalidInputError, match="period"):
        lags.contrast_window(10.0, 16.0)


def _aperiodic(**change):
    """Hand-made aperiodic-input measures: flat everywhere (no period), one input changed by ``change``."""
    flat = {"contrast 62.8": 1.0, "peak error": 40.0, "contrast 31.4": 1.0, "lowest held-out contrast": 0.9, "top-3 mean r": 0.1,
            "rollout contrast": 1.0}
    return {"noise": flat, "trend": {**flat, "peak error": math.inf}, "random walk": {**flat, **change}}


def test_chapter_3_attention_findings_on_hand_made_measurements():
    from attnbook.vitime.analysis import attention_findings

    base = dict(best_contrast=3.0, peak_err=4.0, exp2_contrast=1.1, exp2_contrast_p31=1.6, held_contrasts={"24": 2.5, "40": 2.1, "90": 3.0},
                top_corr=0.6, rollout_contrast=2.2, aperiodic=_aperiodic(), all_corr=0.2, random_best_contrast=1.1)
    verdicts = lambda **change: [f.verdict for f in attention_findings(**{**base, **change})]  # noqa: E731
    assert verdicts() == ["supported"] * 6
    assert verdicts(peak_err=8.5)[0] == "not supported"  # both conditions must hold
    # the control passes when one aperiodic input shows the comb: contrast and peak error from the inputs most favourable to the rule
    assert verdicts(aperiodic=_aperiodic(**{"contrast 62.8": 2.5, "peak error": 3.0}))[0] == "not supported"
    assert verdicts(aperiodic=_aperiodic(**{"contrast 62.8": 2.5}))[0] == "supported"  # a high contrast alone, peaks elsewhere
    assert verdicts(best_contrast=1.4)[1] == "not supported"  # the control (experiment 1) would pass "< 1.5"
    assert verdicts(exp2_contrast_p31=1.49)[2] == "not supported"
    assert verdicts(aperiodic=_aperiodic(**{"contrast 31.4": 1.5}))[2] == "not supported"
    assert verdicts(held_contrasts={"24": 2.5, "40": 1.99})[3] == "not supported"
    assert verdicts(aperiodic=_aperiodic(**{"lowest held-out contrast": 2.0}))[3] == "not supported"
    assert verdicts(top_corr=0.45)[4] == "not supported" and verdicts(aperiodic=_aperiodic(**{"top-3 mean r": 0.7}))[4] == "not supported"
    assert verdicts(top_corr=0.6, all_corr=0.7)[4] == "supported"  # every pair's r is a detail since issue 31, not the control
    assert verdicts(rollout_contrast=1.99)[5] == "not supported"
    assert verdicts(aperiodic=_aperiodic(**{"rollout contrast": 2.0}))[5] == "not supported"
    assert verdicts(rollout_contrast=math.nan)[5] == "inconclusive"
    found = attention_findings(**base)
    assert found[3].measured == {"lowest contrast": 2.1} and found[3].detail.startswith("24: 2.500, 40: 2.100, 90: 3.000; aperiodic (noise: 0.900")
    assert found[0].control == {"period contrast": 1.0, "peak error (samples)": 40.0}  # the smallest finite error (the trend's is inf)
    assert found[5].control == {"rollout contrast": 1.0} and "random init's best head 1.100" in found[0].detail


def _forecast_scores(model_held: list[float], mean=(1.0, 0.6, 1.0, 0.5), rlp=(2.4, 0.9, 1.1, 0.3), model_exp1=1.5,
                     draft=(1.2, 0.7, 1.1, 0.4), draft_exp1=0.7):
    import pandas as pd

    names = ["held out P=48", "held out P=80", "held out P=100", "held out mixture 57.5+41.3"]
    rows = {"experiment 1": {"model_argmax": model_exp1, "history_mean": 1.49, "repeat_last_period": 0.61, "seasonal_average": draft_exp1}}
    rows.update({n: {"model_argmax": m, "history_mean": h, "repeat_last_period": r, "seasonal_average": d}
                 for n, m, h, r, d in zip(names, model_held, mean, rlp, draft)})
    return pd.DataFrame(rows).T


def test_forecast_findings_need_both_baselines_beaten_on_every_held_out_input():
    from attnbook.errors import InvalidInputError
    from attnbook.vitime.analysis import forecast_findings, forecast_reading

    beats = _forecast_scores([0.5, 0.3, 0.55, 0.15])  # better baselines: 1.0, 0.6, 1.0, 0.3
    e1, held = forecast_findings(beats)
    assert e1.measured == {"MSE ÷ repeat last period": pytest.approx(1.5 / 0.61)} and e1.verdict == "not supported"
    assert held.verdict == "supported" and held.measured == {"largest MSE ratio": 0.55}
    assert held.detail.startswith("P=48: 0.500, P=80: 0.500, P=100: 0.550, mixture 57.5+41.3: 0.500; draft: P=48: 1.200")
    # issue 31: the control is the seasonal-average draft alone (ratios 1.2, 1.167, 1.1, 1.333: largest 1.333; 0.7 / 0.61 on experiment 1)
    assert held.control == {"largest MSE ratio": pytest.approx(0.4 / 0.3)} and e1.control == {"MSE ÷ repeat last period": pytest.approx(0.7 / 0.61)}
    good_draft = forecast_findings(_forecast_scores([0.5, 0.3, 0.55, 0.15], draft=(0.9, 0.5, 0.9, 0.25), draft_exp1=0.5, model_exp1=0.4))
    assert [f.verdict for f in good_draft] == ["not supported", "not supported"]  # the draft alone beats the baselines too
    assert forecast_findings(_forecast_scores([0.5, 0.3, 0.55, 0.15], model_exp1=0.6))[0].verdict == "supported"
    assert forecast_findings(_forecast_scores([0.5, 0.3, 0.55, 0.15], model_exp1=0.61))[0].verdict == "not supported"  # equal is not better
    assert forecast_reading(beats).startswith("On every held-out input the model beats both baselines, by at least 45.000 %")
    # beats the history mean everywhere but not repeat-last-period on the mixture (0.3): not supported
    assert forecast_findings(_forecast_scores([0.5, 0.3, 0.55, 0.31]))[1].verdict == "not supported"
    flat = _forecast_scores([1.01, 0.61, 1.005, 0.49])  # within 5 % of the history mean's everywhere
    assert forecast_findings(flat)[1].verdict == "not supported"
    assert forecast_reading(flat).startswith("On every input the forecast's error is within 2.000 % of the history mean's")  # 0.49 against 0.5
    mixed = _forecast_scores([0.5, 0.3, 1.5, 0.15])
    assert forecast_reading(mixed) == ("The forecast is not flat (up to 70.000 % from the history mean's error), but it loses to the "
                                       "better baseline on P=100")
    with pytest.raises(InvalidInputError, match="held out"):
        forecast_findings(beats.loc[["experiment 1"]])
    with pytest.raises(InvalidInputError, match="experiment 1"):
        forecast_findings(beats.drop("experiment 1"))
    with pytest.raises(InvalidInputError, match="seasonal_average"):
        forecast_findings(beats.drop(columns="seasonal_average"))


def test_held_out_mixture_is_held_out_and_not_exactly_periodic():
    from attnbook.vitime import harmonics as hm

    assert {h.period for h in hm.HELD_OUT_MIXTURE}.isdisjoint({h.period for k in hm.EXPERIMENTS for h in hm.EXPERIMENTS[k]})
    history, truth = hm.signal(hm.HELD_OUT_MIXTURE), hm.signal(hm.HELD_OUT_MIXTURE, 720, start=512)
    for period in range(2, 257):  # no whole-number lag in the baseline's range repeats it exactly
        assert np.abs(history[period:] - history[:-period]).max() > 0.1
    assert np.mean((hm.repeat_last_period(history, 720) - truth) ** 2) > 0.5 * np.var(truth)
