"""Chapter 3's causal section (issue 30): paired random-phase series with and without sin(n/10), the paired
damage metric (one value per pair; its fast path against the model's own forward), the period heads chosen
on the selection split, the disjoint test split, and the section on a small model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnbook.capture import capture
from attnbook.errors import InvalidInputError
from attnbook.intervene import POSITIVE_CONTROL, ablate, head_effects, head_means
from attnbook.vitime import analysis as va
from attnbook.vitime import harmonics as hm
from attnbook.vitime import lags, realts
from attnbook.vitime.experiment import PROFILES, CausalSettings
from attnbook.vitime.mapping import image_to_series, series_to_image
from attnbook.vitime.model import ViTime, ViTimeConfig

# a canvas wide enough for three periods of 62.8 samples (24 column lags of 8 samples, of 32)
SMALL = ViTimeConfig(h=16, history_len=256, future_len=256, patch=(16, 8), embed_dim=16, depth=2, num_heads=4,
                     decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=4)
LENGTH = HORIZON = 256


def small_model() -> ViTime:
    torch.manual_seed(0)
    return ViTime(SMALL).eval()


def small_data(selection: int = 4, test: int = 6) -> va.CausalData:
    return va.causal_data(selection, test, SMALL.mapping(), horizon=HORIZON, length=LENGTH)


def small_reference() -> torch.Tensor:
    return va.reference_images(realts.RealTSConfig(length=SMALL.width, min_period=4.0, max_period=30.0), SMALL.mapping(), 6, seed=1)


# --- the paired series ------------------------------------------------------------------------------

def test_a_pair_differs_by_the_harmonic_alone():
    pairs = va.paired_series(5, seed=3, length=LENGTH, noise=0.2)
    assert pairs.with_harmonic.shape == pairs.without.shape == (5, LENGTH) and pairs.phases.shape == (5, 3) and len(pairs) == 5
    assert np.all((pairs.phases >= 0) & (pairs.phases < 2 * np.pi))
    n = np.arange(LENGTH, dtype=np.float64)
    for i in range(5):
        phi0, phi1, phi2 = pairs.phases[i]
        # by hand: the difference is sin(2πn/62.8 + φ0); the twin is sin(2πn/31.4 + φ1) + cos(2πn/6.28 + φ2) + noise
        assert np.allclose(pairs.with_harmonic[i] - pairs.without[i], np.sin(2 * np.pi * n / (20 * np.pi) + phi0), atol=1e-12)
        noise = pairs.without[i] - np.sin(2 * np.pi * n / (10 * np.pi) + phi1) - np.cos(2 * np.pi * n / (2 * np.pi) + phi2)
        assert 0.1 < noise.std() < 0.3 and abs(noise.mean()) < 0.1
    again = va.paired_series(5, seed=3, length=LENGTH, noise=0.2)
    assert np.array_equal(again.with_harmonic, pairs.with_harmonic) and np.array_equal(again.without, pairs.without)
    quiet = va.paired_series(2, seed=3, length=LENGTH, noise=0.0)
    assert np.allclose(quiet.without[0], hm.signal([hm.Harmonic(1.0, 10 * np.pi, quiet.phases[0, 1]),
                                                   hm.Harmonic(1.0, 2 * np.pi, quiet.phases[0, 2], "cos")], LENGTH))
    with pytest.raises(InvalidInputError, match="noise"):
        va.paired_series(2, seed=0, noise=-1.0)


def test_the_splits_are_disjoint_and_ordered_with_harmonic_first():
    data = small_data(3, 4)
    assert len(data.selection) == 3 and len(data.test) == 4
    assert data.selection.seed == va.SELECTION_SEED != data.test.seed == va.TEST_SEED
    selection = {x.tobytes() for x in (*data.selection.with_harmonic, *data.selection.without)}
    test = {x.tobytes() for x in (*data.test.with_harmonic, *data.test.without)}
    assert len(selection) == 6 and len(test) == 8 and not selection & test
    assert data.test_images.shape == (8, 1, SMALL.width, SMALL.h) and len(data.test_mapped) == 8
    for b, x in enumerate((*data.test.with_harmonic, *data.test.without)):
        ref = series_to_image(x, HORIZON, SMALL.mapping())
        assert np.allclose(data.test_images[b, 0].numpy(), ref.image) and data.test_mapped[b].sigma == ref.sigma
    assert "none of them in the selection split" in data.test_text and "4 fresh" in data.test_text
    with pytest.raises(InvalidInputError, match="pairs"):
        va.paired_images(data.test.without, SMALL.mapping())


# --- the metric -------------------------------------------------------------------------------------

def hand_damage(model, data, heads, how="zero", reference=None) -> np.ndarray:
    """Per pair, from the model's own forward and image_to_series: 1000 · mean((ŷ_ablated − ŷ_intact)/σ)², with − without."""
    def forecasts():
        with torch.no_grad():
            probs = model(data.test_images).numpy()
        return np.stack([image_to_series(probs[b], m, method="expectation")[LENGTH:] / m.sigma for b, m in enumerate(data.test_mapped)])

    clean = forecasts()
    with ablate(model, heads, how=how, reference=reference):
        changed = forecasts()
    d = 1000 * np.mean((changed - clean) ** 2, axis=1)  # thousandths of the history variance
    n = len(data.test)
    return d[:n] - d[n:]


