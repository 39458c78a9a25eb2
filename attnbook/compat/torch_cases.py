"""``torch.nn`` attention for the compatibility matrix: every way of calling ``nn.MultiheadAttention``.

Each standalone case wraps one ``nn.MultiheadAttention`` in :class:`MHACall`, whose forward makes
one call in one convention (batch first or not, unbatched, masks, ``need_weights`` and
``average_attn_weights`` by keyword or by position) and returns the MHA's whole
``(attn_output, attn_weights)`` tuple, so a test can check that the caller sees under ``capture``
exactly what it sees without it (``None`` weights where it asked for none, head-averaged weights
where it asked for those). The ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` cases cover
the layers' fast path, nested tensors, and self + cross attention.

The reference is torch's own: every ``MultiheadAttention`` called again on the inputs it received
during one forward pass, with ``need_weights=True, average_attn_weights=False``, with the fast
path off (``torch.backends.mha``), as :func:`mha_reference` does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .case import Case, Reference

EMBED = 16     # embed_dim
HEADS = 4
BATCH = 2
QUERIES = 5    # query length (self-attention length)
KEYS = 7       # key length of the cross-attention cases

#: ``nn.MultiheadAttention.forward``'s parameters in positional order
_SLOTS = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal")


class MHACall(nn.Module):
    """One caller of ``nn.MultiheadAttention``, in one calling convention.

    ``forward(*tensors, **masks)`` calls ``self.mha(*tensors, *self.tail, **masks, **self.flags)``
    and returns the MHA's tuple untouched: ``tail`` holds positional arguments after the tensors
    (``key_padding_mask``, ``need_weights`` ... by position), ``flags`` keyword flags.
    """

    def __init__(self, mha: nn.MultiheadAttention, *tail: Any, **flags: Any) -> None:
        super().__init__()
        self.mha = mha
        self.tail = tail
        self.flags = flags

    def forward(self, *tensors: torch.Tensor, **masks: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.mha(*tensors, *self.tail, **masks, **self.flags)


def mha_reference(kinds: dict[str, list[str]] | None = None) -> Callable[[nn.Module, dict[str, Any]], Reference]:
    """A reference from ``nn.MultiheadAttention`` itself.

    One forward pass records the arguments each MHA receives (a ``with_kwargs`` pre-hook), with
    ``torch.backends.mha`` fast path off, so ``nn.TransformerEncoderLayer`` runs its Python path
    and calls its ``self_attn`` on the layer input and masks its fused kernel would get (a padded
    batch instead of a nested tensor; the weights of real queries are the same). Then each MHA is
    called again on those arguments with ``need_weights=True, average_attn_weights=False``.
    ``kinds`` maps "self" / "cross" to fnmatch patterns of MHA names (default: all "self");
    unbatched (heads, queries, keys) weights get a batch axis of 1. Hooks and the fast-path
    setting are restored whatever happens.
    """
    kinds = kinds or {"self": ["*"]}

    def reference(model: nn.Module, inputs: dict[str, Any]) -> Reference:
        calls: list[tuple[str, nn.MultiheadAttention, dict[str, Any]]] = []

        def record(name: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
            calls.append((name, module, {**dict(zip(_SLOTS, args)), **kwargs}))

        handles = [m.register_forward_pre_hook(lambda mod, a, kw, name=name: record(name, mod, a, kw), with_kwargs=True)
                   for name, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
        fastpath = torch.backends.mha.get_fastpath_enabled()
        try:
            torch.backends.mha.set_fastpath_enabled(False)
            with torch.no_grad():
                model(*inputs.get("args", ()), **{k: v for k, v in inputs.items() if k != "args"})
                for handle in handles:
                    handle.remove()
                ref: Reference = {}
                for name, mha, arguments in calls:
                    _, weights = mha(**{**arguments, "need_weights": True, "average_attn_weights": False})
                    kind = next(k for k, group in kinds.items() if any(fnmatch.fnmatchcase(name, p) for p in group))
                    ref.setdefault(kind, []).append(weights if weights.dim() == 4 else weights.unsqueeze(0))
        finally:
            for handle in handles:
                handle.remove()
            torch.backends.mha.set_fastpath_enabled(fastpath)
        return ref

    return reference


def _padding(length: int) -> torch.Tensor:
    """(BATCH, length) key padding mask, True = padded: the last sample's last two positions."""
    mask = torch.zeros(BATCH, length, dtype=torch.bool)
    mask[-1, -2:] = True
    return mask


def _causal(length: int) -> torch.Tensor:
    """(length, length) additive causal mask (0 on and below the diagonal, -inf above)."""
    return nn.Transformer.generate_square_subsequent_mask(length)


def _mha_case(name: str, *tail: Any, mha: dict[str, Any] | None = None, shape: tuple[int, ...] = (BATCH, QUERIES, EMBED),
              masks: Callable[[], dict[str, torch.Tensor]] = dict, recorded: str = "self", note: str = "",
              real_tokens: Callable[[dict[str, Any]], torch.Tensor] | None = None, **flags: Any) -> Case:
    """A case of one MHA (``mha``: its extra constructor arguments) called on the self-attention
    input ``x`` of ``shape`` (query, key and value the same tensor, as the fast path needs) with
    ``masks()`` by keyword and ``tail`` / ``flags`` as :class:`MHACall` passes them."""

    def build() -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(0)
        model = MHACall(nn.MultiheadAttention(EMBED, HEADS, **{"batch_first": True, **(mha or {})}), *tail, **flags).eval()
        x = torch.randn(*shape)
        return model, {"args": (x, x, x), **masks()}

    return Case("torch", name, build, mha_reference(), recorded=recorded, note=note, real_tokens=real_tokens)


