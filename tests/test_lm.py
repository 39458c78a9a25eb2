"""The pretrained-model helpers: loading, tokens, bad input, token importance."""

from __future__ import annotations

import math
import re

import pytest
import torch

from attnbook import lm
from attnbook.errors import InvalidInputError, MissingResourceError
from attnbook.maps import AttentionMaps


def test_minilm_loads_offline(minilm):
    assert minilm.n_layers == 6 and minilm.n_heads == 12 and minilm.max_tokens == 512
    assert minilm.pretrained and not minilm.model.training


def test_random_control_same_architecture(minilm):
    rand = lm.load("minilm", random_init=True, seed=0)
    rand2 = lm.load("minilm", random_init=True, seed=0)
    assert not rand.pretrained and "random" in rand.name
    p, r, r2 = (dict(m.model.named_parameters()) for m in (minilm, rand, rand2))
    assert p.keys() == r.keys()
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(p[name], r[name]) and torch.equal(r[name], r2[name])


def test_local_folder(tmp_path, tiny_bert):
    from transformers import BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"] + [f"w{i}" for i in range(53)]
    # the special tokens and lower-casing named, not taken from BertTokenizer's defaults: the labels below depend on them
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                  pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]").save_pretrained(tmp_path)
    tiny_bert.save_pretrained(tmp_path)
    model = lm.load(tmp_path)
    maps = lm.lm_attention(model, "the cat")
    assert maps.tokens(0) == ["[CLS]", "the", "cat", "[SEP]"]


@pytest.mark.parametrize("texts, match", [("", "texts\\[0\\]"), ("   ", "non-empty"), ([], "at least one text"), ([3], "a string")])
def test_bad_text(minilm, texts, match):
    with pytest.raises(InvalidInputError, match=match):
        lm.lm_attention(minilm, texts)


def test_text_longer_than_model_accepts(minilm):
    with pytest.raises(InvalidInputError, match="at most 512 tokens"):
        lm.encode(minilm, "word " * 600)


@pytest.mark.parametrize("path", ["/no/such/model", "./missing-folder", "a/b/c"])
def test_unknown_model_path(path):
    with pytest.raises(MissingResourceError, match="name_or_path"):
        lm.load(path)


def test_folder_without_config(tmp_path):
    with pytest.raises(MissingResourceError, match="config.json"):
        lm.load(tmp_path)


def test_padding_mask_and_labels(minilm):
    maps = lm.lm_attention(minilm, ["short one.", "a rather longer sentence with more words."])
    n0 = maps.n_valid_keys(0)
    assert maps.tokens(0)[n0:] == ["[PAD]"] * (maps.n_keys - n0)
    assert maps.weights[:, 0, :, :, n0:].abs().max() == 0
    assert maps.valid_queries()[0].sum() == n0


def test_similarity_relevance(minilm):
    out = lm.similarity_relevance(minilm, "A cat sits on the mat.", "A kitten is sitting on a rug.")
    assert 0.3 < out["similarity"] <= 1.0
    for side in "ab":
        rel = out[f"relevance_{side}"]
        assert len(rel) == len(out[f"tokens_{side}"])
        assert math.isclose(sum(rel), 1.0, rel_tol=1e-5) and min(rel) >= 0
    emb = lm.embed(minilm, ["A cat sits on the mat.", "A kitten is sitting on a rug."])
    cos = torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]).item()
    assert abs(cos - out["similarity"]) < 1e-5


# --- the role task ----------------------------------------------------------------------------------

def test_role_items_are_seeded_distinct_and_made_of_the_same_tokens():
    items = lm.data.role_items(600, seed=3)
    assert items == lm.data.role_items(600, seed=3) and items != lm.data.role_items(600, seed=4)
    assert len({i.source for i in items}) == 600  # one source sentence per item: the units
    assert len({(frozenset((i.agent, i.patient)), i.verb, i.setting) for i in items}) == 600  # no item is another's role swap
    sources = {i.source.lower().rstrip(".") for i in items}
    for item in items:
        assert item.agent != item.patient
        assert item.source == f"The {item.agent} {item.verb} the {item.patient} {item.setting}."
        assert item.correct == f"{item.setting[0].upper()}{item.setting[1:]}, the {item.agent} {item.verb} the {item.patient}."
        assert item.distractor == f"{item.setting[0].upper()}{item.setting[1:]}, the {item.patient} {item.verb} the {item.agent}."
        words = lambda text: sorted(re.findall(r"\w+|[^\w\s]", text.lower()))  # noqa: E731
        assert words(item.correct) == words(item.distractor) != words(item.source)  # the same multiset (the source has no comma)
        assert f"the {item.patient} {item.verb} the {item.agent} {item.setting}".lower() not in sources
    with pytest.raises(InvalidInputError, match="n"):
        lm.data.role_items(1)


