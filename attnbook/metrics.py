"""Metrics of attention maps: concentration, pattern strengths, span, head similarity, attribution.

Conventions used by every function here:

* Natural logarithms everywhere (entropies and divergences are in nats).
* Rows are queries ``i``, columns keys ``j``. When there are fewer queries than keys the queries
  are aligned to the *last* ``Q`` keys (a causal model with a cache, or a query token at the end of
  a history): query ``i`` sits at key position ``pos(i) = i + (K - Q)``. The *lag* of a cell is
  ``pos(i) - j`` (positive = the key lies in the past) and its *distance* is ``|pos(i) - j|``.
* A query row with no allowed key (``maps.mask`` all False, a padding query) is *invalid* and is
  skipped. Masked keys are excluded: ``n_valid`` of a row is its number of allowed keys.
* A *per-head* metric returns a float tensor ``(L, B, H)``: for each layer, sample and head, the
  mean over the valid query rows of a per-row quantity. A sample without any valid row gives NaN.
* A key is *real* in a sample when at least one query of that sample may attend to it (padding keys
  are not real). Metrics that look at "the key at position p" treat a key that is not real as
  missing, so appending a padding query and key to the maps changes no per-head metric.

Every function raises :class:`~attnbook.errors.InvalidInputError` (or ``OutOfRangeError`` for an
index) with a message naming the argument, what was expected and what was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from . import checks
from .errors import InvalidInputError, bad_argument
from .maps import AttentionMaps, check_index

__all__ = [
    "js_divergence",
    "row_entropy",
    "entropy",
    "gini",
    "top_k_mass",
    "max_weight",
    "min_weight",
    "mean_weight",
    "row_focus",
    "offset_mass",
    "self_mass",
    "previous_token_mass",
    "next_token_mass",
    "key_mass",
    "diagonal_band_mass",
    "column_stripe",
    "label_mass",
    "mean_distance",
    "span_quantile",
    "lag_profile",
    "recency_ratio",
    "head_diversity",
    "head_distances",
    "cross_layer_js",
    "cross_layer_cosine",
    "token_importance",
    "rollout",
    "gradient_rollout",
    "attention_flow",
    "pattern_score",
    "induction_score",
    "classify_heads",
    "head_summary",
]

LN2 = math.log(2.0)
EPS = 1e-12
#: Elements of one temporary in the pairwise divergence loops (bounds their memory to ~64 MiB).
_CHUNK_ELEMENTS = 1 << 24
#: Integer scale of the capacities handed to scipy's maximum_flow.
FLOW_SCALE = 1_000_000


# ------------------------------------------------------------------------------------------------
# argument checks
# ------------------------------------------------------------------------------------------------
def _check_maps(maps) -> AttentionMaps:
    if not isinstance(maps, AttentionMaps):
        raise bad_argument(InvalidInputError, "maps", "an AttentionMaps", type(maps).__name__, raw=True)
    return maps


def _check_labels(name: str, labels) -> frozenset[str]:
    if isinstance(labels, str):
        return frozenset([labels])
    try:
        items = list(labels)
    except TypeError:
        raise bad_argument(InvalidInputError, name, "a set of label strings", labels) from None
    bad = [x for x in items if not isinstance(x, str)]
    if bad:
        raise bad_argument(InvalidInputError, name, "a set of label strings", f"non-string label {bad[0]!r}", raw=True)
    return frozenset(items)


def _check_square(maps: AttentionMaps, what: str) -> int:
    Q, K = maps.n_queries, maps.n_keys
    if Q != K:
        raise bad_argument(
            InvalidInputError, "maps", f"square maps (queries == keys) for {what}", f"{Q} queries and {K} keys", raw=True
        )
    return Q


def _key_label_mask(maps: AttentionMaps, labels: frozenset[str], what: str) -> Tensor:
    """Bool ``(B, K)``: keys whose label is in ``labels``."""
    if maps.key_labels is None:
        raise bad_argument(InvalidInputError, "maps.key_labels", f"key labels for {what}", None, raw=True)
    rows = [[lab in labels for lab in sample] for sample in maps.key_labels]
    return torch.tensor(rows, dtype=torch.bool, device=maps.weights.device).reshape(maps.batch_size, maps.n_keys)


# ------------------------------------------------------------------------------------------------
# shared preparation
# ------------------------------------------------------------------------------------------------
class _Ctx:
    """Everything the metrics share, computed once per call (lazily for the costly parts)."""

    def __init__(self, maps: AttentionMaps):
        _check_maps(maps)
        self.maps = maps
        self.L, self.B, self.H, self.Q, self.K = maps.shape
        w = maps.weights.contiguous()
        self.device = w.device
        self.mask = maps.mask  # (B, Q, K) or None
        if self.mask is not None:
            w = w * self.mask[None, :, None]  # masked cells exactly 0 (the check allows 1e-3)
        self.w = w
        if self.mask is None:
            self.valid = torch.ones(self.B, self.Q, dtype=torch.bool, device=self.device)
            self.n_keys = torch.full((self.B, self.Q), float(self.K), device=self.device)
            self.real_keys = torch.ones(self.B, self.K, dtype=torch.bool, device=self.device)
        else:
            self.valid = self.mask.any(-1)
            self.n_keys = self.mask.sum(-1).to(torch.float32)
            self.real_keys = self.mask.any(-2)
        self.n_rows = self.valid.sum(-1).to(torch.float32)  # (B,)
        self.pos = torch.arange(self.Q, device=self.device) + (self.K - self.Q)  # (Q,)
        self.lag = self.pos[:, None] - torch.arange(self.K, device=self.device)[None, :]  # (Q, K)

    # -- row helpers ------------------------------------------------------------------------------
    def row_mean(self, x: Tensor) -> Tensor:
        """``(L, B, H, Q)`` -> ``(L, B, H)``: mean over the valid rows (NaN-safe on invalid ones)."""
        if self.mask is None:
            return x.mean(-1)
        x = torch.where(self.valid[None, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        return x.sum(-1) / self.n_rows[None, :, None]

    def rows_mean(self, x: Tensor, rows: Tensor) -> Tensor:
        """Mean of ``x (L, B, H, n)`` over the rows selected by ``rows (B, n)``."""
        sel = rows.to(x.dtype)[None, :, None]
        return (x * sel).sum(-1) / sel.sum(-1)

    def nan_invalid(self, x: Tensor) -> Tensor:
        if self.mask is None:
            return x
        return torch.where(self.valid[None, :, None], x, torch.full((), float("nan"), dtype=x.dtype, device=x.device))

    # -- cached quantities ------------------------------------------------------------------------
    @cached_property
    def xlogx(self) -> Tensor:
        """``Σ_j p_j log p_j`` per row, ``(L, B, H, Q)`` (0 on invalid rows)."""
        return torch.special.xlogy(self.w, self.w).sum(-1)

    @cached_property
    def row_sum(self) -> Tensor:
        return self.w.sum(-1)

    @cached_property
    def sorted(self) -> Tensor:
        """Rows sorted ascending; masked keys first, as 0."""
        x = self.w if self.mask is None else self.w.masked_fill(~self.mask[None, :, None], -1.0)
        if x.device.type == "cpu":
            # numpy's SIMD sort is ~10x faster than torch.sort on CPU for short rows
            out = torch.from_numpy(np.sort(x.numpy(), axis=-1))
        else:
            out = torch.sort(x, dim=-1).values
        return out if self.mask is None else out.clamp_min_(0.0)

    @cached_property
    def col_sum(self) -> Tensor:
        """``Σ_i A[i, j]`` over the (valid) rows, ``(L, B, H, K)``."""
        return self.w.sum(-2)

    @cached_property
    def head_mean(self) -> Tensor:
        """``Ā_l = mean_h A_l``, ``(L, B, Q, K)``."""
        return self.w.mean(2)


def _ctx(maps) -> _Ctx:
    return _Ctx(maps)


# ------------------------------------------------------------------------------------------------
# 1. Jensen-Shannon divergence
# ------------------------------------------------------------------------------------------------
def js_divergence(p: Tensor, q: Tensor, dim: int = -1) -> Tensor:
    """Jensen–Shannon divergence between distributions along ``dim`` (natural log).

    ``JS(p, q) = ½ Σ_j p_j log(p_j / m_j) + ½ Σ_j q_j log(q_j / m_j)`` with ``m = (p + q) / 2``
    and ``0 · log 0 = 0``. It is symmetric and lies in ``[0, ln 2]`` (``ln 2`` for disjoint
    supports); the result is clamped to that range against rounding. ``p`` and ``q`` must be
    non-negative, finite and broadcastable; they are used as given (not renormalised).
    """
    for name, x in (("p", p), ("q", q)):
        if not isinstance(x, Tensor):
            raise bad_argument(InvalidInputError, name, "a torch.Tensor", type(x).__name__, raw=True)
        if not torch.isfinite(x).all() or (x < 0).any():
            raise bad_argument(InvalidInputError, name, "finite non-negative values", x)
    try:
        p, q = torch.broadcast_tensors(p, q)
    except RuntimeError:
        raise bad_argument(InvalidInputError, "q", f"a shape broadcastable with p {tuple(p.shape)}", tuple(q.shape), raw=True) from None
    dtype = torch.promote_types(torch.promote_types(p.dtype, q.dtype), torch.float32)
    p, q = p.to(dtype), q.to(dtype)
    s = p + q
    safe = torch.where(s > 0, s, torch.ones((), dtype=dtype, device=s.device))
    js = 0.5 * (torch.special.xlogy(p, 2 * p / safe) + torch.special.xlogy(q, 2 * q / safe)).sum(dim)
    return js.clamp(0.0, LN2)


# ------------------------------------------------------------------------------------------------
# 2. entropy
# ------------------------------------------------------------------------------------------------
def _row_entropy(c: _Ctx) -> Tensor:
    h = -c.xlogx
    return torch.minimum(h.clamp_min(0.0), c.n_keys.clamp_min(1.0).log()[None, :, None])


def row_entropy(maps: AttentionMaps) -> Tensor:
    """Entropy of every query row, ``(L, B, H, Q)``: ``H(p) = -Σ_j p_j log p_j`` over allowed keys.

    Lies in ``[0, log n_valid]`` (clamped against rounding); NaN on invalid (padding) rows.
    """
    c = _ctx(maps)
    return c.nan_invalid(_row_entropy(c))


def _entropy(c: _Ctx, normalized: bool) -> Tensor:
    h = _row_entropy(c)
    if normalized:
        logn = c.n_keys.log()[None, :, None]
        h = torch.where(logn > 0, h / torch.where(logn > 0, logn, 1.0), torch.zeros((), device=h.device)).clamp(0.0, 1.0)
    return c.row_mean(h)


def entropy(maps: AttentionMaps, normalized: bool = False) -> Tensor:
    """Mean row entropy per head, ``(L, B, H)``.

    ``H(p) = -Σ_j p_j log p_j`` (nats) averaged over valid rows. With ``normalized=True`` each row
    is divided by its maximum: ``H(p) / log(n_valid)`` in ``[0, 1]`` (1 = uniform over the allowed
    keys); a row with a single allowed key gives 0.
    """
    return _entropy(_ctx(maps), bool(normalized))


# ------------------------------------------------------------------------------------------------
# 3. Gini
# ------------------------------------------------------------------------------------------------
def _gini(c: _Ctx) -> Tensor:
    x = c.sorted  # ascending, masked keys first as 0
    K = c.K
    r = torch.arange(1, K + 1, device=c.device, dtype=x.dtype)
    if c.mask is None:
        coef = 2 * r - K - 1  # (K,)
        num = x @ coef
        n = torch.full((), float(K), device=c.device)
        denom = n * c.row_sum
        g = num / denom
        return g.clamp(0.0, (K - 1) / K)
    n = c.n_keys[None, :, None]  # (1, B, 1, Q)
    # the rank among the valid keys is r - (K - n) and masked positions hold 0, so
    # Σ (2(r - K + n) - n - 1) x_(r) = Σ (2r - K - 1) x_(r) + (n - K) Σ x_(r)
    num = x @ (2 * r - K - 1) + (n - K) * c.row_sum
    g = num / (n * c.row_sum)
    upper = (n - 1) / n.clamp_min(1.0)
    return torch.minimum(g.clamp_min(0.0), upper)


def gini(maps: AttentionMaps) -> Tensor:
    """Gini coefficient of each row over its allowed keys, averaged over valid rows: ``(L, B, H)``.

    ``G = Σ_i Σ_j |p_i - p_j| / (2 n Σ_j p_j)``, computed from the ascending values ``x_(1..n)`` as
    ``G = Σ_r (2r - n - 1) x_(r) / (n Σ_r x_(r))`` (O(n log n)). 0 for a uniform row,
    ``(n - 1)/n`` for a one-hot row, so always in ``[0, 1)``.
    """
    c = _ctx(maps)
    return c.row_mean(_gini(c))


# ------------------------------------------------------------------------------------------------
# 4. concentration
# ------------------------------------------------------------------------------------------------
def top_k_mass(maps: AttentionMaps, k: int = 3) -> Tensor:
    """Mass of the ``k`` largest weights of each row, averaged over valid rows: ``(L, B, H)``.

    ``top_k(p) = Σ_{r > n - k} x_(r)`` for ascending ``x``; ``1 ≤ k ≤ K`` (number of keys).
    """
    c = _ctx(maps)
    k = checks.integer("k", k, 1, c.K)
    return c.row_mean(c.sorted[..., c.K - k :].sum(-1))


def _max_weight(c: _Ctx) -> Tensor:
    return c.w.amax((-2, -1))


def max_weight(maps: AttentionMaps) -> Tensor:
    """Largest weight of each head map of each sample: ``max_{i,j} A[i, j]``, ``(L, B, H)``."""
    return _max_weight(_ctx(maps))


def _min_weight(c: _Ctx) -> Tensor:
    if c.mask is None:
        return c.w.amin((-2, -1))
    x = c.w.masked_fill(~c.mask[None, :, None], float("inf")).amin((-2, -1))
    return torch.where(torch.isinf(x), torch.full((), float("nan"), device=x.device), x)


def min_weight(maps: AttentionMaps) -> Tensor:
    """Smallest weight over the allowed cells of each head map: ``min_{(i,j) allowed} A[i, j]``, ``(L, B, H)``."""
    return _min_weight(_ctx(maps))


def _mean_weight(c: _Ctx) -> Tensor:
    total = c.w.sum((-2, -1))
    cells = float(c.Q * c.K) if c.mask is None else c.mask.sum((-2, -1)).to(torch.float32)[None, :, None]
    return total / cells


def mean_weight(maps: AttentionMaps) -> Tensor:
    """Mean weight over the allowed cells of the valid rows, ``(L, B, H)``.

    ``mean = Σ_{(i,j) allowed} A[i, j] / #allowed cells`` (``1/K`` without a mask, since rows sum to 1).
    """
    return _mean_weight(_ctx(maps))


def _row_focus(c: _Ctx, use_sorted: bool = False) -> Tensor:
    mx = c.sorted[..., -1] if use_sorted else c.w.amax(-1)
    return c.row_mean(mx)


def row_focus(maps: AttentionMaps) -> Tensor:
    """Mean over valid rows of the row maximum: ``mean_i max_j A[i, j]``, ``(L, B, H)``."""
    return _row_focus(_ctx(maps))


# ------------------------------------------------------------------------------------------------
# 5. pattern strengths
# ------------------------------------------------------------------------------------------------
def _diag_mass(c: _Ctx, offset: int, min_pos: int | None = None) -> Tensor:
    """Mean over valid rows of ``A[i, pos(i) + offset]``, over rows where that key is real."""
    d = (c.K - c.Q) + offset  # key index j = i + d
    nan = torch.full((c.L, c.B, c.H), float("nan"), device=c.device)
    if d >= c.K or d <= -c.Q:
        return nan
    vals = c.w.diagonal(offset=d, dim1=-2, dim2=-1)  # (L, B, H, n): rows i0 .. i0 + n - 1
    n = vals.shape[-1]
    i0 = max(0, -d)
    rows = torch.arange(i0, i0 + n, device=c.device)
    sel = c.valid[:, rows] & c.real_keys[:, rows + d]  # (B, n)
    if min_pos is not None:
        sel = sel & (c.pos[rows] >= min_pos)[None, :]
    return c.rows_mean(vals, sel)


def offset_mass(maps: AttentionMaps, offset: int) -> Tensor:
    """Mass on the key at a fixed offset from the query's position, ``(L, B, H)``.

    ``m = mean_i A[i, pos(i) + offset]`` over the valid rows ``i`` whose target key exists (lies in
    ``[0, K)`` and is a real key of the sample); a target key that the row's mask forbids counts
    as 0. ``offset = 0`` is the self mass, ``-1`` the previous-token mass, ``+1`` the next-token
    mass. NaN when no row has its target key.
    """
    c = _ctx(maps)
    return _diag_mass(c, checks.integer("offset", offset))


def self_mass(maps: AttentionMaps) -> Tensor:
    """``mean_i A[i, pos(i)]`` — :func:`offset_mass` with ``offset=0``."""
    return offset_mass(maps, 0)


def previous_token_mass(maps: AttentionMaps) -> Tensor:
    """``mean_i A[i, pos(i) - 1]`` — :func:`offset_mass` with ``offset=-1``."""
    return offset_mass(maps, -1)


def next_token_mass(maps: AttentionMaps) -> Tensor:
    """``mean_i A[i, pos(i) + 1]`` — :func:`offset_mass` with ``offset=+1``."""
    return offset_mass(maps, 1)


def key_mass(maps: AttentionMaps, key: int = 0) -> Tensor:
    """Mass on one key position (an attention sink at ``key = 0``), ``(L, B, H)``.

    ``mass = mean_i A[i, key]`` over valid rows with ``pos(i) > key`` whose mask allows ``key``
    (a query that can only see ``key`` is left out: its weight there is 1 by construction).
    For uniform causal attention over ``T`` tokens and ``key = 0`` it is ``mean_{t=2..T} 1/t``.
    """
    c = _ctx(maps)
    key = check_index("key", key, c.K)
    rows = c.valid & (c.pos > key)[None, :]
    if c.mask is not None:
        rows = rows & c.mask[:, :, key]
    return c.rows_mean(c.w[..., key], rows)


def _band_rows(c: _Ctx, width: int) -> Tensor:
    width = min(width, c.Q + c.K)
    if 2 * width + 1 <= 32:
        out = torch.zeros(c.L, c.B, c.H, c.Q, device=c.device)
        for off in range(-width, width + 1):  # a few sub-diagonals, each a strided view
            d = (c.K - c.Q) + off
            if d >= c.K or d <= -c.Q:
                continue
            vals = c.w.diagonal(offset=d, dim1=-2, dim2=-1)
            i0 = max(0, -d)
            out[..., i0 : i0 + vals.shape[-1]] += vals
        return out
    band = (c.lag.abs() <= width).to(c.w.dtype)
    return (c.w * band).sum(-1)


def diagonal_band_mass(maps: AttentionMaps, width: int = 1) -> Tensor:
    """Mass within ``width`` positions of the query, averaged over valid rows: ``(L, B, H)``.

    ``band_i = Σ_{j : |pos(i) - j| ≤ width} A[i, j]``; ``width = 0`` is the self mass.
    """
    c = _ctx(maps)
    width = checks.integer("width", width, 0)
    return c.row_mean(_band_rows(c, width))


def _column_stripe(c: _Ctx) -> Tensor:
    return (c.col_sum / c.n_rows[None, :, None, None]).amax(-1)


def column_stripe(maps: AttentionMaps) -> Tensor:
    """Strength of the strongest vertical stripe, ``(L, B, H)``.

    ``stripe = max_j mean_i A[i, j]`` (mean over valid queries): a key that many queries attend to.
    ``1/n`` for uniform rows, 1 when every query puts all its weight on the same key.
    """
    return _column_stripe(_ctx(maps))


def _label_mass(c: _Ctx, labels: frozenset[str]) -> Tensor:
    sel = _key_label_mask(c.maps, labels, "label_mass").to(c.w.dtype)  # (B, K)
    mass = torch.matmul(c.w, sel[:, None, :, None]).squeeze(-1)  # (L, B, H, Q)
    return c.row_mean(mass)


def label_mass(maps: AttentionMaps, labels: set[str]) -> Tensor:
    """Mass on keys with a given label (e.g. ``{"[CLS]", "[SEP]"}``), ``(L, B, H)``.

    ``m = mean_i Σ_{j : key_labels[b][j] ∈ labels} A[i, j]`` over valid rows. A single string is
    taken as a one-label set. Raises ``InvalidInputError`` when ``maps`` has no ``key_labels``.
    """
    c = _ctx(maps)
    return _label_mass(c, _check_labels("labels", labels))


# ------------------------------------------------------------------------------------------------
# 6. span
# ------------------------------------------------------------------------------------------------
def _mean_distance(c: _Ctx) -> Tensor:
    return (c.w * c.lag.abs().to(c.w.dtype)).sum(-1)


def mean_distance(maps: AttentionMaps) -> Tensor:
    """Expected distance to the attended key, averaged over valid rows: ``(L, B, H)``.

    ``d_i = Σ_j A[i, j] · |pos(i) - j|``.
    """
    c = _ctx(maps)
    return c.row_mean(_mean_distance(c))


def _span_rows(c: _Ctx, q: float) -> Tensor:
    dist = c.lag.abs()
    order = torch.argsort(dist, dim=-1, stable=True)  # keys nearest first (ties: lower index)
    dist_sorted = dist.gather(-1, order)  # (Q, K)
    ws = c.w.gather(-1, order.expand(c.L, c.B, c.H, c.Q, c.K))
    cs = ws.cumsum(-1)
    target = q * cs[..., -1:] * (1.0 - 1e-6)  # tolerance against float rounding (q = 1 works)
    idx = (cs < target).sum(-1, keepdim=True).clamp_max(c.K - 1)
    return dist_sorted.expand(c.L, c.B, c.H, c.Q, c.K).gather(-1, idx).squeeze(-1).to(c.w.dtype)


def span_quantile(maps: AttentionMaps, q: float = 0.9) -> Tensor:
    """Attention span: the distance holding a fraction ``q`` of each row's mass, ``(L, B, H)``.

    ``span_i = min { d : Σ_{j : |pos(i) - j| ≤ d} A[i, j] ≥ q }`` averaged over valid rows,
    ``0 < q ≤ 1`` (compared with a relative tolerance of 1e-6).
    """
    c = _ctx(maps)
    q = checks.interval("q", q, 0.0, 1.0, lo_open=True)
    return c.row_mean(_span_rows(c, q))


# ------------------------------------------------------------------------------------------------
# 7. lag profile
# ------------------------------------------------------------------------------------------------
def lag_profile(maps: AttentionMaps, max_lag: int | None = None) -> Tensor:
    """Mean weight at each time lag, ``(L, B, H, max_lag + 1)``.

    ``profile[d] = mean { A[i, j] : pos(i) - j = d, row i valid, key j allowed }`` for
    ``d = 0 .. max_lag`` (``max_lag`` defaults to ``K - 1``, the largest lag there is); NaN where
    no such pair exists. Negative lags (keys after the query) are not part of the profile.
    """
    c = _ctx(maps)
    max_lag = c.K - 1 if max_lag is None else checks.integer("max_lag", max_lag, 0)
    n_lags = c.Q + c.K - 1  # lags 1 - Q .. K - 1
    idx = (c.lag + c.Q - 1).reshape(-1)
    sums = c.w.new_zeros(c.L, c.B, c.H, n_lags).index_add_(-1, idx, c.w.reshape(c.L, c.B, c.H, c.Q * c.K))
    allowed = c.mask if c.mask is not None else torch.ones(c.B, c.Q, c.K, dtype=torch.bool, device=c.device)
    counts = c.w.new_zeros(c.B, n_lags).index_add_(-1, idx, allowed.reshape(c.B, -1).to(c.w.dtype))
    lo = c.Q - 1  # column of lag 0
    hi = min(lo + max_lag + 1, n_lags)
    s, n = sums[..., lo:hi], counts[None, :, None, lo:hi]
    prof = torch.where(n > 0, s / n.clamp_min(1.0), torch.full((), float("nan"), device=c.device))
    if hi - lo < max_lag + 1:
        pad = torch.full((c.L, c.B, c.H, max_lag + 1 - (hi - lo)), float("nan"), device=c.device)
        prof = torch.cat([prof, pad], -1)
    return prof


# ------------------------------------------------------------------------------------------------
# 8. recency
# ------------------------------------------------------------------------------------------------
def _recency(c: _Ctx, fraction: float) -> Tensor:
    real = c.real_keys  # (B, K)
    rank = real.cumsum(-1) - 1
    n = real.sum(-1, keepdim=True)
    m = torch.clamp(torch.floor(fraction * n.to(torch.float32)), min=1.0)  # (B, 1)
    first = real & (rank < m)
    last = real & (rank >= n - m)
    denom = (c.n_rows[:, None] * m)[None, :, None, 0]  # (1, B, 1): rows × keys in each set
    recent = (c.col_sum * last[None, :, None]).sum(-1) / denom
    early = (c.col_sum * first[None, :, None]).sum(-1) / denom
    return recent / (early + EPS)


def recency_ratio(maps: AttentionMaps, fraction: float = 0.25) -> Tensor:
    """How much more the last keys are attended than the first ones, ``(L, B, H)``.

    With ``S_last`` / ``S_first`` the last / first ``m = max(1, ⌊fraction · n⌋)`` real keys of the
    sample (``n`` real keys; ``0 < fraction ≤ 0.5`` so the sets do not overlap):
    ``ratio = mean_{i valid, j ∈ S_last} A[i, j] / (mean_{i valid, j ∈ S_first} A[i, j] + 1e-12)``
    (a ratio of the two means over valid rows, not a mean of per-row ratios). 1 for uniform maps;
    > 1 for heads that favour recent keys.
    """
    c = _ctx(maps)
    fraction = checks.interval("fraction", fraction, 0.0, 0.5, lo_open=True)
    return _recency(c, fraction)


# ------------------------------------------------------------------------------------------------
# 9-10. similarity between heads and layers
# ------------------------------------------------------------------------------------------------
def _pair_js(x: Tensor, others: Tensor, x_ent: Tensor, o_ent: Tensor, x_sum: Tensor, o_sum: Tensor) -> Tensor:
    """Row-wise JS between ``x (..., Q, K)`` and ``others (n, ..., Q, K)`` -> ``(n, ..., Q)``.

    Uses ``JS = ½(Σp log p + Σq log q) - ½ Σ s log s + ½ log2 (Σp + Σq)`` with ``s = p + q`` so
    that only one logarithm per cell and pair is needed.
    """
    s = x + others
    t = torch.special.xlogy(s, s).sum(-1)
    js = 0.5 * (x_ent + o_ent) - 0.5 * t + (0.5 * LN2) * (x_sum + o_sum)
    return js.clamp(0.0, LN2)


def _chunks(n: int, per_item: int) -> Iterable[tuple[int, int]]:
    step = max(1, _CHUNK_ELEMENTS // max(per_item, 1))
    for a in range(0, n, step):
        yield a, min(n, a + step)


def _pairwise_js(X: Tensor, valid: Tensor, n_rows: Tensor) -> Tensor:
    """``X (N, B, Q, K)`` -> ``(N, N, B)``: JS averaged over each sample's valid rows, for all pairs."""
    N, B, Q, K = X.shape
    ent = torch.special.xlogy(X, X).sum(-1)  # (N, B, Q)
    tot = X.sum(-1)
    v = valid.to(X.dtype)
    out = X.new_zeros(N, N, B)
    for a in range(N - 1):
        for lo, hi in _chunks(N - a - 1, B * Q * K):
            b0, b1 = a + 1 + lo, a + 1 + hi
            js = _pair_js(X[a], X[b0:b1], ent[a], ent[b0:b1], tot[a], tot[b0:b1])  # (n, B, Q)
            m = (js * v).sum(-1) / n_rows  # (n, B)
            out[a, b0:b1] = m
            out[b0:b1, a] = m
    return out


