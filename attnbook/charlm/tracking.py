"""Attention snapshots during training: one captured forward on a fixed batch every N steps.

At each snapshot the model reads two fixed batches in eval mode without gradients:

- ``batch``: validation windows (B, T) — every statistic except induction comes from these;
- ``repeated``: random character strings of length ``P`` written twice (B, 2P) — the
  induction score (the token after the previous occurrence of the current one).

Per layer and head (``(L, H)``, means over samples and query rows, natural log):
``entropy`` and ``entropy_norm`` (over the causal prefix, so uniform = 1), ``span`` (expected
distance ``Σ_j A[i,j]·(i−j)``), ``span90`` (distance holding 90 % of the mass),
``previous_token`` (mass on ``i−1``), ``induction``, ``sink`` (mass on position 0, queries
``i ≥ 1``). Per layer: ``diversity`` (mean pairwise JS between heads). Per layer pair:
``layer_js`` and ``layer_cosine`` of the head-averaged maps. Plus the maps of the first window
(``maps``: (L, H, T, T)) for heatmaps. Between snapshots training runs the fused SDPA path; the
tracker's own wall time is kept in ``seconds`` so its overhead can be reported.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .. import metrics
from ..capture import capture
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps

__all__ = ["HEAD_METRICS", "LAYER_METRICS", "PAIR_METRICS", "causal_maps", "snapshot_metrics", "uniform_causal",
           "repeated_batch", "AttentionTracker"]

HEAD_METRICS = ("entropy", "entropy_norm", "span", "span90", "previous_token", "induction", "sink")
LAYER_METRICS = ("diversity",)
PAIR_METRICS = ("layer_js", "layer_cosine")


def causal_maps(model, idx: torch.Tensor) -> AttentionMaps:
    """Every layer's attention on ``idx`` (B, T) with the causal mask attached."""
    with capture(model) as cap:
        model(idx)
    T = idx.shape[1]
    mask = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril().expand(idx.shape[0], T, T)
    return cap.to_maps(mask=mask)


def uniform_causal(T: int) -> dict[str, float]:
    """Values for uniform attention over the causal prefix of ``T`` tokens (the state at init).

    entropy ``(1/T) Σ_{t=1..T} ln t``; span ``(T−1)/4`` (row ``i`` has mean distance ``i/2``);
    sink ``mean_{t=2..T} 1/t``; normalised entropy 1 (0 for the first row, which is left in).
    """
    t = np.arange(1, T + 1)
    return {"entropy": float(np.log(t).mean()), "span": (T - 1) / 4, "sink": float((1.0 / t[1:]).mean()),
            "entropy_norm": float((T - 1) / T)}


def snapshot_metrics(maps: AttentionMaps, repeated: AttentionMaps | None = None, period: int | None = None) -> dict[str, np.ndarray]:
    """The statistics of the module docstring from causal ``maps`` (and ``repeated`` for induction)."""
    mean = lambda x: torch.nanmean(x, dim=1).cpu().numpy()  # (L, B, H) -> (L, H)  # noqa: E731
    out = {
        "entropy": mean(metrics.entropy(maps)),
        "entropy_norm": mean(metrics.entropy(maps, normalized=True)),
        "span": mean(metrics.mean_distance(maps)),
        "span90": mean(metrics.span_quantile(maps, 0.9)),
        "previous_token": mean(metrics.previous_token_mass(maps)),
        "sink": mean(metrics.key_mass(maps, 0)),
        "diversity": metrics.head_diversity(maps).mean(1).cpu().numpy(),
        "layer_js": metrics.cross_layer_js(maps).cpu().numpy(),
        "layer_cosine": metrics.cross_layer_cosine(maps).cpu().numpy(),
    }
    if repeated is not None:
        if period is None:
            raise bad_argument(InvalidInputError, "period", "the repeat period of the repeated batch", None, raw=True)
        out["induction"] = mean(metrics.induction_score(repeated, period))
    else:
        out["induction"] = np.full_like(out["entropy"], np.nan)
    return out


def repeated_batch(vocab_size: int, batch: int, period: int, seed: int = 0) -> torch.Tensor:
    """``batch`` random id strings of length ``period``, each written twice: (batch, 2·period)."""
    g = torch.Generator().manual_seed(seed)
    half = torch.randint(0, vocab_size, (batch, period), generator=g)
    return torch.cat([half, half], dim=1)


class AttentionTracker:
    """A :func:`attnbook.train.fit` callback: ``tracker(step, model)`` records one snapshot.

    ``snapshots[k]`` is the metric dict of step ``steps[k]``; ``maps[k]`` the first window's
    weights (L, H, T, T) as float16 to keep the record small.
    """

    def __init__(self, batch: torch.Tensor, repeated: torch.Tensor | None = None) -> None:
        if not isinstance(batch, torch.Tensor) or batch.dim() != 2:
            raise bad_argument(InvalidInputError, "batch", "a (batch, time) tensor of ids", batch)
        if repeated is not None and (repeated.dim() != 2 or repeated.shape[1] % 2):
            raise bad_argument(InvalidInputError, "repeated", "a (batch, 2·period) tensor", repeated)
        self.batch, self.repeated = batch, repeated
        self.steps: list[int] = []
        self.snapshots: list[dict[str, np.ndarray]] = []
        self.maps: list[np.ndarray] = []
        self.seconds = 0.0

    def __call__(self, step: int, model) -> None:
        start = time.perf_counter()
        device = next(model.parameters()).device
        maps = causal_maps(model, self.batch.to(device))
        rep = None if self.repeated is None else causal_maps(model, self.repeated.to(device))
        period = None if self.repeated is None else self.repeated.shape[1] // 2
        self.snapshots.append(snapshot_metrics(maps, rep, period))
        self.maps.append(maps.weights[:, 0].to(torch.float16).cpu().numpy())
        self.steps.append(int(step))
        self.seconds += time.perf_counter() - start

    def series(self, name: str) -> np.ndarray:
        """One metric over the snapshots, stacked: (snapshots, …)."""
        return np.stack([s[name] for s in self.snapshots])