def test_split_items_is_disjoint_by_source_sentence():
    items = lm.data.role_items(9)
    selection, test = lm.data.split_items(items)
    assert selection == items[:4] and test == items[4:]
    assert not {i.source for i in selection} & {i.source for i in test}
    with pytest.raises(InvalidInputError, match="items"):
        lm.data.split_items(items[:3])


def test_accuracy_counts_ties_as_half():
    from attnbook.lm.analysis import accuracy

    assert accuracy([0.2, -0.1, 0.0, 0.3]) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert accuracy(torch.zeros(5)) == 0.5
    with pytest.raises(InvalidInputError, match="margins"):
        accuracy([])


def test_bag_of_words_overlap_ties_every_role_item(minilm):
    import numpy as np

    from attnbook.lm.analysis import accuracy, overlap_margins

    items = lm.data.role_items(200)
    margins = overlap_margins(items, minilm.tokenizer.tokenize)
    assert margins.shape == (200,) and np.all(margins == 0.0) and accuracy(margins) == 0.5
    # by hand: source a a b, correct a b (counts 1,1), distractor a c: cos = 3/(√5·√2) and 2/(√5·√2)
    item = lm.data.RoleItem("a a b", "a b", "a c", "a", "b", "v", "s")
    assert overlap_margins([item], str.split)[0] == pytest.approx(3 / math.sqrt(10) - 2 / math.sqrt(10))


def test_role_margins_by_hand_and_one_damage_value_per_item(minilm):
    from attnbook.lm.analysis import margin_lost, role_margins

    items = lm.data.role_items(3, seed=1)
    want = []
    for item in items:
        a, c, d = torch.nn.functional.normalize(lm.embed(minilm, [item.source, item.correct, item.distractor]), dim=-1)
        want.append(float(a @ c - a @ d))
    got = role_margins(minilm, items)
    assert got.shape == (3,) and got.tolist() == pytest.approx(want, abs=1e-5)
    damage = margin_lost(minilm, items)(minilm.model)
    assert damage.shape == (3,) and damage.tolist() == pytest.approx([-w for w in want], abs=1e-5)


def test_task_checks_rules():
    from attnbook.lm.analysis import task_checks

    good = {"accuracy": 0.95, "twin_accuracy": 0.44, "overlap_untied": 0.0}
    assert all(c.holds for c in task_checks(good))
    assert [c.holds for c in task_checks({**good, "accuracy": 0.8})] == [False, True, True]
    assert [c.holds for c in task_checks({**good, "twin_accuracy": 0.66})] == [True, False, True]
    assert [c.holds for c in task_checks({**good, "overlap_untied": 0.01})] == [True, True, False]


# --- does the model use it? -------------------------------------------------------------------------

def test_attention_groups_follow_the_fifty_percent_rule():
    from attnbook.lm.analysis import attention_groups

    zeros = torch.zeros(2, 3)
    measures = {"previous": zeros.clone(), "next": zeros.clone(), "special": zeros.clone(), "self": zeros, "norm_entropy": zeros}
    measures["previous"][0, 1] = 0.7
    measures["next"][1, 2] = 0.51
    measures["special"][1, 0] = 0.9
    measures["special"][0, 0] = 0.5  # not more than half
    assert attention_groups(measures) == {"previous/next-token heads": [(0, 1), (1, 2)], "[CLS]/[SEP] sink heads": [(1, 0)]}