def head_diversity(maps: AttentionMaps) -> Tensor:
    """How different the heads of a layer are, ``(L, B)``.

    ``div_l = mean_{h < h'} mean_i JS(A_{l,h}[i], A_{l,h'}[i])`` over head pairs and valid rows
    (natural log, in ``[0, ln 2]``). 0 when the layer has a single head.
    """
    c = _ctx(maps)
    L, B, H = c.L, c.B, c.H
    if H < 2:
        return torch.zeros(L, B, device=c.device)
    w, ent, tot = c.w, c.xlogx, c.row_sum
    v = c.valid.to(w.dtype)[None, :, None]
    total = w.new_zeros(L, B)
    for h in range(H - 1):  # loop over heads (cheap: each step is one vectorised pair block)
        for lo, hi in _chunks(H - h - 1, L * B * c.Q * c.K):
            g0, g1 = h + 1 + lo, h + 1 + hi
            js = _pair_js(w[:, :, h : h + 1], w[:, :, g0:g1], ent[:, :, h : h + 1], ent[:, :, g0:g1], tot[:, :, h : h + 1], tot[:, :, g0:g1])
            total += (js * v).sum((-1, -2))
    n_pairs = H * (H - 1) / 2
    return total / (n_pairs * c.n_rows[None, :])


