"""``ablate(model, heads, how=...)``: remove or replace attention heads inside a block.

::

    with ablate(model, {1: [0, 3]}, how="zero"):   # layer 1 (capture's index), heads 0 and 3
        out = model(x)

For head ``h`` of a layer with ``H`` heads of size ``d``, write ``A_h`` for its pattern (queries ×
keys), ``V_h`` for its values and ``c_h = A_h V_h`` for its slice of the attention output before the
output projection ``W_o`` (the layer returns ``W_o · concat_h c_h + b``). The modes:

* ``"zero"`` — ``c_h ← 0``: the head contributes nothing (the projection's bias stays);
* ``"mean"`` — ``c_h ← m_h``, the mean of ``c_h`` over **every sample and every position** of the
  ``reference`` forward passes (one ``d``-vector per head, so it applies to inputs of any length;
  padded positions of a padded reference batch count too — pass unpadded passes to leave them out);
* ``"uniform"`` — ``A_h ← U`` with ``U_ij = 1 / |allowed(i)|`` over the keys the layer's mask allows
  query ``i`` (causal, padding, attention masks) and 0 elsewhere; the head reads ``c_h = U V_h``;
* ``"previous"`` — ``A_h ← P`` with all weight on the previous position (query ``i`` at position
  ``p`` reads key ``p − 1``; the first position reads itself); self-attention only.

Layers are named and numbered as :func:`~attnbook.capture.capture` names them (index in
:func:`~attnbook.capture.sites.find_attention` order, negatives allowed, or an ``fnmatch`` pattern on
the qualified module name). ``heads`` is a mapping layer → head indices, or a list of ``(layer,
head)`` pairs. Where each family is changed:

* attnbook's :class:`~attnbook.modules.MultiHeadAttention` — ``zero``/``mean`` at the input of
  ``proj``; ``uniform``/``previous`` on the recording path, at ``hook_pattern``'s output;
* timm ViT-style ``Attention`` — ``zero``/``mean`` at the input of ``norm`` (the module right after
  the heads are concatenated; an identity unless ``scale_norm``) or ``proj``; ``uniform``/``previous``
  with ``fused_attn`` off, at ``attn_drop``'s output;
* ``nn.MultiheadAttention`` (also inside ``nn.TransformerEncoder``/``Decoder``; the fast path is off
  inside the block) — its forward runs with per-head weights and the output is corrected by
  ``W_o[:, h] (c'_h − c_h)``, with ``c_h = A_h V_h`` and ``V_h`` projected from the value input;
* Hugging Face models — the model runs on an attention function registered with transformers'
  ``AttentionInterface`` that calls the model's own ``eager_attention_forward`` (SDPA where nothing
  needs the weights: zero/mean outside ``capture``) and then edits the chosen heads (models that do
  not dispatch through the interface are refused).

Inside both blocks, ``capture`` records the pattern the heads really used (a replaced one for
``uniform``/``previous``). On exit, normal or exception, every hook, flag, forward and attention
implementation is restored. Bad ``heads``, an unknown mode or a ``"mean"`` without ``reference``
raise before any forward; a forward pass of the model in which a chosen layer never ran its
ablation raises :class:`~attnbook.errors.UnsupportedModelError`.
"""

from __future__ import annotations

import fnmatch
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..capture.core import ABLATION_IMPLEMENTATION, recording
from ..capture.sites import SUPPORTED_FAMILIES, Site, find_attention
from ..errors import InvalidInputError, OutOfRangeError, UnsupportedModelError, bad_argument

__all__ = ["ablate", "head_means", "HeadMeans", "MODES", "HeadSpec", "resolve_heads"]

MODES = ("zero", "mean", "uniform", "previous")
_PATTERN_MODES = ("uniform", "previous")

#: what ``heads=`` accepts: layer → head indices, or (layer, head) pairs; a layer is an index or a name pattern
HeadSpec = Union[Mapping[Union[int, str], Union[int, Sequence[int]]], Sequence[tuple[Union[int, str], int]]]


# -- which heads ------------------------------------------------------------------------------------

