"""Hugging Face ``transformers`` entries of the compatibility matrix.

Every case builds a tiny model from a random config (hidden size 32 or so, two layers, two to four
heads, a vocabulary of 99), seeded with ``torch.manual_seed(0)`` inside ``build`` and put in
``eval()`` mode, so that nothing is downloaded: no ``from_pretrained``, no tokenizer, no hub. The
model is built with ``attn_implementation="sdpa"`` where its class supports it (``_supports_sdpa``),
so that ``capture`` has to switch it to ``eager`` and back; otherwise with the default (eager:
deberta-v2, mpnet, gpt-neo, bloom, gemma2).

The reference is the library's own mechanism, :func:`_hf_reference`: the model switched to eager
attention for one forward pass with ``output_attentions=True`` (its previous implementation restored
afterwards), the weights listed in the order of the attention calls:

* encoder-only and decoder-only: ``outputs.attentions``;
* encoder-decoder: ``"self"`` = ``encoder_attentions`` then ``decoder_attentions`` (the encoder runs
  first), ``"cross"`` = ``cross_attentions``;
* two towers (CLIP, SigLIP): the vision tower then the text tower, the order in which
  ``CLIPModel.forward`` and ``SiglipModel.forward`` call them;
* HF Swin: the windowed weights as the model returns them, ``(batch * windows, heads, N, N)`` —
  one per stage, from its last block (``SwinStage`` is the declared recorder), so the first block
  of the two-block stage is not in the reference.

Falcon does not follow the ``AttentionInterface`` (``set_attn_implementation`` only warns and keeps
sdpa); it computes the weights explicitly whenever ``output_attentions=True`` is passed.

Coverage: encoders (bert, roberta, xlm-roberta, camembert, distilbert, electra, albert, deberta-v2,
mpnet), decoders (gpt2, gpt-neo, gpt-j, codegen, opt, bloom, falcon, llama, mistral, qwen2, gemma,
gemma2, phi, stablelm), encoder-decoders (t5, bart, marian, pegasus, whisper), vision (vit, deit,
beit, swin) and vision-text (clip, siglip). Padding: ``bert`` has a right-padded batch, ``llama`` a
left-padded one, both with ``real_tokens``. Grouped-query attention: ``qwen2`` (4 query heads, 1
key/value head), ``mistral``, ``gemma``, ``gemma2``, ``falcon``; sliding windows: ``mistral`` (4
over 9 tokens), ``gemma2`` and ``gpt-neo`` (4 over 7, every other layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..capture import eager_attention
from .case import Case, Reference

VOCAB = 99          # tiny vocabulary; ids drawn from [FIRST_ID, VOCAB) so that no special id is used
FIRST_ID = 4
BATCH = 2
LENGTH = 7          # encoder / decoder-only input length
DECODER_LENGTH = 5  # decoder input length of the encoder-decoders (differs from LENGTH on purpose)
IMAGE = 32          # square image side of the vision models


# --- helpers -----------------------------------------------------------------------------------


def _model(cls: type, config: Any) -> nn.Module:
    """``cls`` built from ``config`` (random weights), with sdpa attention where the class supports it."""
    if getattr(cls, "_supports_sdpa", False):
        model = cls._from_config(config, attn_implementation="sdpa")
    else:
        model = cls._from_config(config)
    return model.eval()


def _ids(length: int = LENGTH, batch: int = BATCH) -> torch.Tensor:
    return torch.randint(FIRST_ID, VOCAB, (batch, length))


def _pixels(side: int = IMAGE, batch: int = BATCH, channels: int = 3) -> torch.Tensor:
    return torch.randn(batch, channels, side, side)


def _text(length: int = LENGTH, mask: bool = True) -> dict[str, Any]:
    inputs: dict[str, Any] = {"input_ids": _ids(length)}
    if mask:
        inputs["attention_mask"] = torch.ones(BATCH, length, dtype=torch.long)
    return inputs


def _seq2seq(length: int = LENGTH, decoder_length: int = DECODER_LENGTH) -> dict[str, Any]:
    inputs = _text(length)
    inputs["decoder_input_ids"] = _ids(decoder_length)
    return inputs


def _real_tokens(inputs: dict[str, Any]) -> torch.Tensor:
    """The positions that are not padding (the padded ones may differ between sdpa and eager)."""
    return inputs["attention_mask"].bool()


def _weights(attentions: Sequence[torch.Tensor | None] | None, where: str) -> list[torch.Tensor]:
    if attentions is None or any(a is None for a in attentions):
        raise RuntimeError(f"eager forward returned no attention weights for {where}")
    return [a.detach().float() for a in attentions]


def _hf_reference(
    model: nn.Module, inputs: dict[str, Any], towers: Sequence[str] = ("vision_model_output", "text_model_output")
) -> Reference:
    """The weights as ``transformers`` itself gives them: eager attention, ``output_attentions=True``.

    Handles encoder-only and decoder-only outputs (``attentions``), encoder-decoder outputs
    (``encoder_attentions``, ``decoder_attentions``, ``cross_attentions``) and two-tower outputs
    (``towers``: the sub-outputs in the order the forward pass runs them). The model's attention
    implementation is restored afterwards, exception or not.
    """
    with torch.no_grad(), eager_attention(model):
        outputs = model(**inputs, output_attentions=True)
    if hasattr(outputs, "encoder_attentions"):
        return {
            "self": _weights(outputs.encoder_attentions, "the encoder")
            + _weights(outputs.decoder_attentions, "the decoder"),
            "cross": _weights(outputs.cross_attentions, "the cross-attention"),
        }
    if all(hasattr(outputs, tower) for tower in towers):
        return {"self": [w for tower in towers for w in _weights(getattr(outputs, tower).attentions, tower)]}
    return {"self": _weights(outputs.attentions, type(model).__name__)}


def _called_reference(model: nn.Module, inputs: dict[str, Any], attention_class: str) -> Reference:
    """Every call of the modules of class ``attention_class`` in one eager forward with
    ``output_attentions=True``, read from their own outputs (the weights they return), in call order;
    ``nn.MultiheadAttention`` calls (SigLIP's pooling head) re-run with ``need_weights=True,
    average_attn_weights=False`` on the inputs they got. For models whose ``outputs.attentions`` leave
    calls out (HF Swin reports one block per stage) or leave a pooling head out."""
    calls: list[torch.Tensor] = []
    handles = []
    for module in model.modules():
        if type(module).__name__ == attention_class:
            handles.append(module.register_forward_hook(
                lambda _m, _i, out: calls.append(next(o for o in out[1:] if isinstance(o, torch.Tensor) and o.dim() == 4).detach().float())))
        elif isinstance(module, nn.MultiheadAttention):
            def rerun(mha, args, kwargs):
                with torch.no_grad():  # .forward: the module's own computation, without this hook again
                    calls.append(mha.forward(*args, **{**kwargs, "need_weights": True, "average_attn_weights": False})[1].detach().float())
            handles.append(module.register_forward_pre_hook(rerun, with_kwargs=True))
    try:
        with torch.no_grad(), eager_attention(model):
            model(**inputs, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    return {"self": calls}


def _weights_path_outputs(model: nn.Module, inputs: dict[str, Any]) -> Any:
    """The model's outputs on its weights-returning path (``output_attentions=True``), attentions left out."""
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    return type(out)(**{k: v for k, v in out.items() if k not in ("attentions", "cross_attentions")})


def _case(name: str, build: Callable[[], tuple[nn.Module, dict[str, Any]]], **kwargs: Any) -> Case:
    return Case("transformers", name, build, _hf_reference, **kwargs)


def _seeded(build: Callable[[], tuple[nn.Module, dict[str, Any]]]) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    """``build`` run after ``torch.manual_seed(0)`` (weights and inputs reproducible)."""

    def seeded() -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(0)
        return build()

    seeded.__name__ = seeded.__qualname__ = build.__name__
    seeded.__doc__ = build.__doc__
    return seeded


# common sizes of the BERT-like configs
_ENCODER = dict(
    vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)
# common sizes of the Llama-like decoder configs
_DECODER = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    max_position_embeddings=64,
)
# common sizes of the BART-like encoder-decoder configs
_BART = dict(
    vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
    dropout=0.0, attention_dropout=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    decoder_start_token_id=2,
)
# common sizes of the ViT-like configs
_VIT = dict(
    image_size=IMAGE, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)