def head_distances(maps: AttentionMaps) -> Tensor:
    """JS distance matrix between all heads of all layers, ``(L·H, L·H)`` (index ``l·H + h``).

    ``D[a, b] = mean_b mean_i JS(A_a[i], A_b[i])`` over samples and valid rows (a sample without
    valid rows is skipped). Symmetric with an exact zero diagonal; feed it to a hierarchical
    clustering to group heads.
    """
    c = _ctx(maps)
    X = c.w.reshape(c.L * c.H, c.B, c.Q, c.K) if c.B == 1 else c.w.permute(0, 2, 1, 3, 4).reshape(c.L * c.H, c.B, c.Q, c.K)
    D = torch.nanmean(_pairwise_js(X, c.valid, c.n_rows), dim=-1)
    D.fill_diagonal_(0.0)
    return D


def cross_layer_js(maps: AttentionMaps) -> Tensor:
    """JS divergence between the head-averaged maps of every pair of layers, ``(L, L)``.

    With ``Ā_l = mean_h A_l``: ``D[l, l'] = mean_b mean_i JS(Ā_l[b, i], Ā_l'[b, i])`` over
    samples and valid rows. Symmetric with a zero diagonal.
    """
    c = _ctx(maps)
    D = torch.nanmean(_pairwise_js(c.head_mean, c.valid, c.n_rows), dim=-1)
    D.fill_diagonal_(0.0)
    return D


