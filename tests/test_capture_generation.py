"""capture around ``generate``: every returned sequence's maps equal one eager ``output_attentions=True``
forward over that sequence (decoder-only and encoder–decoder, self and cross), or a typed refusal
before anything is returned; the outputs-changing warning and ``verify=True``."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnbook.capture import capture
from attnbook.capture.core import eager_attention
from attnbook.compat.runner import model_state
from attnbook.errors import (CaptureBudgetError, CaptureChangesOutputsWarning, InvalidInputError, UnsupportedGenerationError,
                             UnsupportedModelError)

VOCAB = 40


def _decoder(family: str):
    import transformers as tf

    torch.manual_seed(0)
    sizes = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=3)
    if family == "gpt2":
        config, cls = tf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=3,
                                    pad_token_id=1), tf.GPT2LMHeadModel
    elif family == "llama":
        config, cls = tf.LlamaConfig(**sizes, num_key_value_heads=2), tf.LlamaForCausalLM
    elif family == "qwen2":  # grouped-query attention: 4 query heads, 1 key/value head
        config, cls = tf.Qwen2Config(**sizes, num_key_value_heads=1), tf.Qwen2ForCausalLM
    elif family == "mistral":  # sliding window of 4
        config, cls = tf.MistralConfig(**sizes, num_key_value_heads=2, sliding_window=4), tf.MistralForCausalLM
    else:
        raise KeyError(family)
    return cls._from_config(config, attn_implementation="sdpa").eval()


def _seq2seq(family: str):
    import transformers as tf

    torch.manual_seed(0)
    if family == "bart":
        config = tf.BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                               decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                               pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
        return tf.BartForConditionalGeneration._from_config(config, attn_implementation="sdpa").eval()
    config = tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                         relative_attention_num_buckets=8, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return tf.T5ForConditionalGeneration._from_config(config, attn_implementation="sdpa").eval()


def _prompt(batch: int = 2, length: int = 6, left_pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(4, VOCAB, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    if left_pad:
        ids[0, :left_pad], mask[0, :left_pad] = 1, 0
    return ids, mask


def _decoder_reference(model, sequences: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """One eager forward over each returned sequence's positions (layers, R, heads, T, T), with the mask and
    the position ids generate gives a padded prompt."""
    R, L = sequences.shape
    mask = prompt_mask.repeat_interleave(R // prompt_mask.shape[0], 0)
    mask = torch.cat([mask, torch.ones(R, L - 1 - mask.shape[1], dtype=mask.dtype)], dim=1)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad(), eager_attention(model):
        out = model(sequences[:, :-1], attention_mask=mask, position_ids=positions, output_attentions=True)
    return torch.stack(out.attentions)


def _check_decoder(model, ids, mask, **gen) -> tuple[torch.Tensor, object]:
    before = model_state(model)
    torch.manual_seed(3)
    with torch.no_grad(), capture(model) as cap:
        out = model.generate(ids, attention_mask=mask, max_new_tokens=5, **gen)
    assert model_state(model) == before and "generate" not in vars(model)
    maps = cap.to_maps()
    reference = _decoder_reference(model, out, mask)
    assert maps.weights.shape == reference.shape == (2, out.shape[0], 4, out.shape[1] - 1, out.shape[1] - 1)
    real = maps.mask[None, :, None]
    assert float(((maps.weights - reference).abs() * real).max()) <= 1e-5
    assert torch.equal(cap.token_ids(), out[:, :-1]) and torch.equal(cap.sequences, out)
    assert float((maps.weights * ~real).abs().max()) == 0.0  # nothing outside the mask
    return out, maps


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
@pytest.mark.parametrize("beams,returned", [(2, 1), (3, 2), (4, 4)])
def test_beam_search_gives_every_returned_sequence_the_map_of_one_forward_over_it(family, beams, returned):
    model = _decoder(family)
    ids, mask = _prompt(left_pad=2 if family == "llama" else 0)
    out, maps = _check_decoder(model, ids, mask, num_beams=beams, num_return_sequences=returned, do_sample=False)
    assert out.shape[0] == 2 * returned


def test_left_padding_is_outside_the_mask_and_real_rows_sum_to_one():
    model = _decoder("llama")
    ids, mask = _prompt(left_pad=2)
    out, maps = _check_decoder(model, ids, mask, num_beams=3, num_return_sequences=2)
    assert not maps.mask[0, :2].any() and not maps.mask[:2, :, :2].any()  # the two padded positions of input 0
    rows = maps.weights.sum(-1).permute(1, 3, 0, 2)[maps.mask.any(-1)]  # (real rows, layers, heads)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)


def test_beams_that_finish_early_carry_no_weight_after_their_end_and_are_masked():
    model = _decoder("gpt2")
    ids, mask = _prompt()
    with torch.no_grad():
        greedy = model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=3, num_return_sequences=3)
    eos = int(greedy[0, ids.shape[1] + 1])  # a token a returned beam emits second: make it the end of sequence
    out, maps = _check_decoder(model, ids, mask, num_beams=3, num_return_sequences=3, eos_token_id=eos)
    finished = [r for r in range(out.shape[0]) if (out[r, ids.shape[1]:] == eos).any()]
    assert finished, "the chosen end-of-sequence token should end at least one beam"
    for r in finished:
        end = ids.shape[1] + int((out[r, ids.shape[1]:] == eos).nonzero()[0])  # position of the end token: never read
        assert not maps.mask[r, end:].any() and float(maps.weights[:, r, :, end:].abs().max()) == 0.0
        assert maps.mask[r, end - 1, : end].all()


@pytest.mark.parametrize("family", ["bart", "t5"])
@pytest.mark.parametrize("beams,returned", [(1, 1), (2, 2), (4, 3)])
def test_encoder_decoder_generation_self_and_cross_equal_one_teacher_forced_forward(family, beams, returned):
    model = _seq2seq(family)
    ids, mask = _prompt(length=7)
    mask[1, -2:] = 0
    ids[1, -2:] = model.config.pad_token_id
    with torch.no_grad(), capture(model, kind="cross") as cross:
        out = model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=beams, num_return_sequences=returned)
    with torch.no_grad(), capture(model, kind="self") as own:
        again = model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=beams, num_return_sequences=returned)
    assert torch.equal(out, again)
    R, L = out.shape
    enc_ids, enc_mask = ids.repeat_interleave(returned, 0), mask.repeat_interleave(returned, 0)
    with torch.no_grad(), eager_attention(model):
        ref = model(input_ids=enc_ids, attention_mask=enc_mask, decoder_input_ids=out[:, :-1], output_attentions=True)
    maps = cross.to_maps()
    assert maps.weights.shape == (2, R, 4, L - 1, 7)  # (layers, returned sequences, heads, decoder steps, source)
    assert float(((maps.weights - torch.stack(ref.cross_attentions)).abs() * maps.mask[None, :, None]).max()) <= 1e-5
    assert torch.equal(cross.token_ids("decoder_input_ids"), out[:, :-1]) and torch.equal(cross.token_ids("input_ids"), enc_ids)
    assert not maps.mask[1 * returned:, :, -2:].any()  # the encoder padding of input 1
    layers = own.per_layer()
    roles = own.generations[0].roles
    assert roles == ["encoder", "encoder", "self", "self"]
    for w, role, r in zip(layers, roles, list(ref.encoder_attentions) + list(ref.decoder_attentions)):
        assert w.shape == r.shape
        assert float(((w - r).abs() * own.generations[0].masks[role][:, None]).max()) <= 1e-5


def test_sampling_assisted_prompt_lookup_static_sliding_and_no_cache_are_exact():
    llama, mistral = _decoder("llama"), _decoder("mistral")
    ids, mask = _prompt(left_pad=2)
    _check_decoder(llama, ids, mask, do_sample=True, num_return_sequences=2)
    _check_decoder(llama, ids, mask, do_sample=True, num_beams=3, num_return_sequences=2)
    _check_decoder(llama, ids, mask, cache_implementation="static", num_beams=2)
    _check_decoder(llama, ids, mask, use_cache=False, num_beams=2)
    ids9, mask9 = _prompt(length=9)  # longer than the window of 4
    _check_decoder(mistral, ids9, mask9, num_beams=2)
    _check_decoder(mistral, ids9, mask9, cache_implementation="static")  # a static sliding-window cache that rolls
    for single in ({"prompt_lookup_num_tokens": 2}, {"assistant_model": _decoder("qwen2")}):
        model = _decoder("llama")
        with torch.no_grad(), capture(model) as cap:
            out = model.generate(ids[1:], attention_mask=mask[1:], max_new_tokens=6, **single)
        ref = _decoder_reference(model, out, mask[1:])
        assert float(((cap.weights() - ref).abs() * cap.to_maps().mask[None, :, None]).max()) <= 1e-5


_REFUSED = [
    ({"penalty_alpha": 0.6, "top_k": 4}, "penalty_alpha"),
    ({"dola_layers": "high"}, "dola_layers"),
    ({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}, "num_beam_groups"),
    ({"num_beams": 2, "force_words_ids": [[5]]}, "force_words_ids"),
    ({"cache_implementation": "quantized"}, "quantized"),
    ({"cache_implementation": "paged"}, "paged"),
    ({"custom_generate": "someone/decoding"}, "custom_generate"),
    ({"assistant_early_exit": 1}, "assistant_early_exit"),
]


@pytest.mark.parametrize("kwargs,option", _REFUSED, ids=[o for _, o in _REFUSED])
def test_unsupported_options_are_refused_before_the_first_forward_naming_the_option(kwargs, option):
    model = _decoder("gpt2")
    ids, mask = _prompt()
    before = model_state(model)
    calls = []
    hook = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(UnsupportedGenerationError, match=option) as err, torch.no_grad(), capture(model):
            model.generate(ids, attention_mask=mask, max_new_tokens=3, **kwargs)
    finally:
        hook.remove()
    assert not calls and "use " in str(err.value) and isinstance(err.value, UnsupportedModelError)
    assert model_state(model) == before and "generate" not in vars(model)


def test_the_captured_model_as_its_own_assistant_and_a_filled_cache_are_refused():
    from transformers import DynamicCache

    model = _decoder("llama")
    ids, mask = _prompt()
    with pytest.raises(UnsupportedGenerationError, match="assistant_model"), capture(model):
        model.generate(ids[:1], max_new_tokens=3, assistant_model=model)
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model(ids[:1, :3], past_key_values=cache, use_cache=True)
    with pytest.raises(UnsupportedGenerationError, match="cache"), capture(model):
        model.generate(ids[:1], max_new_tokens=3, past_key_values=cache)


def test_a_block_mixing_generate_and_plain_passes_and_the_budget_are_refused():
    model = _decoder("gpt2")
    ids, mask = _prompt()
    with torch.no_grad(), capture(model) as cap:
        model.generate(ids, attention_mask=mask, max_new_tokens=3, num_beams=2)
        model(ids)
    with pytest.raises(InvalidInputError, match="generate"):
        cap.weights()
    with pytest.raises(CaptureBudgetError, match="max_bytes"), torch.no_grad(), capture(model, max_bytes=10_000):
        model.generate(ids, attention_mask=mask, max_new_tokens=3, num_beams=3, num_return_sequences=3)
    assert "generate" not in vars(model)


_FAMILIES = st.sampled_from(["gpt2", "llama", "qwen2", "mistral"])


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(family=_FAMILIES, beams=st.integers(1, 4), returned=st.integers(1, 4), sample=st.booleans(), left_pad=st.integers(0, 2),
       cache=st.sampled_from([None, "static", "no cache", "quantized"]), penalty=st.booleans(), early=st.booleans())
def test_every_decoding_setting_is_exact_or_a_typed_refusal(family, beams, returned, sample, left_pad, cache, penalty, early):
    model = _decoder(family)
    ids, mask = _prompt(left_pad=left_pad)
    kwargs = dict(num_beams=beams, num_return_sequences=min(returned, beams), do_sample=sample, max_new_tokens=4)
    if cache == "no cache":
        kwargs["use_cache"] = False
    elif cache is not None:
        kwargs["cache_implementation"] = cache
    if penalty and beams == 1 and not sample:
        kwargs.update(penalty_alpha=0.5, top_k=3)
    if early:
        kwargs["eos_token_id"] = list(range(4, 4 + VOCAB // 3))  # a third of the vocabulary ends a sequence
    try:
        torch.manual_seed(0)
        with torch.no_grad(), capture(model) as cap:
            out = model.generate(ids, attention_mask=mask, **kwargs)
    except UnsupportedGenerationError:
        assert cache == "quantized" or "penalty_alpha" in kwargs
        return
    assert cache != "quantized" and "penalty_alpha" not in kwargs
    maps = cap.to_maps()
    reference = _decoder_reference(model, out, mask)
    assert float(((maps.weights - reference).abs() * maps.mask[None, :, None]).max()) <= 1e-5
    assert torch.equal(cap.token_ids(), out[:, :-1])


def _falcon(alibi: bool, implementation: str = "sdpa"):
    from attnbook.compat.falcon import build

    return build({"alibi": alibi}, implementation=implementation)


def test_capture_warns_on_a_family_whose_recorded_path_changes_outputs_and_verify_measures_it():
    ids = torch.randint(4, 90, (1, 6))
    model = _falcon(alibi=True)
    with pytest.warns(CaptureChangesOutputsWarning, match="ALiBi bias counts twice"), torch.no_grad(), capture(model):
        model(ids)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad(), capture(model, verify=True) as cap:
        warnings.simplefilter("always")
        model(ids)
    changed = [w for w in caught if issubclass(w.category, CaptureChangesOutputsWarning)]
    assert len(changed) == 2 and "differ from the same call without it" in str(changed[1].message)
    assert cap.verified["changed"] and cap.verified["max_diff"] > 1e-3


def test_verify_finds_a_change_the_registry_does_not_know(monkeypatch):
    from attnbook.capture import divergence

    monkeypatch.setattr(divergence, "DIVERGENCES", ())
    model = _falcon(alibi=False)
    ids = torch.randint(4, 90, (2, 5))
    with warnings.catch_warnings(record=True) as without, torch.no_grad(), capture(model):
        warnings.simplefilter("always")
        model(ids)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad(), capture(model, verify=True) as cap:
        warnings.simplefilter("always")
        recorded = model(ids)
    assert not [w for w in without if issubclass(w.category, CaptureChangesOutputsWarning)]  # the registry is empty here
    assert [w for w in caught if issubclass(w.category, CaptureChangesOutputsWarning)]
    with torch.no_grad():  # verify's own number against the two paths measured here
        plain, weights_path = model(ids).logits, model(ids, output_attentions=True).logits
    assert torch.allclose(recorded.logits, weights_path, atol=1e-5)
    assert abs(cap.verified["max_diff"] - float((plain - weights_path).abs().max())) < 1e-5


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "mistral", "bart", "t5", "falcon-eager"])
def test_no_warning_and_verify_silent_where_the_paths_agree(family):
    if family == "falcon-eager":
        model, ids = _falcon(alibi=False, implementation="eager"), torch.randint(4, 90, (2, 5))
    else:
        model = _seq2seq(family) if family in ("bart", "t5") else _decoder(family)
        ids = _prompt()[0]
    kwargs = {"decoder_input_ids": ids[:, :3]} if family in ("bart", "t5") else {}
    with warnings.catch_warnings(record=True) as caught, torch.no_grad(), capture(model, verify=True) as cap:
        warnings.simplefilter("always")
        model(ids, **kwargs)
    assert not [w for w in caught if issubclass(w.category, CaptureChangesOutputsWarning)]
    assert cap.verified is not None and not cap.verified["changed"] and cap.verified["max_diff"] <= 1e-5


def test_a_non_causal_recorded_path_refuses_generation_before_it_starts():
    model = _falcon(alibi=False)
    ids = torch.randint(4, 90, (1, 5))
    with pytest.warns(CaptureChangesOutputsWarning), pytest.raises(UnsupportedGenerationError, match="attn_implementation='eager'"):
        with torch.no_grad(), capture(model):
            model.generate(ids, max_new_tokens=3, pad_token_id=0)
    with pytest.raises(InvalidInputError, match="verify"), capture(model, verify="yes"):
        pass


def test_the_generation_table_has_no_failing_case_and_the_statuses_the_page_states():
    from attnbook.compat.generation import generation_matrix

    table = generation_matrix()
    assert not (table.status == "FAILS").any(), table[table.status == "FAILS"][["family", "strategy", "message"]].to_string()
    exact = table[table.status == "exact"]
    assert float(exact.max_diff.max()) <= 1e-5 and len(exact) >= 100
    assert set(table[table.family == "falcon"].status) == {"refused"}
    assert "outputs changed" in set(table[table.family == "falcon (alibi)"].status)
    refused = table[table.strategy.isin(["contrastive search", "DoLa", "group beam search", "constrained beam search",
                                         "quantized cache", "continuous batching"])]
    assert set(refused.status) == {"refused"}
    assert (table[table.strategy == "beam search, finishing early"].finished_early > 0).sum() >= 3


def test_verify_runs_under_generate_and_on_timm_and_torch_without_touching_their_flags_after():
    import timm

    model = _decoder("llama")
    ids, mask = _prompt(left_pad=2)
    with torch.no_grad():
        plain = model.generate(ids, attention_mask=mask, max_new_tokens=4, num_beams=2)
        with capture(model, verify=True) as cap:
            out = model.generate(ids, attention_mask=mask, max_new_tokens=4, num_beams=2)
    assert torch.equal(plain, out) and not cap.verified["changed"]  # the plain pass ran on a copy of the cache
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=3).eval()
    encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 4, batch_first=True), 2).eval()
    for net, x in ((vit, torch.randn(2, 3, 32, 32)), (encoder, torch.randn(2, 5, 16))):
        before = model_state(net)
        with torch.no_grad(), capture(net, verify=True) as cap:
            net(x)
        assert not cap.verified["changed"] and cap.verified["max_diff"] <= 1e-5 and model_state(net) == before
