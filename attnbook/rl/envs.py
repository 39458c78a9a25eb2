"""Environments for Algorithm Distillation: Bernoulli bandits and Dark Room, vectorised over tasks.

**Bernoulli bandits.** A task is ``K`` arm means; a pull of arm ``a`` pays 1 with probability
``means[a]``. :func:`bandit_tasks` draws means ``U[0, 1]``; the AD paper's variant puts the best
arm on an odd arm in 95 % of training tasks (``"odd"``) and on an even arm in 95 % of test tasks
(``"even"``), by swapping the best mean onto a random arm of that parity. Regret of a pull is
``max(means) − means[a]``.

**Dark Room** (AD §4). A ``size × size`` grid (9), episodes of ``horizon`` steps (20), the agent
starts at the centre, actions up/down/left/right/no-op (moves off the grid leave it in place),
reward 1 on every step that *ends* on the (invisible) goal. The observation is the cell
``x · size + y``. Best return from the centre with Manhattan distance ``d`` to the goal:
``min(horizon, horizon − d + 1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from ..errors import InvalidInputError, bad_argument

__all__ = [
    "BANDIT_VARIANTS",
    "ACTIONS",
    "bandit_tasks",
    "Bandits",
    "goal_split",
    "DarkRoom",
    "optimal_return",
]

BANDIT_VARIANTS = ("uniform", "odd", "even")
ACTIONS = ("up", "down", "left", "right", "stay")
_MOVES = np.array([[0, 1], [0, -1], [-1, 0], [1, 0], [0, 0]], dtype=np.int64)


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# -- bandits --------------------------------------------------------------------------------------

def bandit_tasks(n: int, arms: int = 5, *, variant: str = "uniform", p_parity: float = 0.95,
                 seed: int | np.random.Generator = 0) -> np.ndarray:
    """``(n, arms)`` arm means ``U[0, 1]``; ``variant`` "odd"/"even" moves the best mean onto an
    arm of that parity (1, 3, … / 0, 2, …) in a ``p_parity`` share of the tasks."""
    n = checks.integer("n", n, 1)
    arms = checks.integer("arms", arms, 2)
    if variant not in BANDIT_VARIANTS:
        raise bad_argument(InvalidInputError, "variant", f"one of {list(BANDIT_VARIANTS)}", variant)
    if not 0.0 <= p_parity <= 1.0:
        raise bad_argument(InvalidInputError, "p_parity", "a probability in [0, 1]", p_parity)
    rng = _rng(seed)
    means = rng.random((n, arms))
    if variant != "uniform":
        parity = 1 if variant == "odd" else 0
        candidates = np.arange(parity, arms, 2)
        for i in np.flatnonzero(rng.random(n) < p_parity):
            best, target = int(means[i].argmax()), int(rng.choice(candidates))
            means[i, [best, target]] = means[i, [target, best]]
    return means


class Bandits:
    """``N`` Bernoulli bandit tasks pulled in lockstep (one arm per task per call)."""

    def __init__(self, means: Any, seed: int | np.random.Generator = 0) -> None:
        m = np.asarray(means, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] < 1:
            raise bad_argument(InvalidInputError, "means", "an array (tasks, arms)", m.shape, raw=True)
        if m.shape[1] < 2:
            raise bad_argument(InvalidInputError, "arms", "at least 2 arms", m.shape[1], raw=True)
        if not np.isfinite(m).all() or (m < 0).any() or (m > 1).any():
            raise bad_argument(InvalidInputError, "means", "probabilities in [0, 1]", "values outside [0, 1]", raw=True)
        self.means = m
        self.rng = _rng(seed)

    @property
    def n_tasks(self) -> int:
        return self.means.shape[0]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    def pull(self, arms: Any) -> np.ndarray:
        """Rewards (0/1 floats) of pulling ``arms`` ``(N,)``, one per task."""
        a = np.asarray(arms)
        if a.shape != (self.n_tasks,) or not np.issubdtype(a.dtype, np.integer) or (a < 0).any() or (a >= self.n_arms).any():
            raise bad_argument(InvalidInputError, "arms", f"{self.n_tasks} arm indices in [0, {self.n_arms})", a, raw=True)
        p = self.means[np.arange(self.n_tasks), a]
        return (self.rng.random(self.n_tasks) < p).astype(np.float64)

    def regret(self, arms: Any) -> np.ndarray:
        """``max(means) − means[arm]`` per task."""
        a = np.asarray(arms)
        return self.means.max(1) - self.means[np.arange(self.n_tasks), a]


# -- Dark Room ------------------------------------------------------------------------------------

def goal_split(size: int = 9, n_test: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of the ``size²`` goal cells into (train, test) goals, each ``(n, 2)`` (x, y)."""
    size = checks.integer("size", size, 2)
    n_test = checks.integer("n_test", n_test, 1)
    if n_test >= size * size:
        raise bad_argument(InvalidInputError, "n_test", f"fewer than the {size * size} cells", n_test)
    cells = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2)
    order = np.random.default_rng(seed).permutation(len(cells))
    return cells[np.sort(order[n_test:])], cells[np.sort(order[:n_test])]