def cross_layer_cosine(maps: AttentionMaps) -> Tensor:
    """Cosine similarity between the flattened head-averaged maps of every pair of layers, ``(L, L)``.

    ``C[l, l'] = mean_b ⟨Ā_l[b], Ā_l'[b]⟩ / (‖Ā_l[b]‖ ‖Ā_l'[b]‖)`` with ``Ā_l = mean_h A_l``
    flattened over (queries, keys). In ``[0, 1]`` (weights are non-negative), 1 on the diagonal.
    """
    c = _ctx(maps)
    X = c.head_mean.reshape(c.L, c.B, -1).transpose(0, 1).to(torch.float64)  # (B, L, QK)
    G = X @ X.transpose(1, 2)  # (B, L, L)
    norm = G.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt()
    cos = G / (norm[:, :, None] * norm[:, None, :])
    return torch.nanmean(cos, dim=0).clamp(0.0, 1.0).to(torch.float32)


# ------------------------------------------------------------------------------------------------
# 11-14. attribution
# ------------------------------------------------------------------------------------------------
def token_importance(maps: AttentionMaps, exclude: set[str] | None = None) -> Tensor:
    """Attention each key receives, ``(B, K)``; each row sums to 1.

    ``imp[b, j] = mean_{l, h} mean_{i valid} A_{l,h}[b, i, j]``. With ``exclude`` (a set of key
    labels, e.g. ``{"[CLS]", "[SEP]"}``) those keys get 0 and the others are renormalised:
    ``imp[b, j] / Σ_{j' kept} imp[b, j']`` (a sample whose kept keys get no attention stays 0).
    """
    c = _ctx(maps)
    imp = (c.col_sum.sum((0, 2)) / (c.L * c.H)) / c.n_rows[:, None]  # (B, K)
    imp = torch.nan_to_num(imp, nan=0.0)
    if exclude is not None:
        drop = _key_label_mask(maps, _check_labels("exclude", exclude), "token_importance(exclude=...)")
        imp = imp.masked_fill(drop, 0.0)
    tot = imp.sum(-1, keepdim=True)
    return torch.where(tot > 0, imp / torch.where(tot > 0, tot, 1.0), torch.zeros((), device=imp.device))


