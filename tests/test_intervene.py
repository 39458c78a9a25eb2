"""ablate() against independent references: a head zeroed by hand at the output projection's input
(Hugging Face BERT-style, GPT-2 and Llama decoders, timm ViT, our block), a one-layer model computed
by hand, nn.MultiheadAttention recomputed from its weights; properties; restoration; errors; and the
two experiments (head_effects, against_random)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attnbook.capture import capture
from attnbook.errors import InvalidInputError, OutOfRangeError, UnsupportedModelError
from attnbook.intervene import (HeadMeans, RandomComparison, ablate, against_random, head_effects, head_means,
                                resolve_heads)
from attnbook.intervene.effects import random_head_sets
from attnbook.modules import BlockConfig, MultiHeadAttention, Transformer
from test_capture import bert_inputs, hook_state


def zero_at(module: nn.Module, n_heads: int, heads: list[int]):
    """The reference: a pre-hook on ``module`` (an output projection) zeroing the heads' input slices."""
    def hook(_m, args):
        x = args[0].clone()
        d = x.shape[-1] // n_heads
        for h in heads:
            x[..., h * d:(h + 1) * d] = 0
        return (x, *args[1:])
    return module.register_forward_pre_hook(hook)


def by_hand_reference(model, run, projection, n_heads, heads):
    handle = zero_at(projection, n_heads, heads)
    try:
        with torch.no_grad():
            return run()
    finally:
        handle.remove()


# --- zero: against a head zeroed by hand at each family's output projection -------------------------

@pytest.fixture(scope="module")
def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=60, n_embd=32, n_layer=2, n_head=4, n_positions=32, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=64, max_position_embeddings=32, attn_implementation="sdpa")
    return LlamaForCausalLM(cfg).eval()


def test_bert_zero_equals_hand_zeroed_output_dense(tiny_bert):
    inputs = bert_inputs()
    run = lambda: tiny_bert(**inputs).last_hidden_state  # noqa: E731
    ref = by_hand_reference(tiny_bert, run, tiny_bert.encoder.layer[1].attention.output.dense, 4, [0, 3])
    with torch.no_grad(), ablate(tiny_bert, {1: [0, 3]}):
        got = run()
    assert (got - ref).abs().max() < 1e-5
    with torch.no_grad():
        assert (run() - ref).abs().max() > 1e-3  # the heads mattered, and the model is back
    assert tiny_bert.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("family", ["tiny_gpt2", "tiny_llama"])
def test_decoder_zero_equals_hand_zeroed_projection(request, family):
    model = request.getfixturevalue(family)
    ids = torch.randint(1, 60, (2, 7), generator=torch.Generator().manual_seed(3))
    run = lambda: model(input_ids=ids).logits  # noqa: E731
    layer = model.transformer.h[0].attn.c_proj if family == "tiny_gpt2" else model.model.layers[0].self_attn.o_proj
    ref = by_hand_reference(model, run, layer, 4, [2])
    with torch.no_grad(), ablate(model, [(0, 2)]):
        got = run()
    assert (got - ref).abs().max() < 1e-5
    assert (run() - ref).abs().max() > 1e-4


def test_timm_zero_equals_hand_zeroed_proj(tiny_vit):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = by_hand_reference(tiny_vit, lambda: tiny_vit(x), tiny_vit.blocks[1].attn.proj, 4, [1, 2])
    with torch.no_grad(), ablate(tiny_vit, {"blocks.1.attn": [1, 2]}):
        got = tiny_vit(x)
    assert (got - ref).abs().max() < 1e-5
    assert all(b.attn.fused_attn for b in tiny_vit.blocks)


def test_own_block_zero_equals_hand_zeroed_proj(own_transformer):
    x = torch.randn(3, 6, 16, generator=torch.Generator().manual_seed(0))
    ref = by_hand_reference(own_transformer, lambda: own_transformer(x), own_transformer.blocks[0].attn.proj, 4, [3])
    with torch.no_grad(), ablate(own_transformer, {0: 3}):
        got = own_transformer(x)
    assert (got - ref).abs().max() < 1e-6


# --- a one-layer model computed by hand, every mode --------------------------------------------------

