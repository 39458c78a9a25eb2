"""Context compression: keep ``K`` of the ``L`` context transitions before each forward.

A window is ``L`` context tokens followed by the query token (the newest token, always kept and
placed last). Every strategy gives each context position a **priority** and keeps the ``K``
highest, in chronological order:

=============== =================================================================================
``full``        all ``L`` (``K`` must equal ``L``)
``recent``      the newest ``K`` (a sliding window)
``uniform``     ``K`` evenly spaced positions counted back from the newest: ``L − 1 − ⌊i·L/K⌋``
``random``      ``K`` uniformly at random (the control)
``topk``        the ``K`` the query attends to most in a *full* forward (mean over layers and
                heads) — an oracle: it needs that extra pass
``h2o``         H2O-style: the newest ``⌈K/2⌉`` plus the ``⌊K/2⌋`` heaviest hitters by attention
                *accumulated* over earlier compressed steps (no extra pass)
``sink_recent`` StreamingLLM-style: the oldest ``n_sink`` positions (attention sinks) plus the
                newest ``K − n_sink``
``reward``      transitions with reward > 0 (newest first), then the newest of the rest
=============== =================================================================================

**Positions.** The model has learned absolute positions. ``positions="reindex"`` (default)
numbers the kept tokens ``0 … K`` (query ``K``), as a shorter window would be; ``"original"``
keeps each token's position in the uncompressed window (query ``L``), leaving gaps the model
never saw in training — unless it was trained with sequence masking
(:class:`attnbook.rl.ad.Windows` ``context_dropout``): dropping tokens with their positions kept
is exactly masking them out (tested), so such a model has seen these contexts. The chapter trains
that way and uses ``original``.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch

from .. import checks
from ..errors import InvalidInputError, bad_argument

__all__ = ["STRATEGIES", "POSITIONS", "select", "positions_for", "gather_window"]

STRATEGIES = ("full", "recent", "uniform", "random", "topk", "h2o", "sink_recent", "reward")
POSITIONS = ("reindex", "original")
_BIG = 1e9


def _check(strategy: str, L: int, K: int) -> tuple[int, int]:
    if strategy not in STRATEGIES:
        raise bad_argument(InvalidInputError, "strategy", f"one of {list(STRATEGIES)}", strategy)
    if isinstance(L, bool) or not isinstance(L, Integral) or L < 1:
        raise bad_argument(InvalidInputError, "L", "a positive number of context transitions", L)
    if isinstance(K, bool) or not isinstance(K, Integral) or not 1 <= K <= L:
        raise bad_argument(InvalidInputError, "K", f"an integer in [1, L={L}]", K)
    if strategy == "full" and K != L:
        raise bad_argument(InvalidInputError, "K", f"K = L = {L} for the full context", K)
    return int(L), int(K)


def select(
    strategy: str,
    batch: int,
    L: int,
    K: int,
    *,
    scores: Any = None,
    rewards: Any = None,
    n_sink: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Kept context positions ``(batch, K)``, ascending, for windows of ``L`` context tokens.

    ``scores`` ``(batch, L)``: attention of the query (``topk``) or accumulated attention
    (``h2o``); ``rewards`` ``(batch, L)`` for ``reward``; ``rng`` for ``random``.
    """
    L, K = _check(strategy, L, K)
    batch = checks.positive_int("batch", batch)
    pos = np.broadcast_to(np.arange(L, dtype=np.float64), (batch, L))
    if strategy in ("full", "recent"):
        priority = pos
    elif strategy == "uniform":
        keep = np.sort(L - 1 - np.floor(np.arange(K) * L / K).astype(np.int64))
        return np.broadcast_to(keep, (batch, K)).copy()
    elif strategy == "random":
        if rng is None:
            raise bad_argument(InvalidInputError, "rng", "a numpy Generator for random-K", rng)
        priority = rng.random((batch, L))
    elif strategy in ("topk", "h2o"):
        s = _matrix("scores", scores, batch, L)
        if strategy == "topk":
            priority = s
        else:
            recent = (K + 1) // 2
            priority = s + _BIG * (pos >= L - recent)
    elif strategy == "sink_recent":
        if isinstance(n_sink, bool) or not isinstance(n_sink, Integral) or not 0 <= n_sink < K:
            raise bad_argument(InvalidInputError, "n_sink", f"an integer in [0, K={K})", n_sink)
        priority = pos + _BIG * (pos < n_sink)
    else:  # reward
        r = _matrix("rewards", rewards, batch, L)
        priority = pos + _BIG * (r > 0)
    keep = np.argsort(-priority, axis=1, kind="stable")[:, :K]
    return np.sort(keep, axis=1)


def _matrix(name: str, value: Any, batch: int, L: int) -> np.ndarray:
    if value is None:
        raise bad_argument(InvalidInputError, name, f"an array (batch={batch}, L={L})", None)
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    if arr.shape != (batch, L) or not np.isfinite(arr).all():
        raise bad_argument(InvalidInputError, name, f"finite values of shape ({batch}, {L})", arr.shape, raw=True)
    return arr


def positions_for(kept: np.ndarray, L: int, mode: str = "reindex") -> torch.Tensor:
    """Position ids ``(batch, K + 1)`` of the kept tokens and the query."""
    if mode not in POSITIONS:
        raise bad_argument(InvalidInputError, "positions", f"one of {list(POSITIONS)}", mode)
    b, k = kept.shape
    if mode == "reindex":
        return torch.arange(k + 1).expand(b, k + 1).clone()
    query = np.full((b, 1), L)
    return torch.as_tensor(np.concatenate([kept, query], 1), dtype=torch.long)


def gather_window(window: torch.Tensor, kept: np.ndarray) -> torch.Tensor:
    """``window (B, L + 1, dim)`` (query last) → ``(B, K + 1, dim)``: the kept context tokens in
    order, then the query."""
    b, n, _ = window.shape
    if kept.shape[0] != b or (kept.size and kept.max() >= n - 1):
        raise bad_argument(InvalidInputError, "kept", f"positions of the {n - 1} context tokens per window", kept.shape, raw=True)
    idx = torch.as_tensor(np.concatenate([kept, np.full((b, 1), n - 1)], 1), dtype=torch.long)
    return window[torch.arange(b)[:, None], idx]