def _residual_maps(c: _Ctx, residual: float) -> Tensor:
    """``Â_l = rownorm(residual·I + (1 - residual)·mean_h A_l)``, ``(L, B, Q, Q)`` in float64."""
    A = c.head_mean.to(torch.float64)
    eye = torch.eye(c.Q, dtype=A.dtype, device=A.device)
    A = residual * eye + (1.0 - residual) * A
    s = A.sum(-1, keepdim=True)
    return torch.where(s > 0, A / torch.where(s > 0, s, 1.0), torch.zeros((), dtype=A.dtype, device=A.device))


def rollout(maps: AttentionMaps, start_layer: int = 0, residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020), ``(B, Q, K)``.

    ``Â_l = rownorm(residual · I + (1 - residual) · mean_h A_l)`` and
    ``R = Â_{L-1} ··· Â_{start_layer}``: ``R[b, i, j]`` is how much output token ``i`` draws on
    input token ``j``. Rows sum to 1; causal maps give a lower-triangular ``R``. Needs square
    maps (``Q == K``). A padding row of ``Â`` is the identity row (it is all residual).
    """
    c = _ctx(maps)
    _check_square(maps, "rollout")
    start = check_index("start_layer", start_layer, c.L)
    residual = checks.interval("residual", residual, 0.0, 1.0)
    A = _residual_maps(c, residual)
    R = A[start]
    for l in range(start + 1, c.L):  # loop over layers: L small matrix products
        R = A[l] @ R
    return R.to(torch.float32)


def gradient_rollout(maps: AttentionMaps, grads: Tensor) -> Tensor:
    """Gradient-weighted rollout (Chefer, Gur & Wolf, ICCV 2021), ``(B, Q, K)``.

    ``Ā_l = mean_h relu(∇A_l ⊙ A_l)``, ``R_0 = I`` and ``R ← R + Ā_l · R`` for
    ``l = 0 .. L-1``. ``grads`` is the gradient of the explained output with respect to the
    attention weights, the same shape as ``maps.weights``. Rows are not normalised (each is ≥ the
    identity row). Needs square maps.
    """
    c = _ctx(maps)
    _check_square(maps, "gradient_rollout")
    if not isinstance(grads, Tensor):
        raise bad_argument(InvalidInputError, "grads", f"a tensor of shape {tuple(maps.shape)}", grads)
    if tuple(grads.shape) != tuple(maps.shape):
        raise bad_argument(InvalidInputError, "grads", f"shape {tuple(maps.shape)} (the shape of maps.weights)", tuple(grads.shape), raw=True)
    if not grads.is_floating_point() or not torch.isfinite(grads).all():
        raise bad_argument(InvalidInputError, "grads", "finite floating-point values", grads)
    g = grads.detach().to(device=c.device, dtype=torch.float64)
    Abar = (g * c.w.to(torch.float64)).clamp_min(0.0).mean(2)  # (L, B, Q, K)
    R = torch.eye(c.Q, dtype=torch.float64, device=c.device).expand(c.B, c.Q, c.Q).clone()
    for l in range(c.L):
        R = R + Abar[l] @ R
    return R.to(torch.float32)


def attention_flow(maps: AttentionMaps, sample: int = 0, residual: float = 0.5, max_nodes: int = 200) -> Tensor:
    """Attention flow (Abnar & Zuidema, 2020) of one sample, ``(Q, K)``.

    The layers form a DAG of ``(L + 1)·n`` nodes (token ``j`` at level ``l``, level 0 = inputs);
    the edge from token ``i`` at level ``l + 1`` to token ``j`` at level ``l`` has capacity
    ``Â_l[i, j]`` (as in :func:`rollout`). ``flow[i, j]`` is the maximum-flow value from token ``i``
    of the top level to input token ``j`` (scipy's ``maximum_flow`` on integer capacities
    ``round(Â · 1e6)``, rescaled). It solves ``n²`` max-flow problems, so it refuses graphs of more
    than ``max_nodes`` nodes: use :func:`rollout` for those.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    c = _ctx(maps)
    n = _check_square(maps, "attention_flow")
    b = check_index("sample", sample, c.B)
    residual = checks.interval("residual", residual, 0.0, 1.0)
    max_nodes = checks.integer("max_nodes", max_nodes, 2)
    size = (c.L + 1) * n
    if size > max_nodes:
        raise bad_argument(
            InvalidInputError,
            "max_nodes",
            f"a flow graph of at most max_nodes={max_nodes} nodes (use rollout() for larger maps, or raise max_nodes)",
            f"(layers + 1) · tokens = {c.L + 1} · {n} = {size} nodes",
            raw=True,
        )
    A = _residual_maps(c, residual)[:, b].cpu().numpy()  # (L, n, n)
    caps = np.rint(A * FLOW_SCALE).astype(np.int32)
    rows, cols, data = [], [], []
    for l in range(c.L):  # edges level l+1 -> level l
        i, j = np.nonzero(caps[l])
        rows.append((l + 1) * n + i)
        cols.append(l * n + j)
        data.append(caps[l][i, j])
    graph = csr_matrix(
        (np.concatenate(data).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size), dtype=np.int32
    )
    top = c.L * n
    flow = np.zeros((n, n), dtype=np.float64)
    for i in range(n):  # one max-flow problem per (output, input) pair
        for j in range(n):
            flow[i, j] = maximum_flow(graph, top + i, j).flow_value
    return torch.from_numpy(flow / FLOW_SCALE).to(torch.float32)