def _built(config: str, model: str, sizes: dict[str, Any], doc: str, *, length: int | None = None,
           **extra: Any) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    """A seeded builder of ``transformers.<model>`` from ``transformers.<config>(**sizes, **extra)`` with
    a batch of text of ``length`` tokens (default :data:`LENGTH`)."""

    def build() -> tuple[nn.Module, dict[str, Any]]:
        import transformers

        return (_model(getattr(transformers, model), getattr(transformers, config)(**sizes, **extra)),
                _text() if length is None else _text(length=length))

    build.__name__ = build.__qualname__ = f"_{model.lower()}"
    build.__doc__ = doc
    return _seeded(build)


def _llama_like(family: str, doc: str, **extra: Any) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    """``transformers.<family>ForCausalLM`` on the Llama-like sizes ``_DECODER``."""
    return _built(f"{family}Config", f"{family}ForCausalLM", _DECODER, doc, **extra)


# --- encoders ----------------------------------------------------------------------------------


@_seeded
def _bert():
    """BERT with a right-padded batch (row 1 has two padding positions at the end)."""
    from transformers import BertConfig, BertModel

    model = _model(BertModel, BertConfig(**_ENCODER))
    inputs = _text()
    inputs["attention_mask"][1, -2:] = 0
    inputs["input_ids"][1, -2:] = 0  # [PAD]
    return model, inputs


