"""``capture(model)``: record the attention weights of any supported model.

::

    with capture(model) as cap:
        model(x)
    maps = cap.maps                      # AttentionMaps (layers, batch, heads, queries, keys)

Supported families, each switched to a path that materialises the weights only inside the block:

* attnbook's own :class:`~attnbook.modules.MultiHeadAttention` — ``record_attention`` on, the
  explicit softmax passes through ``hook_pattern``;
* ``torch.nn.MultiheadAttention``, also inside ``nn.TransformerEncoderLayer`` — a kwargs pre-hook
  forces ``need_weights=True, average_attn_weights=False`` and the eval fast path (which skips the
  module) is disabled through ``torch.backends.mha``;
* timm ViT-style ``Attention`` (``fused_attn`` + ``attn_drop``) — ``fused_attn`` off, weights read
  at ``attn_drop`` (as timm's ``AttentionExtract(method="hook")`` does);
* Hugging Face ``PreTrainedModel`` — attention implementation switched to ``eager``, weights read
  from the modules the model declares in ``can_record_outputs["attentions"]``.

A forward pass that records nothing raises :class:`NothingCapturedError` (fused kernels hide the
weights silently everywhere). On exit — normal or exception — every hook is removed and every
flag restored.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .errors import InvalidInputError, NothingCapturedError, OutOfRangeError, UnsupportedModelError, bad_argument
from .maps import AttentionMaps
from .modules import MultiHeadAttention

SUPPORTED_FAMILIES = (
    "attnbook.modules.MultiHeadAttention",
    "torch.nn.MultiheadAttention (also inside nn.TransformerEncoderLayer)",
    "timm ViT-style Attention (fused_attn + attn_drop)",
    "Hugging Face transformers PreTrainedModel (eager attention)",
)


@dataclass
class _Site:
    """One attention layer to record: its qualified name, module and family."""

    name: str
    module: nn.Module
    family: str
    index: int = 1  # position of the weights in a tuple output (Hugging Face)


def _is_timm_attention(module: nn.Module) -> bool:
    return hasattr(module, "fused_attn") and isinstance(getattr(module, "attn_drop", None), nn.Module) and hasattr(module, "num_heads")


def _hf_specs(model: nn.Module) -> list[Any]:
    """The ``attentions`` recorder specs declared by every PreTrainedModel inside ``model``."""
    if "transformers" not in sys.modules:
        return []
    from transformers import PreTrainedModel

    specs = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            declared = module.can_record_outputs.get("attentions")
            if declared is not None:
                specs.extend(declared if isinstance(declared, list) else [declared])
    return specs


def _hf_match(name: str, module: nn.Module, specs: list[Any]) -> int | None:
    """Tuple index of the weights if ``module`` is a declared attention module, else None."""
    for spec in specs:
        target, class_name, layer_name, index = spec, None, None, 1
        if not isinstance(spec, type):
            if isinstance(spec, str):
                target, class_name = None, spec
            else:  # transformers.utils.output_capturing.OutputRecorder
                target, class_name = spec.target_class, spec.class_name
                layer_name, index = spec.layer_name, spec.index
        hit = (target is not None and isinstance(module, target)) or (class_name is not None and name.endswith(class_name))
        if hit and (layer_name is None or f".{layer_name.strip('.')}." in f".{name}."):
            return index
    return None


def find_attention(model: nn.Module) -> list[_Site]:
    """Every attention layer of ``model`` that capture can record, in module order."""
    specs = _hf_specs(model)
    sites: list[_Site] = []
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadAttention):
            sites.append(_Site(name, module, "attnbook"))
        elif isinstance(module, nn.MultiheadAttention):
            sites.append(_Site(name, module, "torch"))
        elif _is_timm_attention(module):
            sites.append(_Site(name, module, "timm"))
        elif specs and (index := _hf_match(name, module, specs)) is not None:
            sites.append(_Site(name, module, "hf", index))
    return sites


def _select(sites: list[_Site], layers: int | str | Sequence[int | str] | None) -> list[_Site]:
    if layers is None:
        return sites
    wanted = [layers] if isinstance(layers, (int, str)) else list(layers)
    if not wanted:
        raise bad_argument(InvalidInputError, "layers", "None or at least one layer index or name pattern", layers)
    chosen: list[_Site] = []
    for item in wanted:
        if isinstance(item, str):
            hits = [s for s in sites if fnmatch.fnmatchcase(s.name, item)]
            if not hits:
                raise bad_argument(OutOfRangeError, "layers", f"a pattern matching one of {[s.name for s in sites]}", item)
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -len(sites) <= item < len(sites):
                raise bad_argument(OutOfRangeError, "layers", f"an index in [0, {len(sites)})", item)
            hits = [sites[item]]
        else:
            raise bad_argument(InvalidInputError, "layers", "integers or name patterns", item)
        chosen.extend(s for s in hits if s not in chosen)
    return sorted(chosen, key=sites.index)


def _mha_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Force ``need_weights=True, average_attn_weights=False`` (positional slots 4 and 6)."""
    args = list(args)
    for slot, key, value in ((4, "need_weights", True), (6, "average_attn_weights", False)):
        if len(args) > slot:
            args[slot] = value
        else:
            kwargs[key] = value
    return tuple(args), kwargs