# ------------------------------------------------------------------------------------------------
# 15. head-type scores
# ------------------------------------------------------------------------------------------------
def pattern_score(maps: AttentionMaps, pattern: Tensor) -> Tensor:
    """Mass of each head on a 0/1 pattern (TransformerLens head-detector style), ``(L, B, H)``.

    ``score = mean_i Σ_j A[i, j] · P[i, j]`` over valid rows; ``P`` is ``(Q, K)`` (the same for
    every sample) or ``(B, Q, K)``, bool or 0/1 numbers. 1 when a head attends only inside the
    pattern.
    """
    c = _ctx(maps)
    if not isinstance(pattern, Tensor):
        raise bad_argument(InvalidInputError, "pattern", f"a 0/1 tensor of shape {(c.Q, c.K)} or {(c.B, c.Q, c.K)}", pattern)
    if tuple(pattern.shape) not in ((c.Q, c.K), (c.B, c.Q, c.K)):
        raise bad_argument(InvalidInputError, "pattern", f"shape {(c.Q, c.K)} or {(c.B, c.Q, c.K)}", tuple(pattern.shape), raw=True)
    P = pattern.to(device=c.device)
    if P.dtype != torch.bool:
        if not ((P == 0) | (P == 1)).all():
            raise bad_argument(InvalidInputError, "pattern", "only 0/1 values", pattern)
    P = P.to(c.w.dtype)
    P = P[None, None] if P.dim() == 2 else P[None, :, None]
    return c.row_mean((c.w * P).sum(-1))


