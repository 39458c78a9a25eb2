"""capture() against independent references, one per supported family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnbook.capture import capture, find_attention
from attnbook.errors import InvalidInputError, NothingCapturedError, OutOfRangeError, UnsupportedModelError
from attnbook.maps import AttentionMaps
from attnbook.modules import BlockConfig, MultiHeadAttention


def hook_state(model: nn.Module) -> dict:
    """Every hook and capture-relevant flag of every submodule."""
    state = {}
    for name, m in model.named_modules():
        state[name] = (
            tuple(m._forward_hooks.keys()),
            tuple(m._forward_pre_hooks.keys()),
            getattr(m, "fused_attn", None),
            getattr(m, "record_attention", None),
        )
    return state


def bert_inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 60, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


# --- Hugging Face -------------------------------------------------------------------------------

def test_hf_equals_output_attentions(tiny_bert):
    inputs = bert_inputs()
    tiny_bert.set_attn_implementation("eager")
    with torch.no_grad():
        ref = torch.stack(tiny_bert(**inputs, output_attentions=True).attentions)
    tiny_bert.set_attn_implementation("sdpa")
    with torch.no_grad(), capture(tiny_bert) as cap:
        tiny_bert(**inputs)
    assert cap.weights().shape == (2, 3, 4, 9, 9)
    assert torch.allclose(cap.weights(), ref, atol=1e-6)
    assert tiny_bert.config._attn_implementation == "sdpa"


def test_hf_outputs_unchanged_and_nothing_left(tiny_bert):
    inputs = bert_inputs()
    with torch.no_grad():
        tiny_bert(**inputs, output_attentions=True)  # let transformers install its own recorders first
        plain = tiny_bert(**inputs).last_hidden_state
        before = hook_state(tiny_bert)
        with capture(tiny_bert) as cap:
            recorded = tiny_bert(**inputs).last_hidden_state
    assert (recorded - plain).abs().max() < 1e-5
    assert hook_state(tiny_bert) == before
    assert cap.maps.n_layers == 2


def test_minilm_equals_output_attentions(minilm):
    """On the pretrained model running sdpa (set here, not left to transformers' default choice),
    lm_attention equals Hugging Face's eager ``output_attentions`` and hands the model back on sdpa."""
    from attnbook.lm import lm_attention, reference_attentions

    texts = ["The cat sat on the mat.", "Attention is all you need, they said, and then trained it."]
    loaded_with = minilm.model.config._attn_implementation
    minilm.model.set_attn_implementation("sdpa")
    try:
        maps = lm_attention(minilm, texts)
        assert minilm.model.config._attn_implementation == "sdpa"
        ref = reference_attentions(minilm, texts) * maps.mask[None, :, None]
    finally:
        minilm.model.set_attn_implementation(loaded_with)  # a session fixture: leave it as loaded
    assert maps.shape[:3] == (6, 2, 12)
    assert (maps.weights - ref).abs().max() < 1e-5
    assert maps.tokens(0)[0] == "[CLS]" and maps.tokens(0)[maps.n_valid_keys(0) - 1] == "[SEP]"


# --- timm ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
def test_timm_equals_attention_extract(tiny_vit, fused):
    """capture equals timm's AttentionExtract hooks at ``attn_drop``, with the fused kernel on or off
    (each set here: timm's default comes from its version and $TIMM_FUSED_ATTN), and restores the flag."""
    from timm.utils import AttentionExtract

    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for b in tiny_vit.blocks:
        b.attn.fused_attn = fused
    fused_before = [b.attn.fused_attn for b in tiny_vit.blocks]
    with torch.no_grad(), capture(tiny_vit) as cap:
        out = tiny_vit(x)
    assert [b.attn.fused_attn for b in tiny_vit.blocks] == fused_before == [fused, fused]
    for b in tiny_vit.blocks:
        b.attn.fused_attn = False
    extractor = AttentionExtract(tiny_vit, names=["*attn_drop"], mode="eval", method="hook")  # the module capture reads too
    with torch.no_grad():
        ref = extractor(x)
    assert list(ref) == ["blocks.0.attn.attn_drop", "blocks.1.attn.attn_drop"]
    assert torch.allclose(cap.weights(), torch.stack(list(ref.values())), atol=1e-6)
    for b, f in zip(tiny_vit.blocks, fused_before):
        b.attn.fused_attn = f
    with torch.no_grad():
        assert (tiny_vit(x) - out).abs().max() < 1e-5


def test_timm_fused_restored_after_exception(tiny_vit):
    for b in tiny_vit.blocks:
        b.attn.fused_attn = True
    before = hook_state(tiny_vit)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(tiny_vit):
            assert not tiny_vit.blocks[0].attn.fused_attn
            raise RuntimeError("boom")
    assert hook_state(tiny_vit) == before


# --- torch.nn.MultiheadAttention inside TransformerEncoder ---------------------------------------

def encoder_reference(encoder: nn.TransformerEncoder, x: torch.Tensor) -> torch.Tensor:
    """Layer by layer: the layer's MHA called with need_weights=True, average_attn_weights=False."""
    maps = []
    for layer in encoder.layers:
        h = layer.norm1(x) if layer.norm_first else x
        _, w = layer.self_attn(h, h, h, need_weights=True, average_attn_weights=False)
        maps.append(w)
        x = layer(x)
    return torch.stack(maps)


def test_torch_encoder_fast_path(torch_encoder):
    """With torch's eval fast path switched on (here, not assumed from torch's default), capture still
    records every layer, leaves the outputs alone and switches the fast path back on afterwards."""
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(0))
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(True)
    try:
        with torch.no_grad():
            plain = torch_encoder(x)
            ref = encoder_reference(torch_encoder, x)
            before = hook_state(torch_encoder)
            with capture(torch_encoder) as cap:
                out = torch_encoder(x)
        assert torch.backends.mha.get_fastpath_enabled() is True
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    assert hook_state(torch_encoder) == before
    assert cap.weights().shape == (2, 2, 4, 7, 7)
    assert torch.allclose(cap.weights(), ref, atol=1e-6)
    assert (out - plain).abs().max() < 1e-5


