"""Tests of attnbook.metrics: hand-computed cases, scipy references, properties and error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy

from attnbook import metrics as M
from attnbook.errors import InvalidInputError, OutOfRangeError
from attnbook.maps import AttentionMaps

LN2 = math.log(2)
FAST = settings(max_examples=50, deadline=None)

# A known 3×3 map used by many hand-computed cases (rows sum to 1).
A3 = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]]


def maps_of(w, mask=None, key_labels=None) -> AttentionMaps:
    """AttentionMaps from a nested list: 2-D = one head, 3-D = heads of one layer, 4-D = (L, H, Q, K)."""
    t = torch.tensor(w, dtype=torch.float32)
    while t.dim() < 4:
        t = t[None]
    t = t[:, None]  # batch of one
    m = None if mask is None else torch.tensor(mask, dtype=torch.bool)[None]
    return AttentionMaps(weights=t, mask=m, key_labels=key_labels)


def layers_of(*ws, **kw) -> AttentionMaps:
    """One head per layer: ``layers_of(A0, A1)`` has L = 2, H = 1."""
    return maps_of([[w] for w in ws], **kw)


def val(x: torch.Tensor) -> float:
    return float(x.reshape(-1)[0])


def close(a, b, tol=1e-5):
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return torch.allclose(a, b, atol=tol, rtol=tol, equal_nan=True)


# ------------------------------------------------------------------------------------------------
# random maps for property tests
# ------------------------------------------------------------------------------------------------
def random_maps(L, B, H, Q, K, seed, mask_kind="none", labels=False) -> AttentionMaps:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(L, B, H, Q, K, generator=g) * 3.0
    mask = None
    if mask_kind == "causal":
        pos = torch.arange(Q)[:, None] + (K - Q)
        mask = (torch.arange(K)[None, :] <= pos).expand(B, Q, K).clone()
    elif mask_kind == "padding":
        lengths = torch.randint(1, min(Q, K) + 1, (B,), generator=g)
        q_ok = torch.arange(Q)[None, :] < (lengths[:, None] + (Q - min(Q, K)))
        k_ok = torch.arange(K)[None, :] < (lengths[:, None] + (K - min(Q, K)))
        mask = q_ok[:, :, None] & k_ok[:, None, :]
    elif mask_kind == "random":
        mask = torch.rand(B, Q, K, generator=g) < 0.6
    if mask is not None:
        logits = logits.masked_fill(~mask[None, :, None], float("-inf"))
    w = torch.softmax(logits, -1)
    w = torch.nan_to_num(w, nan=0.0)  # rows without any allowed key
    kl = None
    if labels:
        vocab = ["[CLS]", "a", "b", "[SEP]"]
        kl = [[vocab[int(x)] for x in torch.randint(0, 4, (K,), generator=g)] for _ in range(B)]
    return AttentionMaps(weights=w, mask=mask, key_labels=kl)


dims = st.integers(1, 3)
lengths = st.integers(1, 7)
seeds = st.integers(0, 2**31 - 1)
mask_kinds = st.sampled_from(["none", "causal", "padding", "random"])


# ================================================================================================
# 1. Jensen-Shannon
# ================================================================================================
def test_js_hand_cases():
    assert val(M.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))) == pytest.approx(LN2)
    assert val(M.js_divergence(torch.tensor([0.3, 0.7]), torch.tensor([0.3, 0.7]))) == pytest.approx(0.0, abs=1e-7)
    # m = [0.75, 0.25]: ½(0.5 ln(2/3) + 0.5 ln 2) + ½ ln(4/3) = 0.75 ln(4/3)
    got = val(M.js_divergence(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])))
    assert got == pytest.approx(0.75 * math.log(4 / 3), rel=1e-6)


def test_js_dim_and_broadcast():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([0.0, 1.0])
    assert close(M.js_divergence(p, q), [LN2, 0.75 * math.log(4 / 3)])
    assert close(M.js_divergence(p.T, q[:, None], dim=0), [LN2, 0.75 * math.log(4 / 3)])


@FAST
@given(n=st.integers(1, 12), seed=seeds, sparse=st.booleans())
def test_js_matches_scipy_symmetric_and_bounded(n, seed, sparse):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n, generator=g, dtype=torch.float64) * 3, -1)
    q = torch.softmax(torch.randn(n, generator=g, dtype=torch.float64) * 3, -1)
    if sparse and n > 1:
        p[0] = 0.0
        q[-1] = 0.0
        p, q = p / p.sum(), q / q.sum()
    js = float(M.js_divergence(p, q))
    assert 0.0 <= js <= LN2
    assert js == pytest.approx(float(M.js_divergence(q, p)), abs=1e-12)
    assert js == pytest.approx(jensenshannon(p.numpy(), q.numpy(), base=math.e) ** 2, abs=1e-9)  # nats, as M.js_divergence


# ================================================================================================
# 2-4. entropy, Gini, concentration
# ================================================================================================
def test_entropy_hand_cases():
    m = maps_of([[0.5, 0.5], [1.0, 0.0]])
    assert close(M.row_entropy(m)[0, 0, 0], [LN2, 0.0])
    assert val(M.entropy(m)) == pytest.approx(LN2 / 2)
    assert val(M.entropy(m, normalized=True)) == pytest.approx(0.5)
    u4 = maps_of([[0.25] * 4])
    assert val(M.entropy(u4)) == pytest.approx(math.log(4))
    assert val(M.entropy(u4, normalized=True)) == pytest.approx(1.0)


def test_entropy_masked_rows():
    # row 0 may see keys 0-1 only (uniform: normalised 1); row 1 sees one key (normalised 0);
    # row 2 is padding (NaN, skipped)
    m = maps_of([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], mask=[[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert close(M.row_entropy(m)[0, 0, 0], [LN2, 0.0, float("nan")])
    assert val(M.entropy(m)) == pytest.approx(LN2 / 2)
    assert val(M.entropy(m, normalized=True)) == pytest.approx(0.5)


def test_entropy_matches_scipy():
    m = random_maps(2, 2, 3, 5, 6, seed=1)
    ref = scipy_entropy(m.weights.numpy().astype(np.float64), base=math.e, axis=-1)  # nats, as M.row_entropy
    assert np.allclose(M.row_entropy(m).numpy(), ref, atol=1e-5)
    assert np.allclose(M.entropy(m).numpy(), ref.mean(-1), atol=1e-5)


def test_gini_hand_cases():
    assert val(M.gini(maps_of([[0.5, 0.5]]))) == pytest.approx(0.0, abs=1e-7)
    assert val(M.gini(maps_of([[1.0, 0.0, 0.0]]))) == pytest.approx(2 / 3)
    # Σ|p_i - p_j| over ordered pairs = 2·(0.1 + 0.3 + 0.2) = 1.2; G = 1.2 / (2·3·1) = 0.2
    assert val(M.gini(maps_of([[0.2, 0.3, 0.5]]))) == pytest.approx(0.2)
    # a masked key is not part of the row: [0.5, 0.5 | masked] is uniform over 2 keys
    assert val(M.gini(maps_of([[0.5, 0.5, 0.0]], mask=[[1, 1, 0]]))) == pytest.approx(0.0, abs=1e-7)
    assert val(M.gini(maps_of([[0.5, 0.5, 0.0]]))) == pytest.approx(1 / 3)


def test_concentration_hand_cases():
    row = maps_of([[0.1, 0.2, 0.3, 0.4]])
    assert val(M.top_k_mass(row, k=2)) == pytest.approx(0.7)
    assert val(M.top_k_mass(row, k=1)) == pytest.approx(0.4)
    assert val(M.top_k_mass(row, k=4)) == pytest.approx(1.0)
    m = maps_of([[0.1, 0.9], [0.6, 0.4]])
    assert val(M.max_weight(m)) == pytest.approx(0.9)
    assert val(M.min_weight(m)) == pytest.approx(0.1)
    assert val(M.mean_weight(m)) == pytest.approx(0.5)
    assert val(M.row_focus(m)) == pytest.approx(0.75)
    causal = maps_of([[1.0, 0.0], [0.3, 0.7]], mask=[[1, 0], [1, 1]])
    assert val(M.min_weight(causal)) == pytest.approx(0.3)  # the forbidden 0 is not counted
    assert val(M.mean_weight(causal)) == pytest.approx(2 / 3)  # 3 allowed cells
    assert val(M.top_k_mass(causal, k=1)) == pytest.approx(0.85)


# ================================================================================================
# 5-8. pattern strengths, span, lag, recency
# ================================================================================================
def test_offset_and_band_hand_cases():
    m = maps_of(A3)
    assert val(M.self_mass(m)) == pytest.approx(0.6)  # (0.6 + 0.5 + 0.7) / 3
    assert val(M.previous_token_mass(m)) == pytest.approx(0.2)  # rows 1, 2: (0.2 + 0.2) / 2
    assert val(M.next_token_mass(m)) == pytest.approx(0.3)  # rows 0, 1: (0.3 + 0.3) / 2
    assert val(M.offset_mass(m, -2)) == pytest.approx(0.1)
    assert math.isnan(val(M.offset_mass(m, 3)))
    assert val(M.diagonal_band_mass(m, width=1)) == pytest.approx(2.8 / 3)  # 0.9, 1.0, 0.9
    assert val(M.diagonal_band_mass(m, width=0)) == pytest.approx(0.6)
    assert val(M.diagonal_band_mass(m, width=50)) == pytest.approx(1.0)
    assert val(M.column_stripe(m)) == pytest.approx(1.1 / 3)  # column means 0.3, 1/3, 1.1/3


def test_offset_respects_mask_and_query_alignment():
    causal = maps_of([[1.0, 0.0], [0.4, 0.6]], mask=[[1, 0], [1, 1]])
    assert val(M.next_token_mass(causal)) == pytest.approx(0.0)  # row 0's next key is forbidden: counts 0
    assert val(M.previous_token_mass(causal)) == pytest.approx(0.4)
    # one query over three keys sits at position 2
    last = maps_of([[0.2, 0.3, 0.5]])
    assert val(M.self_mass(last)) == pytest.approx(0.5)
    assert val(M.previous_token_mass(last)) == pytest.approx(0.3)
    assert math.isnan(val(M.next_token_mass(last)))
    assert val(M.mean_distance(last)) == pytest.approx(2 * 0.2 + 0.3)
    assert close(M.lag_profile(last)[0, 0, 0], [0.5, 0.3, 0.2])


def test_uniform_and_one_key_stripes():
    assert val(M.column_stripe(maps_of([[0.25] * 4] * 4))) == pytest.approx(0.25)
    assert val(M.column_stripe(maps_of([[0.0, 1.0, 0.0]] * 3))) == pytest.approx(1.0)


def test_label_mass_hand_case():
    m = maps_of(A3, key_labels=["[CLS]", "a", "[SEP]"])
    assert val(M.label_mass(m, {"[CLS]", "[SEP]"})) == pytest.approx(2 / 3)  # 0.7, 0.5, 0.8
    assert val(M.label_mass(m, {"a"})) == pytest.approx(1 / 3)
    assert val(M.label_mass(m, "a")) == pytest.approx(1 / 3)
    assert val(M.label_mass(m, set())) == pytest.approx(0.0)


def test_span_hand_cases():
    m = maps_of(A3)
    assert val(M.mean_distance(m)) == pytest.approx(1.4 / 3)  # 0.5, 0.5, 0.4
    # mass within distance 0 / 1 / 2: row 0 .6/.9/1, row 1 .5/1/1, row 2 .7/.9/1
    assert val(M.span_quantile(m, q=0.9)) == pytest.approx(1.0)
    assert val(M.span_quantile(m, q=0.95)) == pytest.approx(5 / 3)
    assert val(M.span_quantile(m, q=0.5)) == pytest.approx(0.0)
    assert val(M.span_quantile(m, q=1.0)) == pytest.approx(5 / 3)


def test_lag_profile_hand_cases():
    m = maps_of(A3)
    assert close(M.lag_profile(m)[0, 0, 0], [0.6, 0.2, 0.1])  # diag, sub-diagonal mean, corner
    assert close(M.lag_profile(m, max_lag=4)[0, 0, 0], [0.6, 0.2, 0.1, float("nan"), float("nan")])
    assert close(M.lag_profile(m, max_lag=0)[0, 0, 0], [0.6])
    # with a mask only allowed pairs count: row 2 may not see key 0
    masked = maps_of([[1, 0, 0], [0.5, 0.5, 0], [0, 0.4, 0.6]], mask=[[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    assert close(M.lag_profile(masked)[0, 0, 0], [(1 + 0.5 + 0.6) / 3, (0.5 + 0.4) / 2, float("nan")])


def test_recency_hand_cases():
    m = maps_of([[0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.2, 0.4]])
    # fraction 0.25 of 4 keys = 1 key: last column mean 0.4 / first column mean 0.15
    assert val(M.recency_ratio(m)) == pytest.approx(0.4 / 0.15, rel=1e-5)
    # 2 keys each side: (0.3+0.4+0.2+0.4)/4 over (0.1+0.2+0.2+0.2)/4
    assert val(M.recency_ratio(m, fraction=0.5)) == pytest.approx(1.3 / 0.7, rel=1e-5)
    assert val(M.recency_ratio(maps_of([[0.25] * 4] * 4))) == pytest.approx(1.0)
    assert val(M.recency_ratio(maps_of(A3))) == pytest.approx(1.1 / 0.9, rel=1e-5)


# ================================================================================================
# 9-10. similarity
# ================================================================================================
def test_head_diversity_hand_cases():
    assert val(M.head_diversity(maps_of([[[1.0, 0.0]], [[0.0, 1.0]]]))) == pytest.approx(LN2)
    three = maps_of([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]])  # pairs: ln2, 0, ln2
    assert val(M.head_diversity(three)) == pytest.approx(2 * LN2 / 3)
    assert val(M.head_diversity(maps_of([[1.0, 0.0]]))) == 0.0  # one head
    assert M.head_diversity(random_maps(2, 3, 4, 3, 3, seed=0)).shape == (2, 3)


def test_head_distances_hand_case():
    two_layers = maps_of([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])  # L=2, H=1
    assert close(M.head_distances(two_layers), [[0.0, LN2], [LN2, 0.0]])
    m = random_maps(2, 2, 3, 4, 4, seed=3)
    D = M.head_distances(m)
    assert D.shape == (6, 6)
    # entry (l·H + h, l'·H + h') against a direct computation with the reference JS
    w = m.weights.double()
    ref = M.js_divergence(w[1, :, 0], w[0, :, 2]).mean()
    assert float(D[3, 2]) == pytest.approx(float(ref), abs=1e-5)


def test_cross_layer_hand_case():
    # layer 0 heads both [1, 0] -> Ā0 = [1, 0]; layer 1 heads [1, 0], [0, 1] -> Ā1 = [0.5, 0.5]
    m = maps_of([[[[1.0, 0.0]], [[1.0, 0.0]]], [[[1.0, 0.0]], [[0.0, 1.0]]]])
    js = 0.75 * math.log(4 / 3)
    assert close(M.cross_layer_js(m), [[0.0, js], [js, 0.0]])
    c = 1 / math.sqrt(2)  # ⟨[1,0],[.5,.5]⟩ / (1 · √0.5)
    assert close(M.cross_layer_cosine(m), [[1.0, c], [c, 1.0]])


# ================================================================================================
# 11-14. attribution
# ================================================================================================
def test_token_importance_hand_case():
    m = maps_of(A3, key_labels=["[CLS]", "a", "[SEP]"])
    assert close(M.token_importance(m)[0], [0.3, 1 / 3, 1.1 / 3])  # column means
    assert close(M.token_importance(m, exclude={"[CLS]"})[0], [0.0, (1 / 3) / 0.7, (1.1 / 3) / 0.7])


def test_rollout_hand_cases():
    # Â = 0.5·I + 0.5·A3
    assert close(M.rollout(maps_of(A3))[0], [[0.8, 0.15, 0.05], [0.1, 0.75, 0.15], [0.05, 0.1, 0.85]])
    # two identical layers: Â·Â by hand
    two = layers_of(A3, A3)
    expect = [[0.6575, 0.2375, 0.105], [0.1625, 0.5925, 0.245], [0.0925, 0.1675, 0.74]]
    assert close(M.rollout(two)[0], expect)
    # different layers: Â0 = [[1, 0], [.25, .75]], Â1 = [[.75, .25], [0, 1]], R = Â1·Â0
    m = layers_of([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]])
    assert close(M.rollout(m)[0], [[0.8125, 0.1875], [0.25, 0.75]])
    assert close(M.rollout(m, start_layer=1)[0], [[0.75, 0.25], [0.0, 1.0]])
    assert close(M.rollout(m, residual=0.0)[0], [[0.75, 0.25], [0.5, 0.5]])  # plain product A1·A0


def test_gradient_rollout_hand_cases():
    m = maps_of([[1.0, 0.0], [0.5, 0.5]])
    assert close(M.gradient_rollout(m, torch.ones(m.shape))[0], [[2.0, 0.0], [0.5, 1.5]])  # I + A
    g = torch.tensor([[1.0, 1.0], [-1.0, 2.0]]).reshape(m.shape)  # relu(g ⊙ A) = I
    assert close(M.gradient_rollout(m, g)[0], [[2.0, 0.0], [0.0, 2.0]])
    # two layers: R1 = I + Ā0, R2 = R1 + Ā1 R1 with Ā0 = [[1,0],[.5,.5]], Ā1 = [[.5,.5],[0,1]]
    # R1 = [[2, 0], [.5, 1.5]], Ā1·R1 = [[1.25, 0.75], [0.5, 1.5]]
    two = layers_of([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]])
    assert close(M.gradient_rollout(two, torch.ones(two.shape))[0], [[3.25, 0.75], [1.0, 3.0]])


def test_attention_flow_hand_cases():
    one = maps_of([[1.0, 0.0], [0.5, 0.5]])
    assert close(M.attention_flow(one), [[1.0, 0.0], [0.25, 0.75]])  # one layer: flow = Â
    # two layers: flow(i, j) = Σ_k min(Â1[i, k], Â0[k, j]) (disjoint 2-edge paths)
    two = layers_of([[1.0, 0.0], [0.5, 0.5]], [[0.5, 0.5], [0.0, 1.0]])
    assert close(M.attention_flow(two), [[1.0, 0.25], [0.25, 0.75]])


def test_attention_flow_matches_path_formula_on_random_maps():
    m = random_maps(2, 2, 2, 4, 4, seed=5, mask_kind="causal")
    A = m.weights.double().mean(2)
    A = 0.5 * torch.eye(4, dtype=torch.float64) + 0.5 * A
    A = A / A.sum(-1, keepdim=True)
    ref = torch.minimum(A[1, 1][:, :, None], A[0, 1][None, :, :]).sum(1)  # sample 1
    assert close(M.attention_flow(m, sample=1), ref, tol=1e-5)


# ================================================================================================
# 15-17. head-type scores, classification, summary
# ================================================================================================
def test_pattern_and_induction_hand_cases():
    m = maps_of(A3)
    assert val(M.pattern_score(m, torch.eye(3))) == pytest.approx(0.6)
    lower = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    assert val(M.pattern_score(m, lower)) == pytest.approx(2.3 / 3)  # 0.6, 0.7, 1.0
    assert val(M.pattern_score(m, lower[None])) == pytest.approx(2.3 / 3)
    # period 2: queries 2, 3 look at keys 1, 2
    ind = maps_of([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.1, 0.6, 0.3, 0], [0, 0.2, 0.5, 0.3]])
    assert val(M.induction_score(ind, period=2)) == pytest.approx(0.55)
    # period 1: queries 1..3 on themselves (query 0 has no earlier occurrence)
    assert val(M.induction_score(ind, period=1)) == pytest.approx((0.5 + 0.3 + 0.3) / 3)
    assert math.isnan(val(M.induction_score(ind, period=4)))


def test_classify_heads_rules():
    heads = [
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],  # self
        [[1, 0, 0], [1, 0, 0], [0, 1, 0]],  # previous-token (self 1/3)
        [[0, 1, 0], [0, 0, 1], [0, 0, 1]],  # next-token (self 1/3, previous 0)
        [[1, 0, 0], [1, 0, 0], [1, 0, 0]],  # everything on key 0
        [[1 / 3] * 3] * 3,  # uniform
    ]
    with_labels = maps_of(heads, key_labels=["[CLS]", "a", "b"])
    assert M.classify_heads(with_labels) == [["self", "previous-token", "next-token", "special-token sink", "broad"]]
    assert M.classify_heads(maps_of(heads)) == [["self", "previous-token", "next-token", "mixed", "broad"]]
    assert M.classify_heads(with_labels, special=()) == [["self", "previous-token", "next-token", "mixed", "broad"]]


def test_head_summary_hand_case():
    m = maps_of([[0.5, 0.5], [0.5, 0.5]], key_labels=["[CLS]", "x"])
    (row,) = M.head_summary(m, special=["[CLS]"])
    expect = {
        "layer": 0, "head": 0, "mean": 0.5, "max": 0.5, "min": 0.5, "entropy": LN2, "norm_entropy": 1.0,
        "gini": 0.0, "top3": 1.0, "row_focus": 0.5, "self": 0.5, "previous": 0.5, "next": 0.5,
        "diagonal_band": 1.0, "column_stripe": 0.5, "mean_distance": 0.5, "span90": 1.0, "recency": 1.0,
        "[CLS]": 0.5,
    }  # fmt: skip
    assert list(row) == list(expect)
    for key, value in expect.items():
        assert row[key] == pytest.approx(value, abs=1e-6), key


def test_head_summary_agrees_with_functions():
    m = random_maps(2, 3, 2, 5, 6, seed=11, mask_kind="padding", labels=True)
    rows = M.head_summary(m, special={"[SEP]", "[CLS]"})
    assert len(rows) == 4 and [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    checks = {
        "entropy": M.entropy(m), "norm_entropy": M.entropy(m, normalized=True), "gini": M.gini(m),
        "top3": M.top_k_mass(m, 3), "row_focus": M.row_focus(m), "max": M.max_weight(m), "min": M.min_weight(m),
        "mean": M.mean_weight(m), "self": M.self_mass(m), "previous": M.previous_token_mass(m),
        "next": M.next_token_mass(m), "diagonal_band": M.diagonal_band_mass(m, 1), "column_stripe": M.column_stripe(m),
        "mean_distance": M.mean_distance(m), "span90": M.span_quantile(m, 0.9), "recency": M.recency_ratio(m),
        "[CLS]": M.label_mass(m, {"[CLS]"}), "[SEP]": M.label_mass(m, {"[SEP]"}),
    }  # fmt: skip
    for key, t in checks.items():
        ref = torch.nanmean(t, dim=1)
        got = torch.tensor([[rows[l * 2 + h][key] for h in range(2)] for l in range(2)])
        assert close(got, ref), key


# ================================================================================================
# properties on random maps
# ================================================================================================
@FAST
@given(L=dims, B=dims, H=dims, Q=lengths, K=lengths, seed=seeds, kind=mask_kinds)
def test_entropy_gini_bounds(L, B, H, Q, K, seed, kind):
    m = random_maps(L, B, H, Q, K, seed, kind)
    valid = m.valid_queries()
    n = m.key_mask().sum(-1).float()
    h = M.row_entropy(m)
    assert torch.isnan(h).equal((~valid)[None, :, None].expand_as(h))
    hv = h.permute(0, 2, 1, 3)[:, :, valid]  # (L, H, n valid rows)
    assert (hv >= 0).all() and (hv <= n[valid].log() + 1e-6).all()
    ne = M.entropy(m, normalized=True)
    fin = ne[~torch.isnan(ne)]
    assert ((fin >= 0) & (fin <= 1)).all()
    g = M.gini(m)
    fin = g[~torch.isnan(g)]
    assert ((fin >= 0) & (fin < 1)).all()
    # Gini against the O(n²) definition on every valid row
    w, mask = m.weights.double(), m.key_mask()
    G = M.gini(m).double()
    for b in range(B):
        rows = []
        for i in range(Q):
            if not valid[b, i]:
                continue
            p = w[:, b, :, i][..., mask[b, i]]  # (L, H, n)
            diff = (p[..., :, None] - p[..., None, :]).abs().sum((-1, -2))
            rows.append(diff / (2 * p.shape[-1] * p.sum(-1)))
        if rows:
            assert close(G[:, b], torch.stack(rows).mean(0), tol=1e-4)


@FAST
@given(B=dims, H=dims, Q=lengths, L=st.integers(1, 4), seed=seeds, causal=st.booleans())
def test_rollout_rows_sum_to_one_and_causal_stays_causal(B, H, Q, L, seed, causal):
    m = random_maps(L, B, H, Q, Q, seed, "causal" if causal else "none")
    R = M.rollout(m, residual=0.3)
    assert R.shape == (B, Q, Q)
    assert close(R.sum(-1), torch.ones(B, Q), tol=1e-5)
    if causal:
        assert (torch.triu(R, diagonal=1) == 0).all()
    G = M.gradient_rollout(m, torch.randn(m.shape, generator=torch.Generator().manual_seed(seed)))
    assert (G >= 0).all() and (G.diagonal(dim1=-2, dim2=-1) >= 1 - 1e-6).all()


@FAST
@given(L=dims, B=dims, H=dims, Q=lengths, extra=st.integers(0, 3), seed=seeds)
def test_lag_profile_of_causal_maps(L, B, H, Q, extra, seed):
    K = Q + extra
    m = random_maps(L, B, H, Q, K, seed, "causal")
    prof = M.lag_profile(m, max_lag=K + 1)
    assert prof.shape == (L, B, H, K + 2)
    # pairs with lag d: queries at positions K-Q .. K-1 see key pos - d when pos - d >= 0
    pos = torch.arange(Q) + (K - Q)
    counts = torch.tensor([float((pos - d >= 0).sum()) for d in range(K + 2)])
    assert torch.isfinite(prof[..., :K]).all() and torch.isnan(prof[..., K:]).all()
    # all the mass of a causal map lies at lags >= 0, so the profile holds every row's unit mass
    total = (prof[..., :K] * counts[:K]).sum(-1)
    assert close(total, torch.full((L, B, H), float(Q)), tol=1e-4)


@FAST
@given(L=dims, B=dims, H=dims, Q=lengths, K=lengths, seed=seeds, kind=mask_kinds)
def test_token_importance_and_head_distances(L, B, H, Q, K, seed, kind):
    m = random_maps(L, B, H, Q, K, seed, kind, labels=True)
    imp = M.token_importance(m)
    has_rows = m.valid_queries().any(-1)
    assert close(imp.sum(-1)[has_rows], torch.ones(int(has_rows.sum())))
    assert (imp >= 0).all()
    ex = M.token_importance(m, exclude={"[CLS]"})
    labels = torch.tensor([[lab == "[CLS]" for lab in row] for row in m.key_labels])
    assert (ex[labels] == 0).all()
    s = ex.sum(-1)
    assert (close(s[s > 0], torch.ones(int((s > 0).sum()))))
    D = M.head_distances(m)
    assert D.shape == (L * H, L * H)
    # symmetric, zero diagonal; NaN (undefined) only when no sample has a valid query row
    assert torch.allclose(D, D.T, equal_nan=True) and (D.diagonal() == 0).all()
    off_diagonal = ~torch.eye(L * H, dtype=torch.bool)
    assert bool(torch.isnan(D[off_diagonal]).any()) == (bool(off_diagonal.any()) and not bool(m.valid_queries().any()))
    fin = D[~torch.isnan(D)]
    assert ((fin >= 0) & (fin <= LN2)).all()
    C = M.cross_layer_js(m)
    assert torch.allclose(C, C.T, equal_nan=True) and C.shape == (L, L)
    div = M.head_diversity(m)
    fin = div[~torch.isnan(div)]
    assert div.shape == (L, B) and ((fin >= 0) & (fin <= LN2 + 1e-6)).all()


PER_HEAD = {
    "entropy": M.entropy,
    "norm_entropy": lambda m: M.entropy(m, normalized=True),
    "gini": M.gini,
    "top2": lambda m: M.top_k_mass(m, 2),
    "max": M.max_weight,
    "min": M.min_weight,
    "mean": M.mean_weight,
    "row_focus": M.row_focus,
    "self": M.self_mass,
    "previous": M.previous_token_mass,
    "next": M.next_token_mass,
    "offset-2": lambda m: M.offset_mass(m, -2),
    "band": M.diagonal_band_mass,
    "band3": lambda m: M.diagonal_band_mass(m, 3),
    "stripe": M.column_stripe,
    "cls": lambda m: M.label_mass(m, {"[CLS]"}),
    "mean_distance": M.mean_distance,
    "span": M.span_quantile,
    "span50": lambda m: M.span_quantile(m, 0.5),
    "recency": M.recency_ratio,
    "recency50": lambda m: M.recency_ratio(m, 0.5),
    "lag": lambda m: M.lag_profile(m, max_lag=3),
    "pattern": lambda m: M.pattern_score(m, torch.tril(torch.ones(m.n_queries, m.n_keys), diagonal=m.n_keys - m.n_queries)),
    "induction": lambda m: M.induction_score(m, 2),
}


def _pad(m: AttentionMaps) -> AttentionMaps:
    """Append a padding query and a padding key (all-False mask row and column) at the end."""
    L, B, H, Q, K = m.shape
    w = torch.zeros(L, B, H, Q + 1, K + 1)
    w[..., :Q, :K] = m.weights
    mask = torch.zeros(B, Q + 1, K + 1, dtype=torch.bool)
    mask[:, :Q, :K] = m.key_mask()
    labels = [list(row) + ["<pad>"] for row in m.key_labels]
    return AttentionMaps(weights=w, mask=mask, key_labels=labels)


@FAST
@given(L=dims, B=dims, H=dims, Q=lengths, K=st.integers(2, 7), seed=seeds, kind=mask_kinds)
def test_padding_changes_no_per_head_metric(L, B, H, Q, K, seed, kind):
    m = random_maps(L, B, H, Q, K, seed, kind, labels=True)
    p = _pad(m)
    for name, fn in PER_HEAD.items():
        a, b = fn(m), fn(p)
        assert a.shape[:3] == (L, B, H)
        assert close(a, b, tol=1e-5), name
    assert close(M.head_diversity(m), M.head_diversity(p))
    assert close(M.cross_layer_js(m), M.cross_layer_js(p))
    assert close(M.head_distances(m), M.head_distances(p))
    assert close(M.cross_layer_cosine(m), M.cross_layer_cosine(p))
    assert close(M.token_importance(m), M.token_importance(p)[:, :K])


@FAST
@given(L=dims, B=dims, H=dims, Q=lengths, K=lengths, seed=seeds, kind=mask_kinds, q=st.floats(0.05, 1.0))
def test_span_and_offsets_against_loops(L, B, H, Q, K, seed, kind, q):
    m = random_maps(L, B, H, Q, K, seed, kind)
    w, mask = m.weights.double(), m.key_mask()
    valid, real = m.valid_queries(), mask.any(1)
    span, dist, prev = M.span_quantile(m, q), M.mean_distance(m), M.previous_token_mass(m)
    for b in range(B):
        spans, dists, prevs = [], [], []
        for i in range(Q):
            if not valid[b, i]:
                continue
            pos = i + K - Q
            d = torch.tensor([abs(pos - j) for j in range(K)], dtype=torch.float64)
            dists.append((w[:, b, :, i] * d).sum(-1))
            cands = sorted(set(d.tolist()))
            within = torch.stack([(w[:, b, :, i] * (d <= c)).sum(-1) for c in cands], -1)
            ok = within >= q * within[..., -1:] * (1 - 1e-6)
            spans.append(torch.tensor(cands, dtype=torch.float64)[ok.double().argmax(-1)])
            if 0 <= pos - 1 < K and real[b, pos - 1]:
                prevs.append(w[:, b, :, i, pos - 1])
        if spans:
            assert close(span[:, b], torch.stack(spans).mean(0), tol=1e-4)
            assert close(dist[:, b], torch.stack(dists).mean(0), tol=1e-4)
        if prevs:
            assert close(prev[:, b], torch.stack(prevs).mean(0), tol=1e-5)
        else:
            assert torch.isnan(prev[:, b]).all()


# ================================================================================================
# errors
# ================================================================================================
def test_error_paths():
    m = maps_of(A3)
    with pytest.raises(InvalidInputError, match="^grads:"):
        M.gradient_rollout(m, torch.ones(1, 1, 1, 3, 2))
    with pytest.raises(InvalidInputError, match="^grads:"):
        M.gradient_rollout(m, [[1.0]])
    rect = maps_of([[0.5, 0.5]])
    with pytest.raises(InvalidInputError, match="^maps: expected square"):
        M.rollout(rect)
    with pytest.raises(InvalidInputError, match="^maps:"):
        M.gradient_rollout(rect, torch.ones(rect.shape))
    with pytest.raises(InvalidInputError, match="key_labels"):
        M.label_mass(m, {"[CLS]"})
    with pytest.raises(InvalidInputError, match="key_labels"):
        M.token_importance(m, exclude={"[CLS]"})
    with pytest.raises(InvalidInputError, match="^max_nodes:.*rollout.*4 · 3 = 12"):
        M.attention_flow(layers_of(A3, A3, A3), max_nodes=10)
    for k in (0, 4, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="^k:"):
            M.top_k_mass(m, k=k)
    for fraction in (0, -0.1, 0.6, float("nan"), "a"):
        with pytest.raises(InvalidInputError, match="^fraction:"):
            M.recency_ratio(m, fraction=fraction)
    for q in (0, -0.5, 1.5, float("nan")):
        with pytest.raises(InvalidInputError, match="^q:"):
            M.span_quantile(m, q=q)
    with pytest.raises(InvalidInputError, match="^width:"):
        M.diagonal_band_mass(m, width=-1)
    with pytest.raises(InvalidInputError, match="^max_lag:"):
        M.lag_profile(m, max_lag=-1)
    with pytest.raises(InvalidInputError, match="^period:"):
        M.induction_score(m, period=0)
    with pytest.raises(InvalidInputError, match="^offset:"):
        M.offset_mass(m, 0.5)
    with pytest.raises(InvalidInputError, match="^residual:"):
        M.rollout(m, residual=1.5)
    with pytest.raises(OutOfRangeError, match="^start_layer:"):
        M.rollout(m, start_layer=3)
    with pytest.raises(OutOfRangeError, match="^sample:"):
        M.attention_flow(m, sample=2)
    with pytest.raises(InvalidInputError, match="^pattern:"):
        M.pattern_score(m, torch.eye(2))
    with pytest.raises(InvalidInputError, match="^pattern:"):
        M.pattern_score(m, torch.eye(3) * 0.5)
    with pytest.raises(InvalidInputError, match="^maps:"):
        M.entropy(m.weights)
    with pytest.raises(InvalidInputError, match="^p:"):
        M.js_divergence(torch.tensor([-0.5, 1.5]), torch.tensor([0.5, 0.5]))
    with pytest.raises(InvalidInputError, match="^q:"):
        M.js_divergence(torch.tensor([0.5, 0.5]), torch.ones(3) / 3)
    with pytest.raises(InvalidInputError, match="^labels:"):
        M.label_mass(maps_of(A3, key_labels=["a", "b", "c"]), {1, 2})
    with pytest.raises(InvalidInputError, match="^threshold:"):
        M.classify_heads(m, threshold=2)
