"""``quick`` and ``full`` settings for every chapter, as typed, frozen dataclasses.

``quick`` runs each chapter on a 2-core CPU within the budgets of DESIGN.md; ``full`` is the
seed-scale run for a GPU or a patient CPU. Both are real experiments, ``quick`` is smaller.

Each chapter folder's ``experiment.py`` defines its ``Settings`` class and its ``PROFILES``
(``{"quick": Settings(…), "full": Settings(…)}``): a misspelt or missing field fails when that
module loads, and every value is checked by :mod:`attnbook.checks` then. Optimisation lives in
one :class:`Training` block per model, which becomes a :class:`~attnbook.train.TrainConfig` in
one place (:meth:`Training.config`); :class:`Hardware` says where it trains. :func:`get` finds a
chapter's folder in :mod:`attnbook.chapters`, so a new chapter needs no line here.

Where a chapter trains, ``device`` says where (``"cpu"``; ``"auto"``: CUDA when present,
:func:`attnbook.train.select_device`) and ``precision`` how (``"fp32"``; ``"auto"``: bfloat16
autocast where the hardware has it, :func:`attnbook.train.select_precision`). ``quick`` trains
on the CPU in fp32 so that its tables are the same on every machine. ``full`` uses a GPU when
there is one, and bf16 for the two models whose steps are dominated by large matmuls: chapter
3's ViT and chapter 5's 6 × 6 × 384 GPT (``benchmarks/precision.py`` on a 2-core AVX512-BF16
CPU: bf16 steps 1.34× faster for the grid4 ViTime, 1.94× for the GPT; chapter 3's full profile now
uses the strip preset, whose bf16 steps took as long as fp32 ones on one core, 0.32 s). Chapters 2
and 4 stay fp32 (there: 1.24× and 0.65×).
"""

from __future__ import annotations

import dataclasses
import importlib
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from . import checks
from .errors import UnknownProfileError, bad_argument
from .train import DEVICES, PRECISIONS, TrainConfig

PROFILE_NAMES = ("quick", "full")

#: how many training seeds every trained chapter runs by default, per profile: each finding is
#: reported across them (:class:`attnbook.claims.AcrossSeeds`)
SEEDS = {"quick": 3, "full": 5}


def training_seeds(profile: str, seed: int = 0, seeds: int | None = None) -> tuple[int, ...]:
    """The training seeds of a chapter run: ``seeds`` consecutive seeds from ``seed`` (default: the
    profile's :data:`SEEDS`), e.g. ``training_seeds("quick") == (0, 1, 2)``. A seed varies a run's
    initialisation and the order and draw of its training data; evaluation data stay fixed."""
    if profile not in SEEDS:
        raise bad_argument(UnknownProfileError, "profile", f"one of {list(PROFILE_NAMES)}", profile)
    seed = checks.integer("seed", seed, minimum=0)
    n = SEEDS[profile] if seeds is None else checks.positive_int("seeds", seeds)
    return tuple(range(seed, seed + n))


@dataclass(frozen=True)
class Training:
    """One model's optimisation: AdamW with warm-up and cosine decay (see :class:`~attnbook.train.TrainConfig`)."""

    steps: int
    batch_size: int
    lr: float
    warmup: int
    eval_every: int
    weight_decay: float = 0.01
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        self.config()  # TrainConfig checks every value

    def config(self, seed: int = 0) -> TrainConfig:
        """The :class:`~attnbook.train.TrainConfig` of this block for a training ``seed``."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           warmup=self.warmup, min_lr_ratio=self.min_lr_ratio, eval_every=self.eval_every, seed=seed)


@dataclass(frozen=True)
class Hardware:
    """Where and how a chapter trains: ``device`` in :data:`DEVICES`, ``precision`` in ``train.PRECISIONS``."""

    device: str
    precision: str

    def __post_init__(self) -> None:
        checks.choice("device", self.device, DEVICES)
        checks.choice("precision", self.precision, PRECISIONS)

    def where(self) -> dict[str, str]:
        """``{"device": …, "precision": …}``, the keyword arguments every training function takes."""
        return {"device": self.device, "precision": self.precision}


CPU_FP32 = Hardware("cpu", "fp32")


def table(chapter: str) -> dict[str, Any]:
    """Every profile of ``chapter`` (name -> settings): the ``PROFILES`` of the chapter folder's
    ``experiment.py`` (the folder is the chapter's row in :mod:`attnbook.chapters`)."""
    from .chapters import EXPERIMENTS

    folders = {c.slug: c.package for c in EXPERIMENTS}
    if chapter not in folders:
        raise bad_argument(UnknownProfileError, "chapter", f"one of {sorted(folders)}", chapter)
    return importlib.import_module(f"attnbook.{folders[chapter]}.experiment").PROFILES


def get(chapter: str, profile: str) -> Any:
    """A copy of the settings of ``chapter`` under ``profile`` (the chapter's ``Settings`` class)."""
    profiles = table(chapter)
    if profile not in profiles:
        raise bad_argument(UnknownProfileError, "profile", f"one of {list(PROFILE_NAMES)}", profile)
    return deepcopy(profiles[profile])


def as_dict(settings: Any) -> dict:
    """``settings`` as plain nested data (for ``summary.json``)."""
    return dataclasses.asdict(settings)
