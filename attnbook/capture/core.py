"""``capture(model)``: record the attention weights of any supported model.

::

    with capture(model) as cap:
        model(x)
    maps = cap.maps                      # AttentionMaps (layers, batch, heads, queries, keys)

Each family is switched, only inside the block, to a path that materialises the weights:

* attnbook's own :class:`~attnbook.modules.MultiHeadAttention` — ``record_attention`` on, the
  explicit softmax passes through ``hook_pattern``;
* ``torch.nn.MultiheadAttention`` — a kwargs pre-hook asks for per-head weights, and the output the
  caller receives is put back to what it asked for (``None`` for ``need_weights=False``, the head
  average for ``average_attn_weights=True``); the eval fast path (which skips the module) is off;
* timm ViT-style ``Attention`` — ``fused_attn`` off, weights read at ``attn_drop``;
* Hugging Face models — attention implementation switched to ``eager``; weights read from the
  declared recorder modules, or (a model that declares none) from its innermost attention modules
  with ``output_attentions=True`` passed in and the attentions taken out of the output again.

What is recorded. One layer per call of an attention module in a forward pass: a module called
twice (ALBERT's shared layer) gives two layers, ``name#0`` and ``name#1``. Layers come in the order
they are called. Several forward passes of one shape concatenate along the batch axis; passes that
continue one another over a KV cache (a model's own generation loop: each pass's keys are the previous
keys plus its own queries) are assembled into one causal map over every position fed to the model.
A Hugging Face ``model.generate(...)`` is followed pass by pass (:mod:`attnbook.capture.generation`):
each returned sequence gets the map one eager forward over it gives, beams and cache crops followed,
or the call is refused before it starts.
``kind='self' | 'cross'`` picks self- or cross-attention of encoder–decoders; ``heads`` keeps
chosen heads; ``dtype`` stores in float16/bfloat16; ``max_bytes`` bounds what is kept.

What is refused, loudly. A model with no attention capture knows; attention-like layers it cannot
read when the caller did not select a subset (:func:`~attnbook.capture.sites.unrecordable`);
attention that is not token × token (channel attention); windowed attention whose windows are
folded into the batch axis; a forward pass that recorded nothing (fused kernels hide the weights);
a forward whose kept weights would pass ``max_bytes`` (raised before the first weights exist).
On exit — normal or exception — every hook is removed and every flag restored.

Where outputs differ: the eager / explicit path computes the same function as the fused kernels to
float rounding (< 1e-5) at every real token. At padded positions (left-padded decoder batches,
local attention, ``nn.TransformerEncoder``'s nested tensors) the two paths fill in different values;
only real tokens are the model's output there.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

import torch
from torch import nn

from .. import checks
from ..errors import (AttnbookError, CaptureBudgetError, CaptureChangesOutputsWarning, InvalidInputError, NothingCapturedError,
                      OutOfRangeError, UnsupportedGenerationError, UnsupportedModelError, bad_argument)
from ..maps import AttentionMaps
from .generation import AssembledGeneration, Generation, refuse_unsupported
from .sites import SUPPORTED_FAMILIES, Site, find_attention, unrecordable
from .windows import WindowGrid, pair, scatter

__all__ = ["capture", "Capture", "eager_attention", "recording", "DEFAULT_MAX_BYTES", "KINDS", "OUTPUTS_TOLERANCE"]

#: kept weights allowed by default (``max_bytes``): 4 GiB
DEFAULT_MAX_BYTES = 4 * 2**30
KINDS = ("all", "self", "cross")
_STORAGE = (torch.float32, torch.float16, torch.bfloat16)
#: Hugging Face attention implementations that compute the weights: eager, and ``attnbook.intervene``'s
#: eager path with heads edited (capture leaves a model on it, so it records what the ablated heads did)
ABLATION_IMPLEMENTATION = "attnbook_ablation"
EAGER_PATHS = ("eager", ABLATION_IMPLEMENTATION)
_RECORDING = [0]  # capture blocks open now (intervene's attention function computes the weights while one is)


def recording() -> bool:
    """Whether a ``capture`` block is open (so attention functions must produce the weights)."""
    return _RECORDING[0] > 0
_ATTENTION_OUTPUTS = ("attentions", "cross_attentions", "encoder_attentions", "decoder_attentions")


def _select(sites: list[Site], layers: int | str | Sequence[int | str] | None, kind: str) -> list[Site]:
    if kind not in KINDS:
        raise bad_argument(InvalidInputError, "kind", f"one of {list(KINDS)}", kind)
    if kind != "all":
        kept = [s for s in sites if s.kind == kind]
        if not kept:
            raise bad_argument(OutOfRangeError, "kind", f"a kind the model has ({sorted({s.kind for s in sites})})", kind)
        sites = kept
    if layers is None:
        return sites
    wanted = [layers] if isinstance(layers, (int, str)) else list(layers)
    if not wanted:
        raise bad_argument(InvalidInputError, "layers", "None or at least one layer index or name pattern", layers)
    chosen: list[Site] = []
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


def _heads(heads: int | Sequence[int] | None, sites: list[Site]) -> list[int] | None:
    if heads is None:
        return None
    chosen = [heads] if isinstance(heads, int) and not isinstance(heads, bool) else list(heads)
    if not chosen or any(isinstance(h, bool) or not isinstance(h, int) for h in chosen):
        raise bad_argument(InvalidInputError, "heads", "None, a head index or a list of head indices", heads)
    for site in sites:
        n = site.n_heads
        if n is not None and not all(-n <= h < n for h in chosen):
            raise bad_argument(OutOfRangeError, "heads", f"indices in [0, {n}) ({site.name} has {n} heads)", heads)
    return chosen


class Capture:
    """What a ``capture`` block recorded: the weights of every call of every selected attention layer."""

    def __init__(self, sites: list[Site], *, keep_grad: bool = False, heads: list[int] | None = None,
                 dtype: torch.dtype = torch.float32, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.sites = sites
        self.keep_grad = keep_grad
        self.heads = heads
        self.dtype = dtype
        self.max_bytes = max_bytes
        self.passes: list[list[tuple[Site, torch.Tensor]]] = []  # one list of (site, weights) per forward pass
        self._open: list[tuple[Site, torch.Tensor]] | None = None
        self.inputs: dict[str, list[torch.Tensor]] = {}  # token ids of each pass (input_ids, decoder_input_ids), for labels
        self.forwards = 0
        self._bytes = 0
        self._itemsize = torch.empty((), dtype=dtype).element_size()  # bytes per stored weight
        self.grids: dict[int, WindowGrid] = {}  # per windowed site: the token grid of its last call
        self.generations: list[AssembledGeneration] = []  # every finished generate(...) call, assembled per returned sequence
        self._generation: Generation | None = None         # the generate(...) call in progress
        self._paused = False                               # hooks pass through (verify's plain forward)
        self._switches: list[tuple[Callable[[], None], Callable[[], None]]] = []  # (undo, redo) of every flag capture set
        self.verified: dict | None = None                  # verify=True: what the plain forward measured

    # -- recording -------------------------------------------------------------------------------
    def _start(self) -> None:
        self._open = []

    def _finish(self, model_name: str) -> None:
        recorded, self._open = self._open or [], None
        self.forwards += 1
        if not recorded:
            raise NothingCapturedError(
                f"capture: expected attention weights from the forward pass of {model_name}, got none "
                f"(a fused kernel may hide them; selected layers: {[s.name for s in self.sites]})"
            )
        if self._generation is not None and self._generation.passes:
            self._generation.passes[-1].records = recorded
        else:
            self.passes.append(recorded)

    def _check_assembled(self, nbytes: int) -> None:
        """Raise before a generate call's maps are assembled if they (with the earlier calls') pass ``max_bytes``."""
        kept = sum(w.numel() * w.element_size() for g in self.generations for w in g.weights)
        if kept + nbytes > self.max_bytes:
            raise CaptureBudgetError(
                f"capture: the maps of this generate call would take about {(kept + nbytes) / 2**20:,.1f} MiB with the earlier ones, "
                f"more than max_bytes = {self.max_bytes / 2**20:,.1f} MiB; record fewer layers (layers=...), fewer heads (heads=...), "
                f"fewer or shorter sequences, store in float16 (dtype=torch.float16), or raise max_bytes")

    def kept_bytes(self) -> int:
        """Bytes held by the recorded weights so far."""
        return self._bytes

    def _check_budget(self, site: Site, batch: int, heads: int | None, queries: int, keys: int) -> None:
        """Raise before ``site`` computes its weights if this pass would keep more than ``max_bytes``."""
        if self._paused:
            return
        heads = len(self.heads) if self.heads is not None else (heads or site.n_heads or 1)
        per_call = batch * heads * queries * keys * self._itemsize
        called = {id(s) for s, _ in self._open or []}
        remaining = sum(1 for s in self.sites if id(s) not in called) or 1
        projected = self.kept_bytes() + per_call * remaining
        if projected > self.max_bytes:
            raise CaptureBudgetError(
                f"capture: the weights to keep would take about {projected / 2**20:,.1f} MiB "
                f"({remaining} layer(s) × batch {batch} × {heads} heads × {queries} × {keys} × {self.dtype}), "
                f"more than max_bytes = {self.max_bytes / 2**20:,.1f} MiB; record fewer layers (layers=...), fewer heads "
                f"(heads=...), a shorter input or smaller batch, store in float16 (dtype=torch.float16), or raise max_bytes"
            )

    def _record(self, site: Site, weights: torch.Tensor | None) -> None:
        if weights is None or self._paused:
            return
        if weights.dim() == 3:  # unbatched nn.MultiheadAttention input
            weights = weights.unsqueeze(0)
        if weights.dim() != 4:
            raise UnsupportedModelError(f"{site.name}: expected attention weights (batch, heads, queries, keys), got a tensor of shape "
                                        f"{tuple(weights.shape)}")
        if self.heads is not None:
            n = weights.shape[1]
            if not all(-n <= h < n for h in self.heads):
                raise bad_argument(OutOfRangeError, "heads", f"indices in [0, {n}) ({site.name} has {n} heads)", self.heads, raw=True)
            weights = weights[:, self.heads]
        if self.keep_grad and weights.requires_grad:
            weights.retain_grad()
        else:
            weights = weights.detach().to("cpu", self.dtype)
        if self._open is None and self._generation is not None:  # generate runs the encoder once, on its own
            self._generation.encoder.append((site, weights))
        else:
            if self._open is None:  # a submodule was called on its own, outside the model's forward
                self._open = []
            self._open.append((site, weights))
        self._bytes += weights.numel() * weights.element_size()

    # -- reading ---------------------------------------------------------------------------------
    def _layout(self) -> list[tuple[Site, int, str]]:
        """(site, call index, layer name) of every layer, in the order of the first pass's calls."""
        if self.generations:
            if self.passes or self._open:
                raise InvalidInputError("capture: expected generate(...) calls or plain forward passes in one block, got both; "
                                        "record them in separate capture blocks")
            return self.generations[0].layers
        if not self.passes and not self._open:
            raise NothingCapturedError(
                "capture: expected at least one forward pass that recorded attention, got none "
                "(run the model inside the `with capture(model) as cap:` block)"
            )
        return _layout_of(self.passes[0] if self.passes else self._open)

    @property
    def layer_names(self) -> list[str]:
        """The recorded layers (before any forward pass: the selected attention modules)."""
        if not self.passes and not self._open:
            return [s.name for s in self.sites]
        return [name for _, _, name in self._layout()]

    @property
    def kinds(self) -> list[str]:
        """'self' or 'cross' for every recorded layer."""
        return [site.kind for site, _, _ in self._layout()]

    def _calls(self, site: Site, k: int) -> list[torch.Tensor]:
        out = []
        for p in self.passes + ([self._open] if self._open else []):
            mine = [w for s, w in p if s is site]
            if len(mine) <= k:
                raise NothingCapturedError(f"layer {site.name!r}: expected call {k} in every forward pass, got {len(mine)} call(s)")
            out.append(mine[k])
        return out

    def window_grids(self) -> list[WindowGrid | None]:
        """Per recorded layer, the window grid its weights were scattered from (None: not windowed)."""
        return [self.grids.get(id(site)) for site, _, _ in self._layout()]

    @property
    def generated(self) -> bool:
        """Whether the passes continue one another over a KV cache (see :meth:`per_layer`): a
        ``generate(...)`` call, or passes of a model's own cache loop."""
        if self.generations:
            return True
        site, k, _ = self._layout()[0]
        return _is_cache_chain(self._calls(site, k))

    @property
    def sequences(self) -> torch.Tensor | None:
        """What the ``generate(...)`` calls in the block returned (returned sequences, concatenated), or None."""
        if not self.generations:
            return None
        return torch.cat([g.sequences for g in self.generations], dim=0)

    def _generated_layers(self) -> list[torch.Tensor]:
        """Every layer of the block's generate calls, per returned sequence (calls concatenated on the batch axis)."""
        out = []
        for i, (_, _, name) in enumerate(self.generations[0].layers):
            parts = [g.weights[i].to(torch.float32) for g in self.generations]
            if len({tuple(p.shape[1:]) for p in parts}) > 1:
                raise InvalidInputError(f"layer {name!r}: expected generate calls of one length to combine, got "
                                        f"{sorted({tuple(p.shape) for p in parts})}; read them in separate capture blocks")
            out.append(torch.cat(parts, dim=0))
        return out

    def per_layer(self, grads: bool = False) -> list[torch.Tensor]:
        """Every recorded layer as one float32 tensor (batch, heads, queries, keys); several passes of
        one shape concatenated on the batch axis, KV-cache passes assembled into one causal map."""
        if self.generations:
            if grads:
                raise bad_argument(InvalidInputError, "grads", "False for generate(...) calls (generation runs without gradients)",
                                   grads, raw=True)
            self._layout()  # refuses a block that mixes generate calls and plain passes
            out = self._generated_layers()
            if self.dtype != torch.float32:
                out = [w / w.sum(-1, keepdim=True).clamp_min(1e-12) * (w.sum(-1, keepdim=True) > 0) for w in out]
            return out
        out = []
        for site, k, name in self._layout():
            recs = self._calls(site, k)
            if grads:
                if any(r.grad is None for r in recs):
                    raise NothingCapturedError("gradients: expected .grad on the recorded weights, got None (call backward() on an output first)")
                recs = [r.grad for r in recs]
            recs = [r.detach().to("cpu", torch.float32) for r in recs]
            if len({tuple(r.shape[1:]) for r in recs}) == 1:
                out.append(recs[0] if len(recs) == 1 else torch.cat(recs, dim=0))
            elif _is_cache_chain(recs):
                out.append(_assemble(recs))
            else:
                raise InvalidInputError(f"layer {name!r}: expected forward passes of one shape (or a KV-cache continuation) "
                                        f"to combine, got {sorted({tuple(r.shape) for r in recs})}")
        if self.dtype != torch.float32 and not grads:  # rounding in float16/bfloat16: rows back to sum 1
            sums = [w.sum(-1, keepdim=True) for w in out]
            out = [w / s.clamp_min(1e-12) * (s > 0) for w, s in zip(out, sums)]
        return out

    def _stack(self, layers: list[torch.Tensor]) -> torch.Tensor:
        shapes = {tuple(t.shape) for t in layers}
        if len(shapes) > 1:
            raise InvalidInputError(f"layers: expected maps of one shape to stack, got {sorted(shapes)}; choose kind='self' or "
                                    f"kind='cross', or layers=..., or read them one by one with per_layer()")
        return torch.stack(layers)

    def weights(self) -> torch.Tensor:
        """All recorded weights as one float32 tensor (layers, batch, heads, queries, keys)."""
        return self._stack(self.per_layer())

    def gradients(self) -> torch.Tensor:
        """Gradients of the recorded weights after ``backward()`` (needs ``keep_grad=True``)."""
        if not self.keep_grad:
            raise bad_argument(InvalidInputError, "keep_grad", "True to read gradients", self.keep_grad, raw=True)
        return self._stack(self.per_layer(grads=True))

    def token_ids(self, which: str = "input_ids") -> torch.Tensor | None:
        """The token ids the recorded passes read — ``input_ids`` or, for an encoder–decoder,
        ``decoder_input_ids`` (a KV-cache generation: the whole sequence fed in) — or None."""
        if self.generations:
            parts = [g.token_ids.get(which) for g in self.generations]
            return None if any(p is None for p in parts) else torch.cat(parts, dim=0)
        chunks = self.inputs.get(which, [])
        if not chunks:
            return None
        if len({tuple(t.shape) for t in chunks}) == 1 and not self.generated:
            return torch.cat(chunks, dim=0)
        return torch.cat(chunks, dim=1)

    def to_maps(self, *, query_labels=None, key_labels=None, mask: torch.Tensor | None = None, meta: dict | None = None,
                tokenizer: Any = None) -> AttentionMaps:
        """Recorded weights as :class:`AttentionMaps`, with optional labels and mask. ``tokenizer`` labels
        the axes with the recorded token ids: cross-attention queries from the decoder's ids and keys from
        the encoder's; self-attention from the ids as long as its keys. A KV-cache generation gets its
        causal mask; one window layout its window mask."""
        w = self.weights()
        if tokenizer is not None and query_labels is None and key_labels is None:
            ids = {which: self.token_ids(which) for which in ("input_ids", "decoder_input_ids")}
            if set(self.kinds) == {"cross"}:
                q_ids, k_ids = ids["decoder_input_ids"], ids["input_ids"]
            else:
                q_ids = k_ids = next((t for t in ids.values() if t is not None and t.shape[-1] == w.shape[-1]), None)
            if q_ids is None or k_ids is None or (q_ids.shape[-1], k_ids.shape[-1]) != tuple(w.shape[-2:]):
                raise bad_argument(InvalidInputError, "tokenizer", f"recorded token ids for {tuple(w.shape[-2:])} queries × keys",
                                   {k: None if v is None else tuple(v.shape) for k, v in ids.items()}, raw=True)
            query_labels = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in q_ids]
            key_labels = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in k_ids]
        if mask is None and self.generations:
            roles = set(self.generations[0].roles)
            if len(roles) == 1:
                mask = torch.cat([g.masks[roles.pop()] for g in self.generations], dim=0)
        elif mask is None and self.generated:
            T = w.shape[-1]
            mask = torch.ones(T, T, dtype=torch.bool).tril().expand(w.shape[1], T, T)
        grids = self.window_grids()
        if mask is None and grids[0] is not None and all(g == grids[0] for g in grids):  # one window layout: its mask
            mask = grids[0].mask().expand(w.shape[1], -1, -1)
        windows = [None if g is None else {"window": list(g.window), "shift": list(g.shift)} for g in grids]
        return AttentionMaps(w, tuple(self.layer_names), query_labels, key_labels, mask, {"kinds": self.kinds, "windows": windows, **(meta or {})})

    @property
    def maps(self) -> AttentionMaps:
        return self.to_maps()


