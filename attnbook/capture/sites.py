"""Where a model's attention is: one :class:`Site` per attention layer capture can record, and the
attention-like layers it cannot (which make ``capture`` refuse unless the caller selected a subset).

Families, in the order they are tried on every submodule:

* ``attnbook`` — our own :class:`~attnbook.modules.MultiHeadAttention`;
* ``torch`` — ``nn.MultiheadAttention`` (``TransformerDecoderLayer.multihead_attn`` is cross-attention);
* ``timm`` — ViT-style ``Attention`` (``fused_attn`` + ``attn_drop`` + ``num_heads``), also ``ClassAttn``,
  sub-sampled and windowed variants; known non-token attention (XCiT's channel attention) is refused;
* ``hf`` — Hugging Face ``PreTrainedModel``: the modules it declares in ``_can_record_outputs``
  (``attentions`` → self, ``cross_attentions`` → cross) or, for a model that declares none, the
  innermost modules whose class name ends in ``Attention`` (``cross``/``EncDec``/``encoder_attn`` in
  the name → cross).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..modules import MultiHeadAttention

__all__ = ["Site", "find_attention", "unrecordable", "REFUSED", "SUPPORTED_FAMILIES"]

SUPPORTED_FAMILIES = (
    "attnbook.modules.MultiHeadAttention",
    "torch.nn.MultiheadAttention (also inside nn.TransformerEncoder/Decoder layers)",
    "timm ViT-style Attention (fused_attn + attn_drop)",
    "Hugging Face transformers PreTrainedModel (eager attention)",
)

#: attention classes whose weights are not a token × token map, by class name: why capture refuses them
REFUSED = {
    "XCA": "cross-covariance attention (XCiT) mixes channels, not tokens: its weights are (channels × channels) per head",
    "ChannelAttention": "channel attention (DaViT) mixes channels, not tokens: its weights are (channels × channels) per head",
    "TalkingHeadAttn": "talking-heads attention (CaiT) mixes heads after the softmax: its weights are not distributions over keys",
    "FactorAttnConvRelPosEnc": "factorized attention (CoaT) takes the softmax over keys and computes q·(softmax(K)ᵀV): "
                               "no token × token matrix exists",
}

_ATTENTION_NAME = re.compile(r"(attention|attn)", re.IGNORECASE)
_CROSS_NAME = re.compile(r"(cross|encdec|enc_dec|encoder_attn)", re.IGNORECASE)
_NOT_ATTENTION = re.compile(r"(output|intermediate|pooler|dropout|norm|mlp|embedding)$", re.IGNORECASE)


@dataclass(eq=False)
class Site:
    """One attention layer: qualified name, module, family, ``kind`` ('self' or 'cross') and, for
    Hugging Face, the position of the weights in the module's output (None: the first 4-D tensor)."""

    name: str
    module: nn.Module
    family: str
    kind: str = "self"
    index: int | None = None
    window_block: nn.Module | None = None  # the Swin-style block that windows this layer's input (``window_size``, ``shift_size``)

    @property
    def n_heads(self) -> int | None:
        """The module's head count where it names one (for ``heads=`` checks before the forward)."""
        m = self.module
        for attr in ("n_heads", "num_heads", "num_attention_heads", "n_head"):
            value = getattr(m, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        config = getattr(m, "config", None)
        value = getattr(config, "num_attention_heads", None)
        return value if isinstance(value, int) and value > 0 else None


def _is_timm_attention(module: nn.Module) -> bool:
    """timm-style attention: the probabilities pass through an ``attn_drop`` module (after ``fused_attn``
    is turned off where the module has the switch), and it names its head count."""
    return isinstance(getattr(module, "attn_drop", None), nn.Module) and hasattr(module, "num_heads") and not isinstance(module, nn.MultiheadAttention)


def _hf_models(model: nn.Module) -> list[nn.Module]:
    if "transformers" not in sys.modules:
        return []
    from transformers import PreTrainedModel

    return [m for m in model.modules() if isinstance(m, PreTrainedModel)]


def _declared(hf_models: list[nn.Module]) -> dict[str, list[Any]]:
    """Recorder specs per output key ('attentions', 'cross_attentions') declared by the models."""
    out: dict[str, list[Any]] = {"attentions": [], "cross_attentions": []}
    for m in hf_models:
        recorders = getattr(m, "_can_record_outputs", None) or {}
        for key in out:
            spec = recorders.get(key)
            if spec is not None:
                out[key].extend(spec if isinstance(spec, list) else [spec])
    return out


def _match(name: str, module: nn.Module, specs: list[Any]) -> tuple[bool, int]:
    """Whether ``module`` is one of the declared recorders, and the tuple index of its weights."""
    for spec in specs:
        target, class_name, layer_name, index = spec, None, None, 1
        if not isinstance(spec, type):
            if isinstance(spec, str):
                target, class_name = None, spec
            else:  # transformers' OutputRecorder
                target, class_name = spec.target_class, spec.class_name
                layer_name, index = spec.layer_name, spec.index
        hit = (target is not None and isinstance(module, target)) or (class_name is not None and name.endswith(class_name))
        if hit and (layer_name is None or f".{layer_name.strip('.')}." in f".{name}."):
            return True, index
    return False, 1


def _within(inner: str, outer: str) -> bool:
    """Whether the module named ``inner`` is ``outer`` or inside it (``""`` is the model itself)."""
    return outer == "" or inner == outer or inner.startswith(outer + ".")


def find_attention(model: nn.Module) -> list[Site]:
    """Every attention layer of ``model`` that capture can record, in module order."""
    hf_models = _hf_models(model)
    hf_names = [n for n, m in model.named_modules() if any(m is h for h in hf_models)]
    owners = {n: m for n, m in model.named_modules() if n in hf_names}
    declared_by: dict[str, dict[str, list[Any]]] = {}  # per Hugging Face model: its recorder specs
    sites: list[Site] = []
    candidates: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention):
            sites.append(Site(name, module, "attnbook"))
        elif isinstance(module, nn.MultiheadAttention):
            cross = name.rsplit(".", 1)[-1] == "multihead_attn" or bool(_CROSS_NAME.search(name.rsplit(".", 1)[-1]))
            sites.append(Site(name, module, "torch", "cross" if cross else "self"))
        elif _is_timm_attention(module) and type(module).__name__ not in REFUSED:
            cross = bool(_CROSS_NAME.search(type(module).__name__))
            site = Site(name, module, "timm", "cross" if cross else "self")
            if isinstance(getattr(module, "ws", None), int):  # Twins' locally grouped attention windows its own input
                site.window_block = module
            sites.append(site)
        elif hf_models:
            # the innermost Hugging Face model around the module decides: its declared recorders, or none
            owner = max((n for n in hf_names if _within(name, n) and n != name), key=len, default=None)
            if owner is None:
                continue
            if owner not in declared_by:
                declared_by[owner] = _declared([owners[owner]])
            declared = declared_by[owner]
            if declared["attentions"] or declared["cross_attentions"]:
                for key, kind in (("attentions", "self"), ("cross_attentions", "cross")):
                    hit, index = _match(name, module, declared[key])
                    if hit:
                        sites.append(Site(name, module, "hf", kind, index))
                        break
            elif type(module).__name__.lower().endswith("attention"):
                candidates.append((name, module))
    # a declared recorder that holds several attention modules (Swin declares its stages) gives one
    # output per container: record the attention modules inside it instead
    expanded: list[Site] = []
    for site in sites:
        inner = [(n, m) for n, m in model.named_modules() if n.startswith(site.name + ".") and type(m).__name__.endswith("Attention")]
        inner = [(n, m) for n, m in inner if not any(o.startswith(n + ".") for o, _ in inner)]
        if site.family == "hf" and len(inner) > 1:
            expanded += [Site(n, m, "hf", site.kind, None) for n, m in inner]
        else:
            expanded.append(site)
    sites = expanded
    # models that declare no recorders: their innermost attention modules
    names = [n for n, _ in candidates]
    for name, module in candidates:
        if not any(other.startswith(name + ".") for other in names):
            sites.append(Site(name, module, "hf", "cross" if _CROSS_NAME.search(name) else "self", None))
    modules = dict(model.named_modules())
    for site in sites:
        if site.window_block is not None:
            continue
        parts = site.name.split(".")
        for cut in range(len(parts) - 1, -1, -1):  # nearest ancestor first
            ancestor = modules[".".join(parts[:cut])]
            if hasattr(ancestor, "window_size") and hasattr(ancestor, "shift_size"):
                site.window_block = ancestor
                break
    order = {m: i for i, (_, m) in enumerate(model.named_modules())}
    return sorted(sites, key=lambda s: order[s.module])


def unrecordable(model: nn.Module, sites: list[Site]) -> list[tuple[str, str]]:
    """Attention-like layers of ``model`` — a class named with 'Attention' or 'Attn', a refused class, or
    a module of its own (not a ``torch.nn`` layer) whose attribute name says attention — with
    parameters, that are not sites, hold no site and are not inside one: ``(name, why)`` for each."""
    site_names = [s.name for s in sites]
    found = []
    for name, module in model.named_modules():
        cls = type(module).__name__
        own_name = name.rsplit(".", 1)[-1]
        named_attention = bool(_ATTENTION_NAME.search(own_name)) and not type(module).__module__.startswith("torch.nn")
        if cls not in REFUSED and (not (_ATTENTION_NAME.search(cls) or named_attention) or _NOT_ATTENTION.search(cls)):
            continue
        if not any(True for _ in module.parameters()):
            continue
        if any(_within(name, s) or _within(s, name) for s in site_names) or any(_within(name, r) for r, _ in found):
            continue
        found.append((name, REFUSED.get(cls, f"{cls}: no known way to read its attention weights")))
    return found