def test_torch_mha_positional_need_weights():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 4, 8)
    with torch.no_grad(), capture(mha) as cap:
        mha(x, x, x, None, False)  # need_weights passed positionally as False
    _, ref = mha(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(cap.weights()[0], ref, atol=1e-6)


# --- attnbook's own block -----------------------------------------------------------------------

def test_own_block_explicit_equals_sdpa(own_transformer):
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = own_transformer(x)
        before = hook_state(own_transformer)
        with capture(own_transformer) as cap:
            slow = own_transformer(x)
    assert (fast - slow).abs().max() < 1e-5
    assert hook_state(own_transformer) == before
    maps = cap.maps
    assert maps.shape == (2, 2, 4, 6, 6)
    # reference: softmax(q kᵀ/√d) computed by hand from the first block's weights
    block = own_transformer.blocks[0]
    h = block.ln1(x)
    q, k, _ = block.attn.qkv(h).view(2, 6, 3, 4, 4).permute(2, 0, 3, 1, 4)
    ref = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1)
    assert torch.allclose(maps.weights[0], ref, atol=1e-6)


def test_own_causal_block_zero_above_diagonal():
    torch.manual_seed(0)
    attn = MultiHeadAttention(BlockConfig(d_model=8, n_heads=2, causal=True, dropout=0.0)).eval()
    x = torch.randn(1, 5, 8)
    with torch.no_grad():
        fast = attn(x)
        with capture(attn) as cap:
            slow = attn(x)
    assert (fast - slow).abs().max() < 1e-6
    w = cap.weights()[0, 0]
    assert torch.all(w.triu(1) == 0)


def test_gradients_with_keep_grad(own_transformer):
    x = torch.randn(1, 5, 16, generator=torch.Generator().manual_seed(0))
    with capture(own_transformer, keep_grad=True) as cap:
        y = own_transformer(x)
    y.sum().backward()
    g = cap.gradients()
    assert g.shape == cap.weights().shape and torch.isfinite(g).all() and g.abs().sum() > 0
    with torch.no_grad(), capture(own_transformer) as cap2:
        own_transformer(x)
    with pytest.raises(InvalidInputError, match="keep_grad"):
        cap2.gradients()


# --- selection, batching, errors ----------------------------------------------------------------

def test_layer_filter_and_batches(own_transformer):
    x = torch.randn(2, 4, 16)
    with torch.no_grad(), capture(own_transformer, layers=[-1]) as cap:
        own_transformer(x)
        own_transformer(x[:1])
    assert cap.layer_names == ["blocks.1.attn"]
    assert cap.maps.shape == (1, 3, 4, 4, 4)
    with torch.no_grad(), capture(own_transformer, layers="blocks.0.*") as cap:
        own_transformer(x)
    assert cap.layer_names == ["blocks.0.attn"]
    assert [s.name for s in find_attention(own_transformer)] == ["blocks.0.attn", "blocks.1.attn"]


@pytest.mark.parametrize("layers, error, match", [([5], OutOfRangeError, "layers"), ([], InvalidInputError, "layers"), ("nope*", OutOfRangeError, "layers"), ([1.5], InvalidInputError, "layers")])
def test_bad_layer_selection(own_transformer, layers, error, match):
    with pytest.raises(error, match=match):
        with capture(own_transformer, layers=layers):
            pass


def test_unsupported_model():
    with pytest.raises(UnsupportedModelError, match="supported family"):
        with capture(nn.Sequential(nn.Linear(3, 3), nn.ReLU())):
            pass
    with pytest.raises(UnsupportedModelError, match="model"):
        with capture("not a model"):  # type: ignore[arg-type]
            pass


def test_forward_that_records_nothing_raises(own_transformer):
    class Bypass(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.lin = nn.Linear(16, 16)

        def forward(self, x):
            return self.lin(x)  # never calls the attention

    model = Bypass(own_transformer)
    before = hook_state(model)
    with pytest.raises(NothingCapturedError, match="got none"):
        with capture(model):
            model(torch.randn(1, 3, 16))
    assert hook_state(model) == before


def test_maps_without_forward_raises(own_transformer):
    with capture(own_transformer) as cap:
        pass
    with pytest.raises(NothingCapturedError, match="forward"):
        cap.maps


def test_capture_returns_valid_maps(own_transformer):
    with torch.no_grad(), capture(own_transformer) as cap:
        own_transformer(torch.randn(1, 3, 16))
    assert isinstance(cap.maps, AttentionMaps)
    assert torch.allclose(cap.maps.weights.sum(-1), torch.ones(2, 1, 4, 3))


@pytest.mark.parametrize("family", ["tiny_bert", "torch_encoder", "own_transformer", "tiny_vit"])
def test_everything_restored_after_exception(request, family):
    model = request.getfixturevalue(family)
    before = hook_state(model)
    fast = torch.backends.mha.get_fastpath_enabled()
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    with pytest.raises(KeyError, match="inside"):
        with capture(model):
            raise KeyError("inside the block")
    assert hook_state(model) == before
    assert torch.backends.mha.get_fastpath_enabled() == fast
    assert getattr(getattr(model, "config", None), "_attn_implementation", None) == implementation
