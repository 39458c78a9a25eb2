"""capture's promises beyond one forward of one family: calls of a shared module, self/cross selection,
heads, storage dtype, the size guard, generation over a KV cache, outputs as the caller asked, windows."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attnbook.capture import capture
from attnbook.capture.windows import WindowGrid, gather, scatter
from attnbook.compat import model_state
from attnbook.errors import CaptureBudgetError, InvalidInputError, OutOfRangeError, UnsupportedModelError
from attnbook.modules import BlockConfig, MultiHeadAttention


class SharedTwice(nn.Module):
    """One attention module applied twice (ALBERT-style sharing)."""

    def __init__(self):
        super().__init__()
        self.attn = MultiHeadAttention(BlockConfig(d_model=16, n_heads=4, d_ff=32, dropout=0.0))

    def forward(self, x):
        return self.attn(self.attn(x) + x)


def test_a_shared_module_gives_one_layer_per_call():
    torch.manual_seed(0)
    model = SharedTwice().eval()
    x = torch.randn(2, 5, 16)
    calls = []
    model.attn.hook_pattern.register_forward_hook(lambda _m, _i, out: calls.append(out.detach().clone()))
    with torch.no_grad(), capture(model) as cap:
        model(x)
        model(x[:1])
    assert cap.layer_names == ["attn#0", "attn#1"]
    w = cap.weights()
    assert w.shape == (2, 3, 4, 5, 5)  # two calls, batch 2 + 1 (two forward passes concatenated)
    assert torch.equal(w[0, :2], calls[0]) and torch.equal(w[1, :2], calls[1]) and not torch.equal(w[0], w[1])


def test_kind_selects_self_or_cross_and_bad_kinds_are_refused():
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32, dropout=0.0, batch_first=True)
    model = nn.TransformerDecoder(layer, num_layers=2).eval()
    tgt, memory = torch.randn(2, 3, 16), torch.randn(2, 7, 16)
    with torch.no_grad(), capture(model, kind="cross") as cap:
        model(tgt, memory)
    assert cap.kinds == ["cross", "cross"] and cap.weights().shape == (2, 2, 4, 3, 7)
    assert all(name.endswith("multihead_attn") for name in cap.layer_names)
    with torch.no_grad(), capture(model) as cap:
        model(tgt, memory)
    assert cap.kinds == ["self", "cross", "self", "cross"]
    with pytest.raises(InvalidInputError, match="one of maps of one shape|expected maps of one shape"):
        cap.weights()  # self (3 × 3) and cross (3 × 7) do not stack
    assert [tuple(w.shape) for w in cap.per_layer()] == [(2, 4, 3, 3), (2, 4, 3, 7)] * 2
    with pytest.raises(InvalidInputError, match="kind"):
        with capture(model, kind="both"):
            pass
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 1, enable_nested_tensor=False)
    with pytest.raises(OutOfRangeError, match="kind"):
        with capture(encoder, kind="cross"):
            pass


def test_heads_keeps_the_chosen_heads_and_checks_them_before_the_forward(own_transformer):
    x = torch.randn(2, 5, 16)
    with torch.no_grad(), capture(own_transformer) as full:
        own_transformer(x)
    with torch.no_grad(), capture(own_transformer, heads=[3, 1]) as some:
        own_transformer(x)
    assert torch.equal(some.weights(), full.weights()[:, :, [3, 1]])
    before = model_state(own_transformer)
    with pytest.raises(OutOfRangeError, match="heads"):
        with capture(own_transformer, heads=[4]):
            pass
    with pytest.raises(InvalidInputError, match="heads"):
        with capture(own_transformer, heads=[True]):
            pass
    assert model_state(own_transformer) == before


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_storage_dtype_halves_memory_and_reads_back_as_float32_distributions(own_transformer, dtype):
    x = torch.randn(2, 6, 16)
    with torch.no_grad(), capture(own_transformer) as full:
        own_transformer(x)
    with torch.no_grad(), capture(own_transformer, dtype=dtype) as half:
        own_transformer(x)
    assert half.kept_bytes() * 2 == full.kept_bytes()
    w = half.weights()
    assert w.dtype == torch.float32 and torch.allclose(w.sum(-1), torch.ones(()), atol=1e-6)
    assert (w - full.weights()).abs().max() < (1e-3 if dtype == torch.float16 else 1e-2)
    with pytest.raises(InvalidInputError, match="dtype"):
        with capture(own_transformer, dtype=torch.int8):
            pass


def test_the_size_guard_raises_before_any_weights_are_computed(own_transformer):
    softmaxes = []
    handles = [b.attn.hook_pattern.register_forward_hook(lambda *_: softmaxes.append(1)) for b in own_transformer.blocks]
    x = torch.randn(4, 64, 16)  # 2 layers × 4 × 4 heads × 64 × 64 × 4 bytes = 512 KiB
    before = model_state(own_transformer)
    try:
        with pytest.raises(CaptureBudgetError, match=r"512\.0 KiB|0\.5 MiB") as info:
            with capture(own_transformer, max_bytes=100_000) as cap:
                own_transformer(x)
        message = str(info.value)
        assert "layers=" in message and "heads=" in message and "float16" in message and "max_bytes" in message
        assert softmaxes == [] and cap.kept_bytes() == 0  # raised in the first layer's pre-hook
        assert model_state(own_transformer) == before
        with torch.no_grad(), capture(own_transformer, max_bytes=100_000, layers=[0], heads=[0]) as cap:  # the options fit
            own_transformer(x)
        assert cap.kept_bytes() == 4 * 64 * 64 * 4
        with torch.no_grad(), capture(own_transformer, max_bytes=600_000):
            own_transformer(x)
    finally:
        for h in handles:
            h.remove()
    with pytest.raises(InvalidInputError, match="max_bytes"):
        with capture(own_transformer, max_bytes=0):
            pass


def test_the_default_guard_is_a_few_gib():
    from attnbook.capture import DEFAULT_MAX_BYTES

    assert 2**30 <= DEFAULT_MAX_BYTES <= 8 * 2**30


class _Tokens:
    def convert_ids_to_tokens(self, ids):
        return [f"t{i}" for i in ids]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_generation_over_a_kv_cache_is_one_causal_map_equal_to_a_full_forward(family):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if family == "llama":  # grouped-query attention
        model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0))
    model.eval()
    ids = torch.randint(1, 50, (2, 6))
    before = model_state(model)
    with torch.no_grad(), capture(model) as cap:
        out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0, use_cache=True)
    assert model_state(model) == before and cap.generated and cap.forwards == 5
    maps = cap.to_maps(tokenizer=_Tokens())
    fed = out[:, :-1]  # every position the model read; the last token was produced, never read
    model.set_attn_implementation("eager")
    with torch.no_grad():
        full = torch.stack(model(fed, output_attentions=True).attentions)
    assert maps.weights.shape == full.shape == (2, 2, 4, 10, 10)
    assert (maps.weights - full).abs().max() < 1e-5
    assert torch.equal(cap.token_ids(), fed) and maps.query_labels[0][6] == f"t{int(fed[0, 6])}"
    assert torch.equal(maps.mask[0], torch.ones(10, 10, dtype=torch.bool).tril())


def test_mha_hands_back_what_the_caller_asked_for():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    for kwargs, expected in (({}, (2, 5, 5)), ({"need_weights": False}, None), ({"average_attn_weights": False}, (2, 4, 5, 5))):
        with torch.no_grad():
            plain = mha(x, x, x, **kwargs)
            with capture(mha) as cap:
                recorded = mha(x, x, x, **kwargs)
        assert (recorded[1] is None) == (expected is None) and (expected is None or tuple(recorded[1].shape) == expected)
        if expected is not None:
            assert (recorded[1] - plain[1]).abs().max() < 1e-6
        assert (recorded[0] - plain[0]).abs().max() < 1e-5 and cap.weights().shape == (1, 2, 4, 5, 5)
    unbatched = torch.randn(5, 16)
    with torch.no_grad(), capture(mha):
        assert mha(unbatched, unbatched, unbatched)[1].shape == (5, 5)


def test_an_undeclared_model_returns_what_the_caller_asked_for_also_as_a_tuple():
    from transformers import DebertaV2Config, DebertaV2Model

    torch.manual_seed(0)
    model = DebertaV2Model(DebertaV2Config(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                           intermediate_size=64)).eval()
    ids = torch.randint(1, 50, (2, 6))
    with torch.no_grad():
        plain = model(ids, return_dict=False)
        asked = model(ids, output_attentions=True)
        with capture(model) as cap:
            recorded = model(ids, return_dict=False)
            recorded_asked = model(ids, output_attentions=True)
    assert len(recorded) == len(plain) and all(torch.equal(a, b) for a, b in zip(plain, recorded))
    assert len(recorded_asked.attentions) == 2 and torch.equal(recorded_asked.attentions[0], asked.attentions[0])
    assert cap.weights().shape == (2, 4, 4, 6, 6)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 3), w=st.integers(1, 3), wh=st.integers(1, 3), ww=st.integers(1, 3), sh=st.integers(0, 2), sw=st.integers(0, 2),
       batch=st.integers(1, 2))
def test_windows_scatter_and_gather_are_inverse(h, w, wh, ww, sh, sw, batch):
    grid = WindowGrid(h * wh, w * ww, (wh, ww), (sh % wh, sw % ww))
    index = grid.token_index()
    assert sorted(index.reshape(-1).tolist()) == list(range(grid.tokens))  # every token in exactly one window
    n_windows, n = index.shape
    windows = torch.rand(batch * n_windows, 2, n, n).softmax(-1)
    full = scatter(windows, grid, batch)
    assert torch.equal(gather(full, grid), windows)
    assert torch.allclose(full.sum(-1), torch.ones(())) and (full[:, :, ~grid.mask()] == 0).all()
    assert int(grid.mask().sum()) == n_windows * n * n


def test_a_grid_the_model_pads_is_refused():
    with pytest.raises(UnsupportedModelError, match="divisible"):
        WindowGrid(7, 8, (4, 4), (0, 0))


def test_cross_attention_is_labelled_decoder_by_encoder():
    from transformers import T5Config, T5Model

    torch.manual_seed(0)
    model = T5Model(T5Config(vocab_size=40, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)).eval()
    ids, decoder_ids = torch.randint(0, 40, (2, 7)), torch.randint(0, 40, (2, 5))
    with torch.no_grad(), capture(model, kind="cross") as cap:
        model(input_ids=ids, decoder_input_ids=decoder_ids)
    maps = cap.to_maps(tokenizer=_Tokens())
    assert maps.weights.shape == (2, 2, 4, 5, 7) and cap.layer_names == ["decoder.block.0.layer.1", "decoder.block.1.layer.1"]
    assert maps.query_labels[1] == tuple(f"t{i}" for i in decoder_ids[1].tolist())
    assert maps.key_labels[1] == tuple(f"t{i}" for i in ids[1].tolist())
    with torch.no_grad(), capture(model, layers="encoder.*") as enc:
        model(input_ids=ids, decoder_input_ids=decoder_ids)
    assert enc.to_maps(tokenizer=_Tokens()).key_labels[0] == tuple(f"t{i}" for i in ids[0].tolist())
