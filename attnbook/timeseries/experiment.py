"""One forecaster per generator: data, train-or-load, errors against naive baselines, attention.

All errors are mean squared errors in *normalised* units (each window divided by its input
window's standard deviation, after subtracting its mean), so they compare across generators and
across the non-stationary series that would otherwise be dominated by their largest windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .. import checks
from ..capture import capture
from ..errors import InvalidInputError, bad_argument
from ..maps import AttentionMaps
from ..profiles import CPU_FP32, Hardware, Training
from ..runs import Run
from ..train import History, RunCache, TrainConfig, cached_fit, fit, model_device
from .model import Forecaster, ForecasterConfig
from .data import Series, make
from .windows import chronological_split, disjoint_gap, last_value, normalise, seasonal_naive, window_mean, windows


@dataclass(frozen=True)
class Settings:
    """Chapter 2's profile: one forecaster per generator and training seed on ``series_len`` steps
    (the seeds: :func:`attnbook.profiles.training_seeds`, 3 in ``quick``, 5 in ``full``);
    ``attn_dropout`` None keeps the model's; ``n_windows`` validation windows captured; per generator
    ``heatmap_samples`` × ``heatmap_heads`` (None: all heads) heatmaps saved as images. The causal
    section (:mod:`attnbook.timeseries.causal`) tests on ``eval_series`` fresh series per process of
    ``eval_windows`` non-overlapping windows each (the positive control's heads chosen on as many other
    series of ``select_windows`` windows each), with at most ``causal_draws`` null draws per test
    (None: :func:`attnbook.stats.draws_for`; its layer-matched spaces of 4 to 16 sets are enumerated either way).
    Questions 2 to 4 are measured on ``question_series`` fresh series per process (one window each,
    :mod:`attnbook.timeseries.controls`; issue 31), the forecast comparisons on the causal section's
    fresh series."""

    series_len: int
    train: Training
    attn_dropout: float | None
    n_windows: int
    heatmap_samples: int
    heatmap_heads: int | None
    hardware: Hardware
    eval_series: int = 64
    eval_windows: int = 4
    select_windows: int = 2
    causal_draws: int | None = None
    question_series: int = 128

    def __post_init__(self) -> None:
        for name in ("series_len", "n_windows", "heatmap_samples", "eval_series", "eval_windows", "select_windows", "question_series"):
            checks.positive_int(name, getattr(self, name))
        if self.eval_series < 64:
            raise bad_argument(InvalidInputError, "eval_series", "at least 64 fresh series per process (issue 30)", self.eval_series)
        if self.causal_draws is not None:
            checks.positive_int("causal_draws", self.causal_draws)
        if self.attn_dropout is not None:
            checks.probability("attn_dropout", self.attn_dropout)
        if self.heatmap_heads is not None:
            checks.positive_int("heatmap_heads", self.heatmap_heads)


#: the seed of every generated series: training and validation data are the same for every training
#: seed (a training seed varies the initial weights and the draw of training batches only)
DATA_SEED = 0

PROFILES: dict[str, Settings] = {
    "quick": Settings(series_len=3000, train=Training(steps=160, batch_size=32, lr=2e-3, warmup=20, eval_every=40),
                      attn_dropout=0.0, n_windows=64, heatmap_samples=1, heatmap_heads=2, hardware=CPU_FP32,
                      eval_series=64, eval_windows=4, select_windows=2, causal_draws=None, question_series=128),
    "full": Settings(series_len=10000, train=Training(steps=2000, batch_size=64, lr=1e-3, warmup=100, eval_every=100),
                     attn_dropout=None, n_windows=256, heatmap_samples=3, heatmap_heads=None, hardware=Hardware("auto", "fp32"),
                     eval_series=256, eval_windows=4, select_windows=4, causal_draws=1000, question_series=512),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one trained forecaster (hashed for the cache)."""

    generator: str
    series_len: int = 3000
    data_seed: int = DATA_SEED
    val_fraction: float = 0.2
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: the generator's parameters over its defaults, as sorted ``(name, value)`` pairs (issue 31: the
    #: stationary twin of RegimeSwitching is ``(("stay", 1.0),)``); empty for the nine processes
    params: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict:
        out = {"generator": self.generator, "series_len": self.series_len, "data_seed": self.data_seed,
               "val_fraction": self.val_fraction, "model": self.model.to_dict(), "train": asdict(self.train)}
        if self.params:  # only then: the nine processes' cache keys stay those of issue 30
            out["params"] = [list(p) for p in self.params]
        return out