def induction_score(maps: AttentionMaps, period: int) -> Tensor:
    """Induction-head score for a sequence repeated with period ``period``, ``(L, B, H)``.

    ``score = mean_i A[i, pos(i) - period + 1]`` over valid queries with ``pos(i) ≥ period``: the
    token just after the previous occurrence of the current token. NaN when no query qualifies.
    """
    c = _ctx(maps)
    period = checks.integer("period", period, 1)
    return _diag_mass(c, 1 - period, min_pos=period)


# ------------------------------------------------------------------------------------------------
# 16-17. classification and summary
# ------------------------------------------------------------------------------------------------
def _batch_mean(x: Tensor) -> Tensor:
    """``(L, B, H)`` -> ``(L, H)`` mean over samples, ignoring NaN (samples without the quantity)."""
    return torch.nanmean(x, dim=1)


def classify_heads(
    maps: AttentionMaps, threshold: float = 0.5, broad: float = 0.9, special: Iterable[str] = ("[CLS]", "[SEP]")
) -> list[list[str]]:
    """A coarse type for every head, ``labels[l][h]``, from the batch-mean metrics.

    The first rule that holds wins:

    1. ``"self"`` if ``self_mass > threshold``;
    2. ``"previous-token"`` if ``previous_token_mass > threshold``;
    3. ``"next-token"`` if ``next_token_mass > threshold``;
    4. ``"special-token sink"`` if ``label_mass(special) > threshold`` (only when the maps have
       key labels and ``special`` is not empty);
    5. ``"broad"`` if the normalised entropy ``> broad``;
    6. ``"mixed"`` otherwise.

    A metric that is undefined (NaN, e.g. no previous token) never satisfies its rule.
    """
    c = _ctx(maps)
    threshold = checks.interval("threshold", threshold, 0.0, 1.0)
    broad = checks.interval("broad", broad, 0.0, 1.0)
    special_set = _check_labels("special", special)
    rules: list[tuple[str, Tensor, float]] = [
        ("self", _batch_mean(_diag_mass(c, 0)), threshold),
        ("previous-token", _batch_mean(_diag_mass(c, -1)), threshold),
        ("next-token", _batch_mean(_diag_mass(c, 1)), threshold),
    ]
    if maps.key_labels is not None and special_set:
        rules.append(("special-token sink", _batch_mean(_label_mass(c, special_set)), threshold))
    rules.append(("broad", _batch_mean(_entropy(c, True)), broad))
    out = [["mixed"] * c.H for _ in range(c.L)]
    decided = torch.zeros(c.L, c.H, dtype=torch.bool)
    for name, value, limit in rules:
        hit = (value.cpu() > limit) & ~decided
        for l, h in hit.nonzero().tolist():
            out[l][h] = name
        decided |= hit
    return out