def _cross_kdim_vdim() -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    model = MHACall(nn.MultiheadAttention(EMBED, HEADS, kdim=12, vdim=10, batch_first=True)).eval()
    return model, {"args": (torch.randn(BATCH, QUERIES, EMBED), torch.randn(BATCH, KEYS, 12), torch.randn(BATCH, KEYS, 10))}


def _float_mask() -> dict[str, torch.Tensor]:
    mask = torch.randn(QUERIES, QUERIES)
    mask[0, 1:] = float("-inf")  # the first query sees only itself
    return {"attn_mask": mask}


def _bool_mask() -> dict[str, torch.Tensor]:
    mask = torch.rand(QUERIES, QUERIES) > 0.5  # True = not allowed
    mask.fill_diagonal_(False)
    return {"attn_mask": mask}


def _layer(kind: type[nn.Module]) -> nn.Module:
    return kind(EMBED, HEADS, dim_feedforward=32, dropout=0.0, batch_first=True)


def _encoder(nested: bool) -> Callable[[], tuple[nn.Module, dict[str, Any]]]:
    def build() -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(0)
        model = nn.TransformerEncoder(_layer(nn.TransformerEncoderLayer), num_layers=2, enable_nested_tensor=nested).eval()
        inputs: dict[str, Any] = {"args": (torch.randn(BATCH, QUERIES, EMBED),)}
        if nested:
            inputs["src_key_padding_mask"] = _padding(QUERIES)
        return model, inputs

    return build


def _decoder() -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(0)
    model = nn.TransformerDecoder(_layer(nn.TransformerDecoderLayer), num_layers=2).eval()
    return model, {"args": (torch.randn(BATCH, QUERIES, EMBED), torch.randn(BATCH, KEYS, EMBED)),
                   "tgt_mask": _causal(QUERIES), "memory_key_padding_mask": _padding(KEYS)}


CASES: list[Case] = [
    _mha_case("mha_batch_first", note="batch_first=True, default call: caller gets head-averaged (batch, q, k) weights"),
    _mha_case("mha_seq_first", mha={"batch_first": False}, shape=(QUERIES, BATCH, EMBED),
              note="batch_first=False: (seq, batch, embed) input; caller gets head-averaged (batch, q, k) weights"),
    _mha_case("mha_unbatched", shape=(QUERIES, EMBED),
              note="unbatched 2-D (seq, embed) input: caller gets (q, k) weights; recorded with a batch of 1"),
    _mha_case("mha_no_weights", need_weights=False,
              note="need_weights=False: caller gets (output, None); eval self-attention takes the fast path"),
    _mha_case("mha_averaged", need_weights=True, average_attn_weights=True,
              note="need_weights=True, average_attn_weights=True: caller gets (batch, q, k)"),
    _mha_case("mha_per_head", need_weights=True, average_attn_weights=False,
              note="need_weights=True, average_attn_weights=False: caller gets (batch, heads, q, k)"),
    _mha_case("mha_key_padding_mask", masks=lambda: {"key_padding_mask": _padding(QUERIES)}, need_weights=False,
              note="bool key_padding_mask (last sample's last 2 keys padded), need_weights=False: caller gets (output, None)"),
    _mha_case("mha_float_attn_mask", masks=_float_mask,
              note="additive float attn_mask (q, k) with -inf entries; caller gets head-averaged weights"),
    _mha_case("mha_bool_attn_mask", masks=_bool_mask, average_attn_weights=False,
              note="bool attn_mask (True = not allowed); caller gets (batch, heads, q, k)"),
    _mha_case("mha_causal", masks=lambda: {"attn_mask": _causal(QUERIES)}, is_causal=True, need_weights=False,
              note="is_causal=True with its causal attn_mask, need_weights=False: caller gets (output, None)"),
    Case("torch", "mha_kdim_vdim", _cross_kdim_vdim, mha_reference(),
         note="kdim=12, vdim=10: cross attention of 5 queries over 7 keys (recorded as the module's calls: self)"),
    _mha_case("mha_positional_weights", None, True, None, False,
              note="mha(q, k, v, None, True, None, False): need_weights and average_attn_weights by position; "
                   "caller gets (batch, heads, q, k)"),
    _mha_case("mha_positional_no_weights", None, False,
              note="mha(q, k, v, None, False): need_weights=False by position; caller gets (output, None)"),
    Case("torch", "transformer_encoder", _encoder(nested=False), mha_reference(),
         note="nn.TransformerEncoder, 2 layers, enable_nested_tensor=False; in eval without grad each layer takes "
              "its fused fast path, which never calls self_attn"),
    Case("torch", "transformer_encoder_nested", _encoder(nested=True), mha_reference(),
         note="enable_nested_tensor=True + src_key_padding_mask: the fast path drops padded positions (nested "
              "tensor) and returns zeros there; the eager path computes them",
         real_tokens=lambda inputs: ~inputs["src_key_padding_mask"]),
    Case("torch", "transformer_decoder", _decoder, mha_reference({"self": ["*self_attn"], "cross": ["*multihead_attn"]}),
         recorded="self + cross",
         note="nn.TransformerDecoder, 2 layers: causal self-attention (tgt_mask) over 5 targets, cross attention over "
              "7 memory positions with memory_key_padding_mask"),
]