def test_the_metric_gives_one_value_per_pair_zero_intact_and_the_hand_computed_difference():
    model, data = small_model(), small_data()
    metric = va.HarmonicDamage(model, data.test_images, data.test_mapped)
    intact = metric(model)
    assert intact.shape == (len(data.test),) and np.all(intact == 0.0) and metric.calls == 1
    means = head_means(model, small_reference())
    for heads, how, ref in (([(0, 1)], "zero", None), ([(1, 2), (2, 0)], "mean", means), ([(2, 3)], "mean", means)):
        with ablate(model, heads, how=how, reference=ref):
            measured = metric(model)
        expected = hand_damage(model, data, heads, how, ref)
        assert measured.shape == (len(data.test),) and np.abs(measured).max() > 0
        assert np.allclose(measured, expected, rtol=1e-4, atol=1e-4), (heads, measured, expected)


def test_the_fast_path_restarts_at_the_first_hooked_block_and_matches_the_full_forward():
    model, data = small_model(), small_data()
    metric = va.HarmonicDamage(model, data.test_images, data.test_mapped)
    with torch.no_grad():
        assert torch.allclose(metric.logits(model), model.logits(data.test_images), atol=1e-5)
        for heads in ([(0, 0)], [(1, 3)], [(2, 1)], [(0, 2), (2, 2)]):  # encoder block 0, encoder block 1, the decoder block
            with ablate(model, heads, how="zero"):
                assert metric._fast(model)  # ablate's own checking hooks on the whole model do not force the whole forward
                assert torch.allclose(metric.logits(model), model.logits(data.test_images), atol=1e-5)
        with capture(model):  # hooks in every block: recomputed from the first
            assert torch.allclose(metric.logits(model), model.logits(data.test_images), atol=1e-5)
        handle = model.register_forward_hook(lambda _m, _i, out: out * 0)  # any other hook on the model: the whole forward
        try:
            assert not metric._fast(model) and torch.allclose(metric.logits(model), model.logits(data.test_images))
        finally:
            handle.remove()
        assert metric._fast(model)
    other = small_model()
    assert not metric._fast(other)  # another model is never read from this one's cache
    with pytest.raises(InvalidInputError, match="images"):
        va.HarmonicDamage(model, data.test_images[:3], data.test_mapped[:3])


# --- choosing the heads on the selection split ------------------------------------------------------

