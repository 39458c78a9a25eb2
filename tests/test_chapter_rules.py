"""Every chapter's claims and readings are package functions: their rules on hand-made measurements,
and chapter 4's bandit experiment steps end to end on a tiny setting."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from attnbook.maps import AttentionMaps
from attnbook.train import History


def _holds(claims) -> list[bool]:
    return [c.holds for c in claims]


# -- chapter 1 ----------------------------------------------------------------------------------

def _head_measures(previous, nxt, special, entropy):
    t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    return {"previous": t(previous), "next": t(nxt), "special": t(special), "norm_entropy": t(entropy)}


def test_chapter_1_head_values_and_claims_by_hand():
    from attnbook.lm.analysis import chapter_claims, head_values

    trained = _head_measures([[0.9, 0.1], [0.2, 0.1]], [[0.0, 0.6], [0.1, 0.1]], [[0.1, 0.7], [0.8, 0.2]], [[0.4, 0.6], [0.5, 0.5]])
    twin = _head_measures([[0.2, 0.1], [0.2, 0.1]], [[0.1, 0.3], [0.1, 0.1]], [[0.1, 0.2], [0.3, 0.2]], [[0.9, 1.0], [1.0, 1.1]])
    v = head_values(trained, twin)
    assert v["max_positional"] == pytest.approx(0.9) and v["random_max_positional"] == pytest.approx(0.3)
    assert (v["n_positional"], v["n_sinks"]) == (2, 2)  # 0.9 and 0.6 > 0.5; sinks 0.7 and 0.8
    assert v["entropy_ratio"] == pytest.approx(0.5 / 1.0)
    assert all(_holds(chapter_claims(v, 1e-7, 0.0, 0.3)))
    assert _holds(chapter_claims(v, 1e-3, 0.0, 0.1)) == [False, True, True, True, True, True, True, False]
    twin_with_sink = dict(twin, special=torch.tensor([[0.9, 0.0], [0.0, 0.0]]))
    assert not _holds(chapter_claims(head_values(trained, twin_with_sink), 0.0, 0.0, 0.3))[6]


def test_chapter_1_rank_agreement_reading():
    from attnbook.lm.analysis import rank_agreement

    tokens = ["[CLS]", "a", "b", "c", "d", "[SEP]"]
    rho, reading = rank_agreement([9, 1, 2, 3, 4, 9], [0, 1, 2, 3, 4, 0], tokens)  # special tokens left out
    assert rho == pytest.approx(1.0) and reading == "largely agree"
    rho, reading = rank_agreement([0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 0], tokens)
    assert rho == pytest.approx(-1.0) and reading == "barely agree"
    assert rank_agreement([0, 1, 3, 2, 5, 0], [0, 1, 2, 3, 4, 0], ["[CLS]", "a", "b", "c", "d", "e"])[1] == "largely agree"  # rho 0.9
    assert rank_agreement([0, 2, 1, 4, 3, 0], [0, 1, 2, 3, 4, 0], tokens)[1] == "agree only in part"  # rho 0.6


def test_chapter_1_figure_has_a_bar_per_layer_and_label():
    from attnbook.lm.figures import layer_label_bars

    weights = torch.softmax(torch.randn(2, 1, 2, 4, 4, generator=torch.Generator().manual_seed(0)), -1)
    tokens = [["[CLS]", "a", ".", "[SEP]"]]
    maps = AttentionMaps(weights, query_labels=tokens, key_labels=tokens)
    fig = layer_label_bars(maps)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["L0 [CLS]", "L0 [SEP]", "L0 punctuation", "L1 [CLS]", "L1 [SEP]", "L1 punctuation"]
    assert fig.axes[0].get_title() and fig.axes[0].get_ylabel() == "attention mass"


# -- chapter 2 ----------------------------------------------------------------------------------

def _run(best_val, val0, mse, baseline, entropy_weights, untrained_weights):
    history = History(steps=[0, 1], val_loss=[val0, best_val], best_val=best_val)
    return SimpleNamespace(history=history, mse=mse, best_baseline=("last_value", baseline),
                           maps=AttentionMaps(entropy_weights), untrained_maps=AttentionMaps(untrained_weights))


def test_chapter_2_claims_by_hand():
    from attnbook.timeseries.analysis import chapter_claims

    sharp = torch.zeros(1, 1, 1, 4, 4)
    sharp[..., 0] = 1.0  # entropy 0
    flat = torch.full((1, 1, 1, 4, 4), 0.25)  # entropy 1 (normalised)
    sharpish = 0.5 * sharp + 0.5 * flat
    names = ["SeasonTrendOutliers", "MultiSeasonality", "A", "B", "C", "D"]
    first = {n: _run(0.5, 1.0, 0.5, 1.0, sharpish, flat) for n in names}
    peaks = {"MultiSeasonality": {"lag": 25}}
    untrained = {"MultiSeasonality": {"lag": 10}}
    periods = {"MultiSeasonality": (24, 60)}
    claims, values = chapter_claims(first, {"separation": 0.1}, peaks, untrained, periods, 1e-6, seed_scale=False)
    assert len(claims) == 7 and all(_holds(claims))
    assert values["n_beat"] == 6 and values["ratio_ms"] == 0.5 and values["worst_fell"] == 0.5
    assert 0 < values["entropy_ratio"] < 0.95
    full, _ = chapter_claims(first, {"separation": 0.1}, peaks, untrained, periods, 1e-6, seed_scale=True)
    assert [c.measured for c in full[7:]] == [1.0, 14.0] and all(_holds(full))  # |25 - 24|, |10 - 24|
    worse = dict(first, MultiSeasonality=_run(0.95, 1.0, 0.9, 1.0, sharpish, flat))
    held = _holds(chapter_claims(worse, {"separation": -0.1}, peaks, {"MultiSeasonality": {"lag": 23}}, periods, 1e-3, seed_scale=True)[0])
    assert held == [False, True, False, True, False, True, False, True, False]


def test_chapter_2_readings():
    from attnbook.timeseries.analysis import acf_reading, period_reading

    assert period_reading(24.3, 24.9).startswith("the same rhythm") and period_reading(24.0, 30.0).startswith("a different rhythm")
    assert acf_reading({"rank": 2}, {"rank": 9}) == ("the untrained peak is not among the five lags where the summed signal most "
                                                     "resembles or mirrors itself, the trained peak among them")


# -- chapter 3 ----------------------------------------------------------------------------------

def test_chapter_3_peak_error_and_checks_by_hand():
    from attnbook.vitime.analysis import chapter_checks, peak_error
    from attnbook.vitime.harmonics import PERIOD_63

    assert peak_error([190.0, 60.0, 127.0], PERIOD_63) == pytest.approx(max(abs(60 - PERIOD_63), abs(127 - 2 * PERIOD_63), abs(190 - 3 * PERIOD_63)))
    assert peak_error([60.0, 127.0], PERIOD_63) == math.inf
    good = dict(fell=0.5, random_contrasts=[0.9, 1.1], round_trip=0.0, shuffle_diff=0.0)
    assert all(_holds(chapter_checks(**good)))
    bad = dict(good, random_contrasts=[0.7, 1.3], round_trip=1e-9, fell=0.96)
    assert _holds(chapter_checks(**bad)) == [False, False, False, False, True]


# -- chapter 4 ----------------------------------------------------------------------------------

def _sweep():
    rows = [("full", 59, 100.0, 1.0), ("recent", 29, 95.0, 1.5), ("uniform", 29, 95.0, 2.0), ("topk", 29, 99.0, 3.0),
            ("recent", 14, 80.0, 3.0), ("random", 29, 50.0, 0.5)]
    return pd.DataFrame([{"strategy": s, "K": k, "% of full": p, "speed-up, batched": v} for s, k, p, v in rows])


def test_chapter_4_best_compression_rule():
    from attnbook.rl.analysis import best_compression

    top = best_compression(_sweep(), 59)
    assert (top.strategy, top.K, top.speed) == ("uniform", 29, 2.0)  # tie on % of full broken by speed; topk and full left out
    slow = _sweep().assign(**{"speed-up, batched": [1.0, 0.9, 0.8, 3.0, 1.2, 0.5]})
    assert best_compression(slow, 59).strategy == "recent" and best_compression(slow, 59).K == 14  # the only faster one


def test_chapter_4_checks_by_hand():
    from attnbook.rl.analysis import best_compression, chapter_checks

    causal = torch.softmax(torch.randn(1, 2, 1, 4, 4).masked_fill(torch.ones(4, 4).triu(1).bool(), -math.inf), -1)
    top = best_compression(_sweep(), 59)
    checks = chapter_checks(causal, top)
    assert all(_holds(checks)) and "uniform, K=29" in checks[2].text
    leaky = causal.clone()
    leaky[..., 0, 1] = 0.1
    assert _holds(chapter_checks(leaky, top)) == [False, False, True]
    slow = top.copy()
    slow["speed"] = 1.0
    assert _holds(chapter_checks(causal, slow))[2] is False


def _regret_sweep(topk=(12.0, 13.0), random=(12.5, 13.5), random_pct=(80.0, 60.0)):
    """A compression sweep with performance (regret), % of full and speed: full 10, K = 29 and 14 of L = 59."""
    rows = [("full", 59, 10.0, 100.0, 1.0), ("recent", 29, 10.5, 95.0, 2.0), ("recent", 14, 12.0, 80.0, 3.0)]
    rows += [("topk", k, v, 50.0, 0.5) for k, v in zip((29, 14), topk)]
    rows += [("random", k, v, p, 2.5) for k, v, p in zip((29, 14), random, random_pct)]
    return pd.DataFrame([{"strategy": s, "K": k, "performance": v, "% of full": p, "speed-up, batched": x} for s, k, v, p, x in rows])


def test_chapter_4_compression_findings_by_hand():
    from attnbook.errors import InvalidInputError
    from attnbook.rl.analysis import compression_findings

    keep, topk = compression_findings(_regret_sweep(), [29, 14], 59)
    assert keep.spec.key == "ad-compression/compression-keeps-return" and keep.measured == {"% of full": 95.0}
    assert keep.control == {"% of full": 80.0} and keep.verdict == "supported" and "recent at K = 29" in keep.detail
    assert topk.measured == {"largest regret difference": -0.5} and topk.control == {"largest regret difference": 0.0}
    assert topk.verdict == "supported"
    random_keeps_it = compression_findings(_regret_sweep(random_pct=(92.0, 60.0)), [29, 14], 59)[0]
    assert (random_keeps_it.verdict, random_keeps_it.reason) == ("not supported", "the control meets the rule too")
    loses_once = compression_findings(_regret_sweep(topk=(12.0, 13.6)), [29, 14], 59)[1]  # worse than random at K = 14
    assert loses_once.measured["largest regret difference"] == pytest.approx(0.1) and loses_once.verdict == "not supported"
    with pytest.raises(InvalidInputError, match="K=7"):
        compression_findings(_regret_sweep(), [29, 7], 59)


def test_chapter_4_bandit_experiment_steps_end_to_end(tmp_path, monkeypatch):
    from attnbook import profiles
    from attnbook.profiles import Training
    from attnbook.rl import experiment, figures

    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path))
    settings = dataclasses.replace(profiles.get("ad-compression", "quick"), arms=3, horizon=20, train_tasks=16, test_tasks=4,
                                   train=Training(steps=2, batch_size=4, lr=1e-3, warmup=0, eval_every=1), ed_steps=2,
                                   k_divisors=(2, 4), timing_repeats=1)
    data = experiment.bandit_data(settings, seed=0)
    assert data.train_means.shape == (16, 3) and data.test_means.shape == (4, 3) and data.histories.actions.shape == (16, 20)
    regret = data.source_regret()
    assert regret.shape == (16, 20) and (regret >= 0).all()
    models = experiment.train_bandit_models(settings, data, seed=0)
    assert not models.loaded and experiment.train_bandit_models(settings, data, seed=0).loaded  # cached
    held = experiment.held_out(models, data, settings, seed=0)
    assert list(held.table.index) == ["AD", "ED", "UCB1 (source)", "Thompson", "random"] and held.regret["AD"].shape == (4, 20)
    sweep = experiment.compression_table(models.ad, data, held, settings, seed=0)
    assert set(sweep.K) == {19, 9, 4} and {"ms/step, batch 1", "ms/step, batch 4", "speed-up, batched"} <= set(sweep.columns)
    full = sweep[sweep.strategy == "full"]
    assert float(full["speed-up, batched"].iloc[0]) > 0 and (sweep["attention memory (KiB, batched)"] > 0).all()
    fig = figures.compression_bars(sweep, settings.ks)
    assert fig.axes[0].get_title().startswith("Cumulative regret at T")
    _, query = __import__("attnbook.rl.model", fromlist=["query_attention"]).query_attention(models.ad, held.ad_run.window)
    assert len(figures.query_by_distance(query).axes[0].get_lines()) >= query.shape[0] * query.shape[2]
    weights = torch.softmax(torch.randn(2, 3, 2, 5, 5), -1)
    line = figures.received_per_position(weights).axes[0].get_lines()[0]
    assert np.allclose(line.get_ydata(), weights.mean((0, 2)).sum(-2).mean(0).numpy(), atol=1e-6)


def test_chapter_3_top_head_agreement_by_hand():
    from attnbook.vitime.analysis import top_head_agreement

    corr = np.array([[1.0, 0.8, 0.2, np.nan], [0.8, 1.0, 0.4, 0.0], [0.2, 0.4, 1.0, 0.6], [np.nan, 0.0, 0.6, 1.0]])
    ranking = [{"layer": 0, "head": 1}, {"layer": 1, "head": 0}, {"layer": 0, "head": 0}]  # heads 1, 2, 0 with 2 heads per layer
    top, every = top_head_agreement(corr, ranking, n_heads=2)
    assert top == pytest.approx((0.8 + 0.2 + 0.4) / 3) and every == pytest.approx((0.8 + 0.2 + 0.4 + 0.0 + 0.6) / 5)
    assert top_head_agreement(corr, ranking, n_heads=2, top=2)[0] == pytest.approx(0.4)