_roberta = _built("RobertaConfig", "RobertaModel", _ENCODER, "RoBERTa.", pad_token_id=1)


_xlm_roberta = _built("XLMRobertaConfig", "XLMRobertaModel", _ENCODER, "XLM-RoBERTa.", pad_token_id=1)


_camembert = _built("CamembertConfig", "CamembertModel", _ENCODER, "CamemBERT.", pad_token_id=1)


@_seeded
def _distilbert():
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64,
        dropout=0.0, attention_dropout=0.0,
    )
    return _model(DistilBertModel, config), _text()


_electra = _built("ElectraConfig", "ElectraModel", _ENCODER, "ELECTRA (discriminator encoder), 16-wide embeddings.", embedding_size=16)


@_seeded
def _albert():
    """ALBERT: one layer (one attention module) shared by the two layers, so it is called twice."""
    from transformers import AlbertConfig, AlbertModel

    config = AlbertConfig(**_ENCODER, embedding_size=16, num_hidden_groups=1, inner_group_num=1)
    return _model(AlbertModel, config), _text()


@_seeded
def _deberta_v2():
    """DeBERTa-v2 with disentangled relative attention (content-to-position and position-to-content)."""
    from transformers import DebertaV2Config, DebertaV2Model

    config = DebertaV2Config(
        **_ENCODER, relative_attention=True, position_buckets=8, max_relative_positions=16,
        pos_att_type=["p2c", "c2p"], position_biased_input=False,
    )
    return _model(DebertaV2Model, config), _text()


_mpnet = _built("MPNetConfig", "MPNetModel", _ENCODER, "MPNet (relative position buckets; declares no output recorders).", pad_token_id=1)


# --- decoders ----------------------------------------------------------------------------------


@_seeded
def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    return _model(GPT2LMHeadModel, config), _text()


@_seeded
def _gpt_neo():
    """GPT-Neo: a global then a local layer (window of 4 over 7 tokens)."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    config = GPTNeoConfig(
        vocab_size=VOCAB, max_position_embeddings=64, hidden_size=32, num_layers=2, num_heads=4,
        attention_types=[[["global", "local"], 1]], window_size=4, intermediate_size=64, resid_dropout=0.0,
        embed_dropout=0.0, attention_dropout=0.0, bos_token_id=0, eos_token_id=0,
    )
    return _model(GPTNeoForCausalLM, config), _text()


@_seeded
def _gptj():
    from transformers import GPTJConfig, GPTJForCausalLM

    config = GPTJConfig(
        vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_inner=64,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    return _model(GPTJForCausalLM, config), _text()


@_seeded
def _codegen():
    from transformers import CodeGenConfig, CodeGenForCausalLM

    config = CodeGenConfig(
        vocab_size=VOCAB, n_positions=64, n_ctx=64, n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_inner=64,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    return _model(CodeGenForCausalLM, config), _text()


@_seeded
def _opt():
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
        max_position_embeddings=64, word_embed_proj_dim=32, dropout=0.0, attention_dropout=0.0, pad_token_id=1,
    )
    return _model(OPTForCausalLM, config), _text()


@_seeded
def _bloom():
    """BLOOM: ALiBi position biases."""
    from transformers import BloomConfig, BloomForCausalLM

    config = BloomConfig(vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, hidden_dropout=0.0, attention_dropout=0.0)
    return _model(BloomForCausalLM, config), _text()


@_seeded
def _falcon():
    """Falcon with multi-query attention (one key/value head)."""
    from transformers import FalconConfig, FalconForCausalLM

    config = FalconConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, multi_query=True,
        new_decoder_architecture=False, parallel_attn=True, alibi=False, hidden_dropout=0.0, attention_dropout=0.0,
        max_position_embeddings=64,
    )
    return _model(FalconForCausalLM, config), _text()


@_seeded
def _llama():
    """Llama with a left-padded batch (row 0 has two padding positions at the start)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    model = _model(LlamaForCausalLM, LlamaConfig(**_DECODER, num_key_value_heads=4, pad_token_id=0))
    inputs = _text()
    inputs["attention_mask"][0, :2] = 0
    inputs["input_ids"][0, :2] = 0  # pad
    return model, inputs


