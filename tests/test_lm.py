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