def _layout_of(first: list[tuple[Site, torch.Tensor]]) -> list[tuple[Site, int, str]]:
    """(site, call index, layer name) of every call in one pass; a site called several times gets ``name#k``."""
    counts: dict[int, int] = {}
    for site, _ in first:
        counts[id(site)] = counts.get(id(site), 0) + 1
    seen: dict[int, int] = {}
    layout = []
    for site, _ in first:
        k = seen.get(id(site), 0)
        seen[id(site)] = k + 1
        layout.append((site, k, site.name if counts[id(site)] == 1 else f"{site.name}#{k}"))
    return layout


def _is_cache_chain(recs: list[torch.Tensor]) -> bool:
    """Passes whose keys grow by their queries, the first a full square: a generation over a KV cache."""
    if len(recs) < 2 or recs[0].shape[-2] != recs[0].shape[-1]:
        return False
    return all(r.shape[:2] == recs[0].shape[:2] and r.shape[-1] == prev.shape[-1] + r.shape[-2] for prev, r in zip(recs, recs[1:]))


def _assemble(recs: list[torch.Tensor]) -> torch.Tensor:
    """KV-cache passes as one (batch, heads, T, T) causal map: pass ``p``'s rows are the positions it fed."""
    B, H, T = recs[0].shape[0], recs[0].shape[1], recs[-1].shape[-1]
    out = recs[0].new_zeros(B, H, T, T)
    for r in recs:
        end = r.shape[-1]
        out[:, :, end - r.shape[-2]:end, :end] = r
    return out