class Capture:
    """What a ``capture`` block recorded: one list of weight tensors per attention layer."""

    def __init__(self, sites: list[_Site], keep_grad: bool) -> None:
        self.sites = sites
        self.keep_grad = keep_grad
        self.records: dict[str, list[torch.Tensor]] = {s.name: [] for s in sites}
        self.forwards = 0

    @property
    def layer_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def _record(self, site: _Site, weights: torch.Tensor | None) -> None:
        if weights is None:
            return
        if weights.dim() == 3:  # unbatched nn.MultiheadAttention input
            weights = weights.unsqueeze(0)
        if self.keep_grad and weights.requires_grad:
            weights.retain_grad()
            self.records[site.name].append(weights)
        else:
            self.records[site.name].append(weights.detach().to("cpu", torch.float32))

    def count(self) -> int:
        """Number of tensors recorded so far (over all layers)."""
        return sum(len(v) for v in self.records.values())

    def _stack(self, tensors_of: Callable[[list[torch.Tensor]], list[torch.Tensor]]) -> torch.Tensor:
        if self.count() == 0:
            raise NothingCapturedError(
                "capture: expected at least one forward pass that recorded attention, got none "
                "(run the model inside the `with capture(model) as cap:` block)"
            )
        per_layer = []
        for name in self.layer_names:
            recs = tensors_of(self.records[name])
            if not recs:
                raise NothingCapturedError(f"layer {name!r}: expected recorded attention, got none (was it skipped in the forward pass?)")
            shapes = {tuple(r.shape[1:]) for r in recs}
            if len(shapes) > 1:
                raise InvalidInputError(f"layer {name!r}: expected forward passes of one shape to concatenate, got {sorted(shapes)}")
            per_layer.append(recs[0] if len(recs) == 1 else torch.cat(recs, dim=0))
        shapes = {tuple(t.shape) for t in per_layer}
        if len(shapes) > 1:
            raise InvalidInputError(f"layers: expected maps of one shape to stack, got {sorted(shapes)}; select layers with `layers=`")
        return torch.stack(per_layer)

    def weights(self) -> torch.Tensor:
        """All recorded weights as one float32 tensor (layers, batch, heads, queries, keys)."""
        return self._stack(lambda recs: [r.detach().to("cpu", torch.float32) for r in recs])

    def gradients(self) -> torch.Tensor:
        """Gradients of the recorded weights after ``backward()`` (needs ``keep_grad=True``)."""
        if not self.keep_grad:
            raise bad_argument(InvalidInputError, "keep_grad", "True to read gradients", self.keep_grad, raw=True)

        def grads(recs: list[torch.Tensor]) -> list[torch.Tensor]:
            missing = [r for r in recs if r.grad is None]
            if missing:
                raise NothingCapturedError("gradients: expected .grad on the recorded weights, got None (call backward() on an output first)")
            return [r.grad.detach().to("cpu", torch.float32) for r in recs]

        return self._stack(grads)

    def to_maps(self, *, query_labels=None, key_labels=None, mask: torch.Tensor | None = None, meta: dict | None = None) -> AttentionMaps:
        """Recorded weights as :class:`AttentionMaps`, with optional labels and mask."""
        return AttentionMaps(self.weights(), tuple(self.layer_names), query_labels, key_labels, mask, meta or {})

    @property
    def maps(self) -> AttentionMaps:
        return self.to_maps()


