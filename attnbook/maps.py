"""``AttentionMaps``: the one data type every chapter passes around.

``weights`` has shape ``(layers, batch, heads, queries, keys)``; row ``weights[l, b, h, i]`` is
the distribution of query ``i`` over the keys and sums to 1 over the keys its mask allows.
Rows are queries, columns are keys (every heatmap puts keys on x, queries on y).

``mask`` (optional, bool, ``(batch, queries, keys)``) is True where a key is allowed for a query.
A query row with no allowed key (a padding query) is *invalid*: it is not checked and metrics skip
it. Labels are per sample: ``query_labels[b][i]`` names query ``i`` of sample ``b``; a single flat
list is taken to hold for every sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .errors import InvalidInputError, OutOfRangeError, bad_argument

ROW_SUM_TOLERANCE = 1e-3

Labels = Sequence[Sequence[str]]


def _normalise_labels(name: str, labels, batch: int, length: int) -> tuple[tuple[str, ...], ...] | None:
    if labels is None:
        return None
    labels = list(labels)
    if labels and all(isinstance(x, str) for x in labels):
        labels = [labels] * batch
    if len(labels) != batch:
        raise bad_argument(InvalidInputError, name, f"one label list per sample ({batch})", f"{len(labels)} lists", raw=True)
    out = []
    for b, row in enumerate(labels):
        row = tuple(str(x) for x in row)
        if len(row) != length:
            raise bad_argument(InvalidInputError, f"{name}[{b}]", f"{length} labels", f"{len(row)} labels", raw=True)
        out.append(row)
    return tuple(out)


def check_index(argument: str, index: int, size: int) -> int:
    """Return ``index`` (negative counts from the end) or raise ``OutOfRangeError``."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise bad_argument(OutOfRangeError, argument, f"an integer in [0, {size})", index)
    if not -size <= index < size:
        raise bad_argument(OutOfRangeError, argument, f"an integer in [0, {size})", index, raw=True)
    return index % size


def _indices(argument: str, selection, size: int) -> list[int]:
    if selection is None:
        return list(range(size))
    if isinstance(selection, int):
        return [check_index(argument, selection, size)]
    chosen = [check_index(argument, i, size) for i in selection]
    if not chosen:
        raise bad_argument(InvalidInputError, argument, "at least one index", list(selection), raw=True)
    return chosen