def head_summary(maps: AttentionMaps, special: Iterable[str] | None = None) -> list[dict]:
    """The full metric summary: one dict per (layer, head), in order ``l·H + h``.

    Keys: ``layer``, ``head`` (indices) and, each the mean over samples (NaN-skipping) of the
    per-head metric: ``mean`` (:func:`mean_weight`), ``max``, ``min``, ``entropy``,
    ``norm_entropy``, ``gini``, ``top3`` (:func:`top_k_mass` with ``k = min(3, K)``),
    ``row_focus``, ``self``, ``previous``, ``next`` (:func:`offset_mass` 0, -1, +1),
    ``diagonal_band`` (width 1), ``column_stripe``, ``mean_distance``, ``span90``
    (:func:`span_quantile` at 0.9), ``recency`` (:func:`recency_ratio` at 0.25), and for each label
    in ``special`` a key named by the label holding :func:`label_mass` of that label. Values are
    Python floats.
    """
    c = _ctx(maps)
    labels: list[str] = []
    if special is not None:
        if not isinstance(special, (str, set, frozenset)):
            special = list(special) if isinstance(special, Iterable) else special
        _check_labels("special", special)
        if isinstance(special, str):
            labels = [special]
        elif isinstance(special, (set, frozenset)):
            labels = sorted(special)
        else:
            labels = list(dict.fromkeys(special))
    row_ent = _row_entropy(c)
    logn = c.n_keys.log()[None, :, None]
    norm_ent = torch.where(logn > 0, row_ent / torch.where(logn > 0, logn, 1.0), torch.zeros((), device=c.device)).clamp(0.0, 1.0)
    k = min(3, c.K)
    metrics: dict[str, Tensor] = {
        "mean": _mean_weight(c),
        "max": _max_weight(c),
        "min": _min_weight(c),
        "entropy": c.row_mean(row_ent),
        "norm_entropy": c.row_mean(norm_ent),
        "gini": c.row_mean(_gini(c)),
        "top3": c.row_mean(c.sorted[..., c.K - k :].sum(-1)),
        "row_focus": _row_focus(c, use_sorted=True),
        "self": _diag_mass(c, 0),
        "previous": _diag_mass(c, -1),
        "next": _diag_mass(c, 1),
        "diagonal_band": c.row_mean(_band_rows(c, 1)),
        "column_stripe": _column_stripe(c),
        "mean_distance": c.row_mean(_mean_distance(c)),
        "span90": c.row_mean(_span_rows(c, 0.9)),
        "recency": _recency(c, 0.25),
    }
    for lab in labels:
        metrics[lab] = _label_mass(c, frozenset([lab]))
    names = list(metrics)
    table = torch.stack([_batch_mean(metrics[k]) for k in names], -1).reshape(c.L * c.H, len(names)).cpu().tolist()
    out = []
    for idx, row in enumerate(table):
        d = {"layer": idx // c.H, "head": idx % c.H}
        d.update(zip(names, (float(x) for x in row)))
        out.append(d)
    return out