@dataclass
class Dataset:
    """Normalised train/validation windows of one series, with what the analyses need."""

    series: Series
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    val_starts: np.ndarray  # start index of each validation input window in the series
    raw_val_inputs: np.ndarray
    raw_val_targets: np.ndarray
    val_mean: np.ndarray
    val_std: np.ndarray


def prepare(config: RunConfig) -> Dataset:
    """Generate the series, cut windows, split chronologically with a gap, normalise per window.

    The gap drops the windows between the splits so that no validation window shares a time step
    with a training window.
    """
    L, H = config.model.input_len, config.model.horizon
    if config.series_len < 4 * (L + H):
        raise bad_argument(InvalidInputError, "series_len", f"at least 4 x (input_len + horizon) = {4 * (L + H)}", config.series_len)
    series = make(config.generator, **dict(config.params)).generate(config.series_len, config.data_seed)
    inputs, targets, starts = windows(series.values, L, H)
    train_idx, val_idx = chronological_split(len(inputs), config.val_fraction, gap=disjoint_gap(L, H))
    x, y, mean, std = normalise(inputs, targets)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return Dataset(series, as_tensor(x[train_idx]), as_tensor(y[train_idx]), as_tensor(x[val_idx]), as_tensor(y[val_idx]),
                   starts[val_idx], inputs[val_idx], targets[val_idx], mean[val_idx], std[val_idx])


