"""The pretrained-model helpers: loading, tokens, bad input, token importance."""

from __future__ import annotations

import math

import pytest
import torch

from attnbook import lm
from attnbook.errors import InvalidInputError, MissingResourceError


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


# --- does the model use it? -------------------------------------------------------------------------

def test_paraphrase_margin_by_hand(minilm):
    from attnbook.lm.analysis import margin_lost, paraphrase_margin

    pairs = lm.data.paraphrase_pairs(3)
    a = torch.nn.functional.normalize(lm.embed(minilm, [p[0] for p in pairs]), dim=-1)
    b = torch.nn.functional.normalize(lm.embed(minilm, [p[1] for p in pairs]), dim=-1)
    same = [float(a[i] @ b[i]) for i in range(3)]
    other = [float(a[i] @ b[j]) for i in range(3) for j in range(3) if i != j]
    want = sum(same) / 3 - sum(other) / 6
    assert math.isclose(paraphrase_margin(minilm, pairs), want, rel_tol=1e-5)
    assert math.isclose(margin_lost(minilm, pairs)(minilm.model), -want, rel_tol=1e-5)
    assert want > 0.2  # the paraphrases are closer than the unrelated sentences


def test_paraphrase_pairs_are_checked():
    assert lm.data.paraphrase_pairs(2)[0][0] == lm.data.SENTENCES[0]
    with pytest.raises(InvalidInputError, match="n"):
        lm.data.paraphrase_pairs(1)


def test_attention_groups_follow_the_fifty_percent_rule():
    from attnbook.lm.analysis import attention_groups

    zeros = torch.zeros(2, 3)
    measures = {"previous": zeros.clone(), "next": zeros.clone(), "special": zeros.clone(), "self": zeros, "norm_entropy": zeros}
    measures["previous"][0, 1] = 0.7
    measures["next"][1, 2] = 0.51
    measures["special"][1, 0] = 0.9
    measures["special"][0, 0] = 0.5  # not more than half
    assert attention_groups(measures) == {"previous/next-token heads": [(0, 1), (1, 2)], "[CLS]/[SEP] sink heads": [(1, 0)]}


def test_causal_findings_rules():
    from attnbook import registry
    from attnbook.intervene import HeadEffects, RandomComparison
    from attnbook.lm.analysis import SHARPNESS, CausalStudy, causal_findings, causal_records, finding_texts

    random = tuple(0.01 * i for i in range(20))
    comparisons = {"previous/next-token heads": RandomComparison((("l0", 1),), -0.7, 0.5, random, False, "mean"),
                   "[CLS]/[SEP] sink heads": RandomComparison((("l1", 0),), -0.7, 0.05, random, False, "mean")}
    groups = {"previous/next-token heads": [(0, 1)], "[CLS]/[SEP] sink heads": [(1, 0)]}
    effects = HeadEffects(-0.7, torch.zeros(2, 3), ("l0", "l1"), "mean")
    study = CausalStudy(0.7, effects, groups, comparisons, {SHARPNESS: (0.4, 0.001)})
    found = causal_findings(study, {SHARPNESS: (0.05, 0.6)})
    assert [f.spec.key for f in found] == ["reading-attention/positional-heads-used", "reading-attention/sink-heads-used",
                                           "reading-attention/sharper-heads-matter"]
    assert [f.verdict for f in found] == ["supported", "not supported", "supported"]
    assert found[0].measured == {registry.CAUSAL: pytest.approx(0.5 - 0.18)}  # q95 of 0, 0.01 … 0.19: the 19th smallest
    assert found[2].control == {"Spearman ρ": 0.05, "p": 0.6} and found[2].detail == "6 heads"
    assert causal_findings(study, {SHARPNESS: (0.5, 0.001)})[2].verdict == "not supported"  # the twin ranks so too
    assert [r["verdict"] for r in causal_records(study)] == ["supported", "not supported"]
    no_sinks = CausalStudy(0.7, effects, groups, {"previous/next-token heads": comparisons["previous/next-token heads"]}, {SHARPNESS: (0.4, 0.001)})
    assert causal_findings(no_sinks, {SHARPNESS: (0.05, 0.6)})[1].verdict == "inconclusive"
    texts = finding_texts(found)
    assert texts["sharper_heads_matter"] == {"verdict": "**supported**", "reason": "the model meets the rule; the control does not",
                                             "measured": "Spearman ρ 0.400; p 0.001", "control": "Spearman ρ 0.050; p 0.600",
                                             "detail": "6 heads"}