_mistral = _llama_like("Mistral", "Mistral with a sliding window of 4 over 9 tokens (and grouped-query attention, 2 kv heads).",
                       length=9, num_key_value_heads=2, sliding_window=4)
_qwen2 = _llama_like("Qwen2", "Qwen2 with grouped-query attention: 4 query heads share 1 key/value head.", num_key_value_heads=1)
_gemma = _llama_like("Gemma", "Gemma: multi-query attention (1 key/value head), explicit head size.", num_key_value_heads=1, head_dim=8)
_gemma2 = _llama_like("Gemma2", "Gemma2: alternating sliding-window (4) / global layers, logit soft-capping, 2 kv heads.",
                      num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=4)
_phi = _llama_like("Phi", "Phi: partial rotary embeddings.", partial_rotary_factor=0.5, resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0)
_stablelm = _llama_like("StableLm", "StableLM: partial rotary embeddings, 4 kv heads.", num_key_value_heads=4, partial_rotary_factor=0.5)


# --- encoder-decoders --------------------------------------------------------------------------


@_seeded
def _t5():
    """T5: relative position buckets, encoder of 7 tokens, decoder of 5."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=8, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
    )
    return _model(T5ForConditionalGeneration, config), _seq2seq()


@_seeded
def _bart():
    from transformers import BartConfig, BartForConditionalGeneration

    return _model(BartForConditionalGeneration, BartConfig(**_BART)), _seq2seq()


@_seeded
def _marian():
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(**{**_BART, "pad_token_id": 3, "decoder_start_token_id": 3}, decoder_vocab_size=VOCAB)
    return _model(MarianMTModel, config), _seq2seq()


@_seeded
def _pegasus():
    from transformers import PegasusConfig, PegasusForConditionalGeneration

    config = PegasusConfig(**{**_BART, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0})
    return _model(PegasusForConditionalGeneration, config), _seq2seq()


@_seeded
def _whisper():
    """Whisper: 8 mel bins x 16 frames (8 encoder positions after the stride-2 convolution), decoder of 5."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=VOCAB, num_mel_bins=8, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=8, max_target_positions=16, dropout=0.0, attention_dropout=0.0,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=3,
        suppress_tokens=None, begin_suppress_tokens=None,
    )
    model = _model(WhisperForConditionalGeneration, config)
    inputs = {"input_features": torch.randn(BATCH, 8, 16), "decoder_input_ids": _ids(DECODER_LENGTH)}
    return model, inputs


# --- vision ------------------------------------------------------------------------------------


@_seeded
def _vit():
    from transformers import ViTConfig, ViTModel

    return _model(ViTModel, ViTConfig(**_VIT)), {"pixel_values": _pixels()}


@_seeded
def _deit():
    """DeiT: class and distillation tokens before the 16 patches."""
    from transformers import DeiTConfig, DeiTModel

    return _model(DeiTModel, DeiTConfig(**_VIT)), {"pixel_values": _pixels()}


@_seeded
def _beit():
    """BEiT with relative position biases per layer."""
    from transformers import BeitConfig, BeitModel

    config = BeitConfig(**_VIT, vocab_size=VOCAB, use_relative_position_bias=True, use_mean_pooling=True)
    return _model(BeitModel, config), {"pixel_values": _pixels()}


