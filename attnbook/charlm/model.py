"""A nanoGPT-style character-level GPT built on attnbook's attention block.

::

    x = wte(idx) + wpe(0..T-1)                       (B, T, n_embd)
    x = block_l(x)  for l = 1..n_layer               pre-LN: x + attn(LN x), x + mlp(LN x)
    logits = LN_f(x) · wteᵀ                          (B, T, vocab)  — tied embeddings

Attention is causal and runs through SDPA while training; ``attnbook.capture`` switches a forward
to the explicit softmax and reads every head's weights (the flash path never materialises them).
Initialisation as GPT-2/nanoGPT: N(0, 0.02) everywhere, the two residual projections of each
block N(0, 0.02/√(2·n_layer)), biases zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..modules import BlockConfig, KVCache, TransformerBlock

__all__ = ["GPTConfig", "GPT"]


@dataclass(frozen=True)
class GPTConfig:
    """Shape of the GPT. Defaults: nanoGPT's CPU configuration (4 layers, 4 heads, 128, block 64)."""

    vocab_size: int = 65
    block_size: int = 64     # longest context the position embedding covers
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False       # biases in the linear layers (nanoGPT's configs: False)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            checks.positive_int(name, getattr(self, name))
        if self.n_embd % self.n_head:
            raise bad_argument(InvalidInputError, "n_embd", f"a multiple of n_head={self.n_head}", self.n_embd)
        self.block()  # checks dropout

    def block(self) -> BlockConfig:
        """The config of one transformer block (MLP 4× wide, causal)."""
        return BlockConfig(d_model=self.n_embd, n_heads=self.n_head, d_ff=4 * self.n_embd, dropout=self.dropout,
                           causal=True, bias=self.bias)

    def to_dict(self) -> dict:
        return asdict(self)


class GPT(nn.Module):
    """Token + position embeddings, ``n_layer`` causal blocks, final LayerNorm, tied output head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise bad_argument(InvalidInputError, "config", "a GPTConfig", config)
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config.block()) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.out.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))  # scaled residual init, GPT-2

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def n_params(self, non_embedding: bool = True) -> int:
        """Parameters, without the position embedding by default (as nanoGPT counts)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def check_input(self, idx: torch.Tensor) -> None:
        """``idx`` must be (B, T) integer ids < vocab_size with T <= block_size."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise bad_argument(InvalidInputError, "idx", "a (batch, time) tensor of integer ids", idx)
        if idx.shape[1] > self.config.block_size:
            raise bad_argument(InvalidInputError, "idx", f"at most block_size={self.config.block_size} positions (the model's context)",
                               f"{idx.shape[1]} positions", raw=True)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            raise bad_argument(InvalidInputError, "idx", f"ids in [0, {self.config.vocab_size})", f"ids in [{int(idx.min())}, {int(idx.max())}]", raw=True)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, with ``targets`` (B, T), the mean cross-entropy in nats. With a
        ``cache`` (generation) ``idx`` holds the positions after those already in it."""
        self.check_input(idx)
        past = cache.length if cache is not None else 0
        T = idx.shape[1]
        if past + T > self.config.block_size:
            raise bad_argument(InvalidInputError, "idx", f"at most block_size={self.config.block_size} positions with the "
                               f"{past} in the cache", f"{T} more", raw=True)
        pos = torch.arange(past, past + T, device=idx.device)
        x = self.drop(self.wte(idx.long()) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x, cache=cache)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = False) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled ids to ``idx`` (B, T), as nanoGPT: the context is
        cropped to ``block_size``, logits of the last position divided by ``temperature``, kept to
        the ``top_k`` largest, softmax, one multinomial draw (on the CPU, with ``generator`` a CPU
        generator, so a seed gives the same text on any device). Without ``use_cache`` one full
        forward per token (the seed's measurement); with it a :class:`~attnbook.modules.KVCache`
        while the sequence fits the context (the prompt once, then one position per step), a full
        forward of the cropped context after that."""
        checks.integer("max_new_tokens", max_new_tokens, minimum=0)
        if not temperature > 0:
            raise bad_argument(InvalidInputError, "temperature", "a positive number", temperature)
        if top_k is not None:
            checks.positive_int("top_k", top_k)
        self.check_input(idx)
        was_training = self.training
        self.eval()
        cache = KVCache() if use_cache else None
        try:
            for _ in range(max_new_tokens):
                if cache is not None and idx.shape[1] <= self.config.block_size:
                    logits, _ = self(idx[:, cache.length:], cache=cache)
                else:
                    logits, _ = self(idx[:, -self.config.block_size:])
                logits = logits[:, -1, :] / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
                    logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
                probs = F.softmax(logits.float(), dim=-1).cpu()  # drawn on the CPU: the same text on any device
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)
                idx = torch.cat((idx, nxt.to(device=idx.device, dtype=idx.dtype)), dim=1)
        finally:
            self.train(was_training)
        return idx