@dataclass(frozen=True, eq=False)
class AttentionMaps:
    """Attention weights of several layers, validated on construction.

    Raises ``InvalidInputError`` for a tensor that is not 5-D, not floating point, holds
    non-finite values or negative weights, has valid rows that do not sum to 1 (±1e-3), or
    whose mask, names or labels do not fit its shape.
    """

    weights: torch.Tensor
    layer_names: tuple[str, ...] = ()
    query_labels: Labels | None = None
    key_labels: Labels | None = None
    mask: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = self.weights
        if not isinstance(w, torch.Tensor):
            raise bad_argument(InvalidInputError, "weights", "a torch.Tensor", type(w).__name__, raw=True)
        if w.dim() != 5:
            raise bad_argument(
                InvalidInputError, "weights", "rank 5 (layers, batch, heads, queries, keys)", f"rank {w.dim()} with shape {tuple(w.shape)}", raw=True
            )
        if not w.is_floating_point():
            raise bad_argument(InvalidInputError, "weights", "a floating-point tensor", w.dtype, raw=True)
        w = w.detach().to(torch.float32)
        if not torch.isfinite(w).all():
            bad = int((~torch.isfinite(w)).sum())
            raise bad_argument(InvalidInputError, "weights", "finite values", f"{bad} non-finite entries", raw=True)
        if (w < 0).any():
            raise bad_argument(InvalidInputError, "weights", "non-negative weights", f"minimum {float(w.min()):.3g}", raw=True)
        L, B, H, Q, K = w.shape
        names = tuple(self.layer_names) if self.layer_names else tuple(f"layer{i}" for i in range(L))
        if len(names) != L:
            raise bad_argument(InvalidInputError, "layer_names", f"{L} names", f"{len(names)} names", raw=True)
        mask = self.mask
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise bad_argument(InvalidInputError, "mask", "a bool tensor", mask, raw=False)
            if tuple(mask.shape) != (B, Q, K):
                raise bad_argument(InvalidInputError, "mask", f"shape {(B, Q, K)}", tuple(mask.shape), raw=True)
            mask = mask.to(w.device)
            if (w * (~mask)[None, :, None]).abs().max() > ROW_SUM_TOLERANCE:
                raise bad_argument(InvalidInputError, "weights", "zero weight on keys the mask forbids", "weight on masked keys", raw=True)
            valid_rows = mask.any(-1)[None, :, None].expand(L, B, H, Q)
        else:
            valid_rows = torch.ones(L, B, H, Q, dtype=torch.bool, device=w.device)
        sums = w.sum(-1)
        err = (sums - 1).abs()[valid_rows]
        if err.numel() and float(err.max()) > ROW_SUM_TOLERANCE:
            raise bad_argument(
                InvalidInputError, "weights", "rows summing to 1 over the keys", f"a row summing to {float(sums[valid_rows][err.argmax()]):.4f}", raw=True
            )
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "layer_names", names)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "query_labels", _normalise_labels("query_labels", self.query_labels, B, Q))
        object.__setattr__(self, "key_labels", _normalise_labels("key_labels", self.key_labels, B, K))

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def batch_size(self) -> int:
        return self.weights.shape[1]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[2]

    @property
    def n_queries(self) -> int:
        return self.weights.shape[3]

    @property
    def n_keys(self) -> int:
        return self.weights.shape[4]

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return tuple(self.weights.shape)  # type: ignore[return-value]

    def key_mask(self) -> torch.Tensor:
        """Bool ``(batch, queries, keys)``: the given mask, or all True."""
        if self.mask is not None:
            return self.mask
        B, Q, K = self.batch_size, self.n_queries, self.n_keys
        return torch.ones(B, Q, K, dtype=torch.bool, device=self.weights.device)

    def valid_queries(self) -> torch.Tensor:
        """Bool ``(batch, queries)``: rows with at least one allowed key."""
        return self.key_mask().any(-1)

    # -- selection ---------------------------------------------------------------------------
    def layer_index(self, layer: int | str) -> int:
        """Index of ``layer`` given as an integer or one of ``layer_names``."""
        if isinstance(layer, str):
            if layer not in self.layer_names:
                raise bad_argument(OutOfRangeError, "layer", f"one of {list(self.layer_names)}", layer)
            return self.layer_names.index(layer)
        return check_index("layer", layer, self.n_layers)

    def head(self, layer: int | str, head: int, sample: int = 0) -> torch.Tensor:
        """The ``(queries, keys)`` map of one head of one sample."""
        l = self.layer_index(layer)
        h = check_index("head", head, self.n_heads)
        b = check_index("sample", sample, self.batch_size)
        return self.weights[l, b, h]

    def select(self, layers=None, samples=None, heads=None) -> "AttentionMaps":
        """A new ``AttentionMaps`` restricted to the given layers/samples/heads (int or list)."""
        ls = [self.layer_index(x) for x in ([layers] if isinstance(layers, (int, str)) else layers)] if layers is not None else list(range(self.n_layers))
        if not ls:
            raise bad_argument(InvalidInputError, "layers", "at least one layer", [], raw=True)
        bs = _indices("samples", samples, self.batch_size)
        hs = _indices("heads", heads, self.n_heads)
        w = self.weights[ls][:, bs][:, :, hs]
        pick = lambda labels: None if labels is None else [labels[b] for b in bs]  # noqa: E731
        return AttentionMaps(
            weights=w,
            layer_names=tuple(self.layer_names[i] for i in ls),
            query_labels=pick(self.query_labels),
            key_labels=pick(self.key_labels),
            mask=None if self.mask is None else self.mask[bs],
            meta=dict(self.meta),
        )

    def tokens(self, sample: int = 0) -> list[str] | None:
        """Key labels of one sample (the tokens, for a self-attention model)."""
        b = check_index("sample", sample, self.batch_size)
        return None if self.key_labels is None else list(self.key_labels[b])

    def n_valid_keys(self, sample: int = 0) -> int:
        """Number of keys that at least one query of ``sample`` may attend to (unpadded length)."""
        b = check_index("sample", sample, self.batch_size)
        return int(self.key_mask()[b].any(0).sum())

    def __repr__(self) -> str:
        L, B, H, Q, K = self.shape
        return f"AttentionMaps(layers={L}, batch={B}, heads={H}, queries={Q}, keys={K}, masked={self.mask is not None})"