@contextmanager
def capture(model: nn.Module, layers: int | str | Sequence[int | str] | None = None, *, kind: str = "all",
            heads: int | Sequence[int] | None = None, dtype: torch.dtype = torch.float32, max_bytes: int = DEFAULT_MAX_BYTES,
            keep_grad: bool = False, verify: bool = False) -> Iterator[Capture]:
    """Record attention weights of ``model`` during the forward passes inside the block.

    ``layers`` picks attention modules by index (module order, negatives allowed) or ``fnmatch``
    pattern on their qualified names; ``None`` records all of them — and then refuses a model with
    attention-like layers it cannot read. ``kind``: 'all', 'self' or 'cross'. ``heads``: head
    indices to keep. ``dtype``: storage (float32, float16 or bfloat16; read back as float32 with rows
    renormalised). ``max_bytes``: the most the kept weights may take; a forward that would pass it
    raises :class:`CaptureBudgetError` before its first attention weights are computed. With
    ``keep_grad`` the live weights keep their graph so ``cap.gradients()`` works after a backward.

    ``model.generate(...)`` inside the block (Hugging Face models) is followed pass by pass and
    assembled per returned sequence (:mod:`attnbook.capture.generation`); an option it cannot follow
    exactly raises :class:`~attnbook.errors.UnsupportedGenerationError` before generation starts.

    Where the path capture switches a model to is known to change its outputs
    (:mod:`attnbook.capture.divergence`), entering the block warns with
    :class:`~attnbook.errors.CaptureChangesOutputsWarning`. ``verify=True`` measures it on the
    caller's own input: the first forward pass in the block is run once more without capture (hooks
    paused, every flag as the model had it) and its outputs compared with the recorded pass's; a
    difference beyond :data:`OUTPUTS_TOLERANCE` warns the same way. ``cap.verified`` holds what was
    measured.
    """
    if not isinstance(model, nn.Module):
        raise bad_argument(UnsupportedModelError, "model", "a torch.nn.Module", type(model).__name__, raw=True)
    if dtype not in _STORAGE:
        raise bad_argument(InvalidInputError, "dtype", f"one of {[str(d) for d in _STORAGE]}", dtype)
    max_bytes = checks.positive_int("max_bytes", max_bytes)
    all_sites = find_attention(model)
    refused = unrecordable(model, all_sites)
    if not all_sites:
        why = "; ".join(f"{n or type(model).__name__}: {r}" for n, r in refused[:5])
        raise UnsupportedModelError(
            f"model: expected a model with attention of a supported family ({'; '.join(SUPPORTED_FAMILIES)}), "
            f"got {type(model).__name__} with none" + (f" it can read ({why})" if why else "")
        )
    if refused and layers is None:
        listed = "; ".join(f"{n}: {r}" for n, r in refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise UnsupportedModelError(f"model: expected every attention layer to be recordable, got {len(refused)} that cannot be "
                                    f"recorded ({listed}); select the others with layers=... to record a subset")
    if not isinstance(verify, bool):
        raise bad_argument(InvalidInputError, "verify", "True or False", verify)
    sites = _select(all_sites, layers, kind)
    _warn_known_divergences(model, sites)
    cap = Capture(sites, keep_grad=keep_grad, heads=_heads(heads, sites), dtype=dtype, max_bytes=max_bytes)
    handles: list[Any] = []
    restore: list[Callable[[], None]] = []
    try:
        _install(cap, model, handles, restore)
        if verify:
            _install_verify(cap, model, handles)
        _RECORDING[0] += 1
        restore.append(lambda: _RECORDING.__setitem__(0, _RECORDING[0] - 1))
        yield cap
    finally:
        for handle in handles:
            handle.remove()
        for undo in reversed(restore):
            undo()


# -- per-family hooks -----------------------------------------------------------------------------

def _first_tensor(args: tuple, kwargs: dict, names: Sequence[str] = ()) -> torch.Tensor | None:
    for name in names:
        if isinstance(kwargs.get(name), torch.Tensor):
            return kwargs[name]
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _mha_pre_hook(cap: Capture, site: Site, asked: list) -> Callable:
    """Per-head weights from ``nn.MultiheadAttention`` (positional slots 4 and 6), the caller's wishes kept."""
    def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args = list(args)
        wishes = []
        for slot, key, value in ((4, "need_weights", True), (6, "average_attn_weights", False)):
            if len(args) > slot:
                wishes.append(args[slot])
                args[slot] = value
            else:
                wishes.append(kwargs.get(key, True))
                kwargs[key] = value
        asked.append(tuple(wishes))
        query = args[0] if args else kwargs["query"]
        key = args[1] if len(args) > 1 else kwargs.get("key", query)
        batched = query.dim() == 3
        batch = (query.shape[0] if module.batch_first else query.shape[1]) if batched else 1
        q_len = (query.shape[1] if module.batch_first else query.shape[0]) if batched else query.shape[0]
        k_len = (key.shape[1] if module.batch_first else key.shape[0]) if batched else key.shape[0]
        cap._check_budget(site, batch, module.num_heads, q_len, k_len)
        return tuple(args), kwargs
    return hook


def _mha_post_hook(cap: Capture, site: Site, asked: list) -> Callable:
    def hook(module: nn.Module, _args: tuple, out: tuple) -> tuple:
        need, average = asked.pop()
        cap._record(site, out[1])
        if not need:
            return out[0], None
        if average:
            w = out[1]
            return out[0], w.mean(dim=1) if w.dim() == 4 else w.mean(dim=0)
        return out
    return hook


def _token_check(site: Site, tokens: list) -> Callable:
    """timm: the weights' queries must be the input's tokens (or one class token): else not token attention."""
    def hook(_m: nn.Module, _i: tuple, weights: torch.Tensor) -> None:
        n = tokens[-1] if tokens else None
        if n is not None and weights.dim() == 4 and weights.shape[-2] not in (n, 1):
            raise UnsupportedModelError(
                f"{site.name}: expected token × token attention (queries = the {n} input tokens), got weights of shape "
                f"{tuple(weights.shape)} ({type(site.module).__name__} does not attend between tokens)")
    return hook


def _grid_pre_hook(site: Site, grids: list) -> Callable:
    """On the windowing block: the token grid it is about to cut (timm: x is (B, H, W, C);
    Hugging Face: ``input_dimensions``), kept as ``[height, width]`` until the attention reads it."""
    def hook(block: nn.Module, args: tuple, kwargs: dict) -> None:
        x = _first_tensor(args, kwargs, ("x", "hidden_states"))
        dims = kwargs.get("input_dimensions", kwargs.get("size", args[1] if len(args) > 1 and isinstance(args[1], (tuple, list)) else None))
        if dims is None and x is not None and x.dim() == 4:
            dims = (x.shape[1], x.shape[2])
        if dims is None:
            raise UnsupportedModelError(f"{site.name}: expected the token grid of its windowing block "
                                        f"{type(block).__name__} (a (B, H, W, C) input or input_dimensions), got neither")
        grids[:] = [tuple(int(d) for d in dims)]
    return hook


def _token_pre_hook(cap: Capture, site: Site, batch: list, grids: list, tokens: list) -> Callable:
    """timm / Hugging Face attention: note the input's tokens; windowed inputs get their grid (from the
    block's size, window and shift as they are now); other batch-folded inputs are refused; then the budget."""
    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = _first_tensor(args, kwargs, ("x", "hidden_states"))
        if x is None or x.dim() != 3:
            return
        rows, n = x.shape[0], x.shape[1]
        tokens[:] = [n]
        if site.window_block is not None:
            if not grids or not isinstance(grids[-1], tuple):
                raise UnsupportedModelError(f"{site.name}: expected its windowing block to run first, got the attention alone")
            block = site.window_block
            window = getattr(block, "window_size", None) or getattr(block, "ws")
            grid = WindowGrid(*grids[-1], pair(window), pair(getattr(block, "shift_size", 0)))
            grids[:] = [grid]
            images = batch[0] or rows // grid.token_index().shape[0]
            cap._check_budget(site, images, site.n_heads, grid.tokens, grid.tokens)
            return
        if batch[0] and rows != batch[0]:
            raise UnsupportedModelError(
                f"{site.name}: expected attention over the model's {batch[0]} inputs, got {rows} rows "
                f"({type(module).__name__} folds windows or groups into the batch axis; record other layers with layers=...)")
        cap._check_budget(site, rows, site.n_heads, n, n)
    return hook


def _install(cap: Capture, model: nn.Module, handles: list, restore: list) -> None:
    """Register hooks and flip flags for every selected site; undo actions go into ``restore``."""
    families = {s.family for s in cap.sites}
    batch = [0]
    switches = cap._switches  # (undo, redo) of every flag: verify's plain forward runs between them
    if "torch" in families:
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        restore.append(lambda: torch.backends.mha.set_fastpath_enabled(fastpath))
        switches.append((restore[-1], lambda: torch.backends.mha.set_fastpath_enabled(False)))
    if "hf" in families:
        _use_eager(model, restore, switches)
        _ask_for_attentions(cap, model, [s for s in cap.sites if s.family == "hf" and s.index is None], handles)
    for site in cap.sites:
        record = lambda weights, site=site: cap._record(site, weights)  # noqa: E731
        m = site.module
        if site.family == "attnbook":
            old = m.record_attention
            m.record_attention = True
            restore.append(lambda m=m, old=old: setattr(m, "record_attention", old))
            switches.append((restore[-1], lambda m=m: setattr(m, "record_attention", True)))
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, s=site: cap._check_budget(s, args[0].shape[0], mod.n_heads, args[0].shape[1], args[0].shape[1])))
            handles.append(m.hook_pattern.register_forward_hook(lambda _m, _i, out, r=record: r(out)))
        elif site.family == "torch":
            asked: list = []
            handles.append(m.register_forward_pre_hook(_mha_pre_hook(cap, site, asked), with_kwargs=True))
            handles.append(m.register_forward_hook(_mha_post_hook(cap, site, asked)))
        else:  # timm and Hugging Face: one pre-hook (batch, windows, budget), the weights read where each family has them
            grids: list[WindowGrid] = []
            tokens: list[int] = []
            if site.window_block is not None:  # first: the grid before the attention reads it
                handles.append(site.window_block.register_forward_pre_hook(_grid_pre_hook(site, grids), with_kwargs=True))
            handles.append(m.register_forward_pre_hook(_token_pre_hook(cap, site, batch, grids, tokens), with_kwargs=True))

            def record(weights, site=site, grids=grids):
                if weights is not None and grids:
                    if weights.dim() == 5:  # (batch, windows, heads, N, N), as Twins keeps it
                        weights = weights.flatten(0, 1)
                    weights = scatter(weights, grids[-1], batch[0] or weights.shape[0] // grids[-1].token_index().shape[0])
                    cap.grids[id(site)] = grids[-1]
                elif weights is not None and batch[0] and weights.dim() == 4 and weights.shape[0] != batch[0]:
                    raise UnsupportedModelError(
                        f"{site.name}: expected attention over the model's {batch[0]} inputs, got weights of shape {tuple(weights.shape)} "
                        f"({type(site.module).__name__} folds windows or partitions into the batch axis; record other layers with layers=...)")
                cap._record(site, weights)

            if site.family == "timm":
                if hasattr(m, "fused_attn"):
                    old = m.fused_attn
                    m.fused_attn = False
                    restore.append(lambda m=m, old=old: setattr(m, "fused_attn", old))
                    switches.append((restore[-1], lambda m=m: setattr(m, "fused_attn", False)))
                handles.append(m.attn_drop.register_forward_hook(_token_check(site, tokens)))
                handles.append(m.attn_drop.register_forward_hook(lambda _m, _i, out, r=record: r(out)))
            else:
                handles.append(m.register_forward_hook(lambda _m, _i, out, r=record, s=site: r(_hf_weights(out, s))))

    def pre(_m, args, kwargs):
        if cap._paused:
            return
        x = _first_tensor(args, kwargs, ("input_ids", "pixel_values", "input_features", "inputs_embeds", "x"))
        batch[0] = x.shape[0] if x is not None and x.dim() >= 2 and "torch" not in families else 0
        if cap._generation is not None:
            cap._generation.start_pass(kwargs)
        else:
            for which in ("input_ids", "decoder_input_ids"):
                ids = kwargs.get(which)
                if isinstance(ids, torch.Tensor) and ids.dim() == 2:
                    cap.inputs.setdefault(which, []).append(ids.detach().cpu())
        cap._start()

    def post(_m, _i, _o):
        if not cap._paused:
            cap._finish(type(model).__name__)

    handles.append(model.register_forward_pre_hook(pre, with_kwargs=True))
    handles.append(model.register_forward_hook(post))
    if "hf" in families:
        _follow_generate(cap, model, batch, pre, post, restore)


def _follow_generate(cap: Capture, model: nn.Module, batch: list, pre: Callable, post: Callable, restore: list) -> None:
    """``generate`` of every outermost Hugging Face model inside ``model`` followed while the block is
    open (an instance attribute, removed on exit): options checked first, then each pass noted, then
    the returned sequences assembled (:mod:`attnbook.capture.generation`)."""
    from transformers import PreTrainedModel

    outermost: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, PreTrainedModel) and callable(getattr(m, "generate", None)) and not any(m in list(o.modules()) for o in outermost):
            outermost.append(m)
    for hf in outermost:
        original = hf.generate
        had = "generate" in vars(hf)

        @functools.wraps(original)
        def generate(*args: Any, _hf: nn.Module = hf, _original: Callable = original, **kwargs: Any) -> Any:
            if cap._generation is not None:
                raise UnsupportedGenerationError("generate under capture: expected one generate call at a time, got a nested one")
            strategy, config = refuse_unsupported(_hf, args, kwargs)
            gen = Generation(_hf, strategy, config, bool(getattr(_hf.config, "is_encoder_decoder", False)), _prompt_of(args, kwargs))
            extra = []
            if _hf is not model:  # its passes are seen on the model that generates
                extra = [_hf.register_forward_pre_hook(pre, with_kwargs=True), _hf.register_forward_hook(post)]
            if hasattr(_hf, "_reorder_cache"):
                reorder = _hf._reorder_cache

                def _reorder_cache(cache: Any, beam_idx: torch.Tensor) -> Any:
                    gen.note_reorder(beam_idx)
                    return reorder(cache, beam_idx)
                _hf._reorder_cache = _reorder_cache
            batch[0] = 0
            cap._generation = gen
            before, added = cap._bytes, 0  # the passes' bytes are let go once assembled (or refused)
            try:
                out = _original(*args, **kwargs)
                sequences = out if isinstance(out, torch.Tensor) else out.sequences
                if not gen.passes:
                    raise NothingCapturedError("generate under capture: expected forward passes of the model, got none")
                layout = _layout_of(gen.encoder + gen.passes[0].records)
                assembled = gen.assemble(sequences, layout, cap.dtype, cap._check_assembled)
                cap.generations.append(assembled)
                added = sum(w.numel() * w.element_size() for w in assembled.weights)
            finally:
                gen.close()
                cap._generation = None
                cap._bytes = before + added
                for h in extra:
                    h.remove()
                if "_reorder_cache" in vars(_hf):
                    del _hf._reorder_cache
            return out

        hf.generate = generate
        restore.append(lambda hf=hf, had=had, original=original: setattr(hf, "generate", original) if had else vars(hf).pop("generate", None))


