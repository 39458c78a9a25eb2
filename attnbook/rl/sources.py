"""Source algorithms that write learning histories for Algorithm Distillation, and expert data for ED.

Every function returns a :class:`Histories`: ``(n_histories, steps)`` arrays of observations,
actions, rewards, next observations and episode-end flags, in the order they happened.

- Bandits: **UCB1** (pull each arm once, then ``argmax  mean_a + √(2 ln t / n_a)``), **Thompson
  sampling** (Beta(1, 1) priors, pull the argmax of one posterior draw per arm), **random**, and
  the **expert** (always the best arm; the ED control's data). A bandit pull is one step and one
  "episode"; observations are all 0.
- Dark Room: tabular **Q-learning**, one Q-table per goal shared by ``streams`` parallel agents
  (updates averaged per table entry, as a multi-actor learner), ε decaying linearly from 1 to 0
  over ``eps_episodes`` episodes, so that a few-episode window shows improvement; the **expert**
  walks the shortest path to the goal and stays; **noise-distilled** histories (ADε, Zisman et al.
  2024, "Emergence of in-context reinforcement learning from noise distillation") let the expert act
  but replace its action by a uniform random one with probability ε, ε falling linearly along the
  history (from ``eps_start`` at its first step to ``eps_end`` at ``decay_fraction`` of it), so that
  the history improves steadily from random play to the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import checks
from ..errors import InvalidInputError, bad_argument
from .envs import Bandits, DarkRoom, _goals, _rng

__all__ = [
    "Histories",
    "BANDIT_SOURCES",
    "bandit_histories",
    "q_learning_histories",
    "expert_darkroom_histories",
    "noisy_expert_histories",
    "shuffle_histories",
]

BANDIT_SOURCES = ("ucb", "thompson", "random", "expert")


@dataclass
class Histories:
    """Learning histories, ``(n, steps)`` each: ``obs`` (int), ``actions`` (int), ``rewards``
    (float), ``next_obs`` (int), ``done`` (bool, the step ended an episode)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray

    @property
    def n(self) -> int:
        return self.actions.shape[0]

    @property
    def steps(self) -> int:
        return self.actions.shape[1]

    def episode_returns(self, horizon: int) -> np.ndarray:
        """Return of every episode ``(n, steps // horizon)``."""
        horizon = checks.integer("horizon", horizon, 1)
        if self.steps % horizon:
            raise bad_argument(InvalidInputError, "horizon", f"a divisor of the {self.steps} steps", horizon)
        return self.rewards.reshape(self.n, -1, horizon).sum(-1)


def shuffle_histories(histories: Histories, *, seed: int) -> Histories:
    """The learning histories with each history's transitions in a random order (one permutation per
    history, drawn from ``seed``; every field of a transition moves with it): the same transitions —
    the same pulls, rewards and counts — with the order that shows learning gone. The control of the
    recency finding (issue 31): an AD trained on these has nothing to learn from the order of its context."""
    if not isinstance(histories, Histories):
        raise bad_argument(InvalidInputError, "histories", "Histories", type(histories).__name__, raw=True)
    seed = checks.integer("seed", seed, 0)
    rng = np.random.default_rng([seed, 31])
    order = np.argsort(rng.random((histories.n, histories.steps)), axis=1)
    take = lambda a: np.take_along_axis(np.asarray(a), order, axis=1)  # noqa: E731
    return Histories(take(histories.obs), take(histories.actions), take(histories.rewards), take(histories.next_obs),
                     take(histories.done))


# -- bandits --------------------------------------------------------------------------------------

def bandit_histories(means: Any, steps: int, source: str = "ucb", *, seed: int | np.random.Generator = 0) -> Histories:
    """``steps`` pulls of ``source`` on each task of ``means`` ``(n, arms)``."""
    if source not in BANDIT_SOURCES:
        raise bad_argument(InvalidInputError, "source", f"one of {list(BANDIT_SOURCES)}", source)
    steps = checks.integer("horizon", steps, 1)
    rng = _rng(seed)
    env = Bandits(means, seed=rng)
    n, k = env.n_tasks, env.n_arms
    counts = np.zeros((n, k))
    sums = np.zeros((n, k))
    actions = np.zeros((n, steps), dtype=np.int64)
    rewards = np.zeros((n, steps))
    rows = np.arange(n)
    for t in range(steps):
        if source == "ucb":
            if t < k:
                a = np.full(n, t)
            else:
                a = (sums / counts + np.sqrt(2.0 * np.log(t) / counts)).argmax(1)
        elif source == "thompson":
            a = rng.beta(1.0 + sums, 1.0 + counts - sums).argmax(1)
        elif source == "random":
            a = rng.integers(0, k, n)
        else:
            a = env.means.argmax(1)
        r = env.pull(a)
        counts[rows, a] += 1
        sums[rows, a] += r
        actions[:, t], rewards[:, t] = a, r
    zeros = np.zeros((n, steps), dtype=np.int64)
    return Histories(zeros, actions, rewards, zeros.copy(), np.ones((n, steps), dtype=bool))


# -- Dark Room ------------------------------------------------------------------------------------