def test_the_chapter_family_and_how_each_group_is_ablated():
    from attnbook import registry
    from attnbook.lm.analysis import CAUSAL_KEYS, CONTROL_HOW, HOW, SINKS

    assert sorted(registry.causal_family("reading-attention")) == sorted(CAUSAL_KEYS.values())
    assert "reading-attention/sharper-heads-matter" not in registry.causal_family("reading-attention")
    assert HOW[SINKS] == "uniform" and CONTROL_HOW == "mean"  # a sink's pattern is replaced, not its mean


def test_causal_section_refuses_shared_source_sentences(minilm):
    from attnbook.lm.analysis import causal_section

    items = lm.data.role_items(8)
    with pytest.raises(InvalidInputError, match="test"):
        causal_section(minilm, items[:4], items[3:])


def _head_set_test(effect, null, units, family=2):
    from attnbook import stats
    from attnbook.intervene import HeadSetTest

    result = stats.exact_test(effect, null)
    return HeadSetTest((("l0", 1),), "layer-matched", "", 0.0, tuple(units), result, 0.05, family, (min(units), max(units)), 0.01, "mean")


def test_causal_findings_rules():
    from attnbook import registry
    from attnbook.intervene import CausalFamily, HeadEffects
    from attnbook.lm.analysis import CAUSAL_KEYS, POSITIONAL, SHARPNESS, SINKS, CausalSection, causal_findings, causal_numbers, finding_texts

    null = [0.01 * i for i in range(99)]  # space of 100: smallest p 0.01 < 0.05 / 2
    strong, weak = _head_set_test(1.5, null, [1.4, 1.6]), _head_set_test(0.3, null, [0.2, 0.4])
    control = _head_set_test(2.0, null, [1.9, 2.1])
    family = CausalFamily({CAUSAL_KEYS[POSITIONAL]: strong, CAUSAL_KEYS[SINKS]: weak}, control, "sel", "test")
    effects = HeadEffects(-0.7, torch.zeros(2, 3), ("l0", "l1"), "mean")
    section = CausalSection(family, effects, {POSITIONAL: [(0, 1)], SINKS: [(1, 0)]}, {SHARPNESS: (0.4, 0.001)}, {"l0": 0.0, "l1": 0.0},
                            {"seconds": 1.0, "forwards": 10, "draws": 297}, 4, 4)
    found = causal_findings(section, {SHARPNESS: (0.05, 0.6)})
    assert [f.spec.key for f in found] == ["reading-attention/positional-heads-used", "reading-attention/sink-heads-used",
                                           "reading-attention/sharper-heads-matter"]
    assert [f.verdict for f in found] == ["supported", "not supported", "supported"]
    assert found[0].measured[registry.CAUSAL_P] == pytest.approx(0.02)  # Holm: 2 × p = 2 × 0.01
    assert found[2].control == {"Spearman ρ": 0.05, "p": 0.6} and found[2].detail == "6 heads, 4 selection items"
    numbers = causal_numbers(section)
    assert numbers["causal_positional_verdict"] == "**supported**" and numbers["causal_control_verdict"] == "**detected**"
    assert numbers["causal_control_holm"] == "—" and numbers["causal_m"] == "2" and numbers["causal_draws"] == "297"
    records = section.records(0)
    assert [r["key"] for r in records] == [CAUSAL_KEYS[POSITIONAL], CAUSAL_KEYS[SINKS], "positive control"]
    # the positive control not detected: the family is inconclusive
    missed = CausalFamily(family.tests, _head_set_test(0.2, null, [0.1, 0.3]), "sel", "test")
    section = CausalSection(missed, effects, section.groups, section.rank, section.per_layer, section.cost, 4, 4)
    assert [f.verdict for f in causal_findings(section, {SHARPNESS: (0.05, 0.6)})][:2] == ["inconclusive", "inconclusive"]
    texts = finding_texts(found)
    assert texts["sharper_heads_matter"]["measured"] == "Spearman ρ 0.400; p 0.001"


# --- issue 31: the controls that could make the chapter's findings false -----------------------------------