def _prompt_of(args: tuple, kwargs: dict) -> dict:
    """The batch size, encoder token ids and attention mask of a ``generate`` call, as the caller gave them."""
    inputs = args[0] if args and isinstance(args[0], torch.Tensor) else None
    for key in ("inputs", "input_ids", "input_features", "input_values", "pixel_values", "inputs_embeds"):
        if inputs is None and isinstance(kwargs.get(key), torch.Tensor):
            inputs = kwargs[key]
    mask = kwargs.get("attention_mask")
    decoder = kwargs.get("decoder_input_ids")
    return {"batch": int(inputs.shape[0]) if inputs is not None else 1,
            "decoder_input_ids": decoder.detach().cpu() if isinstance(decoder, torch.Tensor) else None,
            "input_ids": inputs.detach().cpu() if inputs is not None and not inputs.is_floating_point() and inputs.dim() == 2 else None,
            "attention_mask": mask.detach().cpu() if isinstance(mask, torch.Tensor) else None}


#: verify=True: outputs with and without capture agree when abs(Δ) ≤ OUTPUTS_TOLERANCE · max(1, max abs(output))
OUTPUTS_TOLERANCE = 1e-4


def _warn_known_divergences(model: nn.Module, sites: list[Site]) -> None:
    """Warn for every model inside ``model`` whose recorded path is known to change its outputs
    (:func:`attnbook.capture.divergence.divergences`), where a selected layer lies inside it."""
    from .divergence import divergences

    for name, found in divergences(model):
        inner = model.get_submodule(name) if name else model
        if not any(s.module in list(inner.modules()) for s in sites):
            continue
        warnings.warn(CaptureChangesOutputsWarning(
            f"{name or type(model).__name__}: capture records the path that returns the weights, and for this family "
            f"that path computes something else: {found.message()} The maps describe that path, not the model's usual one; "
            f"pass verify=True to measure it on your input."), stacklevel=4)


