"""Falcon's two attention paths checked against a forward pass computed by hand from its weights.

Falcon has two paths: the default one (sdpa, ``model(ids)``) and the one that returns the weights
(``model(ids, output_attentions=True)``, its eager branch; ``set_attn_implementation`` does not move
Falcon off sdpa). They give different outputs. :func:`hand_forward` recomputes one forward pass from
the parameters in plain torch — embeddings, per layer the layer norm(s), the fused
``query_key_value`` split by the config's head layout, rotary positions or ALiBi, causal softmax
attention, ``dense``, the MLP, the parallel or sequential residual, then ``ln_f`` — and so says
which path is right. :func:`paths_table` does it for every feature combination that could matter,
:func:`smallest_example` finds the smallest input that shows the defect. These are what the
compatibility page shows and what :data:`attnbook.capture.divergence.DIVERGENCES` records.

Models are tiny and random (vocabulary 99, hidden size 32, 2 layers, 4 heads, ``torch.manual_seed(0)``)
and built offline with ``FalconForCausalLM._from_config``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..capture.divergence import TOLERANCE, divergences
from ..errors import InvalidInputError, UnsupportedModelError, bad_argument
from .hf_cases import FIRST_ID, VOCAB

__all__ = ["SIZES", "COMBINATIONS", "IMPLEMENTATIONS", "build", "inputs", "hand_forward", "paths",
           "paths_table", "smallest_example", "compat_case_delta"]

#: the sizes of every model here (the features come on top)
SIZES: dict[str, Any] = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             hidden_dropout=0.0, attention_dropout=0.0, max_position_embeddings=64)

#: the head layouts and layer layouts tried, each with rotary positions and with ALiBi. The new
#: decoder architecture takes its key/value heads from ``num_kv_heads`` (``multi_query`` is ignored
#: there) and always adds attention and MLP in parallel (``num_ln_in_parallel_attn`` layer norms).
_LAYOUTS: tuple[dict[str, Any], ...] = (
    *(dict(new_decoder_architecture=False, multi_query=mq, parallel_attn=par)
      for mq in (True, False) for par in (True, False)),
    *(dict(new_decoder_architecture=True, num_kv_heads=kv, parallel_attn=True) for kv in (1, 2, 4)),
    dict(new_decoder_architecture=True, num_kv_heads=2, parallel_attn=True, num_ln_in_parallel_attn=1),
)
COMBINATIONS: tuple[dict[str, Any], ...] = tuple({"alibi": alibi, **layout} for alibi in (False, True) for layout in _LAYOUTS)
#: the implementations a model is built with: sdpa (``from_pretrained``'s default) and eager
IMPLEMENTATIONS = ("sdpa", "eager")


def build(features: dict[str, Any] | None = None, implementation: str = "sdpa", **sizes: Any) -> nn.Module:
    """A tiny random ``FalconForCausalLM`` (seed 0, ``eval()``) from :data:`SIZES`, ``sizes`` and ``features``."""
    from transformers import FalconConfig, FalconForCausalLM

    if implementation not in IMPLEMENTATIONS:
        raise bad_argument(InvalidInputError, "implementation", f"one of {list(IMPLEMENTATIONS)}", implementation)
    torch.manual_seed(0)
    config = FalconConfig(**{**SIZES, **sizes, **(features or {})})
    return FalconForCausalLM._from_config(config, attn_implementation=implementation).eval()


def inputs(batch: int = 2, length: int = 7, padded: bool = False, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token ids ``(batch, length)`` and an attention mask: None, or (``padded``) row 0 left-padded by 2."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(FIRST_ID, VOCAB, (batch, length), generator=generator)
    if not padded:
        return ids, None
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[0, : min(2, length - 1)] = 0
    ids[0, : min(2, length - 1)] = 0
    return ids, mask


# --- the forward pass by hand ------------------------------------------------------------------


def _falcon(model: nn.Module) -> nn.Module:
    """The ``FalconModel`` of ``model`` (itself, or a ``FalconFor…``'s ``transformer``)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "falcon":
        raise bad_argument(UnsupportedModelError, "model", "a transformers Falcon model", model.__class__.__name__, raw=True)
    return getattr(model, "transformer", model)


def _linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def _layer_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al.; BLOOM's rule for a head count that is not a power of 2)."""
    closest = 2 ** math.floor(math.log2(heads))
    slopes = [2.0 ** (-8.0 * i / closest) for i in range(1, closest + 1)]
    extra = min(closest, heads - closest)
    slopes += [2.0 ** (-8.0 * i / (2 * closest)) for i in range(1, 2 * extra, 2)]
    return torch.tensor(slopes)


def _rotary(head_dim: int, length: int, theta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Rotate (..., length, head_dim) vectors by their position 0..length-1 (rotate-half convention)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    cos, sin = angles.cos().float(), angles.sin().float()

    def rotate(v: torch.Tensor) -> torch.Tensor:
        first, second = v[..., : head_dim // 2], v[..., head_dim // 2:]
        return v * cos + torch.cat([-second, first], dim=-1) * sin

    return rotate


def _split_qkv(config: Any, fused: torch.Tensor, heads: int, head_dim: int) -> tuple[torch.Tensor, ...]:
    """q (batch, heads, L, d) and k, v (batch, kv_heads, L, d) from the fused projection's layout."""
    batch, length, _ = fused.shape
    if config.new_decoder_architecture:    # per kv group: its queries, then its key, then its value
        kv = config.num_kv_heads
        groups = fused.view(batch, length, kv, heads // kv + 2, head_dim)
        q, k, v = groups[:, :, :, :-2].reshape(batch, length, heads, head_dim), groups[:, :, :, -2], groups[:, :, :, -1]
    elif config.multi_query:               # all queries, then one key, then one value
        parts = fused.view(batch, length, heads + 2, head_dim)
        q, k, v = parts[:, :, :heads], parts[:, :, heads:heads + 1], parts[:, :, heads + 1:]
    else:                                  # per head: its query, key, value
        parts = fused.view(batch, length, heads, 3, head_dim)
        q, k, v = parts[..., 0, :], parts[..., 1, :], parts[..., 2, :]
    return tuple(t.transpose(1, 2) for t in (q, k, v))


def hand_forward(model: nn.Module, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                 as_weights_path: bool = False) -> torch.Tensor:
    """Falcon's last hidden state ``(batch, length, hidden)`` computed from its parameters in plain torch.

    Follows Falcon's definition: rotary positions ``0..length-1`` (the model's default position ids,
    also under padding) or ALiBi on the key positions counted over real tokens, added to the scores
    before the ``1/sqrt(head_dim)`` scaling; each query attends to itself, earlier keys and no padding.
    Only real tokens are comparable (padded query rows see nothing here).

    ``as_weights_path`` computes instead what transformers' eager branch computes, with its defect:
    built with sdpa and rotary, the boolean mask added as 1/0 to the scores; with ALiBi, the bias twice.
    """
    transformer = _falcon(model)
    config = transformer.config
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
        raise bad_argument(InvalidInputError, "ids", "a (batch, length) tensor of token ids", ids)
    batch, length = ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, dtype=torch.long)
    elif not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != ids.shape:
        raise bad_argument(InvalidInputError, "attention_mask", f"None or a tensor of shape {tuple(ids.shape)}", attention_mask)
    heads = config.num_attention_heads
    head_dim = config.hidden_size // heads
    real = attention_mask.bool()
    allowed = torch.tril(torch.ones(length, length, dtype=torch.bool))[None, None] & real[:, None, None, :]

    if config.alibi:
        key_positions = ((attention_mask.cumsum(-1) - 1) * attention_mask).float()
        bias = _alibi_slopes(heads)[None, :, None, None] * key_positions[:, None, None, :]
        bias = 2 * bias if as_weights_path else bias
    else:
        if config.rope_parameters.get("rope_type", "default") != "default":
            raise bad_argument(UnsupportedModelError, "model", "default rotary embeddings", config.rope_parameters)
        rotate = _rotary(head_dim, length, config.rope_parameters["rope_theta"])
    boolean_mask_added = as_weights_path and not config.alibi and config._attn_implementation == "sdpa"

    x = transformer.word_embeddings.weight[ids]
    for layer in transformer.h:
        attention = layer.self_attention
        two_norms = config.new_decoder_architecture and (config.num_ln_in_parallel_attn or 2) == 2
        attn_in = _layer_norm(layer.ln_attn if two_norms else layer.input_layernorm, x)

        q, k, v = _split_qkv(config, _linear(attention.query_key_value, attn_in), heads, head_dim)
        k, v = k.repeat_interleave(heads // k.shape[1], dim=1), v.repeat_interleave(heads // v.shape[1], dim=1)
        if config.alibi:
            scores = (q @ k.transpose(-1, -2) + bias) / math.sqrt(head_dim)
        else:
            scores = rotate(q) @ rotate(k).transpose(-1, -2) / math.sqrt(head_dim)
        if boolean_mask_added:
            weights = torch.softmax(scores + allowed.to(scores.dtype), dim=-1)
        else:
            weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, heads * head_dim)
        attn_out = _linear(attention.dense, mixed)

        if config.new_decoder_architecture or config.parallel_attn:   # x + attention(ln(x)) + mlp(ln(x))
            mlp_in = _layer_norm(layer.ln_mlp, x) if two_norms else attn_in
            residual = x + attn_out
        else:                                                         # sequential: attention, then MLP
            residual = x + attn_out
            mlp_in = _layer_norm(layer.post_attention_layernorm, residual)
        mlp = layer.mlp
        x = residual + _linear(mlp.dense_4h_to_h, _activation(config.activation)(_linear(mlp.dense_h_to_4h, mlp_in)))
    return _layer_norm(transformer.ln_f, x)


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    from transformers.activations import ACT2FN

    return ACT2FN[name]


# --- the two paths -----------------------------------------------------------------------------


def paths(model: nn.Module, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Falcon's last hidden state on its default path and on its weights path (``output_attentions=True``)."""
    transformer = _falcon(model)
    with torch.no_grad():
        default = transformer(ids, attention_mask=attention_mask).last_hidden_state
        weights = transformer(ids, attention_mask=attention_mask, output_attentions=True).last_hidden_state
    return default, weights


def _delta(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> float:
    """max |a - b| over the real tokens."""
    diff = (a - b).abs()
    return float((diff if mask is None else diff[mask.bool()]).max())


def _right_path(default: float, weights: float) -> str:
    ok = (default <= TOLERANCE, weights <= TOLERANCE)
    return {(True, True): "both", (True, False): "default", (False, True): "weights", (False, False): "neither"}[ok]


def paths_table() -> pd.DataFrame:
    """One row per feature combination × implementation × padding, everything measured.

    Columns: ``implementation`` the model was built with; the features (``alibi``,
    ``new_decoder_architecture``, ``multi_query``, ``kv_heads`` — the key/value heads the layout
    actually has —, ``parallel_attn``, ``num_ln_in_parallel_attn``), ``padded`` (row 0 left-padded by 2,
    batch 2 × 7 tokens); ``delta_paths`` = max abs(Δ) of the last hidden state between the default and the
    weights path (real tokens); ``default_to_hand`` and ``weights_to_hand`` = each path's max abs(Δ) to
    :func:`hand_forward`; ``weights_to_replay`` = the weights path's max abs(Δ) to ``hand_forward(...,
    as_weights_path=True)`` (the defect explains it); ``right_path`` (``default``, ``weights``, ``both``
    or ``neither`` within the tolerance); ``diverges`` (``delta_paths`` above the tolerance) and
    ``predicted`` (:func:`~attnbook.capture.divergence.divergences` lists the model).
    """
    rows = []
    for implementation in IMPLEMENTATIONS:
        for features in COMBINATIONS:
            model = build(features, implementation)
            predicted = bool(divergences(model))
            config = model.config
            for padded in (False, True):
                ids, mask = inputs(padded=padded)
                default, weights = paths(model, ids, mask)
                with torch.no_grad():
                    hand = hand_forward(model, ids, mask)
                    replay = hand_forward(model, ids, mask, as_weights_path=True)
                to_hand = (_delta(default, hand, mask), _delta(weights, hand, mask))
                delta = _delta(default, weights, mask)
                rows.append({
                    "implementation": implementation,
                    "alibi": config.alibi,
                    "new_decoder_architecture": config.new_decoder_architecture,
                    "multi_query": config.multi_query,
                    "kv_heads": model.transformer.h[0].self_attention.num_kv_heads,
                    "parallel_attn": config.parallel_attn,
                    "num_ln_in_parallel_attn": features.get("num_ln_in_parallel_attn", 2 if config.new_decoder_architecture else 1),
                    "padded": padded,
                    "delta_paths": delta,
                    "default_to_hand": to_hand[0],
                    "weights_to_hand": to_hand[1],
                    "weights_to_replay": _delta(weights, replay, mask),
                    "right_path": _right_path(*to_hand),
                    "diverges": delta > TOLERANCE,
                    "predicted": predicted,
                })
    return pd.DataFrame(rows)


def smallest_example(alibi: bool = False, max_length: int = 8) -> dict[str, Any]:
    """The smallest Falcon and input that show the defect: one layer, one sequence, the fewest tokens.

    Features as the ``falcon`` compat case (sdpa, multi-query, parallel attention; ``alibi`` as given);
    lengths 1, 2, … are tried until the paths differ beyond the tolerance. Returns the config's
    features and sizes, the token ids, ``delta_paths`` and ``delta_per_position`` (max abs(Δ) over the
    hidden size at each position), each path's max abs(Δ) to :func:`hand_forward`, the weights path's to
    the replayed defect, and ``future_weight``: per query position, the most weight any head of the
    first layer puts on later tokens in the maps ``output_attentions=True`` returns (0 for causal maps).
    """
    features = dict(multi_query=True, new_decoder_architecture=False, parallel_attn=True, alibi=alibi)
    model = build(features, "sdpa", num_hidden_layers=1)
    for length in range(1, max_length + 1):
        ids, _ = inputs(batch=1, length=length)
        default, weights = paths(model, ids)
        if _delta(default, weights, None) > TOLERANCE:
            break
    else:
        raise RuntimeError(f"no length up to {max_length} shows a difference between Falcon's paths")
    with torch.no_grad():
        hand = hand_forward(model, ids)
        replay = hand_forward(model, ids, as_weights_path=True)
        maps = model.transformer(ids, output_attentions=True).attentions[0][0]   # (heads, L, L)
    future = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
    return {
        "features": {"implementation": "sdpa", **features},
        "sizes": {k: v for k, v in {**SIZES, "num_hidden_layers": 1}.items() if "dropout" not in k},
        "input_ids": ids[0].tolist(),
        "length": length,
        "delta_paths": _delta(default, weights, None),
        "delta_per_position": (default - weights).abs().amax(dim=-1)[0].tolist(),
        "default_to_hand": _delta(default, hand, None),
        "weights_to_hand": _delta(weights, hand, None),
        "weights_to_replay": _delta(weights, replay, None),
        "future_weight": (maps * future).sum(dim=-1).amax(dim=0).tolist(),
    }


def compat_case_delta(**features: Any) -> float:
    """max abs(Δ) of the last hidden state between Falcon's paths on the ``falcon`` compat case
    (``attnbook.compat.hf_cases``), its config changed by ``features`` (e.g. ``alibi=True``)."""
    from transformers import FalconForCausalLM

    from .hf_cases import _falcon

    model, case_inputs = _falcon()
    if features:
        config = model.config.to_dict()
        config.update(features)
        torch.manual_seed(0)
        model = FalconForCausalLM._from_config(type(model.config).from_dict(config), attn_implementation="sdpa").eval()
    default, weights = paths(model, case_inputs["input_ids"], case_inputs["attention_mask"])
    return _delta(default, weights, case_inputs["attention_mask"])
