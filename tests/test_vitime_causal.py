"""Chapter 3's causal test of the period heads: the heads the attention analysis picks, the
forecast-change metric, the paired exp1/exp2 ratio against random head sets, and its tables."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from attnbook.errors import InvalidInputError
from attnbook.intervene import RandomComparison, ablate, head_means
from attnbook.intervene.effects import random_head_sets
from attnbook.vitime import analysis as va
from attnbook.vitime import harmonics as hm
from attnbook.vitime import realts
from attnbook.vitime.mapping import image_to_series, series_to_image
from attnbook.vitime.model import ViTime, ViTimeConfig

SMALL = ViTimeConfig(h=16, history_len=64, future_len=96, patch=(8, 8), embed_dim=16, depth=2, num_heads=4,
                     decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=4)
LENGTH, HORIZON, STARTS = 64, 96, (0, 5, 11)


def small_model() -> ViTime:
    torch.manual_seed(0)
    return ViTime(SMALL).eval()


def small_metrics(model: ViTime) -> dict[int, va.ForecastChange]:
    mapping = SMALL.mapping()
    return {k: va.ForecastChange(model, *va.experiment_images(hm.EXPERIMENTS[k], mapping, starts=STARTS, length=LENGTH, horizon=HORIZON))
            for k in (1, 2)}


def small_reference() -> torch.Tensor:
    return va.reference_images(realts.RealTSConfig(length=SMALL.width, min_period=4.0, max_period=30.0), SMALL.mapping(), 6, seed=1)


def comparison(effect: float, random: tuple[float, ...], heads=(("a", 0),), exact: bool = False) -> RandomComparison:
    return RandomComparison(tuple(heads), 0.0, effect, random, exact, "mean")


# --- which heads ---------------------------------------------------------------------------------

def test_period_heads_are_the_rankings_first_entries():
    ranking = [{"layer": 3, "head": 1, "contrast": 2.5}, {"layer": 0, "head": 2, "contrast": 1.9}, {"layer": 5, "head": 0, "contrast": 1.1}]
    assert va.period_heads(ranking) == [(3, 1)]
    assert va.period_heads(ranking, 2) == [(3, 1), (0, 2)]
    with pytest.raises(InvalidInputError, match="ranking"):
        va.period_heads(ranking, 4)
    with pytest.raises(InvalidInputError, match="top"):
        va.period_heads(ranking, 0)


def test_period_heads_index_the_layers_ablate_changes():
    """The analysis's layer index (capture order) names the same module as ablate's."""
    model = small_model()
    a = hm.analyse(model, hm.signal(hm.EXPERIMENTS[1], LENGTH), HORIZON, period=24.0)
    (layer, head), = va.period_heads(a.ranking)
    with ablate(model, [(layer, head)], how="zero") as chosen:
        pass
    assert chosen == {a.maps.layer_names[layer]: [head]}


# --- inputs and the metric -------------------------------------------------------------------------

def test_experiment_images_are_the_chapters_mapping_of_each_window():
    images, mapped = va.experiment_images(hm.EXPERIMENTS[2], SMALL.mapping(), starts=STARTS, length=LENGTH, horizon=HORIZON)
    assert images.shape == (3, 1, SMALL.width, SMALL.h) and images.dtype == torch.float32
    for b, s in enumerate(STARTS):
        ref = series_to_image(hm.signal(hm.EXPERIMENTS[2], LENGTH, start=s), HORIZON, SMALL.mapping())
        assert np.allclose(images[b, 0].numpy(), ref.image) and mapped[b].mu == ref.mu and mapped[b].sigma == ref.sigma
    assert va.CAUSAL_STARTS[0] == 0 and len(va.CAUSAL_STARTS) == 8
    with pytest.raises(InvalidInputError, match="starts"):
        va.experiment_images(hm.EXPERIMENTS[2], SMALL.mapping(), starts=())


def test_reference_images_are_realts_series_mapped():
    data = realts.RealTSConfig(length=SMALL.width, min_period=4.0, max_period=30.0)
    ref = va.reference_images(data, SMALL.mapping(), 4, seed=3)
    assert ref.shape == (4, 1, SMALL.width, SMALL.h)
    assert torch.equal(ref, realts.batch_images(realts.generate(4, data, seed=3), SMALL.mapping())[0])


def test_forecast_change_is_zero_clean_and_the_hand_computed_mse_after_a_change():
    model = small_model()
    metric = small_metrics(model)[1]
    assert metric(model) == 0.0 and metric.clean.shape == (3, HORIZON)
    # by hand: decode each window's output (expectation), keep the horizon, compare
    with torch.no_grad():
        clean = model(metric.images).numpy()
        with ablate(model, {0: [1]}, how="zero"):
            changed = model(metric.images).numpy()
            measured = metric(model)
    sq = [(image_to_series(changed[b], m, method="expectation")[LENGTH:] - image_to_series(clean[b], m, method="expectation")[LENGTH:]) ** 2
          for b, m in enumerate(metric.mapped)]
    assert measured > 0 and math.isclose(measured, float(np.mean(sq)), rel_tol=1e-9)
    with pytest.raises(InvalidInputError, match="images"):
        va.ForecastChange(model, metric.images[:2], metric.mapped)


# --- the ratio ------------------------------------------------------------------------------------

def test_ratio_comparison_pairs_the_sets_and_counts_as_a_permutation_test():
    exp1 = comparison(6.0, (1.0, 2.0, 3.0, 8.0))
    exp2 = comparison(2.0, (1.0, 4.0, 1.0, 2.0))
    r = va.RatioComparison(exp1, exp2)
    assert r.effect == 3.0 and r.random_effects == (1.0, 0.5, 3.0, 4.0)
    assert r.percentile == 50.0  # 1.0 and 0.5 below 3.0
    assert r.p_value == (1 + 2) / (1 + 4)  # 3.0 and 4.0 at or above
    same = comparison(3.0, (1.0, 0.5, 3.0, 4.0))  # the toolkit's conventions on the ratios
    assert r.quantile(95) == same.quantile(95) and r.exceeds(95) == same.exceeds(95) is False and r.exceeds(20)
    rec = r.record("finding", "metric")
    assert rec["effect"] == 3.0 and rec["random_mean"] == 2.125 and rec["draws"] == 4 and rec["verdict"] == "not supported"
    assert rec["heads"] == ["a:0"] and rec["how"] == "mean" and "ratio exp1/exp2" in rec["rule"]
    from attnbook.registry import CAUSAL, spec

    f = r.finding(spec("vitime-harmonics/best-head-used-for-period"))
    q95 = same.quantile(95)  # 4.0
    assert f.measured == {CAUSAL: 3.0 - q95} and f.control == {CAUSAL: 2.0 - q95}  # the random ratios' median is 2.0
    assert f.verdict == "not supported" and "percentile 50, p = 0.600; 4 random sets of 1 head(s)" in f.detail


def test_ratio_comparison_refuses_unpaired_runs_and_survives_a_zero_denominator():
    with pytest.raises(InvalidInputError, match="exp2"):
        va.RatioComparison(comparison(1.0, (1.0,) * 20), comparison(1.0, (1.0,) * 21))
    with pytest.raises(InvalidInputError, match="exp2"):
        va.RatioComparison(comparison(1.0, (1.0,) * 20), comparison(1.0, (1.0,) * 20, heads=(("b", 1),)))
    r = va.RatioComparison(comparison(1.0, (0.0, 1.0)), comparison(0.0, (0.0, 1.0)))
    assert r.effect == 1e12 and r.random_effects == (0.0, 1.0) and r.exceeds(95)


# --- the whole test on a small model ---------------------------------------------------------------

def test_period_head_tests_match_an_independent_computation():
    model = small_model()
    metrics = small_metrics(model)
    reference = small_reference()
    tests = va.period_head_tests(model, {"best head": [(1, 0)], "two heads": [(0, 1), (2, 0)]}, metrics, reference, draws=20, seed=3)
    assert [t.label for t in tests] == ["best head", "two heads"]
    means = head_means(model, reference)
    pool = [(layer, h) for layer in range(3) for h in range(4)]  # 12 heads: 12 singletons, 66 pairs
    for t, size in zip(tests, (1, 2)):
        sets, exact = random_head_sets(pool, size, 20, 3, exclude=list(t.heads))
        assert t.heads not in sets and exact == (size == 1) and t.exp1.exact == exact and t.exp1.draws == len(sets) and t.random_sets == tuple(sets)
        for k, c in ((1, t.exp1), (2, t.exp2)):
            with ablate(model, list(t.heads), how="mean", reference=means):
                assert math.isclose(c.effect, metrics[k](model), rel_tol=1e-9, abs_tol=1e-15)
            for s, e in list(zip(sets, c.random_effects))[:4]:
                with ablate(model, list(s), how="mean", reference=means):
                    assert math.isclose(e, metrics[k](model), rel_tol=1e-9, abs_tol=1e-15)
            worst, effect = t.most_damaging(k)
            assert effect == max(c.random_effects) and worst == sets[c.random_effects.index(effect)]
        expected = [a / max(b, 1e-12) for a, b in zip(t.exp1.random_effects, t.exp2.random_effects)]
        assert t.ratio.random_effects == tuple(expected)

    frame = va.causal_frame(tests)
    assert frame.shape[0] == 6 and list(frame.index.get_level_values(1)[:3]) == ["experiment 1", "experiment 2", "ratio exp 1 / exp 2"]
    assert frame.loc[("two heads", "experiment 2"), "chosen"] == tests[1].exp2.effect
    with pytest.raises(InvalidInputError, match="labelled"):
        va.causal_findings(tests)  # "two heads" is not a head set the registry declares
    found = va.causal_findings([tests[0], dataclasses.replace(tests[1], label="top-3 heads")])
    assert [f.spec.key.split("/")[1] for f in found] == ["best-head-used-exp1", "best-head-used-exp2", "best-head-used-for-period",
                                                         "top3-used-exp1", "top3-used-exp2", "top3-used-for-period"]
    assert [f.verdict == "supported" for f in found] == [c.exceeds(95) for t in tests for c in (t.exp1, t.exp2, t.ratio)]
    assert list(frame["verdict"]) == [f.verdict for f in found]
    records = va.causal_records(tests, "forecast change")
    assert len(records) == 6 and records[2]["metric"] == "ratio of forecast change" and records[0]["effect"] == tests[0].exp1.effect
    assert all(set(r) >= {"finding", "metric", "heads", "how", "effect", "random_mean", "percentile", "p_value", "draws", "rule", "verdict"}
               for r in records)
    strips = va.strips(tests, "effects")
    assert list(strips) == ["L1H0, exp 1", "L1H0, exp 2", "2 heads, exp 1", "2 heads, exp 2"]
    assert strips["2 heads, exp 2"] == (tests[1].exp2.effect, tests[1].exp2.random_effects)
    assert va.strips(tests, "ratio")["2 heads"] == (tests[1].ratio.effect, tests[1].ratio.random_effects)
    with pytest.raises(InvalidInputError, match="measure"):
        va.strips(tests, "both")
    with pytest.raises(InvalidInputError, match="metrics"):
        va.period_head_tests(model, {"x": [(0, 0)]}, {1: metrics[1]}, reference)
    with pytest.raises(InvalidInputError, match="experiment"):
        tests[0].most_damaging(3)


def test_causal_reading_follows_the_verdicts():
    random = tuple(float(i) for i in range(20))  # 95th percentile 18 (nearest rank) or 18.05 (linear)

    def test(label, e1, e2):
        return va.PeriodHeadTest(label, ((0, 0),), comparison(e1, random), comparison(e2, random))

    none = va.causal_reading([test("best head", 5.0, 5.0)])
    assert none.startswith("none of the head sets")
    used = va.causal_reading([test("best head", 19.0, 0.5), test("top-3 heads", 30.0, 30.0)])
    assert used.startswith("ablating the best head and the top-3 heads moves") and used.endswith("the best head more so with the period present than without")
    # ratio 1.0 for 30/30 against random ratios i/i = 1 (0/0 -> 0): not above their 95th percentile
    assert "but not more so" in va.causal_reading([test("top-3 heads", 30.0, 30.0)])
    with pytest.raises(InvalidInputError, match="random_sets"):
        test("x", 1.0, 1.0).most_damaging(1)