@contextmanager
def _suspended(cap: Capture) -> Iterator[None]:
    """Every flag capture set put back as the model had it and every hook passing through, inside the block."""
    cap._paused = True
    for undo, _ in reversed(cap._switches):
        undo()
    try:
        yield
    finally:
        for _, redo in cap._switches:
            redo()
        cap._paused = False


def _install_verify(cap: Capture, model: nn.Module, handles: list) -> None:
    """``verify=True``: before the block's first recorded forward, the same call without capture (on a
    deep copy of its arguments, so a cache is not advanced twice); after it, the outputs compared."""
    plain: list = []

    def pre(_m, args, kwargs):
        if cap._paused or cap.verified is not None or plain:
            return
        with torch.no_grad(), _suspended(cap):
            plain.append((model.forward(*copy.deepcopy(args), **copy.deepcopy(kwargs)), kwargs.get("attention_mask")))

    def post(_m, _args, _kwargs, out):
        if cap._paused or not plain or cap.verified is not None:
            return
        reference, mask = plain.pop()
        diff, scale = _outputs_gap(reference, out, mask)
        changed = not diff <= OUTPUTS_TOLERANCE * max(1.0, scale)
        cap.verified = {"max_diff": diff, "tolerance": OUTPUTS_TOLERANCE * max(1.0, scale), "changed": changed}
        if changed:
            warnings.warn(CaptureChangesOutputsWarning(
                f"{type(model).__name__}: outputs under capture differ from the same call without it by {diff:.3g} "
                f"(tolerance {cap.verified['tolerance']:.3g}): the path that records the weights computes something else "
                f"than the model's usual path, and the maps describe the recording path"), stacklevel=2)

    handles.append(model.register_forward_pre_hook(pre, with_kwargs=True, prepend=True))
    handles.append(model.register_forward_hook(post, with_kwargs=True))