def test_period_ranking_is_the_contrast_of_the_profiles_averaged_over_the_series():
    model, data = small_model(), small_data(3, 2)
    n = len(data.selection)
    ranking = va.period_ranking(model, data.selection_images[:n], data.selection_mapped[:n])
    # by hand: one analysis per series (the chapter's), profiles averaged, then the contrast
    profiles = torch.stack([hm.analyse(model, x, HORIZON).profiles for x in data.selection.with_harmonic]).mean(0)
    contrast = lags.period_contrast(profiles, hm.PERIOD_63, data.selection_mapped[0].samples_per_patch)
    assert [(r["layer"], r["head"]) for r in ranking] == [(r["layer"], r["head"]) for r in lags.rank_heads(contrast, [""] * 3)]
    assert all(math.isclose(r["contrast"], float(contrast[r["layer"], r["head"]]), rel_tol=1e-5) for r in ranking)
    assert va.period_heads(ranking, 2) == [(ranking[0]["layer"], ranking[0]["head"]), (ranking[1]["layer"], ranking[1]["head"])]
    with pytest.raises(InvalidInputError, match="ranking"):
        va.period_heads(ranking, 13)


# --- the section on a small model -------------------------------------------------------------------

def test_the_causal_section_chooses_on_selection_tests_on_the_test_split_and_records_its_cost():
    model, data = small_model(), small_data(4, 6)
    reference = small_reference()
    section = va.causal_section(model, reference, data, heads=2, max_draws=9, seed=1)
    n = len(data.selection)
    ranking = va.period_ranking(model, data.selection_images[:n], data.selection_mapped[:n])
    assert section.period_heads == tuple(va.period_heads(ranking, 2))
    # the positive control: the strongest single heads on the selection split's paired metric, measured independently
    means = head_means(model, reference)
    selection_metric = va.HarmonicDamage(model, data.selection_images, data.selection_mapped)
    effects = head_effects(model, lambda m: float(np.mean(selection_metric(m))), how="mean", reference=means)
    assert section.control_heads == tuple((l, h) for l, h, _ in effects.ranked()[:2])
    assert math.isclose(section.control_single_sum, sum(v for _, _, v in effects.ranked()[:2]), rel_tol=1e-9)
    assert torch.allclose(section.selection_effects.effects, effects.effects, equal_nan=True, atol=1e-9)
    family = section.family
    assert list(family.tests) == [va.PERIOD_HEADS_KEY] and family.m == 1
    test = family.tests[va.PERIOD_HEADS_KEY]
    assert test.units == len(data.test) and test.result.max_draws <= 9 and family.control.units == len(data.test)
    names = [s for s in ("model.blocks.0.attn", "model.blocks.1.attn", "model.decoder_blocks.0.attn")]
    assert test.heads == tuple((names[l], h) for l, h in section.period_heads)
    # the effect is the mean over test pairs of the hand-computed paired difference
    assert math.isclose(test.effect, float(np.mean(hand_damage(model, data, list(section.period_heads), "mean", means))), rel_tol=1e-4)
    assert section.cost["forwards"] == len(effects.ranked()) + 1 + 2 * (2 + 0) + test.result.draws + family.control.result.draws
    assert section.cost["draws"] == test.result.draws + family.control.result.draws and section.cost["seconds"] > 0
    assert set(section.per_layer) == set(names)
    frame = va.causal_frame({1: section})
    assert list(frame.index.get_level_values("seed")) == [1, 1] and frame.index.get_level_values("test")[1] == section.texts[POSITIVE_CONTROL]
    records = va.causal_records({1: section}, "paired damage")
    assert [r["key"] for r in records] == [va.PERIOD_HEADS_KEY, POSITIVE_CONTROL] and all(r["seed"] == 1 for r in records)
    assert records[0]["test_split"] == data.test_text and records[0]["selection"] == data.selection_text
    assert va.strips({1: section})["s1 period heads"] == (test.effect, test.result.null)
    found = family.findings()
    assert [f.spec.key for f in found] == [va.PERIOD_HEADS_KEY]


def test_causal_settings_are_checked_and_full_draws_at_least_a_thousand():
    assert PROFILES["quick"].causal.test_pairs >= 32 and PROFILES["quick"].causal.max_draws is None
    assert PROFILES["full"].causal.max_draws >= 1000 and PROFILES["full"].causal.test_pairs >= PROFILES["quick"].causal.test_pairs
    with pytest.raises(InvalidInputError, match="test_pairs"):
        CausalSettings(test_pairs=0)
    with pytest.raises(InvalidInputError, match="max_draws"):
        CausalSettings(max_draws=0)