def _maps_with_padding() -> AttentionMaps:
    """Two layers, two sentences (4 and 3 real tokens, width 4), two heads: seeded random rows over the real keys."""
    g = torch.Generator().manual_seed(1)
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    mask = real[:, :, None] & real[:, None, :]
    logits = torch.randn(2, 2, 2, 4, 4, generator=g).masked_fill(~mask[None, :, None], float("-inf"))
    w = torch.softmax(logits, -1).nan_to_num(0.0) * mask[None, :, None]
    labels = [["[CLS]", "a", "b", "[SEP]"], ["[CLS]", "c", "[SEP]", "[PAD]"]]
    return AttentionMaps(w, ("l0", "l1"), labels, labels, mask)


def test_permute_keys_keeps_every_rows_weights_and_moves_them():
    from attnbook.lm.controls import permute_keys

    maps = _maps_with_padding()
    out = permute_keys(maps, seed=0)
    w, p = maps.weights, out.weights
    # each row holds the same multiset of weights (so the same entropy and largest weight) ...
    assert torch.allclose(w.sort(-1).values, p.sort(-1).values)
    assert torch.equal(out.mask, maps.mask) and p[:, 1, :, :, 3].abs().max() == 0 and p[:, 1, :, 3].abs().max() == 0  # padding stays empty
    # ... on other keys: not the identity, seeded, and another seed moves them elsewhere
    assert not torch.allclose(w, p)
    assert torch.equal(permute_keys(maps, seed=0).weights, p) and not torch.equal(permute_keys(maps, seed=1).weights, p)
    # a previous-token head (all weight on key i - 1) keeps one-hot rows but loses its previous-token mass
    n = 12
    prev = torch.zeros(1, 1, 1, n, n)
    prev[0, 0, 0, 0, 0] = 1.0
    prev[0, 0, 0, torch.arange(1, n), torch.arange(n - 1)] = 1.0
    moved = permute_keys(AttentionMaps(prev), seed=0).weights
    assert torch.equal(moved.sum(-1), torch.ones(1, 1, 1, n)) and torch.equal(moved.amax(-1), torch.ones(1, 1, 1, n))
    assert float(moved[0, 0, 0, torch.arange(1, n), torch.arange(n - 1)].mean()) < 0.5
    with pytest.raises(InvalidInputError, match="AttentionMaps"):
        permute_keys(prev)


