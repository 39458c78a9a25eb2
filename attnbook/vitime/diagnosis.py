"""Why a mini ViTime paints flat forecasts: the checks of the training path and of the loss.

- :func:`loss_parts` splits the pretraining loss by where it is paid: cross-entropy on history
  columns (visible in the input: a copy), on future columns (the forecast), the earth mover's
  distance on future columns, and the floor ``H(q)`` no prediction can go below (the entropy of the
  Gaussian-smoothed target).
- :func:`average_image` is the trivial predictor: for every column, the marginal distribution of
  the true value bin over many series (the "average image"). A model whose future loss equals its
  loss predicts the same distribution whatever the history — a flat forecast.
- :func:`overfit_batch` trains on one fixed batch: if the future loss cannot fall far below the
  average image's there, something on the path from history to horizon is broken (masking,
  positions, normalisation); if it can, the path works and flat forecasts are a matter of data and
  steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks
from ..train import seed_everything
from .mapping import MappingConfig
from .model import ViTime, ViTimeConfig
from .realts import LossConfig, RealTSConfig, batch_images, column_terms, generate, pretraining_loss

__all__ = ["LossParts", "loss_parts", "average_image", "overfit_batch", "reading"]


@dataclass(frozen=True)
class LossParts:
    """Mean per-column cross-entropy on history and future columns, future EMD (bins), the floor
    ``H(q)`` and the weighted total (:func:`~attnbook.vitime.realts.pretraining_loss`)."""

    ce_history: float
    ce_future: float
    emd_future: float
    floor: float
    total: float


def loss_parts(logits: torch.Tensor, rows: torch.Tensor, mapping: MappingConfig, loss: LossConfig | None = None) -> LossParts:
    """The loss of ``logits`` ``(B, 1, W, h)`` on true ``rows`` ``(B, W)``, split as :class:`LossParts`."""
    loss = LossConfig() if loss is None else loss
    ce, emd, q = column_terms(logits, rows, mapping, loss)
    floor = -(q * q.clamp_min(1e-30).log()).sum(-1)
    t = mapping.history_len
    return LossParts(float(ce[:, :t].mean()), float(ce[:, t:].mean()), float(emd[:, t:].mean()), float(floor.mean()),
                     float(pretraining_loss(logits, rows, mapping, loss)))


def average_image(data: RealTSConfig, mapping: MappingConfig, n: int = 2000, seed: int = 0) -> torch.Tensor:
    """Log-probabilities ``(W, h)`` of the per-column marginal of the true value bin over ``n``
    series of ``data`` (add-½ smoothed): the best prediction that ignores the history."""
    _, rows = batch_images(generate(checks.positive_int("n", n), data, seed=seed), mapping)
    counts = torch.full((mapping.width, mapping.bins), 0.5)
    counts.scatter_add_(1, rows.T.contiguous(), torch.ones(rows.shape[1], rows.shape[0]))
    return (counts / counts.sum(1, keepdim=True)).log()


def overfit_batch(config: ViTimeConfig, mapping: MappingConfig, data: RealTSConfig, *, batch: int = 8, steps: int = 200,
                  lr: float = 1e-3, seed: int = 0, loss: LossConfig | None = None) -> tuple[ViTime, list[LossParts]]:
    """Train a fresh model on one fixed batch of ``batch`` series for ``steps`` AdamW steps (constant
    ``lr``, no weight decay); returns the model and the batch's :class:`LossParts` at step 0 and
    after every tenth of the steps."""
    steps = checks.positive_int("steps", steps)
    seed_everything(seed)
    model = ViTime(config)
    x, rows = batch_images(generate(checks.positive_int("batch", batch), data, seed=seed), mapping)
    opt = torch.optim.AdamW(model.parameters(), lr=checks.positive("lr", lr), weight_decay=0.0)
    every = max(1, steps // 10)
    trace = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                trace.append(loss_parts(model.logits(x), rows, mapping, loss))
        if step == steps:
            break
        model.train()
        value = pretraining_loss(model.logits(x), rows, mapping, loss)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if not math.isfinite(trace[-1].total):
        raise FloatingPointError("overfit_batch: the loss became non-finite")
    return model.eval(), trace


def reading(blind: LossParts, pretrained: LossParts, one_batch: LossParts, forecasts: bool) -> str:
    """What the loss split says, in one sentence computed from it (Markdown). The path from history to
    horizon works when the one-batch model's future loss is below the average image's by at least
    half the gap to the floor; ``forecasts``: whether the held-out bars hold."""
    path_works = one_batch.ce_future < blind.ce_future - 0.5 * (blind.ce_future - one_batch.floor)
    closed = (blind.ce_future - pretrained.ce_future) / (blind.ce_future - pretrained.floor)
    if not path_works:
        return ("the one-batch model cannot fit its own batch's future far below the average image: something on the path from "
                "history to horizon is broken")
    tail = (f"and the pretrained model, which has closed {100 * closed:.0f} % of the gap from the average image to the floor, "
            "forecasts periods it has not seen (the bars hold)" if forecasts else
            f"but the pretrained model, which has closed {100 * closed:.0f} % of the gap from the average image to the floor, "
            "does not pass the forecast bars on periods it has not seen")
    return "the path from history to horizon works (one batch can be fitted far below the average image), " + tail