@contextmanager
def capture(model: nn.Module, layers: int | str | Sequence[int | str] | None = None, *, keep_grad: bool = False) -> Iterator[Capture]:
    """Record attention weights of ``model`` during the forward passes inside the block.

    ``layers`` picks attention layers by index (in module order, negatives allowed) or by
    ``fnmatch`` pattern on their qualified names; ``None`` records all. With ``keep_grad`` the
    live weight tensors are kept with ``retain_grad()`` so ``cap.gradients()`` works after a
    backward pass (gradient-weighted rollout). Several forward passes concatenate along batch.
    """
    if not isinstance(model, nn.Module):
        raise bad_argument(UnsupportedModelError, "model", "a torch.nn.Module", type(model).__name__, raw=True)
    all_sites = find_attention(model)
    if not all_sites:
        raise UnsupportedModelError(
            f"model: expected a model with attention of a supported family ({'; '.join(SUPPORTED_FAMILIES)}), "
            f"got {type(model).__name__} with none"
        )
    cap = Capture(_select(all_sites, layers), keep_grad)
    handles: list[Any] = []
    restore: list[Callable[[], None]] = []
    try:
        _install(cap, model, handles, restore)
        yield cap
    finally:
        for handle in handles:
            handle.remove()
        for undo in reversed(restore):
            undo()


def _install(cap: Capture, model: nn.Module, handles: list, restore: list) -> None:
    """Register hooks and flip flags for every selected site; undo actions go into ``restore``."""
    families = {s.family for s in cap.sites}
    if "torch" in families:
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        restore.append(lambda: torch.backends.mha.set_fastpath_enabled(fastpath))
    if "hf" in families:
        _use_eager(model, restore)
    for site in cap.sites:
        record = lambda weights, site=site: cap._record(site, weights)  # noqa: E731
        m = site.module
        if site.family == "attnbook":
            old = m.record_attention
            m.record_attention = True
            restore.append(lambda m=m, old=old: setattr(m, "record_attention", old))
            handles.append(m.hook_pattern.register_forward_hook(lambda _m, _i, out, r=record: r(out)))
        elif site.family == "torch":
            handles.append(m.register_forward_pre_hook(_mha_pre_hook, with_kwargs=True))
            handles.append(m.register_forward_hook(lambda _m, _i, out, r=record: r(out[1])))
        elif site.family == "timm":
            old = m.fused_attn
            m.fused_attn = False
            restore.append(lambda m=m, old=old: setattr(m, "fused_attn", old))
            handles.append(m.attn_drop.register_forward_hook(lambda _m, _i, out, r=record: r(out)))
        else:
            handles.append(m.register_forward_hook(lambda _m, _i, out, r=record, k=site.index: r(out[k] if isinstance(out, tuple) else out)))

    before = [0]

    def pre(_m, _args):
        before[0] = cap.count()

    def post(_m, _args, _out):
        cap.forwards += 1
        if cap.count() == before[0]:
            raise NothingCapturedError(
                f"capture: expected attention weights from the forward pass of {type(model).__name__}, got none "
                f"(a fused kernel may hide them; selected layers: {cap.layer_names})"
            )

    handles.append(model.register_forward_pre_hook(pre))
    handles.append(model.register_forward_hook(post))


def _use_eager(model: nn.Module, restore: list) -> None:
    """Switch every outermost Hugging Face model inside ``model`` to eager attention."""
    from transformers import PreTrainedModel

    seen: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and not any(module in list(s.modules()) for s in seen):
            seen.append(module)
            old = module.config._attn_implementation
            if old != "eager":
                module.set_attn_implementation("eager")
                restore.append(lambda m=module, old=old: m.set_attn_implementation(old))