def q_learning_histories(goals: Any, episodes: int = 60, *, streams: int = 10, size: int = 9, horizon: int = 20,
                         alpha: float = 0.5, gamma: float = 0.9, eps_episodes: int = 30,
                         seed: int | np.random.Generator = 0) -> Histories:
    """Q-learning histories: ``streams`` agents per goal share one Q-table, ``episodes`` each.

    Histories are ordered goal-major (goal ``g``'s streams are rows ``g·streams … g·streams + streams − 1``).
    """
    g = _goals(goals, size)
    episodes = checks.integer("episodes", episodes, 1)
    streams = checks.integer("streams", streams, 1)
    eps_episodes = checks.integer("eps_episodes", eps_episodes, 1)
    if not 0 < alpha <= 1 or not 0 <= gamma < 1:
        raise bad_argument(InvalidInputError, "alpha/gamma", "0 < alpha <= 1 and 0 <= gamma < 1", (alpha, gamma), raw=True)
    rng = _rng(seed)
    n_goals = len(g)
    env = DarkRoom(np.repeat(g, streams, axis=0), size=size, horizon=horizon)
    n, n_actions = env.n_tasks, 5
    table = np.zeros((n_goals, env.n_states, n_actions))
    owner = np.repeat(np.arange(n_goals), streams)
    total = episodes * horizon
    out = {k: np.zeros((n, total), dtype=np.int64) for k in ("obs", "actions", "next_obs")}
    rewards = np.zeros((n, total))
    done = np.zeros((n, total), dtype=bool)
    t = 0
    for ep in range(episodes):
        eps = max(0.0, 1.0 - ep / eps_episodes)
        s = env.reset()
        for _ in range(horizon):
            q = table[owner, s]
            greedy = (q + 1e-9 * rng.random(q.shape)).argmax(1)  # random tie-break
            a = np.where(rng.random(n) < eps, rng.integers(0, n_actions, n), greedy)
            s2, r, end = env.step(a)
            target = r + (0.0 if end else gamma) * table[owner, s2].max(1)
            delta = target - table[owner, s, a]
            sum_delta = np.zeros_like(table)
            hits = np.zeros_like(table)
            np.add.at(sum_delta, (owner, s, a), delta)
            np.add.at(hits, (owner, s, a), 1.0)
            table += alpha * np.divide(sum_delta, hits, out=np.zeros_like(table), where=hits > 0)
            out["obs"][:, t], out["actions"][:, t], rewards[:, t], out["next_obs"][:, t], done[:, t] = s, a, r, s2, end
            s, t = s2, t + 1
    return Histories(out["obs"], out["actions"], rewards, out["next_obs"], done)


def _expert_action(pos: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Shortest-path action: move along x first, then y, then stay."""
    dx, dy = goals[:, 0] - pos[:, 0], goals[:, 1] - pos[:, 1]
    return np.where(dx > 0, 3, np.where(dx < 0, 2, np.where(dy > 0, 0, np.where(dy < 0, 1, 4))))


def expert_darkroom_histories(goals: Any, episodes: int = 10, *, size: int = 9, horizon: int = 20) -> Histories:
    """Histories of the optimal policy (the ED control's data), one per goal: noise-free
    :func:`noisy_expert_histories`."""
    return noisy_expert_histories(goals, episodes, streams=1, size=size, horizon=horizon, eps_start=0.0, eps_end=0.0)


def noisy_expert_histories(goals: Any, episodes: int = 60, *, streams: int = 10, size: int = 9, horizon: int = 20,
                           eps_start: float = 1.0, eps_end: float = 0.0, decay_fraction: float = 0.9,
                           seed: int | np.random.Generator = 0) -> Histories:
    """ADε histories: the expert with ε-greedy noise that decays along each history (module docstring).

    At step ``t`` of ``T = episodes · horizon``: ``ε_t = eps_start + (eps_end − eps_start) · min(1, t / (decay_fraction · T))``;
    the action is uniform over the 5 actions with probability ``ε_t``, else the shortest-path action.
    ``streams`` histories per goal, ordered goal-major as :func:`q_learning_histories`.
    """
    g = _goals(goals, size)
    episodes = checks.integer("episodes", episodes, 1)
    streams = checks.integer("streams", streams, 1)
    eps_start, eps_end = checks.probability("eps_start", eps_start), checks.probability("eps_end", eps_end)
    decay_fraction = checks.interval("decay_fraction", decay_fraction, 0.0, 1.0, lo_open=True)
    rng = _rng(seed)
    env = DarkRoom(np.repeat(g, streams, axis=0), size=size, horizon=horizon)
    n, total = env.n_tasks, episodes * horizon
    obs, actions, next_obs = (np.zeros((n, total), dtype=np.int64) for _ in range(3))
    rewards, done = np.zeros((n, total)), np.zeros((n, total), dtype=bool)
    t = 0
    for _ in range(episodes):
        s = env.reset()
        for _ in range(horizon):
            eps = eps_start + (eps_end - eps_start) * min(1.0, t / (decay_fraction * total))
            a = np.where(rng.random(n) < eps, rng.integers(0, 5, n), _expert_action(env.pos, env.goals))
            s2, r, end = env.step(a)
            obs[:, t], actions[:, t], rewards[:, t], next_obs[:, t], done[:, t] = s, a, r, s2, end
            s, t = s2, t + 1
    return Histories(obs, actions, rewards, next_obs, done)
