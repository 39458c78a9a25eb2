"""Our own attention and transformer block, used by every model the book trains.

Multi-head self-attention of ``x`` (batch, time, d_model) with ``n_heads`` heads of size
``d = d_model / n_heads``::

    A = softmax(Q Kᵀ / √d + M)        M = 0 where allowed, −∞ where masked
    out = concat_h(A_h V_h) W_o

Normally the product runs through ``F.scaled_dot_product_attention`` (fused, fast, no weights).
While ``record_attention`` is True (``attnbook.capture`` sets it) the same formula is computed
explicitly and ``A`` passes through the identity module ``hook_pattern`` — the one place a hook
can read it (post-softmax, pre-dropout), as in TransformerLens's ``hook_pattern``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidInputError, bad_argument


@dataclass(frozen=True)
class BlockConfig:
    """Shape of one transformer block."""

    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.1
    causal: bool = False
    bias: bool = True
    attn_dropout: float | None = None  # dropout on the attention weights; None = ``dropout``

    @property
    def attention_dropout(self) -> float:
        return self.dropout if self.attn_dropout is None else self.attn_dropout

    def __post_init__(self) -> None:
        if self.d_model <= 0 or self.n_heads <= 0 or self.d_model % self.n_heads:
            raise bad_argument(InvalidInputError, "d_model", f"a positive multiple of n_heads={self.n_heads}", self.d_model, raw=True)
        for name in ("dropout", "attn_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise bad_argument(InvalidInputError, name, "a probability in [0, 1)", value, raw=True)
        if self.d_ff <= 0:
            raise bad_argument(InvalidInputError, "d_ff", "a positive integer", self.d_ff, raw=True)


def softmax_rows(scores: torch.Tensor) -> torch.Tensor:
    """``softmax(scores, -1)``, computed in place when no gradient is needed.

    ``exp(s − max s) / Σ exp(s − max s)``; in place it allocates nothing new, which on a CPU is
    most of the cost of materialising the weights (fresh pages for every (B, H, T, T) tensor).
    """
    if scores.requires_grad:
        return torch.softmax(scores, dim=-1)
    scores.sub_(scores.amax(-1, keepdim=True)).exp_()
    return scores.div_(scores.sum(-1, keepdim=True))


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention: SDPA normally, explicit softmax while recorded.

    ``attn_mask`` is a bool tensor broadcastable to (batch, queries, keys), True where a key is
    allowed; with ``causal=True`` keys after the query are masked as well.
    """

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.d_model // config.n_heads
        self.causal = config.causal
        self.dropout = config.attention_dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.attn_drop = nn.Dropout(config.attention_dropout)
        self.hook_pattern = nn.Identity()
        self.record_attention = False

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        if x.dim() != 3:
            raise bad_argument(InvalidInputError, "x", "a (batch, time, d_model) tensor", x)
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        past = 0
        if cache is not None:  # generation: the queries are the last T positions, the keys every position so far
            past = cache.length_of(self)
            k, v = cache.update(self, k, v)
        mask = self._full_mask(attn_mask, T, x.device, past)
        if self.record_attention:
            scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = self.hook_pattern(softmax_rows(scores))
            y = self.attn_drop(weights) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))

    def _full_mask(self, attn_mask: torch.Tensor | None, T: int, device: torch.device, past: int = 0) -> torch.Tensor | None:
        """Bool mask (batch or 1, 1, T, past + T) combining ``attn_mask`` and causality (query ``i`` is
        position ``past + i``), or None."""
        mask = None
        if self.causal:
            mask = torch.ones(T, past + T, dtype=torch.bool, device=device).tril(diagonal=past)[None, None]
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                raise bad_argument(InvalidInputError, "attn_mask", "a bool tensor (True = allowed)", attn_mask.dtype, raw=True)
            m = attn_mask if attn_mask.dim() == 4 else attn_mask.unsqueeze(1)
            mask = m if mask is None else mask & m
        return mask


class KVCache:
    """Keys and values of every attention layer so far, for generation one position at a time:
    each :class:`MultiHeadAttention` appends its new ``k, v`` (batch, heads, T, d) and attends over all."""

    def __init__(self) -> None:
        self._kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def length(self) -> int:
        """Positions held (0 when empty)."""
        return next(iter(self._kv.values()))[0].shape[-2] if self._kv else 0

    def length_of(self, layer: nn.Module) -> int:
        kv = self._kv.get(id(layer))
        return 0 if kv is None else kv[0].shape[-2]

    def update(self, layer: nn.Module, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k, v`` for ``layer``; return its keys and values over every position so far."""
        if id(layer) in self._kv:
            old_k, old_v = self._kv[id(layer)]
            k, v = torch.cat((old_k, k), dim=-2), torch.cat((old_v, v), dim=-2)
        self._kv[id(layer)] = (k, v)
        return k, v


class FeedForward(nn.Module):
    """Position-wise MLP: ``W₂ · GELU(W₁ x)`` with dropout."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.out = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.out(F.gelu(self.fc(x))))


class TransformerBlock(nn.Module):
    """Pre-norm block (as in nanoGPT): ``x + attn(LN(x))`` then ``x + mlp(LN(x))``."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = MultiHeadAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = FeedForward(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), attn_mask, cache))
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """A stack of ``n_layers`` blocks followed by a final LayerNorm."""

    def __init__(self, config: BlockConfig, n_layers: int) -> None:
        super().__init__()
        if n_layers <= 0:
            raise bad_argument(InvalidInputError, "n_layers", "a positive integer", n_layers, raw=True)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.ln_f(x)