def _outputs_gap(plain: Any, recorded: Any, mask: Any) -> tuple[float, float]:
    """Largest abs(Δ) between the floating-point outputs of two calls (attention fields and caches left
    out; at real tokens where ``mask`` (batch, tokens) matches), and the largest abs(output)."""
    def leaves(out: Any) -> list[torch.Tensor]:
        if isinstance(out, torch.Tensor):
            return [out] if out.is_floating_point() else []
        if hasattr(out, "to_tuple") and hasattr(out, "keys"):
            return [t for k in out.keys() if k not in _ATTENTION_OUTPUTS for t in leaves(out[k])]
        if isinstance(out, (tuple, list)):
            return [t for o in out for t in leaves(o)]
        return []
    diff = scale = 0.0
    for a, b in zip(leaves(plain), leaves(recorded)):
        if a.shape != b.shape:
            continue
        if isinstance(mask, torch.Tensor) and a.dim() >= 2 and tuple(a.shape[:2]) == tuple(mask.shape):
            a, b = a[mask.bool()], b[mask.bool()]
        if a.numel():
            diff = max(diff, float((a.double() - b.double()).abs().max()))
            scale = max(scale, float(a.double().abs().max()))
    return diff, scale


def _hf_weights(out: Any, site: Site) -> torch.Tensor | None:
    """The weights in a Hugging Face attention module's output: the declared position, or the first
    4-D tensor after the hidden states."""
    if not isinstance(out, tuple):
        return out if site.index is not None and isinstance(out, torch.Tensor) else None
    if site.index is not None:
        return out[site.index]
    return next((o for o in out[1:] if isinstance(o, torch.Tensor) and o.dim() == 4), None)


