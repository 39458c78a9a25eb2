"""The seed study's transformer forecaster and its helpers.

Fixed shape (seed 000): d_model 64, 4 heads, 2 layers, feed-forward 256, dropout 0.1, input
length 100, horizon 20, trained with MSE on the (per-window normalised) future. Each input value
is a token: ``h_t = W_in x_t + p_t`` (learned position ``p_t``), the encoder is attnbook's own
non-causal :class:`~attnbook.modules.Transformer` (SDPA while training, explicit softmax while
captured), and a linear head reads the last position: ``ŷ = W_out h_L``. Reading one position
means everything the forecast uses about earlier steps has to travel through attention — with a
head over all positions (``W_out · vec(h_1 … h_L)``) a linear map can forecast a sum of sinusoids
on its own and attention stays flat, which makes its maps say nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..modules import BlockConfig, Transformer


@dataclass(frozen=True)
class ForecasterConfig:
    """Shape of the forecaster (the seed's fixed values by default)."""

    input_len: int = 100
    horizon: int = 20
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    attn_dropout: float | None = None  # None: ``dropout`` on the attention weights too (the seed)

    def __post_init__(self) -> None:
        for name in ("input_len", "horizon", "n_layers"):
            checks.positive_int(name, getattr(self, name))
        self.block()  # validates the block

    def block(self) -> BlockConfig:
        return BlockConfig(self.d_model, self.n_heads, self.d_ff, self.dropout, attn_dropout=self.attn_dropout)

    def to_dict(self) -> dict:
        return asdict(self)


class Forecaster(nn.Module):
    """``(batch, input_len)`` normalised window → ``(batch, horizon)`` normalised forecast."""

    def __init__(self, config: ForecasterConfig = ForecasterConfig()) -> None:
        super().__init__()
        self.config = config
        block = config.block()
        self.embed = nn.Linear(1, config.d_model)
        self.pos = nn.Parameter(torch.randn(1, config.input_len, config.d_model) * 0.02)
        self.encoder = Transformer(block, config.n_layers)
        self.head = nn.Linear(config.d_model, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.config.input_len:
            raise bad_argument(
                InvalidInputError, "x", f"windows of shape (batch, {self.config.input_len}) for this model", tuple(x.shape), raw=True
            )
        if not torch.isfinite(x).all():
            raise bad_argument(InvalidInputError, "x", "finite values", f"{int((~torch.isfinite(x)).sum())} non-finite", raw=True)
        h = self.encoder(self.embed(x.unsqueeze(-1)) + self.pos)
        return self.head(h[:, -1])