def _layer_sites(sites: list[Site], layer: Any) -> list[Site]:
    """The sites ``layer`` names: an index in module order (negatives allowed) or an fnmatch pattern."""
    if isinstance(layer, str):
        hits = [s for s in sites if fnmatch.fnmatchcase(s.name, layer)]
        if not hits:
            raise bad_argument(OutOfRangeError, "heads", f"layers that match one of {[s.name for s in sites]}", layer)
        return hits
    if isinstance(layer, int) and not isinstance(layer, bool):
        if not -len(sites) <= layer < len(sites):
            raise bad_argument(OutOfRangeError, "heads", f"layer indices in [0, {len(sites)})", layer)
        return [sites[layer]]
    raise bad_argument(InvalidInputError, "heads", "layers given as an index or a name pattern", layer)


def _pairs(heads: Any) -> list[tuple[Any, int]]:
    """``heads`` as a list of (layer, head) pairs, malformed input refused."""
    if isinstance(heads, Mapping):
        pairs = []
        for layer, chosen in heads.items():
            chosen = [chosen] if isinstance(chosen, int) and not isinstance(chosen, bool) else chosen
            if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Sequence):
                raise bad_argument(InvalidInputError, "heads", "layer -> a head index or a list of head indices", {layer: chosen})
            pairs += [(layer, h) for h in chosen]
    elif isinstance(heads, Sequence) and not isinstance(heads, (str, bytes)):
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in heads):
            raise bad_argument(InvalidInputError, "heads", "a mapping layer -> heads or a list of (layer, head) pairs", heads)
        pairs = [(layer, h) for layer, h in heads]
    else:
        raise bad_argument(InvalidInputError, "heads", "a mapping layer -> heads or a list of (layer, head) pairs", heads)
    for _, h in pairs:
        if isinstance(h, bool) or not isinstance(h, int):
            raise bad_argument(InvalidInputError, "heads", "integer head indices", h)
    return pairs


def resolve_heads(model: nn.Module, heads: HeadSpec, sites: list[Site] | None = None) -> dict[int, list[int]]:
    """``heads`` as {site index in :func:`find_attention` order: sorted non-negative head indices}, each
    checked against the layer's head count (raises before anything runs)."""
    sites = find_attention(model) if sites is None else sites
    chosen: dict[int, list[int]] = {}
    for layer, h in _pairs(heads):
        for site in _layer_sites(sites, layer):
            n = site.n_heads
            if n is None:
                raise UnsupportedModelError(f"{site.name}: expected a layer that names its head count (num_heads), "
                                            f"got {type(site.module).__name__} without one")
            if not -n <= h < n:
                raise bad_argument(OutOfRangeError, "heads", f"head indices in [0, {n}) ({site.name} has {n} heads)", h)
            index = sites.index(site)
            if h % n not in chosen.setdefault(index, []):
                chosen[index].append(h % n)
    return {i: sorted(hs) for i, hs in sorted(chosen.items()) if hs}


# -- one layer's edit -------------------------------------------------------------------------------