def _ask_for_attentions(cap: Capture, model: nn.Module, sites: list[Site], handles: list) -> None:
    """A Hugging Face model that declares no recorders returns weights only when asked: pass
    ``output_attentions=True`` into its outermost model and take the attentions out of the output
    again when the caller did not ask for them."""
    if not sites:
        return
    from transformers import PreTrainedModel

    roots = [m for name, m in model.named_modules() if isinstance(m, PreTrainedModel)
             and any(s.module in list(m.modules()) for s in sites)]
    outermost = [m for m in roots if not any(m is not o and m in list(o.modules()) for o in roots)]
    for root in outermost:
        injected: list[bool] = []

        def pre(_m, args, kwargs, injected=injected):
            if cap._paused:  # verify's plain forward: the call as the caller made it
                injected.append(False)
                return args, kwargs
            asked = bool(kwargs.get("output_attentions"))
            injected.append(not asked)
            if not asked:
                kwargs["output_attentions"] = True
            return args, kwargs

        def post(_m, _args, _kwargs, out, injected=injected):
            if not injected.pop():
                return out
            return _without_attentions(out)

        handles.append(root.register_forward_pre_hook(pre, with_kwargs=True, prepend=True))
        handles.append(root.register_forward_hook(post, with_kwargs=True))


def _without_attentions(out: Any) -> Any:
    """``out`` as the model returns it without ``output_attentions``: attention fields left unset."""
    keys = getattr(out, "keys", None)
    if callable(keys) and hasattr(out, "to_tuple"):  # a transformers ModelOutput
        return type(out)(**{k: v for k, v in out.items() if k not in _ATTENTION_OUTPUTS})
    if isinstance(out, tuple):  # return_dict=False: drop the tuples of weights
        def is_weights(x: Any) -> bool:
            return isinstance(x, tuple) and len(x) > 0 and all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in x)
        return tuple(o for o in out if not is_weights(o))
    return out


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Every outermost Hugging Face model inside ``model`` on eager attention inside the block (the
    path that computes the weights), its own implementation restored after — exception or not."""
    restore: list[Callable[[], None]] = []
    try:
        _use_eager(model, restore)
        yield model
    finally:
        for undo in reversed(restore):
            undo()


def _use_eager(model: nn.Module, restore: list, switches: list | None = None) -> None:
    """Switch every outermost Hugging Face model inside ``model`` to eager attention."""
    from transformers import PreTrainedModel

    seen: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, PreTrainedModel) and not any(module in list(s.modules()) for s in seen):
            seen.append(module)
            old = module.config._attn_implementation
            if old not in EAGER_PATHS:
                try:
                    module.set_attn_implementation("eager")
                except (ValueError, AttnbookError) as exc:  # a model with no eager path
                    raise UnsupportedModelError(f"{type(module).__name__}: expected an eager attention path to read the weights from, "
                                                f"got {type(exc).__name__}: {exc}") from exc
                restore.append(lambda m=module, old=old: m.set_attn_implementation(old))
                if switches is not None:
                    switches.append((restore[-1], lambda m=module: m.set_attn_implementation("eager")))