def test_token_permutations_and_permuted_gradients_by_hand():
    from attnbook.lm.controls import permute_tokens, token_permutations

    perm = token_permutations([4, 2], 4, seed=3)
    assert sorted(perm[0].tolist()) == [0, 1, 2, 3]
    assert sorted(perm[1, :2].tolist()) == [0, 1] and perm[1, 2:].tolist() == [2, 3]  # padding in place
    assert torch.equal(token_permutations([4, 2], 4, seed=3), perm)
    grads = torch.randn(2, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    out = permute_tokens(grads, perm)
    for b in range(2):
        pi = perm[b]
        assert torch.equal(out[:, b], grads[:, b][:, :, pi][:, :, :, pi])  # out[l, b, h, i, j] = grads[l, b, h, π(i), π(j)]
    assert torch.equal(out.flatten().sort().values, grads.flatten().sort().values)  # the same values, moved
    with pytest.raises(InvalidInputError, match="length"):
        token_permutations([5], 4)
    with pytest.raises(InvalidInputError, match="perm"):
        permute_tokens(grads, perm[:, :3])
    with pytest.raises(InvalidInputError, match="grads"):
        permute_tokens(grads[..., :3], perm)


def test_importance_agreement_constant_gradient_is_rollout():
    """With a constant gradient, gradient rollout is Π (I + Ā_l) = 2^L · rollout (whose Â = (I + Ā)/2):
    the same ranking, ρ = 1 on every sentence; special tokens are left out of the ranking."""
    from attnbook.lm.controls import importance_agreement
    from attnbook.metrics import gradient_rollout, rollout

    maps = _maps_with_padding()
    ones = torch.ones(maps.shape) * maps.mask[None, :, None]
    real = maps.mask.any(-1)
    assert torch.allclose(gradient_rollout(maps, ones)[real], 4 * rollout(maps)[real], atol=1e-5)
    rho = importance_agreement(maps, ones)
    assert rho[0] == pytest.approx(1.0)
    assert math.isnan(rho[1])  # one word ("c") between [CLS] and [SEP]: nothing to rank
    flipped = importance_agreement(maps, -ones)  # relu drops every weight: gradient rollout is I, a constant ranking
    assert math.isnan(flipped[0])


def test_agreement_finding_applies_one_rule_to_both():
    import numpy as np

    from attnbook.lm.controls import AGREEMENT, agreement_finding

    high, low = np.full(20, 0.8) + np.linspace(-0.05, 0.05, 20), np.linspace(-0.2, 0.2, 20)
    found, values = agreement_finding({"gradient": high, "permuted": low, "constant": np.ones(20)})
    assert found.spec.key == AGREEMENT and found.verdict == "supported"
    assert found.measured["mean Spearman ρ"] == pytest.approx(0.8) and found.control["mean Spearman ρ"] == pytest.approx(0.0, abs=1e-12)
    assert values["constant"]["lower end of its 95 % interval"] == 1.0 and values["gradient"]["n"] == 20
    assert agreement_finding({"gradient": high, "permuted": high, "constant": np.ones(20)})[0].verdict == "not supported"
    assert agreement_finding({"gradient": low, "permuted": low, "constant": np.ones(20)})[0].verdict == "not supported"
    with pytest.raises(InvalidInputError, match="agreement"):
        agreement_finding({"gradient": np.full(3, np.nan), "permuted": low, "constant": np.ones(20)})


def test_relevance_batch_matches_one_sentence_at_a_time(minilm):
    from attnbook.lm.controls import relevance_batch, rollout_agreement

    items = lm.data.role_items(3)
    maps, grads = relevance_batch(minilm, items)
    assert tuple(grads.shape) == tuple(maps.shape) and (grads * ~maps.mask[None, :, None]).abs().max() == 0
    short = int(maps.mask.any(-1).sum(-1).argmin())
    one_maps, one_grads = relevance_batch(minilm, [items[short]])
    n = one_maps.n_valid_keys(0)
    assert torch.allclose(grads[:, short, :, :n, :n], one_grads[:, 0], atol=1e-5)  # padding changes nothing
    agreement = rollout_agreement(maps, grads, seed=0)
    assert set(agreement) == {"gradient", "permuted", "constant"} and all(len(v) == 3 for v in agreement.values())
    assert agreement["constant"] == pytest.approx([1.0] * 3)
    with pytest.raises(InvalidInputError, match="items"):
        relevance_batch(minilm, [])


def test_layer_alone_control_and_broad_layers():
    from attnbook.intervene import HeadEffects
    from attnbook.lm.analysis import SHARPNESS, finding_values, layer_alone, layer_alone_ranks

    stat = torch.tensor([[1.0, 3.0], [2.0, 6.0]])
    assert torch.equal(layer_alone(stat), torch.tensor([[2.0, 2.0], [4.0, 4.0]]))
    with pytest.raises(InvalidInputError, match="statistic"):
        layer_alone(stat.flatten())
    measures = {"previous": torch.rand(3, 2, generator=torch.Generator().manual_seed(0)), "next": torch.zeros(3, 2), "special": torch.eye(3, 2),
                "norm_entropy": torch.tensor([[0.9, 0.8], [0.5, 0.6], [0.1, 0.2]])}
    effects = HeadEffects(0.0, torch.tensor([[0.0, 0.1], [0.3, 0.2], [0.5, 0.4]]), ("l0", "l1", "l2"), "mean")
    rho, _ = layer_alone_ranks(measures, effects)[SHARPNESS]
    # sharpness by layer 0.15, 0.45, 0.85 rises with the layer's effects: ranks (1.5, 1.5, 3.5, 3.5, 5.5, 5.5) against 1..6
    assert rho == pytest.approx(0.956, abs=1e-3)
    with pytest.raises(InvalidInputError, match="broad_layers"):
        finding_values(_maps_with_padding(), "middle")


def test_settings_need_at_least_the_causal_items_for_clark():
    from attnbook.lm.experiment import PROFILES, Settings

    assert PROFILES["quick"].clark_items >= 512 and PROFILES["full"].clark_items >= PROFILES["full"].sentences
    with pytest.raises(Exception, match="clark_items"):
        Settings(sentences=128, clark_items=64)
