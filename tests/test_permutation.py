"""head_set_test and CausalFamily: null spaces counted and drawn as documented (layer-matched, unmatched,
exact, sequential), a head that matters found and a head that does not left alone, the fallback,
Holm, the positive control's veto, records and every documented error path."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch

from attnbook import registry, stats
from attnbook.errors import InvalidInputError
from attnbook.intervene import CausalFamily, head_set_test, null_sets, null_space_size
from attnbook.modules import BlockConfig, Transformer

zero_test = partial(head_set_test, how="zero")
POOL = [(layer, h) for layer in range(3) for h in range(4)]  # 3 layers × 4 heads


def test_null_space_sizes_by_hand():
    assert null_space_size(POOL, [(0, 1), (2, 3)]) == 4 * 4  # one head from layer 0, one from layer 2
    assert null_space_size(POOL, [(0, 1), (0, 2)]) == math.comb(4, 2)
    assert null_space_size(POOL, [(0, 1), (2, 3)], "unmatched") == math.comb(12, 2)
    with pytest.raises(InvalidInputError, match="null"):
        null_space_size(POOL, [(0, 1)], "nearby")


@pytest.mark.parametrize("null", ["layer-matched", "unmatched"])
def test_null_sets_enumerate_every_other_set_of_the_same_shape(null):
    chosen = [(0, 1), (2, 3)]
    every = list(null_sets(POOL, chosen, null, exhaustive=True))
    assert len(every) == len(set(every)) == null_space_size(POOL, chosen, null) - 1
    assert tuple(sorted(chosen)) not in every
    if null == "layer-matched":
        assert all(sorted(layer for layer, _ in s) == [0, 2] for s in every)
    drawn = list(null_sets(POOL, chosen, null, seed=1))  # a finite space is used up
    assert sorted(drawn) == sorted(every)
    assert list(null_sets(POOL, chosen, null, seed=1)) == drawn  # seeded


def _model(*reading: tuple[int, int]) -> Transformer:
    """Two layers × 4 heads whose output is read almost only through the ``reading`` heads' slices of
    the projections: ablating exactly those heads is the most damaging set of their size."""
    torch.manual_seed(0)
    model = Transformer(BlockConfig(d_model=16, n_heads=4, d_ff=16, dropout=0.0), 2).eval()
    with torch.no_grad():
        for layer, block in enumerate(model.blocks):
            w = block.attn.proj.weight
            for h in range(4):
                if (layer, h) not in reading:
                    w[:, 4 * h:4 * (h + 1)] *= 0.01
    return model


def _unit_metric(model):
    x = torch.randn(32, 6, 16, generator=torch.Generator().manual_seed(1))
    ref = model(x).detach()
    return lambda m: (m(x) - ref).pow(2).mean(dim=(1, 2))  # one damage value per sequence


def test_the_heads_that_matter_are_detected_exactly_and_bystanders_are_not():
    model = _model((1, 2), (0, 0))
    metric = _unit_metric(model)
    hit = zero_test(model, metric, [(1, 2), (0, 0)], family=1, fallback=False)  # layer-matched: 4 × 4 = 16 sets
    assert hit.null == "layer-matched" and hit.result.exact and hit.result.space == 16 and hit.null_note == ""
    assert hit.p == 1 / 16 and hit.smallest_p == 1 / 16 and not hit.decidable  # 1/16 > 0.05: cannot decide
    wider = zero_test(model, metric, [(1, 2), (0, 0)], family=1)  # falls back to C(8, 2) = 28 unmatched pairs
    assert wider.null == "unmatched" and "layer-matched space has 16" in wider.null_note
    assert wider.result.space == 28 and wider.p == 1 / 28 and wider.decidable and wider.effect > wider.null_mean
    low, high = wider.interval
    assert low < wider.effect < high and wider.units == 32
    assert wider.detectable == pytest.approx(stats.detectable_effect(wider.result.null, wider.se, 0.05, 1))
    miss = zero_test(model, metric, [(1, 0), (0, 1)], family=1)
    assert miss.p > 0.5  # a set without the reading heads is among the least damaging
    three = _model((1, 2), (0, 0), (0, 1))
    matched = zero_test(three, _unit_metric(three), [(1, 2), (0, 0), (0, 1)], family=1)  # C(4,2)·4 = 24 layer-matched sets
    assert matched.null == "layer-matched" and matched.result.space == 24 and matched.p == 1 / 24 and matched.decidable


def test_small_matched_space_falls_back_to_unmatched_and_says_so():
    model = _model((1, 2))
    t = zero_test(model, _unit_metric(model), [(1, 2)], family=3)  # 4 single heads of layer 1: 1/4 > 0.05/3
    assert t.null == "unmatched" and "layer-matched space has 4" in t.null_note
    assert t.result.space == 8 and not t.decidable  # 8 heads in all: still 1/8
    strict = zero_test(model, _unit_metric(model), [(1, 2)], family=3, fallback=False)
    assert strict.null == "layer-matched" and strict.result.space == 4


def test_monte_carlo_with_sequential_stopping_on_a_large_space():
    model = _model((1, 2), (0, 0), (0, 1), (0, 2))
    metric = _unit_metric(model)
    # 4 of 8 heads unmatched: C(8,4) = 70 sets; exact_up_to=0 and 30 draws force Monte Carlo
    null_one = zero_test(model, metric, [(0, 0), (0, 1), (0, 2), (1, 0)], null="unmatched", max_draws=30, exact_up_to=0, stop_after=3)
    assert not null_one.result.exact and null_one.result.stopped and null_one.result.draws < 30
    assert null_one.p == 3 / null_one.result.draws
    clear = zero_test(model, metric, [(1, 2), (0, 0), (0, 1), (0, 2)], null="unmatched", max_draws=30, exact_up_to=0)
    assert not clear.result.stopped and clear.result.draws == 30 and clear.p == 1 / 31 == clear.smallest_p


def test_scalar_metric_and_errors():
    model = _model((1, 2))
    metric = _unit_metric(model)
    scalar = zero_test(model, lambda m: float(metric(m).mean()), [(1, 2), (0, 0), (0, 1)])
    assert scalar.units == 1 and all(math.isnan(v) for v in scalar.interval)
    with pytest.raises(InvalidInputError, match="metric"):
        zero_test(model, lambda m: float("nan"), [(1, 2)])
    with pytest.raises(InvalidInputError, match="null"):
        zero_test(model, metric, [(1, 2)], null="near")
    with pytest.raises(InvalidInputError, match="reference"):
        head_set_test(model, metric, [(1, 2)], how="mean")  # mean ablation needs reference inputs
    with pytest.raises(InvalidInputError, match="pool"):
        zero_test(model, metric, [(1, 2)], layers=[0])
    with pytest.raises(InvalidInputError, match="family"):
        zero_test(model, metric, [(1, 2)], family=0)
    calls = iter(range(100))
    with pytest.raises(InvalidInputError, match="same"):
        zero_test(model, lambda m: np.ones(1 + next(calls) % 2), [(1, 2), (0, 0), (0, 1)])


def test_family_holm_verdicts_and_the_positive_controls_veto():
    model = _model((1, 2), (0, 0), (0, 1))
    metric = _unit_metric(model)
    keys = registry.causal_family("charlm-evolution")
    m = len(keys)
    hit = zero_test(model, metric, [(1, 2), (0, 0), (0, 1)], family=m, null="unmatched")  # C(8,3) = 56 sets: exact
    miss = zero_test(model, metric, [(1, 0), (0, 0), (0, 1)], family=m, null="unmatched")
    control = zero_test(model, metric, [(1, 2), (0, 0), (0, 1)], family=m, null="unmatched")
    family = CausalFamily(dict(zip(keys, [hit, miss])), control, "selection split", "test split")
    assert family.adjusted == dict(zip(keys, stats.holm([hit.p, miss.p])))
    assert family.control_detected and family.verdict(keys[0]) == "supported" and family.verdict(keys[1]) == "not supported"
    found = family.findings()
    assert [f.verdict for f in found] == ["supported", "not supported"]
    assert found[0].measured[registry.CAUSAL_P] == family.adjusted[keys[0]] and not found[0].control_passes
    records = family.records("damage", seed=4)
    assert [r["key"] for r in records] == [*keys, "positive control"] and all(r["seed"] == 4 for r in records)
    assert records[0]["p_adjusted"] == family.adjusted[keys[0]] and records[-1]["verdict"] == "detected"
    assert list(family.frame().index)[-1] == "positive control"
    blind = CausalFamily(dict(zip(keys, [hit, miss])), miss, "s", "t")  # a control that is not detected vetoes every verdict
    assert [f.verdict for f in blind.findings()] == ["inconclusive", "inconclusive"]
    assert "positive control was not detected" in blind.inconclusive(keys[0])
    with pytest.raises(InvalidInputError, match="family"):
        CausalFamily({keys[0]: hit}, control, "s", "t")  # sized for 2, given 1


def test_pooled_test_and_strongest_heads():
    from attnbook.intervene import head_effects, pooled_test, strongest_heads

    model = _model((1, 2), (0, 0))
    metric = _unit_metric(model)
    effects = head_effects(model, lambda m: float(metric(m).mean()), how="zero")
    assert sorted(strongest_heads(effects, 2)) == [(0, 0), (1, 2)]
    a = zero_test(model, metric, [(1, 2), (0, 0)], null="unmatched")  # p = 1/28
    b = zero_test(model, metric, [(1, 0), (0, 1)], null="unmatched")
    p, smallest = pooled_test([a, a])
    assert smallest == 1 / 28 ** 2 and p == pytest.approx(stats.combined_rank_test([1, 1], [28, 28])[0]) and p == smallest
    assert pooled_test([a])[0] == pytest.approx(a.p) and pooled_test([a, b])[0] > p
    drawn = zero_test(model, metric, [(1, 2), (0, 0)], null="unmatched", max_draws=5, exact_up_to=0)
    with pytest.raises(InvalidInputError, match="exact"):
        pooled_test([drawn])