def one_layer_by_hand(att: MultiHeadAttention, x: torch.Tensor, head: int, how: str, mean: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(QKᵀ/√d + causal) per head, head ``head`` changed as ``how`` says, then the projection."""
    B, T, C = x.shape
    H, d = att.n_heads, C // att.n_heads
    q, k, v = (x @ att.qkv.weight.T + att.qkv.bias).split(C, dim=-1)
    split = lambda t: t.view(B, T, H, d).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    allowed = torch.ones(T, T).tril().bool()
    A = torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(d)).masked_fill(~allowed, float("-inf")), -1)
    if how == "uniform":
        A[:, head] = allowed.float() / allowed.float().sum(-1, keepdim=True)
    if how == "previous":
        A[:, head] = 0
        for i in range(T):
            A[:, head, i, max(i - 1, 0)] = 1
    c = A @ v  # (B, H, T, d)
    if how == "zero":
        c[:, head] = 0
    if how == "mean":
        c[:, head] = mean
    return c.transpose(1, 2).reshape(B, T, C) @ att.proj.weight.T + att.proj.bias


@pytest.mark.parametrize("how", ["zero", "mean", "uniform", "previous"])
def test_one_layer_model_by_hand(how):
    torch.manual_seed(0)
    att = MultiHeadAttention(BlockConfig(d_model=12, n_heads=3, d_ff=8, dropout=0.0, causal=True)).eval()
    x = torch.randn(2, 5, 12)
    reference = torch.randn(4, 5, 12)
    mean = None
    if how == "mean":  # every head's slice over every sample and position of the reference, by hand
        B, T, C = reference.shape
        q, k, v = (reference @ att.qkv.weight.T + att.qkv.bias).split(C, dim=-1)
        split = lambda t: t.view(B, T, 3, 4).transpose(1, 2)  # noqa: E731
        A = torch.softmax((split(q) @ split(k).transpose(-1, -2) / 2.0).masked_fill(~torch.ones(T, T).tril().bool(), float("-inf")), -1)
        mean = (A @ split(v))[:, 1].reshape(-1, 4).mean(0)
    with torch.no_grad(), ablate(att, {0: [1]}, how=how, reference=reference if how == "mean" else None):
        got = att(x)
    with torch.no_grad():
        want = one_layer_by_hand(att, x, 1, how, mean)
    assert (got - want).abs().max() < 1e-5


# --- nn.MultiheadAttention, recomputed from its weights -----------------------------------------------

def mha_by_hand(mha: nn.MultiheadAttention, x: torch.Tensor, head: int, how: str, key_padding: torch.Tensor, mean=None) -> torch.Tensor:
    B, T, E = x.shape
    H, d = mha.num_heads, E // mha.num_heads
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).split(E, dim=-1)
    split = lambda t: t.view(B, T, H, d).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    allowed = ~key_padding[:, None, None, :].expand(B, 1, T, T)
    A = torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(d)).masked_fill(~allowed, float("-inf")), -1)
    if how == "uniform":
        A[:, head] = allowed[:, 0].float() / allowed[:, 0].float().sum(-1, keepdim=True)
    if how == "previous":
        A[:, head] = 0
        for i in range(T):
            A[:, head, i, max(i - 1, 0)] = 1
    c = A @ v
    if how == "zero":
        c[:, head] = 0
    if how == "mean":
        c[:, head] = mean
    return mha.out_proj(c.transpose(1, 2).reshape(B, T, E))


@pytest.mark.parametrize("how", ["zero", "mean", "uniform", "previous"])
def test_mha_recomputed_from_weights(how):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, 3:] = True
    mean = None
    if how == "mean":
        with torch.no_grad():
            E = 8
            q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).split(E, dim=-1)
            split = lambda t: t.view(2, 5, 2, 4).transpose(1, 2)  # noqa: E731
            A = torch.softmax(split(q) @ split(k).transpose(-1, -2) / 2.0, -1)
            mean = (A @ split(v))[:, 1].reshape(-1, 4).mean(0)
    with torch.no_grad(), ablate(mha, {0: 1}, how=how, reference=(x, x, x) if how == "mean" else None):
        got, weights = mha(x, x, x, key_padding_mask=padding)
    with torch.no_grad():
        want = mha_by_hand(mha, x, 1, how, padding, mean)
    real = ~padding  # padded query rows are not the model's output
    assert (got - want)[real].abs().max() < 1e-5
    assert weights.shape == (2, 5, 5)  # the caller's average_attn_weights=True is honoured
    assert "forward" not in mha.__dict__


def test_mha_inside_encoder_layer_and_unbatched():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=False).eval()
    x = torch.randn(5, 3, 8)  # (T, B, E): sequence first
    ref = layer(x)
    with torch.no_grad(), ablate(layer, {0: 0}, how="zero"):
        zeroed = layer(x)
    assert (zeroed - ref).abs().max() > 1e-4
    mha = layer.self_attn
    with torch.no_grad():
        out_ref, _ = mha(x[:, 0], x[:, 0], x[:, 0])
        with ablate(mha, {0: []}):
            out, _ = mha(x[:, 0], x[:, 0], x[:, 0])
    assert (out - out_ref).abs().max() < 1e-6


# --- properties ---------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), how=st.sampled_from(["zero", "uniform", "previous"]), empty=st.sampled_from([{}, [], {0: []}]))
def test_ablating_nothing_changes_nothing(seed, how, empty):
    torch.manual_seed(seed)
    model = Transformer(BlockConfig(d_model=8, n_heads=2, d_ff=16, dropout=0.0, causal=bool(seed % 2)), 2).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        ref = model(x)
        with ablate(model, empty, how=how) as chosen:
            got = model(x)
    assert chosen == {}
    assert torch.equal(got, ref)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), T=st.integers(2, 7), causal=st.booleans(), head=st.integers(0, 3))
def test_uniform_rows_are_uniform_over_allowed_keys_in_capture(seed, T, causal, head):
    torch.manual_seed(seed)
    model = Transformer(BlockConfig(d_model=16, n_heads=4, d_ff=16, dropout=0.0, causal=causal), 1).eval()
    x = torch.randn(2, T, 16)
    padding = torch.ones(2, T, T, dtype=torch.bool)
    padding[1, :, T - 1] = False  # the last key of the second sample is masked
    with torch.no_grad(), ablate(model, {0: head}, how="uniform"), capture(model) as cap:
        model(x, padding)
    w = cap.weights()[0, :, head]  # (B, T, T)
    allowed = padding & (torch.ones(T, T).tril().bool() if causal else torch.ones(T, T, dtype=torch.bool))
    want = allowed.float() / allowed.float().sum(-1, keepdim=True)
    assert torch.allclose(w, want, atol=1e-6)
    others = [h for h in range(4) if h != head]
    assert not torch.allclose(cap.weights()[0, :, others], want[:, None].expand(-1, 3, -1, -1), atol=1e-3)


@pytest.mark.parametrize("outer", ["ablate", "capture"])
def test_capture_records_the_replaced_pattern_in_either_order(tiny_bert, outer):
    inputs = bert_inputs()
    blocks = [lambda: ablate(tiny_bert, {0: [2]}, how="previous"), lambda: capture(tiny_bert)]
    first, second = blocks if outer == "ablate" else blocks[::-1]
    with torch.no_grad(), first() as a, second() as b:
        tiny_bert(**inputs)
    cap = b if outer == "ablate" else a
    w = cap.weights()[0, :, 2]  # (B, 9, 9)
    T = w.shape[-1]
    want = torch.zeros(T, T)
    want[torch.arange(T), (torch.arange(T) - 1).clamp_min(0)] = 1
    assert torch.equal(w, want.expand_as(w))
    assert tiny_bert.config._attn_implementation == "sdpa"


# --- restoration and errors -----------------------------------------------------------------------

@pytest.mark.parametrize("family", ["tiny_bert", "torch_encoder", "own_transformer", "tiny_vit"])
@pytest.mark.parametrize("how", ["zero", "uniform"])
def test_everything_restored_after_exception(request, family, how):
    model = request.getfixturevalue(family)
    before = hook_state(model)
    forwards = {name: "forward" in m.__dict__ for name, m in model.named_modules()}
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(KeyError, match="boom"):
        with ablate(model, {0: [0]}, how=how):
            raise KeyError("boom")
    assert hook_state(model) == before
    assert {name: "forward" in m.__dict__ for name, m in model.named_modules()} == forwards
    assert getattr(getattr(model, "config", None), "_attn_implementation", None) == impl
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


@pytest.mark.parametrize("heads, how, reference, error, match", [
    ({5: [0]}, "zero", None, OutOfRangeError, "layer indices in"),
    ({0: [4]}, "zero", None, OutOfRangeError, "head indices in"),
    ({"nope*": [0]}, "zero", None, OutOfRangeError, "match"),
    ({1.5: [0]}, "zero", None, InvalidInputError, "index or a name"),
    ({0: ["a"]}, "zero", None, InvalidInputError, "integer head"),
    ([(0, 1, 2)], "zero", None, InvalidInputError, "pairs"),
    ("blocks", "zero", None, InvalidInputError, "pairs"),
    ({0: [0]}, "erase", None, InvalidInputError, "how"),
    ({0: [0]}, "mean", None, InvalidInputError, "reference"),
    ({0: [0]}, "zero", torch.zeros(1, 2, 16), InvalidInputError, "only 'mean'"),
    ({0: [0]}, "mean", 3, InvalidInputError, "reference"),
])
def test_bad_arguments_raise_before_the_forward(own_transformer, heads, how, reference, error, match):
    calls = []
    handle = own_transformer.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(error, match=match):
            with ablate(own_transformer, heads, how=how, reference=reference):
                own_transformer(torch.zeros(1, 2, 16))
    finally:
        handle.remove()
    assert calls == []


def test_previous_refused_on_cross_attention_and_unsupported_model():
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 1)
    with pytest.raises(InvalidInputError, match="cross-attention"):
        with ablate(decoder, {"layers.0.multihead_attn": [0]}, how="previous"):
            pass
    with pytest.raises(UnsupportedModelError, match="model"):
        with ablate(nn.Linear(3, 3), {0: [0]}):
            pass
    with pytest.raises(UnsupportedModelError, match="nn.Module"):
        with ablate("bert", {0: [0]}):
            pass


def test_a_layer_that_never_runs_its_ablation_raises(own_transformer):
    class Skips(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.blocks[1](x)  # block 0 is never called

    model = Skips(own_transformer)
    with pytest.raises(UnsupportedModelError, match="blocks.0.attn"):
        with torch.no_grad(), ablate(model, {0: [0]}):
            model(torch.zeros(1, 3, 16))


def test_resolve_heads_names_patterns_and_negatives(own_transformer):
    assert resolve_heads(own_transformer, {-1: [-1, 0], "blocks.0.*": 2}) == {0: [2], 1: [0, 3]}
    assert resolve_heads(own_transformer, [(1, 1), (1, 1), (0, 0)]) == {0: [0], 1: [1]}


# --- mean ablation: head means reused, conventions -----------------------------------------------

def test_head_means_reused_and_equal_to_inputs(own_transformer):
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(0))
    means = head_means(own_transformer, x)
    assert isinstance(means, HeadMeans)
    assert means.rows["blocks.0.attn"] == 15 and means.means["blocks.1.attn"].shape == (4, 4)
    with torch.no_grad():
        with ablate(own_transformer, {1: [0]}, how="mean", reference=means):
            a = own_transformer(x[:1])
        with ablate(own_transformer, {1: [0]}, how="mean", reference=lambda m: m(x)):
            b = own_transformer(x[:1])
    assert torch.allclose(a, b, atol=1e-6)


# --- the experiments --------------------------------------------------------------------------------

def test_head_effects_match_single_ablations(own_transformer):
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    metric = lambda m: float(m(x).pow(2).mean())  # noqa: E731
    effects = head_effects(own_transformer, metric)
    assert effects.ablated.shape == (2, 4) and effects.layer_names == ("blocks.0.attn", "blocks.1.attn")
    with torch.no_grad(), ablate(own_transformer, [(1, 2)]):
        assert math.isclose(float(effects.effects[1, 2]), metric(own_transformer) - effects.clean, rel_tol=1e-9, abs_tol=1e-12)
    ranked = effects.ranked()
    assert len(ranked) == 8 and ranked[0][2] >= ranked[-1][2]


def test_random_sets_exact_when_few_and_distinct_when_drawn():
    pool = [(l, h) for l in range(2) for h in range(4)]
    sets, exact = random_head_sets(pool, 2, 30, seed=0)
    assert exact and len(sets) == 28
    sets, exact = random_head_sets(pool, 2, 27, seed=0, exclude=[(1, 0), (0, 3)])
    assert exact and len(sets) == 27 and ((0, 3), (1, 0)) not in sets
    drawn, exact = random_head_sets(pool, 4, 40, seed=2, exclude=[(0, 0), (0, 1), (0, 2), (0, 3)])
    assert not exact and ((0, 0), (0, 1), (0, 2), (0, 3)) not in drawn and len(set(drawn)) == 40
    sets, exact = random_head_sets(pool, 3, 20, seed=1)
    assert not exact and len(sets) == 20 and len(set(sets)) == 20 and all(len(set(s)) == 3 for s in sets)
    assert sets == random_head_sets(pool, 3, 20, seed=1)[0]
    with pytest.raises(InvalidInputError, match="heads"):
        random_head_sets(pool, 9, 20, seed=0)
    with pytest.raises(InvalidInputError, match="no other set"):
        random_head_sets(pool, 8, 20, seed=0, exclude=pool)


def test_random_comparison_statistics_by_hand():
    r = RandomComparison((("a", 0),), clean=1.0, effect=0.5, random_effects=tuple(float(i) / 10 for i in range(20)), exact=False, how="zero")
    # random effects 0.0 .. 1.9: five are below 0.5, fifteen at or above it
    assert r.percentile == 25.0
    assert r.p_value == (1 + 15) / 21
    assert math.isclose(r.quantile(95), 1.8)  # nearest rank: the 19th smallest of 20
    assert not r.exceeds(95)
    # above 19 of 20 (percentile 95): exceeds; above 18 of 20 (percentile 90): does not
    assert RandomComparison((("a", 0),), 1.0, 1.85, r.random_effects, False, "zero").exceeds(95)
    assert not RandomComparison((("a", 0),), 1.0, 1.75, r.random_effects, False, "zero").exceeds(95)
    big = RandomComparison((("a", 0),), 1.0, 3.0, r.random_effects, False, "zero")
    assert big.exceeds(95) and big.percentile == 100.0 and big.p_value == 1 / 21
    assert big.record()["random_max"] == 1.9


def test_against_random_finds_the_head_that_matters():
    """A one-layer model whose output is read from one head only: that head's ablation is the largest."""
    torch.manual_seed(0)
    model = Transformer(BlockConfig(d_model=16, n_heads=4, d_ff=16, dropout=0.0), 1).eval()
    with torch.no_grad():
        model.blocks[0].attn.proj.weight[:, 4:] *= 0.01  # heads 1..3 barely reach the output
    x = torch.randn(4, 6, 16, generator=torch.Generator().manual_seed(1))
    ref = model(x).detach()
    metric = lambda m: float((m(x) - ref).pow(2).mean())  # noqa: E731
    result = against_random(model, metric, {0: [0]}, draws=20)
    assert result.exact and result.draws == 3  # only three other single heads exist: all of them
    assert result.effect > max(result.random_effects) and result.percentile == 100.0 and result.exceeds(95)
    assert result.p_value == 1 / 4  # exact: the chosen head is the most damaging of the four
    with pytest.raises(InvalidInputError, match="draws"):
        against_random(model, metric, {0: [0]}, draws=5)
    again = against_random(model, metric, {0: [0]}, draws=20)
    assert again == result


def test_hf_uniform_rows_spread_over_unpadded_keys_only(tiny_bert):
    inputs = bert_inputs()  # sample 1 has 6 real tokens, sample 2 has 4
    with torch.no_grad(), ablate(tiny_bert, {1: [1]}, how="uniform"), capture(tiny_bert) as cap:
        tiny_bert(**inputs)
    w = cap.weights()[1, :, 1]  # (B, 9, 9)
    real = inputs["attention_mask"].bool()
    want = (real[:, None, :].float() / real.sum(-1)[:, None, None]).expand_as(w)
    assert torch.allclose(w, want, atol=1e-6)


def test_timm_uniform_by_hand(tiny_vit):
    """ViT: 'uniform' makes the head read the plain mean of its values; the output equals a manual recomputation."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    attn = tiny_vit.blocks[0].attn
    seen = {}
    handle = attn.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0]))
    with torch.no_grad():
        tiny_vit(x)
    handle.remove()
    tokens = seen["x"]
    B, N, C = tokens.shape
    with torch.no_grad():
        q, k, v = attn.qkv(tokens).reshape(B, N, 3, 4, C // 4).permute(2, 0, 3, 1, 4)
        A = torch.softmax(q @ k.transpose(-1, -2) * attn.scale, -1)
        A[:, 2] = 1.0 / N
        want = attn.proj((A @ v).transpose(1, 2).reshape(B, N, C))
        with ablate(tiny_vit, {0: [2]}, how="uniform"):
            got = attn(tokens)
    assert (got - want).abs().max() < 1e-5
    assert attn.fused_attn