def optimal_return(goals: Any, size: int = 9, horizon: int = 20) -> np.ndarray:
    """Best episode return from the centre: ``min(horizon, horizon − d + 1)``, ``d`` the Manhattan
    distance to the goal (0 when the goal is out of reach within the episode)."""
    g = _goals(goals, size)
    horizon = checks.integer("horizon", horizon, 1)
    c = size // 2
    d = np.abs(g - c).sum(1)
    return np.clip(np.minimum(horizon, horizon - d + 1), 0, None).astype(np.float64)


def _goals(goals: Any, size: int) -> np.ndarray:
    size = checks.integer("size", size, 2)
    g = np.asarray(goals)
    if g.ndim == 1:
        g = g[None]
    if g.ndim != 2 or g.shape[1] != 2 or not np.issubdtype(g.dtype, np.integer):
        raise bad_argument(InvalidInputError, "goals", "integer cells (n, 2) as (x, y)", g.shape, raw=True)
    if (g < 0).any() or (g >= size).any():
        bad = g[((g < 0) | (g >= size)).any(1)][0].tolist()
        raise bad_argument(InvalidInputError, "goals", f"cells inside the {size}×{size} grid (0 … {size - 1})", bad, raw=True)
    return g.astype(np.int64)


class DarkRoom:
    """``N`` Dark Rooms (one goal each) stepped in lockstep.

    :meth:`reset` puts every agent at the centre; :meth:`step` moves, pays reward 1 where the
    new cell is the goal and reports ``done`` after ``horizon`` steps (the next :meth:`step`
    needs a :meth:`reset`). Observations are cell indices ``x · size + y``.
    """

    def __init__(self, goals: Any, size: int = 9, horizon: int = 20) -> None:
        self.size = checks.integer("size", size, 2)
        self.horizon = checks.integer("horizon", horizon, 1)
        self.goals = _goals(goals, self.size)
        self.pos = np.zeros_like(self.goals)
        self.t = self.horizon  # needs reset

    @property
    def n_tasks(self) -> int:
        return self.goals.shape[0]

    @property
    def n_states(self) -> int:
        return self.size * self.size

    def observe(self) -> np.ndarray:
        return self.pos[:, 0] * self.size + self.pos[:, 1]

    def reset(self) -> np.ndarray:
        self.pos = np.full_like(self.goals, self.size // 2)
        self.t = 0
        return self.observe()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """Apply ``actions`` ``(N,)`` (indices into :data:`ACTIONS`): (observations, rewards, done)."""
        a = np.asarray(actions)
        if a.shape != (self.n_tasks,) or not np.issubdtype(a.dtype, np.integer) or (a < 0).any() or (a >= len(ACTIONS)).any():
            raise bad_argument(InvalidInputError, "actions", f"{self.n_tasks} action indices in [0, {len(ACTIONS)})", a, raw=True)
        if self.t >= self.horizon:
            raise bad_argument(InvalidInputError, "step", "reset() after an episode ends", f"step {self.t + 1} of {self.horizon}", raw=True)
        self.pos = np.clip(self.pos + _MOVES[a], 0, self.size - 1)
        self.t += 1
        reward = (self.pos == self.goals).all(1).astype(np.float64)
        return self.observe(), reward, self.t >= self.horizon