@dataclass(eq=False)
class _Target:
    """One layer, the heads to change and how; with ``how='record'`` it sums the heads' slices instead."""

    site: Site
    heads: list[int]
    how: str
    means: torch.Tensor | None = None  # (len(heads), d) for "mean"
    sums: torch.Tensor | None = None  # (H, d) while recording
    count: int = 0
    applied: int = 0  # calls in this pass

    def edit_slices(self, c: torch.Tensor) -> torch.Tensor:
        """``c`` (..., heads, d): the chosen heads' slices zeroed / set to their means (a new tensor),
        or, while recording, summed into ``sums`` and returned unchanged."""
        self.applied += 1
        if self.how == "record":
            flat = c.detach().reshape(-1, c.shape[-2], c.shape[-1]).to(torch.float64)
            self.sums = flat.sum(0) if self.sums is None else self.sums + flat.sum(0)
            self.count += flat.shape[0]
            return c
        c = c.clone()
        if self.how == "zero":
            c[..., self.heads, :] = 0
        else:
            means = self.means.to(c)
            if means.shape[-1] != c.shape[-1]:
                raise bad_argument(InvalidInputError, "reference", f"head means of size {c.shape[-1]} for {self.site.name}",
                                   tuple(means.shape), raw=True)
            c[..., self.heads, :] = means
        return c

    def pattern(self, weights: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """The replacement pattern for the chosen heads: (batch, len(heads), queries, keys)."""
        self.applied += 1
        B, _, Q, K = weights.shape
        n = len(self.heads)
        if self.how == "uniform":
            if allowed is None:
                a = weights.new_ones(B, n, Q, K)
            else:
                allowed = allowed.to(weights.device)
                if allowed.shape[1] != 1:  # one mask per head
                    allowed = allowed[:, self.heads]
                a = allowed.expand(B, n, Q, K).to(weights.dtype)
            return a / a.sum(-1, keepdim=True).clamp_min(1.0)
        position = torch.arange(Q, device=weights.device) + (K - Q)  # queries are the last Q of the K positions
        p = torch.zeros(Q, K, dtype=weights.dtype, device=weights.device)
        p[torch.arange(Q, device=weights.device), (position - 1).clamp_min(0)] = 1.0
        return p.expand(B, n, Q, K)

    def replace(self, weights: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """``weights`` (batch, heads, queries, keys) with the chosen heads' patterns replaced (a new tensor)."""
        out = weights.clone()
        out[:, self.heads] = self.pattern(weights, allowed)
        return out


def _allowed(attn_mask: torch.Tensor | None, *, bool_true_allows: bool, Q: int, K: int, is_causal: bool = False) -> torch.Tensor | None:
    """A mask's allowed keys as bool (..., Q, K): a bool mask as given (or inverted), a float mask where
    it is above half its dtype's minimum (``-inf`` and ``finfo.min`` mask), causality added."""
    allowed = None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            allowed = attn_mask if bool_true_allows else ~attn_mask
        else:
            allowed = attn_mask > torch.finfo(attn_mask.dtype).min / 2
        allowed = allowed[..., :K]
    if is_causal:
        causal = torch.ones(Q, K, dtype=torch.bool, device=None if allowed is None else allowed.device).tril(K - Q)
        allowed = causal if allowed is None else allowed & causal
    return allowed


def _as_4d(allowed: torch.Tensor | None) -> torch.Tensor | None:
    if allowed is None:
        return None
    while allowed.dim() < 4:
        allowed = allowed.unsqueeze(0)
    return allowed


# -- per family -------------------------------------------------------------------------------------

def _split_heads(target: _Target) -> Callable:
    """Forward pre-hook on the module that receives the concatenated heads (batch, tokens, H·d)."""
    n = target.site.n_heads

    def hook(_m: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        c = x.reshape(*x.shape[:-1], n, x.shape[-1] // n)
        return (target.edit_slices(c).reshape(x.shape), *args[1:])
    return hook


def _install_attnbook(target: _Target, handles: list, restore: list) -> None:
    m = target.site.module
    if target.how not in _PATTERN_MODES:
        handles.append(m.proj.register_forward_pre_hook(_split_heads(target)))
        return
    old = m.record_attention
    m.record_attention = True
    restore.append(lambda: setattr(m, "record_attention", old))
    masks: list = []

    def pre(mod, args, kwargs):
        x = args[0] if args else kwargs["x"]
        attn_mask = args[1] if len(args) > 1 else kwargs.get("attn_mask")
        cache = args[2] if len(args) > 2 else kwargs.get("cache")
        past = cache.length_of(mod) if cache is not None else 0
        masks[:] = [mod._full_mask(attn_mask, x.shape[1], x.device, past)]

    handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
    handles.append(m.hook_pattern.register_forward_hook(lambda _m, _i, w: target.replace(w, masks[-1] if masks else None), prepend=True))


def _install_timm(target: _Target, handles: list, restore: list) -> None:
    m = target.site.module
    if target.how not in _PATTERN_MODES:
        into = m.norm if isinstance(getattr(m, "norm", None), nn.Module) else getattr(m, "proj", None)
        if not isinstance(into, nn.Module):
            raise UnsupportedModelError(f"{target.site.name}: expected an output projection (proj) to ablate heads at, "
                                        f"got {type(m).__name__} without one")
        handles.append(into.register_forward_pre_hook(_split_heads(target)))
        return
    if target.site.window_block is not None:
        raise bad_argument(UnsupportedModelError, "how", f"'zero' or 'mean' for windowed attention ({target.site.name})", target.how)
    if hasattr(m, "fused_attn"):
        old = m.fused_attn
        m.fused_attn = False
        restore.append(lambda: setattr(m, "fused_attn", old))
    masks: list = []

    def pre(_m, args, kwargs):
        masks[:] = [(args[1] if len(args) > 1 else kwargs.get("attn_mask"), bool(args[2] if len(args) > 2 else kwargs.get("is_causal", False)))]

    def post(_m, _i, w):
        attn_mask, causal = masks[-1] if masks else (None, False)
        allowed = _allowed(attn_mask, bool_true_allows=True, Q=w.shape[-2], K=w.shape[-1], is_causal=causal)
        return target.replace(w, _as_4d(allowed))

    handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
    handles.append(m.attn_drop.register_forward_hook(post, prepend=True))


_MHA_SIGNATURE = inspect.signature(nn.MultiheadAttention.forward)


def _install_torch(target: _Target, handles: list, restore: list) -> None:
    """``nn.MultiheadAttention``: wrap its forward; correct the output by ``W_o[:, h](c'_h − c_h)``."""
    m = target.site.module
    if m.bias_k is not None or m.add_zero_attn:
        raise UnsupportedModelError(f"{target.site.name}: expected nn.MultiheadAttention without bias_k/bias_v or add_zero_attn "
                                    f"(they add keys the value input does not hold)")
    had_own = "forward" in m.__dict__
    original = m.forward

    def forward(*args, **kwargs):
        bound = _MHA_SIGNATURE.bind(m, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        need, average = a["need_weights"], a["average_attn_weights"]
        out, weights = original(a["query"], a["key"], a["value"], key_padding_mask=a["key_padding_mask"], need_weights=True,
                                attn_mask=a["attn_mask"], average_attn_weights=False, is_causal=a["is_causal"])
        out, weights = _mha_correct(target, m, a, out, weights)
        if not need:
            return out, None
        if average:
            return out, weights.mean(dim=-3)
        return out, weights

    m.forward = forward
    restore.append(lambda: setattr(m, "forward", original) if had_own else m.__dict__.pop("forward", None))


def _mha_correct(target: _Target, m: nn.MultiheadAttention, a: dict, out: torch.Tensor, weights: torch.Tensor) -> tuple:
    """The module's output and per-head weights after the chosen heads' slices change."""
    batched = a["query"].dim() == 3

    def batch_first(t: torch.Tensor) -> torch.Tensor:
        return (t if m.batch_first else t.transpose(0, 1)) if batched else t.unsqueeze(0)

    value, A = batch_first(a["value"]), weights if batched else weights.unsqueeze(0)  # (B, S, E), (B, H, L, S)
    B, S, _ = value.shape
    H, E = m.num_heads, m.embed_dim
    d = E // H
    w_v = m.in_proj_weight[2 * E:] if m._qkv_same_embed_dim else m.v_proj_weight
    b_v = m.in_proj_bias[2 * E:] if m.in_proj_bias is not None else None
    V = F.linear(value, w_v, b_v).view(B, S, H, d).transpose(1, 2)  # (B, H, S, d)
    c_old = A @ V  # (B, H, L, d): every head's slice
    if target.how == "record":
        target.edit_slices(c_old.transpose(1, 2))
        return out, weights
    if target.how in _PATTERN_MODES:
        allowed = torch.ones(1, 1, A.shape[-2], S, dtype=torch.bool, device=A.device)
        if a["attn_mask"] is not None:
            am = _allowed(a["attn_mask"], bool_true_allows=False, Q=A.shape[-2], K=S)
            allowed = allowed & (am.view(B, H, *am.shape[-2:]) if am.dim() == 3 else am)
        if a["key_padding_mask"] is not None:
            kpm = a["key_padding_mask"] if batched else a["key_padding_mask"].unsqueeze(0)
            allowed = allowed & _allowed(kpm, bool_true_allows=False, Q=1, K=S)[:, None, None, :]
        A = target.replace(A, allowed)
        c_new = A @ V
        weights = A if batched else A.squeeze(0)
    else:
        c_new = target.edit_slices(c_old.transpose(1, 2)).transpose(1, 2)
    delta = (c_new - c_old)[:, target.heads]  # (B, h, L, d)
    w_o = m.out_proj.weight.view(-1, H, d)[:, target.heads]  # (E_out, h, d)
    correction = torch.einsum("bhld,ehd->ble", delta, w_o)
    if not batched:
        return out + correction.squeeze(0), weights
    return out + (correction if m.batch_first else correction.transpose(0, 1)), weights


# Hugging Face: one attention function, registered once, that finds its module's targets here
_HF_TARGETS: dict[int, list[_Target]] = {}


def _hf_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any, *args, **kwargs):
    """The model's own ``eager_attention_forward`` (or, when no ``capture`` block needs the weights and
    no chosen head of this module needs its pattern replaced, transformers' SDPA function: the same
    outputs, faster), then the chosen heads edited: output slices (batch, queries, heads, d) for
    zero/mean, patterns (and the output read through them) for uniform/previous."""
    targets = _HF_TARGETS.get(id(module), [])
    if recording() or any(t.how in _PATTERN_MODES for t in targets):
        attention = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        if attention is None:
            raise UnsupportedModelError(f"{type(module).__name__}: expected an eager_attention_forward in {type(module).__module__} "
                                        f"to compute the weights with, got none")
    else:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward as attention
    out, weights = attention(module, query, key, value, attention_mask, *args, **kwargs)
    for target in targets:
        if target.how in _PATTERN_MODES:
            Q, K = weights.shape[-2:]
            allowed = _as_4d(_allowed(attention_mask, bool_true_allows=True, Q=Q, K=K)) if isinstance(attention_mask, torch.Tensor) else None
            weights = target.replace(weights, allowed)
            v = value.repeat_interleave(query.shape[1] // value.shape[1], dim=1) if value.shape[1] != query.shape[1] else value
            out = out.clone()
            out[:, :, target.heads] = (weights[:, target.heads].to(v.dtype) @ v[:, target.heads]).transpose(1, 2).to(out.dtype)
        else:
            out = target.edit_slices(out)
    return out, weights


def _register_hf() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

    if ABLATION_IMPLEMENTATION not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(ABLATION_IMPLEMENTATION, eager_mask)
    AttentionInterface.register(ABLATION_IMPLEMENTATION, _hf_attention)


def _install_hf(model: nn.Module, targets: list[_Target], restore: list) -> None:
    from transformers import PreTrainedModel

    _register_hf()
    for target in targets:
        if not hasattr(sys.modules[type(target.site.module).__module__], "eager_attention_forward"):
            raise UnsupportedModelError(f"{target.site.name}: expected a model whose attention dispatches through transformers' "
                                        f"AttentionInterface (eager_attention_forward in {type(target.site.module).__module__}), got none")
        _HF_TARGETS.setdefault(id(target.site.module), []).append(target)
        restore.append(lambda t=target: _HF_TARGETS[id(t.site.module)].remove(t))
    seen: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and not any(module in list(s.modules()) for s in seen):
            seen.append(module)
            old = module.config._attn_implementation
            if old == ABLATION_IMPLEMENTATION:
                continue
            try:
                module.set_attn_implementation(ABLATION_IMPLEMENTATION)
            except (ValueError, KeyError, ImportError) as exc:
                raise UnsupportedModelError(f"{type(module).__name__}: expected a model that accepts a registered attention function "
                                            f"(AttentionInterface), got {type(exc).__name__}: {exc}") from exc
            restore.append(lambda m=module, old=old: m.set_attn_implementation(old))


# -- the context manager ----------------------------------------------------------------------------

@dataclass
class HeadMeans:
    """Per layer name: every head's mean slice (heads, d) over the reference passes, and how many
    (sample, position) rows it averages (see the module docstring for the convention)."""

    means: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _run_reference(model: nn.Module, reference: Any) -> None:
    """Run ``reference`` through ``model``: a tensor ``model(t)``, a tuple/list ``model(*t)``, a dict
    ``model(**t)``, a callable ``reference(model)`` (several passes, any preprocessing)."""
    with torch.no_grad():
        if isinstance(reference, torch.Tensor):
            model(reference)
        elif isinstance(reference, Mapping):
            model(**reference)
        elif isinstance(reference, (tuple, list)):
            model(*reference)
        elif callable(reference):
            reference(model)
        else:
            raise bad_argument(InvalidInputError, "reference", "a tensor, tuple, dict or callable(model) to run, or HeadMeans", reference)


def _sites(model: nn.Module) -> list[Site]:
    if not isinstance(model, nn.Module):
        raise bad_argument(UnsupportedModelError, "model", "a torch.nn.Module", type(model).__name__, raw=True)
    sites = find_attention(model)
    if not sites:
        raise UnsupportedModelError(f"model: expected attention of a supported family ({'; '.join(SUPPORTED_FAMILIES)}), "
                                    f"got {type(model).__name__} with none")
    return sites


def head_means(model: nn.Module, reference: Any, layers: Sequence[int | str] | None = None) -> HeadMeans:
    """Every head's mean slice ``m_h`` (its output before the output projection, averaged over all
    samples and positions) in ``layers`` (default: all), over the forward passes ``reference`` makes
    (see :func:`ablate`); reusable as ``ablate(..., how='mean', reference=means)``."""
    sites = _sites(model)
    chosen = sites if layers is None else [s for layer in layers for s in _layer_sites(sites, layer)]
    spec = {sites.index(s): list(range(s.n_heads or 0)) for s in chosen}
    targets = [_Target(sites[i], hs, "record") for i, hs in spec.items()]
    with _installed(model, targets):
        _run_reference(model, reference)
    out = HeadMeans()
    for t in targets:
        if t.count == 0:
            raise UnsupportedModelError(f"{t.site.name}: expected the reference passes to run this layer, got no call")
        out.means[t.site.name] = (t.sums / t.count).to(torch.float32)
        out.rows[t.site.name] = t.count
    return out


@contextmanager
def _installed(model: nn.Module, targets: list[_Target]) -> Iterator[None]:
    handles: list[Any] = []
    restore: list[Callable[[], None]] = []
    try:
        if any(t.site.family == "torch" for t in targets):
            fastpath = torch.backends.mha.get_fastpath_enabled()
            torch.backends.mha.set_fastpath_enabled(False)
            restore.append(lambda: torch.backends.mha.set_fastpath_enabled(fastpath))
        hf = [t for t in targets if t.site.family == "hf"]
        if hf:
            _install_hf(model, hf, restore)
        for t in targets:
            {"attnbook": _install_attnbook, "timm": _install_timm, "torch": _install_torch}.get(t.site.family, lambda *_: None)(t, handles, restore)

        def start(_m, _args):
            for t in targets:
                t.applied = 0

        def finish(_m, _args, _out):
            missed = [t.site.name for t in targets if t.applied == 0]
            if missed:
                raise UnsupportedModelError(f"ablate: expected every chosen layer to run its ablation in the forward pass, got none in "
                                            f"{missed} (the layer was skipped, or runs on a path ablate cannot reach)")

        if targets:
            handles.append(model.register_forward_pre_hook(start))
            handles.append(model.register_forward_hook(finish))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for undo in reversed(restore):
            undo()


@contextmanager
def ablate(model: nn.Module, heads: HeadSpec, *, how: str = "zero", reference: Any = None) -> Iterator[dict[str, list[int]]]:
    """Inside the block, the chosen heads of ``model`` are removed (``zero``), set to their mean
    (``mean``, over the passes ``reference`` makes: a tensor, tuple, dict or ``callable(model)``, or a
    :class:`HeadMeans` from :func:`head_means`) or read their values through a uniform or
    previous-token pattern (``uniform``, ``previous``). Yields {layer name: heads} as resolved.
    Ablating nothing (``{}`` or ``[]``) changes nothing. See the module docstring for the formulas."""
    if how not in MODES:
        raise bad_argument(InvalidInputError, "how", f"one of {list(MODES)}", how)
    if how == "mean" and reference is None:
        raise bad_argument(InvalidInputError, "reference", "inputs (or HeadMeans) to average the heads over for how='mean'", reference)
    if how != "mean" and reference is not None:
        raise bad_argument(InvalidInputError, "reference", f"None for how={how!r} (only 'mean' reads a reference)", type(reference).__name__, raw=True)
    sites = _sites(model)
    chosen = resolve_heads(model, heads, sites)
    targets = [_Target(sites[i], hs, how) for i, hs in chosen.items()]
    for t in targets:
        if how == "previous" and t.site.kind == "cross":
            raise bad_argument(InvalidInputError, "how", f"'zero', 'mean' or 'uniform' for cross-attention ({t.site.name})", how)
    if how == "mean" and targets:
        means = reference if isinstance(reference, HeadMeans) else head_means(model, reference, [sites.index(t.site) for t in targets])
        for t in targets:
            if t.site.name not in means.means:
                raise bad_argument(InvalidInputError, "reference", f"HeadMeans with layer {t.site.name!r}", sorted(means.means), raw=True)
            t.means = means.means[t.site.name][t.heads]
    with _installed(model, targets):
        yield {t.site.name: list(t.heads) for t in targets}
