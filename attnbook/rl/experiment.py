"""The chapter's experiment steps: controls on held-out tasks, the compression sweep, its cost.

Performance of a bandit run is its mean cumulative regret at ``T`` over tasks; "% of full" is
``(R_random − R_strategy) / (R_random − R_full) · 100`` — the share of the full-context model's
improvement over random play that a compressed context keeps. In Dark Room it is the mean
return per episode and ``return_strategy / return_full · 100``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError, bad_argument
from . import compress
from .ad import ADTransformer, Rollout, compressed_step, in_context
from .envs import Bandits, DarkRoom
from .sources import bandit_histories

__all__ = ["bandit_regret", "regret_summary", "compression_sweep", "step_cost", "attention_memory", "random_darkroom",
           "DarkRoomStudy", "darkroom_study"]


def bandit_regret(means: Any, steps: int, source: str, seed: int = 0) -> np.ndarray:
    """Per-step regret ``(tasks, steps)`` of a source algorithm run from scratch on ``means``."""
    m = np.asarray(means, dtype=np.float64)
    h = bandit_histories(m, steps, source, seed=seed)
    return m.max(1)[:, None] - m[np.arange(len(m))[:, None], h.actions]


def regret_summary(regret: np.ndarray, window: int = 10) -> dict:
    """Cumulative regret at the end (mean and standard error over tasks) and the mean per-step
    regret over the first and last ``window`` steps."""
    r = np.asarray(regret, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2 * window:
        raise bad_argument(InvalidInputError, "regret", f"(tasks, steps >= {2 * window})", r.shape, raw=True)
    total = r.sum(1)
    return {"R(T)": float(total.mean()), "R(T) se": float(total.std(ddof=1) / np.sqrt(len(total))) if len(total) > 1 else 0.0,
            f"first {window}": float(r[:, :window].mean()), f"last {window}": float(r[:, -window:].mean())}


def _performance(ro: Rollout, horizon: int | None) -> np.ndarray:
    if ro.regret is not None:
        return ro.regret.sum(1)
    n, steps = ro.rewards.shape
    return ro.rewards.reshape(n, steps // horizon, horizon).sum(-1).mean(1)


def compression_sweep(model: ADTransformer, make_env: Any, steps: int, strategies: Sequence[str], ks: Sequence[int], *,
                      random_level: float, positions: str = "reindex", seed: int = 0, progress: bool = True) -> list[dict]:
    """Run every strategy at every ``K`` (plus the full context) on fresh environments from
    ``make_env()``; one row per (strategy, K) with the performance (mean, standard error over
    tasks), % of full (module docstring; ``random_level`` is random play's performance) and the
    in-run median ms per step."""
    from tqdm.auto import tqdm

    L = model.config.n_ctx - 1
    runs = [("full", L)] + [(s, k) for s in strategies if s != "full" for k in ks]
    rows, full_perf = [], None
    for strategy, k in tqdm(runs, desc="compression", disable=not progress, leave=False):
        env = make_env()
        horizon = env.horizon if isinstance(env, DarkRoom) else None
        ro = in_context(model, env, steps, strategy=strategy, K=k, positions=positions, seed=seed)
        perf = _performance(ro, horizon)
        mean = float(perf.mean())
        if full_perf is None:
            full_perf = mean
        if isinstance(env, Bandits):
            pct = 100.0 * (random_level - mean) / (random_level - full_perf)
        else:
            pct = 100.0 * mean / full_perf
        rows.append({"strategy": strategy, "K": k, "performance": mean, "se": float(perf.std(ddof=1) / np.sqrt(len(perf))),
                     "% of full": pct, "ms/step (in run)": ro.ms_per_step})
    return rows


def step_cost(model: ADTransformer, window: torch.Tensor, strategy: str, K: int, *, rewards: np.ndarray | None = None,
              positions: str = "reindex", repeats: int = 20, seed: int = 0) -> float:
    """Median wall time (ms) of one compressed decision on ``window`` ``(B, L + 1, dim)``:
    selection, gathering and the forward — plus the full pass that ``topk`` needs, and the
    capture that ``h2o`` runs to accumulate scores. ``full`` is one forward of the window."""
    b, n, _ = window.shape
    L = n - 1
    compress._check(strategy, L, K)
    rng = np.random.default_rng(seed)
    rewards = np.zeros((b, L)) if rewards is None else rewards
    scores = np.zeros((b, L))
    times = []
    model.eval()
    for i in range(repeats + 2):
        start = time.perf_counter()
        compressed_step(model, window, strategy, K, rewards=rewards, accumulated=scores, positions=positions, rng=rng)
        if i >= 2:  # two warm-up runs
            times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def attention_memory(model: ADTransformer, batch: int, K: int) -> int:
    """Bytes of the attention matrices of one forward over ``K`` context tokens + the query:
    ``layers · batch · heads · (K + 1)² · 4`` (float32)."""
    c = model.config
    return c.n_layers * batch * c.n_heads * (K + 1) ** 2 * 4


def random_darkroom(goals: Any, episodes: int, *, size: int = 9, horizon: int = 20, seed: int = 0) -> np.ndarray:
    """Episode returns ``(goals, episodes)`` of uniformly random actions."""
    env = DarkRoom(goals, size=size, horizon=horizon)
    rng = np.random.default_rng(seed)
    out = np.zeros((env.n_tasks, episodes))
    for e in range(episodes):
        env.reset()
        for _ in range(horizon):
            _, r, _ = env.step(rng.integers(0, 5, env.n_tasks))
            out[:, e] += r
    return out


@dataclass
class DarkRoomStudy:
    """What :func:`darkroom_study` measured: mean return per episode on the held-out goals
    (``AD``, ``ED``, ``Q-learning (source, 1 stream)``, ``random``, ``optimal``), AD's attention
    enrichment on rewarded transitions, and the compression sweep."""

    returns: Any      # pandas DataFrame, one row per episode
    enrichment: float
    sweep: Any        # pandas DataFrame, one row per (strategy, K)


def darkroom_study(d: dict, *, context_dropout: float, k_divisors: Sequence[int], seed: int = 0, device: str = "cpu",
                   precision: str = "fp32") -> DarkRoomStudy:
    """Chapter 4's Dark Room experiment (the ``darkroom`` block ``d`` of a profile): Q-learning
    histories on the training goals, AD trained on them and ED on expert histories (cached), both run
    in context on the held-out goals for ``eval_episodes`` episodes of 20 steps, against a fresh
    Q-learning stream and random play; AD's query attention on rewarded transitions; the compression
    sweep at ``K = (n_ctx − 1) // k`` for ``k`` in ``k_divisors``."""
    import pandas as pd

    from ..train import TrainConfig
    from . import analysis
    from .ad import ADConfig, query_attention, train_ad
    from .envs import goal_split, optimal_return
    from .sources import expert_darkroom_histories, q_learning_histories

    train_goals, test_goals = goal_split(9, d["test_goals"], seed=seed)
    config = ADConfig(n_states=81, n_actions=5, n_ctx=d["n_ctx"])
    trainer = TrainConfig(steps=d["steps"], batch_size=d["batch_size"], lr=d["lr"], warmup=d["warmup"], eval_every=d["eval_every"], seed=seed)
    where = {"device": device, "precision": precision, "context_dropout": context_dropout}
    ad_model, _, _ = train_ad(q_learning_histories(train_goals, d["episodes"], streams=d["streams"], seed=seed), config, trainer,
                              data_key={"env": "darkroom", **d, "seed": seed}, name="ad-darkroom", **where)
    ed_model, _, _ = train_ad(expert_darkroom_histories(train_goals, d["episodes"]), config, trainer,
                              data_key={"env": "darkroom-expert", **d, "seed": seed}, name="ed-darkroom", **where)
    steps = 20 * d["eval_episodes"]
    per_episode = lambda rollout: rollout.rewards.reshape(len(test_goals), -1, 20).sum(-1).mean(0)  # noqa: E731
    ad_run = in_context(ad_model, DarkRoom(test_goals), steps, seed=seed)
    _, query = query_attention(ad_model, ad_run.window)
    enrichment = analysis.finite_mean(analysis.query_stats(query, ad_run.window_rewards)["reward_enrichment"])
    returns = pd.DataFrame({
        "AD": per_episode(ad_run),
        "ED": per_episode(in_context(ed_model, DarkRoom(test_goals), steps, seed=seed)),
        "Q-learning (source, 1 stream)": q_learning_histories(test_goals, d["eval_episodes"], streams=1, seed=seed + 5).episode_returns(20).mean(0),
        "random": random_darkroom(test_goals, d["eval_episodes"], seed=seed).mean(0),
    })
    returns["optimal"] = float(optimal_return(test_goals).mean())
    L = d["n_ctx"] - 1
    sweep = pd.DataFrame(compression_sweep(ad_model, lambda: DarkRoom(test_goals), steps, [s for s in compress.STRATEGIES if s != "full"],
                                           [L // k for k in k_divisors], random_level=0.0, positions="original", seed=seed))
    return DarkRoomStudy(returns, enrichment, sweep)
