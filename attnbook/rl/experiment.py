"""Chapter 4's experiment: its settings, the bandit study (data, AD and ED trained and run in
context on held-out tasks against the source and controls), the compression sweep with its cost,
and the Dark Room study.

**Seeds.** A training seed (:func:`attnbook.profiles.training_seeds`) draws the training tasks, the
source's learning histories on them, the weights' initialisation and the order of the training
windows. Everything evaluated stays fixed across training seeds (:data:`EVAL_SEED`): the held-out
bandits, the environments' reward draws and the actions sampled in context, the draw of the random head sets of
the ablation, the Dark Room goal split and its evaluation episodes. The chapter's trainings are
:class:`~attnbook.runs.Run` s (:func:`chapter_runs`), one per model and seed.

Performance of a bandit run is its mean cumulative regret at ``T`` over tasks; "% of full" is
``(R_random − R_strategy) / (R_random − R_full) · 100`` — the share of the full-context model's
improvement over random play that a compressed context keeps. In Dark Room it is the mean
return per episode and ``return_strategy / return_full · 100``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import checks
from ..errors import InvalidInputError, bad_argument
from ..stats import ALPHA
from ..profiles import CPU_FP32, Hardware, Training
from ..runs import Run
from ..train import History, RunCache
from . import compress
from .model import ADConfig, ADTransformer, Rollout, ad_key, compressed_step, in_context, train_ad
from .envs import Bandits, DarkRoom, bandit_tasks, goal_split
from .sources import BANDIT_SOURCES, Histories, bandit_histories, shuffle_histories

__all__ = ["EVAL_SEED", "DarkRoomSettings", "DARKROOM_SOURCES", "Settings", "PROFILES", "BanditData", "bandit_data", "BanditModels",
           "BANDIT_MODELS", "bandit_entry", "train_bandit_model", "train_bandit_models", "DARKROOM_MODELS", "darkroom_entry",
           "train_darkroom_model", "chapter_runs", "HeldOut", "held_out", "step_costs", "compression_table", "bandit_regret", "regret_summary", "compression_sweep", "step_cost",
           "attention_memory", "random_darkroom", "DarkRoomStudy", "darkroom_study", "HeadAblationSettings", "regret_metric",
           "reference_windows", "HeadStudy", "recency_head_study", "HEADS_KEY", "causal_tasks", "ProbedMetric",
           "causal_section", "step_zero", "BanditStudy", "bandit_study", "bandit_studies", "MODEL_NAMES",
           "random_redrawn", "REDRAW_SEED", "trained_controls"]


#: the seed of every evaluation draw (module docstring): the same for every training seed, which must be below it
EVAL_SEED = 10_000
#: the chapter's label in its runs
CHAPTER = "ad-compression"


def _training_seed(seed: int) -> int:
    return checks.integer("seed", seed, 0, EVAL_SEED - 1)


#: where Dark Room learning histories come from (:class:`DarkRoomSettings`)
DARKROOM_SOURCES = ("q_learning", "noisy_expert")
#: the name of each source in the study's returns table
SOURCE_NAMES = {"q_learning": "Q-learning", "noisy_expert": "ADε demonstrator"}


@dataclass(frozen=True)
class DarkRoomSettings:
    """The Dark Room study: ``test_goals`` held-out goals of the 9 × 9 room, learning histories of
    ``episodes`` episodes per training goal in ``streams`` streams from ``source`` (one of
    :data:`DARKROOM_SOURCES`: ``"q_learning"``, or ``"noisy_expert"`` — ADε's noise-distilled
    histories, :func:`attnbook.rl.sources.noisy_expert_histories`), AD's context of ``n_ctx``
    transitions trained with ``train``, ``eval_episodes`` episodes in context."""

    test_goals: int
    episodes: int
    streams: int
    n_ctx: int
    train: Training
    eval_episodes: int
    source: str = "q_learning"

    def __post_init__(self) -> None:
        for name in ("episodes", "streams", "eval_episodes"):
            checks.positive_int(name, getattr(self, name))
        checks.choice("source", self.source, DARKROOM_SOURCES)
        checks.integer("test_goals", self.test_goals, 1, 80)
        checks.integer("n_ctx", self.n_ctx, minimum=2)


@dataclass(frozen=True)
class HeadAblationSettings:
    """The "does the model use it?" test (:func:`recency_head_study`): the ``top`` heads by recency,
    chosen on the selection split (the chapter's held-out tasks), mean-ablated together on the test
    split, ``tasks`` other held-out tasks (one episode each, the independent units), against every
    other set of as many heads (exact enumeration where the space has at most ``exact_up_to + 1``
    sets, else ``max_draws`` Monte Carlo draws; None: :func:`attnbook.stats.draws_for` of the
    family); head means over ``reference`` training windows."""

    top: int = 2
    tasks: int = 100
    reference: int = 256
    max_draws: int | None = None
    exact_up_to: int = 256

    def __post_init__(self) -> None:
        for name in ("top", "reference"):
            checks.positive_int(name, getattr(self, name))
        checks.integer("tasks", self.tasks, minimum=100)  # ≥ 100 independent episodes per condition (issue 30)
        checks.integer("exact_up_to", self.exact_up_to, minimum=0)
        if self.max_draws is not None:
            checks.integer("max_draws", self.max_draws, minimum=1)


@dataclass(frozen=True)
class Settings:
    """Chapter 4's profile: bandits with ``arms`` arms and ``horizon`` pulls per task, one ``source``
    history per training task; AD trained with ``train``, ED and the shuffled-history AD with the same
    block (``ed_steps`` must equal ``train.steps``: issue 31, ED with the same steps as AD);
    ``context_dropout`` the share of training windows with random key masking (AD's sequence
    masking); compression keeps ``K = L // d`` transitions for each ``d`` in ``k_divisors``, timed
    over ``timing_repeats``; ``darkroom`` the Dark Room study (None: not run); ``heads`` the head
    ablation against random heads (:func:`recency_head_study`)."""

    arms: int
    horizon: int
    train_tasks: int
    test_tasks: int
    source: str
    train: Training
    ed_steps: int
    context_dropout: float
    k_divisors: tuple[int, ...]
    timing_repeats: int
    darkroom: DarkRoomSettings | None
    hardware: Hardware
    heads: HeadAblationSettings = HeadAblationSettings()

    def __post_init__(self) -> None:
        for name in ("train_tasks", "test_tasks", "ed_steps", "timing_repeats"):
            checks.positive_int(name, getattr(self, name))
        checks.integer("arms", self.arms, minimum=2)
        checks.integer("horizon", self.horizon, minimum=2)
        if self.ed_steps != self.train.steps:  # issue 31: the ED control trains as long as AD
            raise bad_argument(InvalidInputError, "ed_steps", f"AD's steps ({self.train.steps}): ED trains as long as AD", self.ed_steps)
        checks.choice("source", self.source, BANDIT_SOURCES)
        checks.probability("context_dropout", self.context_dropout)
        for d in self.k_divisors:
            checks.integer("k_divisors", d, minimum=2)
        if not isinstance(self.heads, HeadAblationSettings):
            raise bad_argument(InvalidInputError, "heads", "HeadAblationSettings", type(self.heads).__name__, raw=True)

    @property
    def ks(self) -> list[int]:
        """The kept context sizes ``K = L // d`` with ``L = horizon − 1``."""
        return [(self.horizon - 1) // d for d in self.k_divisors]

    def ed_training(self) -> Training:
        """ED's block: AD's with ``ed_steps`` steps and at most a quarter of them warm-up."""
        return dataclasses.replace(self.train, steps=self.ed_steps, warmup=min(self.train.warmup, self.ed_steps // 4))


PROFILES: dict[str, Settings] = {
    # issue 31: ED trains for AD's steps (was 300 in quick, 600 in full), and the shuffled-history AD is a third run per seed;
    # quick runs 3 training seeds in the budget of one: 900 AD steps (was 1,200), 50 held-out tasks (was 200);
    # the head ablation (issue 30) chooses heads on those 50 and tests them on 100 other held-out tasks (the issue's
    # minimum of 100 episodes: 121 rollouts of them per seed, about 0.2 s each on one core, keep the chapter within
    # its budget), exact over the 120 pairs (max_draws None: draws_for(α, m), never reached by a space of 120)
    "quick": Settings(arms=5, horizon=60, train_tasks=4000, test_tasks=50, source="ucb",
                      train=Training(steps=900, batch_size=32, lr=1e-3, warmup=50, eval_every=100), ed_steps=900,
                      context_dropout=0.3, k_divisors=(2, 4, 8), timing_repeats=10, darkroom=None, hardware=CPU_FP32,
                      heads=HeadAblationSettings(top=2, tasks=100, reference=256, max_draws=None)),
    "full": Settings(arms=5, horizon=60, train_tasks=8000, test_tasks=500, source="ucb",
                     train=Training(steps=3000, batch_size=64, lr=1e-3, warmup=100, eval_every=200), ed_steps=3000,
                     context_dropout=0.3, k_divisors=(2, 4, 8), timing_repeats=30,
                     darkroom=DarkRoomSettings(test_goals=16, episodes=20, streams=10, n_ctx=81, eval_episodes=40, source="noisy_expert",
                                               train=Training(steps=8000, batch_size=32, lr=1e-3, warmup=200, eval_every=500)),
                     hardware=Hardware("auto", "fp32"), heads=HeadAblationSettings(top=2, tasks=500, reference=1024, max_draws=1000)),
}


@dataclass
class BanditData:
    """Training tasks (arm means), held-out tasks and the source's learning histories on the training tasks."""

    train_means: np.ndarray
    test_means: np.ndarray
    histories: Histories

    def source_regret(self) -> np.ndarray:
        """Per-pull regret ``(tasks, T)`` of the source's training histories."""
        m = self.train_means
        return m.max(1)[:, None] - m[np.arange(len(m))[:, None], self.histories.actions]


def bandit_data(settings: Settings, seed: int = 0) -> BanditData:
    """The chapter's tasks and the source's histories: the training tasks and histories drawn with the
    training ``seed``, the held-out tasks with :data:`EVAL_SEED` (the same for every training seed)."""
    train_means = bandit_tasks(settings.train_tasks, settings.arms, seed=_training_seed(seed))
    test_means = bandit_tasks(settings.test_tasks, settings.arms, seed=EVAL_SEED)
    return BanditData(train_means, test_means, bandit_histories(train_means, settings.horizon, settings.source, seed=seed))


@dataclass
class BanditModels:
    """AD (trained on the source's histories), ED (on an expert's) and the shuffled-history AD (on the
    source's histories with each history's transitions in a random order), their training histories,
    and whether AD came from the cache."""

    ad: ADTransformer
    ad_history: History
    ed: ADTransformer
    ed_history: History
    loaded: bool
    shuffled: ADTransformer | None = None
    shuffled_history: History | None = None


#: the chapter's bandit models: AD (on the source's histories), ED (on an expert's) and AD on shuffled
#: histories (:func:`~attnbook.rl.sources.shuffle_histories`, issue 31's control of the recency finding)
BANDIT_MODELS = ("ad", "ed", "shuffled")
#: the name of each bandit model in the chapter's tables
MODEL_NAMES = {"ad": "AD", "ed": "ED", "shuffled": "AD, shuffled histories"}


def _bandit_source(settings: Settings, which: str) -> str:
    return {"ad": settings.source, "ed": "expert", "shuffled": f"{settings.source}-shuffled"}[which]


def _bandit_training(settings: Settings, seed: int, which: str) -> tuple[str, ADConfig, Any, dict]:
    """``(cache name, model config, TrainConfig, data key)`` of the bandit model ``which`` at training ``seed``."""
    checks.choice("which", which, BANDIT_MODELS)
    config = ADConfig(n_states=1, n_actions=settings.arms, n_ctx=settings.horizon)
    data_key = {"env": "bandit", "arms": settings.arms, "T": settings.horizon, "tasks": settings.train_tasks,
                "source": _bandit_source(settings, which), "seed": _training_seed(seed)}
    block = settings.ed_training() if which == "ed" else settings.train
    return f"{which}-bandit", config, block.config(seed), data_key


def bandit_entry(settings: Settings, seed: int, which: str) -> RunCache:
    """The run-cache entry the bandit model ``which`` (:data:`BANDIT_MODELS`) of training ``seed`` fills."""
    name, config, train, data_key = _bandit_training(settings, seed, which)
    return RunCache.of(name, ad_key(config, train, data_key=data_key, context_dropout=settings.context_dropout))


def train_bandit_model(settings: Settings, seed: int, which: str, progress: bool = True) -> tuple[ADTransformer, History, bool]:
    """Train (or load) the bandit model ``which`` of training ``seed``: AD on the source's histories of
    the seed's training tasks, ED on an expert's histories of the same tasks, ``"shuffled"`` on the
    source's histories with each one's transitions permuted (:func:`~attnbook.rl.sources.shuffle_histories`,
    seeded by the training seed). The tasks and histories
    are drawn again from the seed (a run on a Ray worker reads nothing from disk). Returns
    :func:`~attnbook.rl.model.train_ad`'s ``(model, history, loaded)``."""
    name, config, train, data_key = _bandit_training(settings, seed, which)
    means = bandit_tasks(settings.train_tasks, settings.arms, seed=seed)
    histories = bandit_histories(means, settings.horizon, "expert" if which == "ed" else settings.source, seed=seed)
    if which == "shuffled":
        histories = shuffle_histories(histories, seed=seed)
    return train_ad(histories, config, train, data_key=data_key, name=name, context_dropout=settings.context_dropout,
                    progress=progress, **settings.hardware.where())


def train_bandit_models(settings: Settings, data: BanditData | None = None, seed: int = 0) -> BanditModels:
    """AD, ED and the shuffled-history AD of training ``seed`` (:func:`train_bandit_model`; loaded from
    the cache after :func:`chapter_runs` ran). ``data`` is not needed (the seed rebuilds it) and kept for old calls."""
    model, ad_history, loaded = train_bandit_model(settings, seed, "ad")
    ed_model, ed_history, _ = train_bandit_model(settings, seed, "ed")
    shuffled, shuffled_history, _ = train_bandit_model(settings, seed, "shuffled")
    return BanditModels(model, ad_history, ed_model, ed_history, loaded, shuffled, shuffled_history)


#: the chapter's Dark Room models (full profile): AD on the source's histories, ED on the expert's
DARKROOM_MODELS = ("ad", "ed")


def _darkroom_training(d: DarkRoomSettings, seed: int, which: str) -> tuple[str, ADConfig, Any, dict]:
    checks.choice("which", which, DARKROOM_MODELS)
    key = dataclasses.asdict(d)
    data_key = {"env": "darkroom" if which == "ad" else "darkroom-expert", **key, "seed": _training_seed(seed),
                "goals": f"goal_split(9, {d.test_goals}, seed={EVAL_SEED})"}
    return f"{which}-darkroom", ADConfig(n_states=81, n_actions=5, n_ctx=d.n_ctx), d.train.config(seed), data_key


def darkroom_entry(d: DarkRoomSettings, seed: int, which: str, context_dropout: float) -> RunCache:
    """The run-cache entry the Dark Room model ``which`` (``"ad"`` or ``"ed"``) of training ``seed`` fills."""
    name, config, train, data_key = _darkroom_training(d, seed, which)
    return RunCache.of(name, ad_key(config, train, data_key=data_key, context_dropout=context_dropout))


def train_darkroom_model(d: DarkRoomSettings, seed: int, which: str, context_dropout: float, device: str = "cpu",
                         precision: str = "fp32", progress: bool = True) -> tuple[ADTransformer, History, bool]:
    """Train (or load) Dark Room's model ``which`` of training ``seed``: AD on ``d.source``'s histories
    (drawn with the seed) on the training goals, ED on the expert's; the goal split is fixed
    (:data:`EVAL_SEED`)."""
    from .sources import expert_darkroom_histories, noisy_expert_histories, q_learning_histories

    name, config, train, data_key = _darkroom_training(d, seed, which)
    train_goals, _ = goal_split(9, d.test_goals, seed=EVAL_SEED)
    if which == "ad":
        source = q_learning_histories if d.source == "q_learning" else noisy_expert_histories
        histories = source(train_goals, d.episodes, streams=d.streams, seed=seed)
    else:
        histories = expert_darkroom_histories(train_goals, d.episodes)
    return train_ad(histories, config, train, data_key=data_key, name=name, context_dropout=context_dropout, device=device,
                    precision=precision, progress=progress)


def chapter_runs(settings: Settings, seeds: Sequence[int]) -> list[Run]:
    """Every training of the chapter over the training ``seeds``, as :class:`~attnbook.runs.Run` s for one
    :func:`attnbook.runs.execute`: AD, ED and AD on shuffled histories on bandits per seed, and with ``settings.darkroom`` AD and ED
    in Dark Room per seed. The longest runs come first (Ray starts them in this order)."""
    seeds = [_training_seed(s) for s in seeds]
    out = []
    d = settings.darkroom
    if d is not None:
        where = settings.hardware.where()
        out += [Run(CHAPTER, f"Dark Room {which.upper()} seed {seed}", seed, train_darkroom_model,
                    (d, seed, which, settings.context_dropout, where["device"], where["precision"], False),
                    entries=(darkroom_entry(d, seed, which, settings.context_dropout),))
                for which in DARKROOM_MODELS for seed in seeds]
    out += [Run(CHAPTER, f"bandits {MODEL_NAMES[which]} seed {seed}", seed, train_bandit_model, (settings, seed, which, False),
                entries=(bandit_entry(settings, seed, which),))
            for which in BANDIT_MODELS for seed in seeds]
    return out


def trained_controls(settings: Settings, seeds: Sequence[int]) -> list[dict]:
    """The chapter's trained controls for ``summary["trained_controls"]``: each finding a trained model
    controls, the model, the runs per seed and the seeds (issue 31)."""
    seeds = [int(s) for s in seeds]
    out = [{"finding": f"{CHAPTER}/{key}", "control": control, "runs_per_seed": 1, "seeds": seeds}
           for key, control in (("learns-in-context", "ED (bandits), AD's steps"), ("beats-random", "ED (bandits), AD's steps"),
                                ("recency-vs-ed", "ED (bandits), AD's steps"),
                                ("recency-vs-shuffled", "AD on shuffled histories (bandits)"),
                                ("recency-survives", "AD on shuffled histories (bandits)"))]
    if settings.darkroom is not None:
        out.append({"finding": f"{CHAPTER}/darkroom-in-context", "control": "ED (Dark Room), AD's steps", "runs_per_seed": 1, "seeds": seeds})
    return out


def step_zero(config: ADConfig, seed: int = 0) -> ADTransformer:
    """The transformer ``config`` at random init with the training ``seed``: AD's weights before
    training (:func:`~attnbook.rl.model.train_ad` builds its model the same way), in eval mode. The
    global random state is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ADTransformer(config).eval()


@dataclass
class HeldOut:
    """The held-out comparison: AD's rollout, every player's per-pull regret and their summary table."""

    ad_run: Rollout
    regret: dict[str, np.ndarray]
    table: Any  # pandas DataFrame, one row per player (regret_summary's columns)


def held_out(models: BanditModels, data: BanditData, settings: Settings, seed: int = EVAL_SEED) -> HeldOut:
    """AD and ED in context on the held-out tasks, against the source (UCB1), Thompson sampling and random
    play; ``seed`` seeds the evaluation (environments ``seed + 2``, sampled actions ``seed``): by default
    :data:`EVAL_SEED`, the same for every training seed, so the baselines are the same on every seed."""
    import pandas as pd

    T, env = settings.horizon, lambda: Bandits(data.test_means, seed=seed + 2)  # noqa: E731
    ad_run = in_context(models.ad, env(), T, seed=seed)
    regret = {"AD": ad_run.regret,
              "ED": in_context(models.ed, env(), T, seed=seed).regret,
              "UCB1 (source)": bandit_regret(data.test_means, T, "ucb", seed=seed + 2),
              "Thompson": bandit_regret(data.test_means, T, "thompson", seed=seed + 2),
              "random": bandit_regret(data.test_means, T, "random", seed=seed + 2)}
    return HeldOut(ad_run, regret, pd.DataFrame({name: regret_summary(r) for name, r in regret.items()}).T)


def step_costs(model: ADTransformer, run: HeldOut, settings: Settings) -> dict[tuple[str, int], tuple[float, float]]:
    """Each decision's cost for every ``(strategy, K)`` of the sweep (and ``("full", L)``): median ms per
    step at batch 1 and batched over the held-out tasks (:func:`step_cost` on ``run``'s last window).
    The cost depends on the architecture and ``K``, not on the weights: the chapter times one seed's
    model and uses the times for every seed (:func:`compression_table`'s ``timing``)."""
    L, ks = settings.horizon - 1, settings.ks
    window, rewards = run.ad_run.window, run.ad_run.window_rewards
    strategies = [s for s in compress.STRATEGIES if s != "full"]
    return {(strategy, k): (step_cost(model, window[:1], strategy, k, rewards=rewards[:1], positions="original", repeats=settings.timing_repeats),
                            step_cost(model, window, strategy, k, rewards=rewards, positions="original", repeats=max(3, settings.timing_repeats // 3)))
            for strategy, k in [("full", L)] + [(s, k) for s in strategies for k in ks]}


def compression_table(model: ADTransformer, data: BanditData, run: HeldOut, settings: Settings, seed: int = EVAL_SEED,
                      timing: dict[tuple[str, int], tuple[float, float]] | None = None, progress: bool = True):
    """The compression sweep on the held-out tasks (every strategy at every ``K``, positions kept;
    evaluation ``seed`` as :func:`held_out`), with each step's cost: median ms per step at batch 1 and
    batched over the held-out tasks, the batched speed-up over the full context, and the attention
    memory of one batched forward. ``timing``: :func:`step_costs` measured before (default: measured here)."""
    import pandas as pd

    ks, T = settings.ks, settings.horizon
    strategies = [s for s in compress.STRATEGIES if s != "full"]
    sweep = pd.DataFrame(compression_sweep(model, lambda: Bandits(data.test_means, seed=seed + 2), T, strategies, ks,
                                           random_level=float(run.regret["random"].sum(1).mean()), positions="original", seed=seed,
                                           progress=progress))
    L, n = settings.horizon - 1, len(data.test_means)
    timing = step_costs(model, run, settings) if timing is None else timing
    sweep["ms/step, batch 1"] = [timing[(s, k)][0] for s, k in zip(sweep.strategy, sweep.K)]
    sweep[f"ms/step, batch {n}"] = [timing[(s, k)][1] for s, k in zip(sweep.strategy, sweep.K)]
    sweep["speed-up, batched"] = timing[("full", L)][1] / sweep[f"ms/step, batch {n}"]
    sweep["attention memory (KiB, batched)"] = [attention_memory(model, n, k) / 1024 for k in sweep.K]
    return sweep


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
    tasks), % of full (module docstring; ``random_level`` is random play's performance; NaN when the
    full context improves on nothing) and the in-run median ms per step."""
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
        gain = random_level - full_perf if isinstance(env, Bandits) else full_perf  # the full context's improvement (0: none to keep)
        if gain == 0:
            pct = float("nan")
        elif isinstance(env, Bandits):
            pct = 100.0 * (random_level - mean) / gain
        else:
            pct = 100.0 * mean / gain
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
    (``AD``, ``ED``, ``<source> (source, 1 stream)``, ``random``, ``optimal``), AD's attention
    enrichment on rewarded transitions, the compression sweep, and the enrichment's control: the same
    attention against another held-out goal's rewards (:func:`~attnbook.rl.analysis.other_tasks_rewards`)."""

    returns: Any      # pandas DataFrame, one row per episode
    enrichment: float
    sweep: Any        # pandas DataFrame, one row per (strategy, K)
    enrichment_other_goals: float = float("nan")


def darkroom_study(d: DarkRoomSettings, *, context_dropout: float, k_divisors: Sequence[int], seed: int = 0, device: str = "cpu",
                   precision: str = "fp32", progress: bool = True) -> DarkRoomStudy:
    """Chapter 4's Dark Room experiment (the ``darkroom`` block ``d`` of a profile): learning
    histories from ``d.source`` on the training goals, AD trained on them and ED on expert histories
    (cached), both run in context on the held-out goals for ``eval_episodes`` episodes of 20 steps,
    against a fresh stream of the source and random play; AD's query attention on rewarded transitions (and on another
    goal's rewards, the control); the compression sweep at ``K = (n_ctx − 1) // k`` for ``k`` in ``k_divisors``.
    The models are those of training ``seed`` (:func:`train_darkroom_model`: loaded after :func:`chapter_runs` ran);
    the goal split and every evaluation draw use :data:`EVAL_SEED`, the same for every training seed."""
    import pandas as pd

    from . import analysis
    from .model import query_attention
    from .envs import optimal_return
    from .sources import noisy_expert_histories, q_learning_histories

    histories = q_learning_histories if d.source == "q_learning" else noisy_expert_histories
    _, test_goals = goal_split(9, d.test_goals, seed=EVAL_SEED)
    ad_model, _, _ = train_darkroom_model(d, seed, "ad", context_dropout, device, precision, progress)
    ed_model, _, _ = train_darkroom_model(d, seed, "ed", context_dropout, device, precision, progress)
    ev = EVAL_SEED
    steps = 20 * d.eval_episodes
    per_episode = lambda rollout: rollout.rewards.reshape(len(test_goals), -1, 20).sum(-1).mean(0)  # noqa: E731
    ad_run = in_context(ad_model, DarkRoom(test_goals), steps, seed=ev)
    _, query = query_attention(ad_model, ad_run.window)
    enrichment = analysis.mean_enrichment(query, ad_run.window_rewards)
    other_goals = analysis.mean_enrichment(query, analysis.other_tasks_rewards(ad_run.window_rewards))
    returns = pd.DataFrame({
        "AD": per_episode(ad_run),
        "ED": per_episode(in_context(ed_model, DarkRoom(test_goals), steps, seed=ev)),
        f"{SOURCE_NAMES[d.source]} (source, 1 stream)": histories(test_goals, d.eval_episodes, streams=1, seed=ev + 5).episode_returns(20).mean(0),
        "random": random_darkroom(test_goals, d.eval_episodes, seed=ev).mean(0),
    })
    returns["optimal"] = float(optimal_return(test_goals).mean())
    L = d.n_ctx - 1
    sweep = pd.DataFrame(compression_sweep(ad_model, lambda: DarkRoom(test_goals), steps, [s for s in compress.STRATEGIES if s != "full"],
                                           [L // k for k in k_divisors], random_level=0.0, positions="original", seed=ev,
                                           progress=progress))
    return DarkRoomStudy(returns, enrichment, sweep, other_goals)


# -- does the model use it? the recency heads against every other pair of heads -------------------------

#: the chapter's causal finding (its family: :func:`attnbook.registry.causal_family` of the chapter)
HEADS_KEY = f"{CHAPTER}/recency-heads-used"


def causal_tasks(settings: Settings) -> np.ndarray:
    """The test split of the head ablation: ``settings.heads.tasks`` held-out bandits drawn with
    :data:`EVAL_SEED` right after the chapter's ``settings.test_tasks`` held-out tasks (the selection
    split, :func:`bandit_data`'s ``test_means``): rows ``test_tasks … test_tasks + tasks − 1`` of one
    draw, so the two splits are disjoint by construction and fixed across training seeds."""
    n = settings.test_tasks
    return bandit_tasks(n + settings.heads.tasks, settings.arms, seed=EVAL_SEED)[n:]


def regret_metric(test_means: Any, steps: int, seed: int = EVAL_SEED) -> Callable[[ADTransformer], np.ndarray]:
    """``metric(model)``: the cumulative regret at ``steps`` of ``model`` run in context (actions
    sampled, full context) on each bandit of ``test_means`` — one value per task, one episode each:
    the independent units — with :func:`held_out`'s seeds (environment ``seed + 2``, actions ``seed``),
    the same pulls and draws on every call, so two models differ only by what they do (a paired
    design: the damage of an ablation is its regret minus the intact model's on the same task and
    draws). Runs :func:`~attnbook.rl.model.bandit_rollout` (cached keys and values: the same
    decisions as :func:`~attnbook.rl.model.in_context`). Damage is positive: more regret."""
    from .model import bandit_rollout

    means = np.asarray(test_means, dtype=np.float64)
    steps = checks.integer("steps", steps, 1)

    def metric(model: ADTransformer) -> np.ndarray:
        return bandit_rollout(model, means, steps, seed=seed).regret.sum(1)
    return metric


class ProbedMetric:
    """``metric`` memoised by the model's response: the key of a call is the bytes of the model's
    logits on a fixed ``probe`` (a few windows), so a head set ablated twice (the recency pair's null
    and the positive control's are the same 120 pairs) is rolled out once. ``calls``: every call;
    ``rollouts``: the calls that ran ``metric``."""

    def __init__(self, metric: Callable[[ADTransformer], Any], probe: torch.Tensor) -> None:
        self.metric, self.probe = metric, probe
        self.calls = self.rollouts = 0
        self._seen: dict[bytes, Any] = {}

    def __call__(self, model: ADTransformer) -> Any:
        self.calls += 1
        with torch.no_grad():
            key = model(self.probe).detach().cpu().numpy().tobytes()
        if key not in self._seen:
            self.rollouts += 1
            self._seen[key] = self.metric(model)
        return self._seen[key]


def reference_windows(data: BanditData, settings: Settings, seed: int = EVAL_SEED) -> torch.Tensor:
    """``settings.heads.reference`` training windows (tokens ``(n, T, dim)``, unmasked, seeded) of the
    source's histories: the inputs the heads' means are taken over for ``how="mean"``."""
    from .model import Windows

    config = ADConfig(n_states=1, n_actions=settings.arms, n_ctx=settings.horizon)
    tokens, _ = Windows(data.histories, config).sample(settings.heads.reference, torch.Generator().manual_seed(seed + 3))
    return tokens


@dataclass
class HeadStudy:
    """The recency heads against every other set of as many heads, on one training seed: the recency
    ``heads`` ((layer, head), most recent first) and the positive control's ``control_heads`` (the
    largest single-head damage), both chosen on the ``selection_tasks`` held-out tasks; the
    single-head ablations there (``single``, :class:`~attnbook.intervene.HeadEffects`); the
    :class:`~attnbook.intervene.CausalFamily` (``family``) of the tests on the ``tasks`` test-split
    episodes; the ``seconds`` the whole section took, the metric's ``calls`` and the ``rollouts``
    that ran (each one episode on every task of its split)."""

    heads: list[tuple[int, int]]
    control_heads: list[tuple[int, int]]
    single: Any
    family: Any
    tasks: int
    selection_tasks: int
    seconds: float
    calls: int = 0
    rollouts: int = 0

    @property
    def test(self) -> Any:
        """The recency heads' :class:`~attnbook.intervene.HeadSetTest`."""
        return self.family.tests[HEADS_KEY]

    @property
    def draws(self) -> int:
        """Null head sets measured by the family's tests and the positive control."""
        return sum(t.result.draws for t in (*self.family.tests.values(), self.family.control))

    @property
    def per_layer(self) -> dict[str, float]:
        """The mean single-head effect per layer on the selection split (:func:`~attnbook.intervene.per_layer_effects`)."""
        from ..intervene import per_layer_effects

        return per_layer_effects(self.single)

    def cost(self, seed: int) -> dict:
        """The section's cost for ``summary["causal_cost"]``: seconds, forwards (metric calls that ran a
        rollout), draws (null sets measured after stopping), and the metric's calls."""
        return {"seed": seed, "seconds": self.seconds, "forwards": self.rollouts, "draws": self.draws, "metric_calls": self.calls}


def recency_head_study(model: ADTransformer, data: BanditData, settings: Settings, rows: list[dict], seed: int = EVAL_SEED,
                       progress: bool = True) -> HeadStudy:
    """The chapter's causal section on one trained AD (issue 30). **Selection split**: the chapter's
    held-out tasks (``data.test_means``): the ``settings.heads.top`` heads with the largest recency
    ratio in ``rows`` (:func:`~attnbook.rl.analysis.summarise`'s per-head statistics of AD's query
    there; :func:`~attnbook.rl.analysis.recency_heads`), and the positive control's heads, the as
    many whose single-head mean ablation raised the mean regret there most
    (:func:`~attnbook.intervene.strongest_heads`). **Test split**: :func:`causal_tasks`, one episode
    each; the metric :func:`regret_metric` (per episode). Each set is mean-ablated together and
    tested by :func:`~attnbook.intervene.head_set_test` against every other set of its shape
    (layer-matched, falling back to unmatched when that space cannot reach α/m; exact where the space
    allows), sized for the chapter's family (:func:`attnbook.registry.causal_family`). Head means are
    over :func:`reference_windows` (computed once). ``seed`` seeds the evaluation and the reference
    windows' draw: by default :data:`EVAL_SEED`, the same for every training seed. A study this code already computed
    for the same weights, data, rows and settings is read back (:mod:`attnbook.memo`: the build's execution, read
    again by the tests')."""
    from .. import memo

    config = {"weights": memo.fingerprint(model), "data": memo.fingerprint(data), "rows": memo.fingerprint(rows),
              "settings": memo.fingerprint(settings), "seed": seed}
    return memo.cached("rl/recency-head-study", config, lambda: _recency_head_study(model, data, settings, rows, seed, progress))


def _recency_head_study(model: ADTransformer, data: BanditData, settings: Settings, rows: list[dict], seed: int,
                        progress: bool) -> HeadStudy:
    from .. import registry
    from ..intervene import CausalFamily, head_effects, head_means, head_set_test, strongest_heads
    from . import analysis

    start = time.perf_counter()
    h = settings.heads
    family = registry.causal_family(CHAPTER)
    m = len(family)
    heads = analysis.recency_heads(rows, h.top)
    reference = reference_windows(data, settings, seed)
    means = head_means(model, reference)
    selection = ProbedMetric(regret_metric(data.test_means, settings.horizon, seed), reference[:4])
    single = head_effects(model, lambda mdl: float(np.mean(selection(mdl))), how="mean", reference=means, progress=progress)
    control_heads = strongest_heads(single, len(heads))
    test_split = causal_tasks(settings)
    metric = ProbedMetric(regret_metric(test_split, settings.horizon, seed), reference[:4])
    test = lambda chosen: head_set_test(model, metric, chosen, alpha=ALPHA, family=m, max_draws=h.max_draws, seed=seed, how="mean",  # noqa: E731
                                        reference=means, exact_up_to=h.exact_up_to, progress=progress)
    n_sel, n_test = len(data.test_means), len(test_split)
    causal = CausalFamily({HEADS_KEY: test(heads)}, test(control_heads),
                          selection=f"the chapter's {n_sel} held-out tasks (recency: AD's query rows there; positive control: "
                                    f"single-head ablation regret there)",
                          test_split=f"{n_test} other held-out tasks (drawn after them with EVAL_SEED), one episode of "
                                     f"{settings.horizon} pulls each")
    return HeadStudy(heads, control_heads, single, causal, n_test, n_sel, time.perf_counter() - start, selection.calls + metric.calls,
                     selection.rollouts + metric.rollouts)


def causal_section(settings: Settings, seed: int, *, progress: bool = False) -> HeadStudy:
    """Chapter 4's causal section for training ``seed`` on its already trained AD (loaded from the
    cache: :func:`chapter_runs` trained it): AD in context on the selection split (as :func:`held_out`
    runs it), its query statistics, then :func:`recency_head_study` — what ``benchmarks/ablation.py``
    times (``HeadStudy.seconds`` is the study's own time)."""
    from . import analysis
    from .model import query_attention

    data = bandit_data(settings, seed)
    model, _, _ = train_bandit_model(settings, seed, "ad", progress=False)
    run = in_context(model, Bandits(data.test_means, seed=EVAL_SEED + 2), settings.horizon, seed=EVAL_SEED)
    _, query = query_attention(model, run.window)
    rows = analysis.summarise(analysis.query_stats(query, run.window_rewards))
    return recency_head_study(model, data, settings, rows, progress=progress)


# -- one training seed, everything measured ---------------------------------------------------------

@dataclass
class BanditStudy:
    """Everything the chapter measures on the bandit models of one training ``seed`` (all of it on the
    fixed held-out tasks): the ``data`` (training tasks and histories of the seed), the ``models``, the
    held-out play (``held``), AD's query rows on its last held-out windows (``query``) and their per-head
    statistics (``rows``, :func:`~attnbook.rl.analysis.summarise`), the same for the random-init
    transformer (``twin_rows``), AD's reward enrichment and its control (``enrichment``), the
    compression ``sweep`` with the step costs it used (``timing``, :func:`step_costs`) and the recency
    heads' ablation (``heads``). Issue 31: ``control_rows`` — :func:`~attnbook.rl.analysis.summarise`'s
    rows of each control on AD's windows (``"shuffled"``: AD on shuffled histories, ``"ed"``, ``"untrained"``:
    the random-init twin, whose rows are also ``twin_rows``); ``recency`` — the recency log-ratio
    (:func:`~attnbook.rl.analysis.model_recency`, ``k = recency_k``) of AD and of each control;
    ``profiles`` — every model's per-head recency log-ratio and sharpness
    (:func:`~attnbook.rl.analysis.head_profile`); ``redrawn`` — random-K drawn again at each K (mean regret
    at T; :func:`random_redrawn`); ``seconds`` — the time of each part."""

    seed: int
    data: BanditData
    models: BanditModels
    held: HeldOut
    query: torch.Tensor
    rows: list[dict]
    twin_rows: list[dict]
    enrichment: tuple[float, float]
    sweep: Any
    heads: HeadStudy
    timing: dict
    control_rows: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
    recency: dict[str, float] = dataclasses.field(default_factory=dict)
    recency_k: int = 0
    profiles: dict[str, list[dict]] = dataclasses.field(default_factory=dict)
    redrawn: dict[int, float] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)


def bandit_study(settings: Settings, seed: int, *, timing: dict | None = None, progress: bool = True) -> BanditStudy:
    """The bandit study of training ``seed``: its models (loaded: :func:`chapter_runs` trained them),
    then :func:`held_out`, the query statistics on AD and on its random-init twin (:func:`step_zero`),
    the reward enrichment against another task's rewards, :func:`compression_table` (``timing``:
    :func:`step_costs`, measured here when None) and :func:`recency_head_study`. Every evaluation
    draw is :data:`EVAL_SEED`'s."""
    from . import analysis
    from .model import query_attention

    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now

    data = bandit_data(settings, seed)
    models = train_bandit_models(settings, data, seed)
    lap("load models")
    held = held_out(models, data, settings)
    lap("held-out play")
    window, rewards = held.ad_run.window, held.ad_run.window_rewards
    _, query = query_attention(models.ad, window)
    rows = analysis.summarise(analysis.query_stats(query, rewards))
    k = analysis.recency_k(window.shape[1] - 1)
    queries = {"AD": query}
    control_rows: dict[str, list[dict]] = {}
    for name, control in (("shuffled", models.shuffled), ("ed", models.ed), ("untrained", step_zero(models.ad.config, seed))):
        _, queries[name] = query_attention(control, window)  # every control on AD's own windows: only the weights differ
        control_rows[name] = analysis.summarise(analysis.query_stats(queries[name], rewards))
    recency = {name: analysis.model_recency(q, k) for name, q in queries.items()}
    head_profiles = {name: analysis.head_profile(q, k) for name, q in queries.items()}
    enrichment = (analysis.mean_enrichment(query, rewards), analysis.mean_enrichment(query, analysis.other_tasks_rewards(rewards)))
    lap("attention and controls")
    timing = step_costs(models.ad, held, settings) if timing is None else timing
    lap("step costs")
    sweep = compression_table(models.ad, data, held, settings, timing=timing, progress=progress)
    redrawn = random_redrawn(models.ad, data, settings)
    lap("compression sweep")
    heads = recency_head_study(models.ad, data, settings, rows, progress=progress)
    lap("head ablation")
    return BanditStudy(seed, data, models, held, query, rows, control_rows["untrained"], enrichment, sweep, heads, timing,
                       control_rows, recency, k, head_profiles, redrawn, seconds)


#: the selection seed of random-K drawn again (:func:`random_redrawn`): another draw of the kept transitions
REDRAW_SEED = EVAL_SEED + 31


def random_redrawn(model: ADTransformer, data: BanditData, settings: Settings, seed: int = EVAL_SEED) -> dict[int, float]:
    """Random-K drawn again: ``{K: mean cumulative regret at T}`` on the held-out tasks with the same
    environments and actions' draws as the sweep (evaluation ``seed``) and another draw of the kept
    transitions (:data:`REDRAW_SEED`) — the control of ``topk-beats-random``: the difference two
    random choices make by chance."""
    out = {}
    for k in settings.ks:
        ro = in_context(model, Bandits(data.test_means, seed=seed + 2), settings.horizon, strategy="random", K=k, positions="original",
                        seed=seed, selection_seed=REDRAW_SEED)
        out[k] = float(ro.regret.sum(1).mean())
    return out


def bandit_studies(settings: Settings, seeds: Sequence[int], *, progress: bool = True) -> tuple[dict[int, BanditStudy], dict]:
    """:func:`bandit_study` of every training seed, and the step costs (:func:`step_costs`), timed once on
    the first seed's AD and used for every seed (they depend on the architecture and ``K``, not on the weights)."""
    from tqdm.auto import tqdm

    studies: dict[int, BanditStudy] = {}
    timing = None
    for seed in tqdm(list(seeds), desc="bandit study (per seed)", unit="seed", disable=not progress):
        studies[seed] = bandit_study(settings, seed, timing=timing, progress=False)
        timing = studies[seed].timing
    return studies, timing
