"""One training run of the char-level GPT with attention snapshots, cached; a chapter's runs on Ray.

A run (:class:`RunSpec`) trains on random windows of the training split (nanoGPT's loader),
evaluates the validation loss on ``eval_batches`` fixed batches every ``train.eval_every`` steps,
and every ``snapshot_every`` steps records an attention snapshot (:class:`AttentionTracker`)
and one generated sample with its quality (temperature 0.8, top-k 200, seeded). After training it
measures inference speed as the seed did. Everything lands in ``<cache>/charlm/<hash>/`` so a
second call loads instead of training: the weights of the best validation loss (normally the last
step) and those of the **middle snapshot** (:func:`middle_step`, ``middle.safetensors``), so that the
causal test can ask its question at the last snapshot and at one earlier (:func:`load_model`).

A run's **training seed** draws its initialisation and its training windows; everything it is
evaluated on — the validation batches, the snapshot windows, the repeated strings of the induction
probe, the sampler's and the speed test's random draws — comes from :data:`EVAL_SEED`, the same for
every training seed. :func:`chapter_runs` declares a profile's runs over its training seeds as
:class:`attnbook.runs.Run` s (the corpus travels in the run's arguments); :func:`attnbook.runs.execute`
trains the uncached ones on Ray and :func:`load_runs` reads them back from the cache.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .. import checks
from ..data import CORPORA, CharCorpus, load_corpus, missing_reason
from ..errors import InvalidInputError, bad_argument
from ..profiles import CPU_FP32, Hardware, Training
from ..train import History, RunCache, TrainConfig, fit, seed_everything, select_device, set_threads
from .causal import CausalSettings
from .model import GPT, GPTConfig
from .quality import inference_speed, quality, sample, word_set
from .tracking import AttentionTracker, repeated_batch

__all__ = ["CharModel", "CharDataset", "Settings", "PROFILES", "RunSpec", "RunResult", "train_run", "train_spec", "chapter_runs",
           "load_runs", "load_run", "load_corpora", "profile_specs", "load_model", "middle_step", "ngram_loss", "windows", "EVAL_SEED", "CHAPTER",
           "SNAPSHOTS"]

#: 2: the evaluation data (validation batches, snapshot windows, induction strings, sampler) no longer follow the training seed;
#: 3 (issue 30): a run also stores the weights of its middle snapshot (``middle.safetensors``), for the causal test at an earlier snapshot
VERSION = 3
#: the seed of everything a run is evaluated on, the same for every training seed (module docstring)
EVAL_SEED = 0
#: the chapter's slug (the runs' chapter)
CHAPTER = "charlm-evolution"


@dataclass(frozen=True)
class CharModel:
    """The GPT's shape in a profile (the vocabulary comes from each corpus)."""

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    dropout: float

    def __post_init__(self) -> None:
        GPTConfig(vocab_size=2, **asdict(self))  # GPTConfig checks every value

    def config(self, vocab_size: int) -> GPTConfig:
        """The :class:`~attnbook.charlm.model.GPTConfig` for a corpus of ``vocab_size`` characters."""
        return GPTConfig(vocab_size=vocab_size, **asdict(self))


@dataclass(frozen=True)
class CharDataset:
    """One corpus of a profile: its ``prefix`` (characters; None = all), its optimisation (``train``)
    and how often attention is snapshotted. It trains once per training seed of the chapter
    (:func:`attnbook.profiles.training_seeds`)."""

    prefix: int | None
    train: Training
    snapshot_every: int

    def __post_init__(self) -> None:
        if self.prefix is not None:
            checks.positive_int("prefix", self.prefix)
        checks.positive_int("snapshot_every", self.snapshot_every)


@dataclass(frozen=True)
class Settings:
    """Chapter 5's profile: the GPT ``model``, one :class:`CharDataset` per corpus (in the order
    the chapter shows them); ``eval_batches`` per validation, ``snapshot_windows`` tracked windows,
    ``induction_period`` of the repeated-string probe, ``sample_chars`` generated per snapshot,
    speed timed over ``speed_samples`` × ``speed_tokens``; ``threads`` torch threads per run (None:
    every core of the machine that runs it; each run is one Ray task holding one CPU); ``causal``: the
    causal section (:class:`~attnbook.charlm.causal.CausalSettings`: windows, draws)."""

    model: CharModel
    datasets: dict[str, CharDataset]
    eval_batches: int
    snapshot_windows: int
    induction_period: int
    sample_chars: int
    speed_samples: int
    speed_tokens: int
    threads: int | None
    hardware: Hardware
    causal: CausalSettings = CausalSettings()

    def __post_init__(self) -> None:
        for name in ("eval_batches", "snapshot_windows", "induction_period", "sample_chars", "speed_samples",
                     "speed_tokens"):
            checks.positive_int(name, getattr(self, name))
        if self.threads is not None:
            checks.positive_int("threads", self.threads)
        for name in self.datasets:
            checks.choice("datasets", name, CORPORA)