@_seeded
def _swin():
    """HF Swin: 8x8 patches in 4x4 windows (a plain then a shifted block), then 4x4 in one window."""
    from transformers import SwinConfig, SwinModel

    config = SwinConfig(
        image_size=IMAGE, patch_size=4, num_channels=3, embed_dim=16, depths=[2, 1], num_heads=[2, 4],
        window_size=4, mlp_ratio=2.0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        drop_path_rate=0.0,
    )
    return _model(SwinModel, config), {"pixel_values": _pixels()}


# --- vision-text -------------------------------------------------------------------------------


# the towers' sizes, shared by CLIP and SigLIP
_TOWERS = dict(
    text_config=dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=16, pad_token_id=1, bos_token_id=0, eos_token_id=2),
    vision_config=dict(image_size=IMAGE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
)


@_seeded
def _clip():
    """CLIP: a causal text tower and a ViT vision tower; the forward runs the vision tower first."""
    from transformers import CLIPConfig, CLIPModel

    return _model(CLIPModel, CLIPConfig(**_TOWERS, projection_dim=16)), {**_text(), "pixel_values": _pixels()}


@_seeded
def _siglip():
    """SigLIP: text and vision towers (no class token); the forward runs the vision tower first."""
    from transformers import SiglipConfig, SiglipModel

    return _model(SiglipModel, SiglipConfig(**_TOWERS)), {"input_ids": _ids(), "pixel_values": _pixels()}


# --- the matrix --------------------------------------------------------------------------------

_PAD_NOTE = "outputs at padded positions may differ between sdpa and eager"

CASES: list[Case] = [
    # encoders
    _case("bert", _bert, real_tokens=_real_tokens, note="right-padded batch; " + _PAD_NOTE),
    _case("roberta", _roberta),
    _case("xlm-roberta", _xlm_roberta),
    _case("camembert", _camembert),
    _case("distilbert", _distilbert),
    _case("electra", _electra),
    _case("albert", _albert, recorded="per call", note="one attention module shared by both layers"),
    _case("deberta-v2", _deberta_v2),
    _case("mpnet", _mpnet),
    # decoders
    _case("gpt2", _gpt2),
    _case("gpt-neo", _gpt_neo, note="local attention layer (window 4)"),
    _case("gptj", _gptj),
    _case("codegen", _codegen),
    _case("opt", _opt),
    _case("bloom", _bloom),
    _case("falcon", _falcon, outputs_as=_weights_path_outputs, note=(
        "multi-query attention; Falcon computes weights only on its explicit path (output_attentions=True), whose "
        "outputs differ from its sdpa path (measured without capture): capture reproduces that path's outputs and warns; "
        "the sdpa path is the right one (an upstream defect: see 'Capture changes Falcon's outputs')")),
    _case("llama", _llama, real_tokens=_real_tokens, note="left-padded batch; " + _PAD_NOTE),
    _case("mistral", _mistral, note="sliding window 4 over 9 tokens, grouped-query attention"),
    _case("qwen2", _qwen2, note="grouped-query attention (4 query heads, 1 key/value head)"),
    _case("gemma", _gemma, note="multi-query attention"),
    _case("gemma2", _gemma2, note="alternating sliding-window and global layers, soft-capping"),
    _case("phi", _phi),
    _case("stablelm", _stablelm),
    # encoder-decoders
    _case("t5", _t5, recorded="self + cross"),
    _case("bart", _bart, recorded="self + cross"),
    _case("marian", _marian, recorded="self + cross"),
    _case("pegasus", _pegasus, recorded="self + cross"),
    _case("whisper", _whisper, recorded="self + cross"),
    # vision
    _case("vit", _vit),
    _case("deit", _deit),
    _case("beit", _beit),
    Case("transformers", "swin", _swin, lambda m, i: _called_reference(m, i, "SwinAttention"), recorded="windows", note=(
        "windows scattered into whole-image maps (zeros between windows); transformers' own attentions output "
        "keeps only the last block of each stage, so the reference reads every SwinAttention call")),
    # vision-text
    _case("clip", _clip, note="vision tower then text tower"),
    Case("transformers", "siglip", _siglip, lambda m, i: _called_reference(m, i, "SiglipAttention"),
         note="vision tower, its nn.MultiheadAttention pooling head (one probe query), then text tower"),
]