def mse(model: Forecaster, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Mean squared error of ``model`` on normalised windows (eval mode, no gradients)."""
    model.eval()
    dev, total = model_device(model), 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            total += float(((model(x[i : i + batch].to(dev)) - y[i : i + batch].to(dev)) ** 2).sum())
    return total / y.numel()


def baseline_mse(data: Dataset) -> dict[str, float]:
    """Validation MSE (normalised units) of the naive forecasts: last value, window mean and,
    where the generator has true periods, seasonal naive with each period that fits the input."""
    H = data.raw_val_targets.shape[1]
    norm = lambda f: (f - data.val_mean) / data.val_std  # noqa: E731
    target = norm(data.raw_val_targets)
    out = {
        "last value": float(np.mean((norm(last_value(data.raw_val_inputs, H)) - target) ** 2)),
        "window mean": float(np.mean((norm(window_mean(data.raw_val_inputs, H)) - target) ** 2)),
    }
    for period in data.series.truth.get("periods", ()):
        if period <= data.raw_val_inputs.shape[1]:
            out[f"seasonal naive ({period})"] = float(np.mean((norm(seasonal_naive(data.raw_val_inputs, H, period)) - target) ** 2))
    return out


def train_forecaster(config: RunConfig, data: Dataset | None = None, *, progress: bool = True, device: str = "cpu",
                     precision: str = "fp32") -> tuple[Forecaster, History, bool]:
    """Train-or-load the forecaster of ``config`` (cached by a hash of the whole config) on ``device``
    with ``precision`` (:func:`attnbook.train.select_precision`); returned on the CPU."""
    data = data or prepare(config)
    batch = config.train.batch_size

    def get_batch(generator: torch.Generator):
        idx = torch.randint(0, len(data.x_train), (batch,), generator=generator)
        return data.x_train[idx], data.y_train[idx]

    def loss_fn(model, b):
        return torch.nn.functional.mse_loss(model(b[0]), b[1])

    def build() -> Forecaster:
        torch.manual_seed(config.train.seed)
        return Forecaster(config.model)

    def train_fn(model: Forecaster) -> History:
        return fit(model, loss_fn, get_batch, lambda m: mse(m, data.x_val, data.y_val), config.train,
                   precision=precision, progress=progress, desc=f"{config.generator} (seed {config.train.seed})")

    return cached_fit("distribution", config.to_dict(), build, train_fn, device=device)


def untrained(config: RunConfig) -> Forecaster:
    """The same architecture with the initial weights of ``config``'s training run."""
    torch.manual_seed(config.train.seed)
    return Forecaster(config.model).eval()


def record(model: Forecaster, data: Dataset, n_windows: int) -> AttentionMaps:
    """Attention of ``model`` on the first ``n_windows`` validation windows.

    Key labels are time offsets relative to the last input (``t-99 … t0``).
    """
    if n_windows < 1:
        raise bad_argument(InvalidInputError, "n_windows", "a positive number of windows", n_windows)
    x = data.x_val[:n_windows]
    L = x.shape[1]
    with torch.no_grad(), capture(model) as cap:
        model(x)
    labels = [f"t-{L - 1 - i}" if i < L - 1 else "t0" for i in range(L)]
    return cap.to_maps(query_labels=labels, key_labels=labels, meta={"generator": data.series.name})


@dataclass
class GeneratorRun:
    """A trained forecaster with its data, errors and attention (trained and untrained)."""

    config: RunConfig
    data: Dataset
    model: Forecaster
    history: History
    loaded: bool
    mse: float
    baselines: dict[str, float]
    maps: AttentionMaps
    untrained_maps: AttentionMaps

    @property
    def name(self) -> str:
        return self.config.generator

    @property
    def best_baseline(self) -> tuple[str, float]:
        name = min(self.baselines, key=self.baselines.get)
        return name, self.baselines[name]


def run_generator(config: RunConfig, n_windows: int, *, progress: bool = True, device: str = "cpu",
                  precision: str = "fp32") -> GeneratorRun:
    """Prepare, train-or-load (on ``device``), evaluate and record attention (on the CPU) for one generator and seed."""
    data = prepare(config)
    model, history, loaded = train_forecaster(config, data, progress=progress, device=device, precision=precision)
    # the kept weights are those of the best validation step, whose MSE (the same function, same windows) the
    # history holds: no second forward over the validation windows (issue 31's saving; equal to the bit on the CPU)
    error = history.best_val if math.isfinite(history.best_val) else mse(model, data.x_val, data.y_val)
    return GeneratorRun(
        config, data, model, history, loaded, error, baseline_mse(data),
        record(model, data, n_windows), record(untrained(config), data, n_windows),
    )


def forecasts(run: GeneratorRun, n_windows: int) -> np.ndarray:
    """Forecasts of the first ``n_windows`` validation windows in the series' own units."""
    with torch.no_grad():
        y = run.model(run.data.x_val[:n_windows]).numpy()
    return y * run.data.val_std[:n_windows] + run.data.val_mean[:n_windows]


def configs(settings: Settings, seeds: Sequence[int]) -> dict[str, list[RunConfig]]:
    """One :class:`RunConfig` per generator and training seed (in ``seeds``' order), every one on the
    series of :data:`DATA_SEED`."""
    from .data import GENERATORS

    model = ForecasterConfig(attn_dropout=settings.attn_dropout)
    return {name: [RunConfig(name, series_len=settings.series_len, data_seed=DATA_SEED, model=model, train=settings.train.config(seed))
                   for seed in seeds]
            for name in GENERATORS}


def train_run(config: RunConfig, device: str = "cpu", precision: str = "fp32") -> None:
    """A run's ``train`` (:class:`attnbook.runs.Run`): train-or-load the forecaster of ``config`` on
    ``device`` with ``precision``; the series is rebuilt from ``config`` (its generator and data seed)."""
    train_forecaster(config, progress=False, device=device, precision=precision)


#: the stationary twin of RegimeSwitching (issue 31): the same generator with ``stay = 1``, so its state
#: never changes — one level plus noise, no switch — the world of Q4's pseudo-switch control
TWIN = "RegimeSwitching"
TWIN_PARAMS: tuple[tuple[str, float], ...] = (("stay", 1.0),)


def twin_configs(settings: Settings, seeds: Sequence[int]) -> list[RunConfig]:
    """One :class:`RunConfig` per training seed for the stationary twin (:data:`TWIN` with
    :data:`TWIN_PARAMS`): everything else as the nine processes' runs of that seed."""
    model = ForecasterConfig(attn_dropout=settings.attn_dropout)
    return [RunConfig(TWIN, series_len=settings.series_len, data_seed=DATA_SEED, model=model, train=settings.train.config(seed),
                      params=TWIN_PARAMS) for seed in seeds]


def chapter_runs(settings: Settings, seeds: Sequence[int]) -> list[Run]:
    """Every training of the chapter as a :class:`attnbook.runs.Run`: one forecaster per generator
    and training seed, seed-major (the first seed's nine first), then the trained control of Q4 (the
    stationary twin, :func:`twin_configs`), one per seed."""
    plan = configs(settings, seeds)
    where = settings.hardware.where()
    out = [Run("distribution-effects", f"{name} seed {seed}", seed, train_run, (plan[name][i], where["device"], where["precision"]),
               entries=(RunCache.of("distribution", plan[name][i].to_dict()),))
           for i, seed in enumerate(seeds) for name in plan]
    return out + [Run("distribution-effects", f"{TWIN} stationary twin seed {seed}", seed, train_run, (cfg, where["device"], where["precision"]),
                      entries=(RunCache.of("distribution", cfg.to_dict()),))
                  for seed, cfg in zip(seeds, twin_configs(settings, seeds))]


def load_twins(settings: Settings, seeds: Sequence[int]) -> list[Forecaster]:
    """The stationary twin's trained forecaster of every seed (in ``seeds``' order), from the cache
    (run :func:`chapter_runs` first); eval mode, on the CPU."""
    where = settings.hardware.where()
    return [train_forecaster(cfg, progress=False, **where)[0].eval() for cfg in twin_configs(settings, seeds)]


def load_runs(settings: Settings, seeds: Sequence[int], *, progress: bool = True) -> dict[str, list[GeneratorRun]]:
    """Every forecaster of :func:`chapter_runs` loaded from the cache (run them first:
    :func:`attnbook.runs.execute`), evaluated and its attention recorded: generator → one
    :class:`GeneratorRun` per seed, in ``seeds``' order."""
    from tqdm.auto import tqdm

    plan = configs(settings, seeds)
    out: dict[str, list[GeneratorRun]] = {}
    with tqdm(total=sum(len(v) for v in plan.values()), desc="evaluating forecasters", disable=not progress) as bar:
        for name, cfgs in plan.items():
            out[name] = []
            for cfg in cfgs:
                out[name].append(run_generator(cfg, settings.n_windows, progress=False, **settings.hardware.where()))
                bar.update(1)
    return out


def seed_runs(runs: Mapping[str, Sequence[GeneratorRun]], i: int) -> dict[str, GeneratorRun]:
    """The ``i``-th training seed's forecaster of every generator."""
    return {name: seeds[i] for name, seeds in runs.items()}


def capture_change(run: GeneratorRun, n_windows: int = 64) -> float:
    """Largest change capturing makes to the forecasts (SDPA path vs the explicit, recorded path)."""
    x = run.data.x_val[:n_windows]
    with torch.no_grad():
        plain = run.model(x)
        with capture(run.model):
            recorded = run.model(x)
    return float((plain - recorded).abs().max())


def attention(model: Forecaster, x: torch.Tensor) -> torch.Tensor:
    """Attention weights (layers, windows, heads, queries, keys) of ``model`` on normalised windows."""
    with torch.no_grad(), capture(model) as cap:
        model(x)
    return cap.weights()