def _char_training(steps: int, batch_size: int, lr: float, warmup: int, eval_every: int) -> Training:
    """nanoGPT's optimisation for both profiles: weight decay 0.1, cosine decay to a tenth."""
    return Training(steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, eval_every=eval_every, weight_decay=0.1, min_lr_ratio=0.1)


PROFILES: dict[str, Settings] = {
    # quick: nanoGPT's CPU configuration (4 × 4 × 128, block 64, batch 12) made cheaper to fit three training
    # seeds × two corpora in the chapter's 6 minutes on 2 cores: 1,200 steps where nanoGPT runs 2,000 (and this
    # profile ran 1,800 on two seeds), at twice nanoGPT's peak learning rate (0.002), which keeps tiny Shakespeare
    # under the chapter's 2.0 bar; full: the seed's 6×6×384 / block 256 settings (GPU when present), five seeds
    "quick": Settings(
        model=CharModel(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
        datasets={"tinyshakespeare": CharDataset(None, _char_training(1200, 12, 2e-3, 100, 150), snapshot_every=150),
                  "text8": CharDataset(12_500_000, _char_training(1200, 12, 2e-3, 100, 150), snapshot_every=150)},
        eval_batches=16, snapshot_windows=8, induction_period=32, sample_chars=200, speed_samples=3, speed_tokens=200,
        threads=1, hardware=CPU_FP32,
        # issue 30: 512 independent test windows and 256 selection windows of 64 characters (1,716 fit in the validation split);
        # draws: attnbook.stats.draws_for(0.05, m = 2) = 79 at most, Monte Carlo with early stopping, and a space of at most 257 sets
        # (head_set_test's default: the 120 pairs of 16 heads, as the issue asks) enumerated, an exact test
        causal=CausalSettings(test_windows=512, selection_windows=256, reference_windows=64, previous_count=2, max_draws=None,
                              exact_up_to=256, prefix_cache=True)),
    "full": Settings(
        model=CharModel(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
        datasets={"tinyshakespeare": CharDataset(None, _char_training(5000, 64, 1e-3, 100, 250), snapshot_every=500),
                  "enwik8": CharDataset(None, _char_training(100_000, 32, 5e-4, 200, 1000), snapshot_every=5000),
                  "text8": CharDataset(None, _char_training(100_000, 32, 5e-4, 200, 1000), snapshot_every=5000)},
        eval_batches=200, snapshot_windows=8, induction_period=64, sample_chars=500, speed_samples=10, speed_tokens=500,
        threads=None, hardware=Hardware("auto", "auto"),
        # 1,000 null draws at most (every set of a space of at most 1,001: pairs of 36 heads are 630, enumerated); windows of 128
        # characters, since the 111,540 validation characters of tiny Shakespeare hold only 434 independent windows of 256
        causal=CausalSettings(test_windows=512, selection_windows=256, reference_windows=64, previous_count=2, max_draws=1000,
                              exact_up_to=1000, prefix_cache=False, window=128)),
}


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run (its cache key)."""

    dataset: str
    model: GPTConfig
    train: TrainConfig
    prefix: int | None = None          # characters of the corpus to use (None: all)
    eval_batches: int = 20             # fixed validation batches per evaluation
    snapshot_every: int = 250
    snapshot_windows: int = 8          # validation windows in the snapshot batch
    induction_period: int = 32         # repeated strings of this length (2·period <= block_size)
    sample_chars: int = 300            # characters generated at each snapshot
    speed_samples: int = 10            # the seed: 10 samples × 500 tokens
    speed_tokens: int = 500
    threads: int = 1

    def __post_init__(self) -> None:
        if self.dataset not in CORPORA:
            raise bad_argument(InvalidInputError, "dataset", f"one of {sorted(CORPORA)}", self.dataset)
        if not isinstance(self.model, GPTConfig) or not isinstance(self.train, TrainConfig):
            raise bad_argument(InvalidInputError, "model/train", "a GPTConfig and a TrainConfig", (self.model, self.train))
        for name in ("eval_batches", "snapshot_every", "snapshot_windows", "induction_period", "sample_chars", "speed_samples",
                     "speed_tokens", "threads"):
            checks.positive_int(name, getattr(self, name))
        if 2 * self.induction_period > self.model.block_size:
            raise bad_argument(InvalidInputError, "induction_period", f"at most block_size / 2 = {self.model.block_size // 2}",
                               self.induction_period)

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def name(self) -> str:
        return f"{self.dataset} seed {self.seed}"

    def to_dict(self) -> dict:
        return {"version": VERSION, **{k: v for k, v in asdict(self).items()}}


@dataclass
class RunResult:
    """What a run measured. ``snapshots[name]`` is (snapshots, …); ``maps`` (snapshots, L, H, T, T)."""

    spec: RunSpec
    history: History
    steps: list[int]
    snapshots: dict[str, np.ndarray]
    maps: np.ndarray
    samples: list[dict]                 # per snapshot: step, text, quality metrics
    final_train_loss: float             # mean training loss over the last evaluation interval
    inference_tok_s: float
    final_samples: list[str]
    final_quality: dict[str, float]
    seconds: float                      # training wall time (with evaluations and snapshots)
    tracking_seconds: float             # inside the attention tracker
    sampling_seconds: float             # inside the per-snapshot sampler
    window: str = ""                    # the text of the snapshot batch's first window (the stored maps)
    loaded: bool = False

    @property
    def middle_step(self) -> int:
        """The step of the middle snapshot, whose weights the run stores beside the last ones (:func:`load_model`)."""
        return middle_step(self.spec.train.steps, self.spec.snapshot_every)


def windows(data: np.ndarray, block_size: int, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``data[s : s+T]`` and targets ``data[s+1 : s+T+1]`` for each start ``s``: two (B, T) int64."""
    if block_size < 1 or len(data) <= block_size:
        raise bad_argument(InvalidInputError, "block_size", f"a positive size below the split length {len(data)}", block_size)
    offsets = np.asarray(starts)[:, None] + np.arange(block_size + 1)[None, :]
    chunk = torch.from_numpy(data[offsets].astype(np.int64))
    return chunk[:, :-1], chunk[:, 1:]


def ngram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int, order: int = 2, alpha: float = 1.0) -> float:
    """Cross-entropy (nats/char) of ``val`` under an add-``alpha`` n-gram model counted on ``train``
    (``order`` 1 = unigram, 2 = bigram): the floor a model must beat to use any context."""
    if order not in (1, 2):
        raise bad_argument(InvalidInputError, "order", "1 or 2", order)
    V = vocab_size
    if order == 1:
        p = (np.bincount(train, minlength=V) + alpha) / (len(train) + alpha * V)
        return float(-np.log(p[val]).mean())
    counts = np.bincount(train[:-1].astype(np.int64) * V + train[1:], minlength=V * V).reshape(V, V) + alpha
    p = counts / counts.sum(1, keepdims=True)
    return float(-np.log(p[val[:-1], val[1:]]).mean())


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _entry(spec: RunSpec) -> RunCache:
    return RunCache.of("charlm", spec.to_dict())


TIED = ("lm_head.weight",)  # the output head shares wte.weight: stored once
#: the weights a run stores: ``"last"`` (those of the best validation loss, normally the last step) and ``"middle"`` (the middle snapshot's)
SNAPSHOTS = ("last", "middle")
MIDDLE_FILE = "middle.safetensors"


def middle_step(steps: int, snapshot_every: int) -> int:
    """The training step of a run's middle snapshot: half of ``steps``, rounded down to a snapshot step
    (a multiple of ``snapshot_every``), e.g. 600 of 1,200 steps snapshotted every 150."""
    steps, every = checks.positive_int("steps", steps), checks.positive_int("snapshot_every", snapshot_every)
    return (steps // 2) // every * every


def _build(spec: RunSpec) -> GPT:
    seed_everything(spec.seed)
    return GPT(spec.model)


def load_model(spec: RunSpec, snapshot: str = "last") -> GPT:
    """The trained model of a cached run (train it first: :func:`chapter_runs`, :func:`attnbook.runs.execute`):
    ``snapshot="last"`` the stored weights of its best validation loss (normally the last step), ``"middle"``
    those of its middle snapshot (step :func:`middle_step`)."""
    from ..errors import MissingResourceError

    checks.choice("snapshot", snapshot, SNAPSHOTS)
    entry = _entry(spec)
    if not entry.complete(MIDDLE_FILE):
        raise MissingResourceError(f"{spec.name}: not trained yet (run train_run first)")
    model = entry.load_weights(_build(spec), tied=TIED)
    if snapshot == "middle":
        missing, unexpected = model.load_state_dict(entry.read_tensors(MIDDLE_FILE), strict=False)
        if sorted(missing) != sorted(TIED) or unexpected:
            raise MissingResourceError(f"{spec.name}: the middle snapshot's weights do not fit the model ({missing}, {unexpected})")
    return model.eval()


def _load(spec: RunSpec) -> RunResult | None:
    from ..errors import CheckpointError, MissingResourceError

    entry = _entry(spec)
    if not entry.complete("maps.safetensors", MIDDLE_FILE):
        return None
    try:
        history, record = entry.read()
        maps = entry.read_tensors("maps.safetensors")["maps"].numpy()
    except (CheckpointError, MissingResourceError, KeyError, TypeError):
        return None
    snaps = {k: np.asarray(v, dtype=np.float64) for k, v in record["snapshots"].items()}
    return RunResult(spec, history, record["steps"], snaps, maps, record["samples"],
                     record["final_train_loss"], record["inference_tok_s"], record["final_samples"], record["final_quality"],
                     record["seconds"], record["tracking_seconds"], record["sampling_seconds"], record["window"], loaded=True)


def _save(result: RunResult, model: GPT, middle: dict[str, torch.Tensor]) -> None:
    record = {k: v for k, v in asdict(result).items() if k not in ("spec", "maps", "history", "loaded", "snapshots")}
    record["snapshots"] = {k: v.tolist() for k, v in result.snapshots.items()}
    record["middle_step"] = middle_step(result.spec.train.steps, result.spec.snapshot_every)
    _entry(result.spec).save(model, result.history, result.spec.to_dict(), record=record,
                             tensors={"maps.safetensors": {"maps": torch.from_numpy(result.maps)},
                                      MIDDLE_FILE: {k: v for k, v in middle.items() if k not in TIED}}, tied=TIED)


def train_run(spec: RunSpec, *, progress: bool = True, corpus: CharCorpus | None = None, device: str = "cpu",
              precision: str = "fp32") -> RunResult:
    """Train (or load) one run; see the module docstring. ``device``: 'cpu', 'cuda' or 'auto'
    (CUDA when present); ``precision`` of the training steps: 'fp32', 'bf16' or 'auto' (bf16 where the
    hardware has it; :func:`attnbook.train.select_precision`). Neither is part of the cache key."""
    cached = _load(spec)
    if cached is not None:
        return cached
    set_threads(spec.threads)
    corpus = corpus or load_corpus(spec.dataset, prefix=spec.prefix)
    if corpus.vocab_size != spec.model.vocab_size:
        raise bad_argument(InvalidInputError, "model.vocab_size", f"the corpus vocabulary size {corpus.vocab_size}", spec.model.vocab_size)
    T, B = spec.model.block_size, spec.train.batch_size
    rng = np.random.default_rng(EVAL_SEED + 1000)  # evaluation data: the same for every training seed
    eval_sets = [windows(corpus.val, T, rng.integers(0, len(corpus.val) - T, B)) for _ in range(spec.eval_batches)]
    snap_x, _ = windows(corpus.val, T, rng.integers(0, len(corpus.val) - T, spec.snapshot_windows))
    tracker = AttentionTracker(snap_x, repeated_batch(corpus.vocab_size, spec.snapshot_windows, spec.induction_period, seed=EVAL_SEED))
    vocabulary = word_set(corpus.decode(corpus.train))
    samples: list[dict] = []
    sampling = [0.0]

    def sampler(step: int, model: GPT) -> None:
        start = time.perf_counter()
        text = sample(model, corpus, " ", spec.sample_chars, seed=EVAL_SEED)
        samples.append({"step": int(step), "text": text, **quality(text, vocabulary)})
        sampling[0] += time.perf_counter() - start

    def get_batch(g: torch.Generator):
        starts = torch.randint(0, len(corpus.train) - T, (B,), generator=g).numpy()
        return windows(corpus.train, T, starts)

    def evaluate(model: GPT) -> float:
        return float(np.mean([float(model(x.to(dev), y.to(dev))[1]) for x, y in eval_sets]))

    middle_at = middle_step(spec.train.steps, spec.snapshot_every)
    middle: dict[str, torch.Tensor] = {}

    def keep_middle(step: int, model: GPT) -> None:  # the middle snapshot's weights, for the causal test at an earlier snapshot
        if step == middle_at:
            middle.update({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})

    dev = select_device(device)
    model = _build(spec).to(dev)
    history = fit(model, lambda m, b: m(*b)[1], get_batch, evaluate, spec.train, precision=precision,
                  callbacks=[(spec.snapshot_every, tracker), (spec.snapshot_every, sampler), (spec.snapshot_every, keep_middle)],
                  progress=progress, desc=spec.name)
    if not middle:  # stopped early before the middle snapshot: the weights it ended with
        middle.update({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    speed, texts = inference_speed(model, corpus, samples=spec.speed_samples, new_tokens=spec.speed_tokens, seed=EVAL_SEED)
    qualities = [quality(t, vocabulary) for t in texts]
    final_quality = {k: _nanmean([q[k] for q in qualities]) for k in qualities[0]}
    snaps = {k: tracker.series(k).astype(np.float64) for k in tracker.snapshots[0]}
    finite = [x for x in history.train_loss if not math.isnan(x)]
    result = RunResult(spec, history, tracker.steps, snaps, np.stack(tracker.maps), samples, finite[-1] if finite else math.nan,
                       speed, texts, final_quality, history.seconds, tracker.seconds, sampling[0], corpus.decode(snap_x[0].numpy()))
    _save(result, model, middle)
    return result


def train_spec(spec: RunSpec, corpus: CharCorpus, device: str = "cpu", precision: str = "fp32") -> None:
    """A run's task (:class:`attnbook.runs.Run`): train ``spec`` on ``corpus`` (shipped from the driver,
    never read from the worker's disk) and fill its cache entry; nothing returned."""
    train_run(spec, progress=False, corpus=corpus, device=device, precision=precision)


def chapter_runs(specs: Sequence[RunSpec], corpora: dict[str, CharCorpus], hardware: Hardware = CPU_FP32) -> list:
    """One :class:`attnbook.runs.Run` per spec of ``specs`` (:func:`profile_specs`), labelled
    ``"<dataset> seed <seed>"``, its corpus in its arguments, trained on ``hardware`` with ``spec.threads``
    torch threads. Run them with :func:`attnbook.runs.execute`, then read them with :func:`load_runs`."""
    from ..runs import Run

    where = hardware.where()
    return [Run(CHAPTER, s.name, s.seed, train_spec, (s, corpora[s.dataset], where["device"], where["precision"]),
                entries=(_entry(s),), required=("maps.safetensors", MIDDLE_FILE), threads=s.threads) for s in specs]


def load_run(spec: RunSpec) -> RunResult:
    """The cached result of a run (train it first: :func:`chapter_runs` and :func:`attnbook.runs.execute`)."""
    from ..errors import MissingResourceError

    result = _load(spec)
    if result is None:
        raise MissingResourceError(f"{spec.name}: not trained yet (run it first: attnbook.runs.execute(chapter_runs(...)))")
    return result


def load_runs(specs: Sequence[RunSpec]) -> list[RunResult]:
    """:func:`load_run` of every spec, in order."""
    return [load_run(s) for s in specs]


def load_corpora(settings: Settings) -> tuple[dict[str, CharCorpus], dict[str, str]]:
    """The corpora of a ``charlm-evolution`` profile, and those left out (name -> why): a corpus
    that is neither local nor downloadable is skipped with a path-free reason instead of stopping the chapter."""
    from ..errors import MissingResourceError

    found, missing = {}, {}
    for dataset, d in settings.datasets.items():
        try:
            found[dataset] = load_corpus(dataset, prefix=d.prefix)
        except MissingResourceError:  # the reason without the machine's paths (notebooks print it)
            missing[dataset] = f"no local copy and no download; {missing_reason(dataset, d.prefix)}"
    return found, missing


def profile_specs(settings: Settings, corpora: dict[str, CharCorpus], seeds: Sequence[int] = (0,)) -> list[RunSpec]:
    """The runs of a ``charlm-evolution`` profile (see :mod:`attnbook.profiles`) for the datasets in
    ``corpora`` (from :func:`load_corpora`) and the training ``seeds``
    (:func:`attnbook.profiles.training_seeds`), in the profile's order, seeds within each."""
    from ..train import available_cores

    if not seeds:
        raise bad_argument(InvalidInputError, "seeds", "at least one training seed", seeds)
    for seed in seeds:
        checks.integer("seeds", seed, minimum=0)
    runs = []
    for dataset, d in settings.datasets.items():
        if dataset not in corpora:
            continue
        model = settings.model.config(corpora[dataset].vocab_size)
        for seed in seeds:
            runs.append(RunSpec(dataset, model, d.train.config(seed), prefix=d.prefix, eval_batches=settings.eval_batches,
                                snapshot_every=d.snapshot_every, snapshot_windows=settings.snapshot_windows,
                                induction_period=settings.induction_period, sample_chars=settings.sample_chars,
                                speed_samples=settings.speed_samples, speed_tokens=settings.speed_tokens,
                                threads=settings.threads or available_cores()))
    return runs
