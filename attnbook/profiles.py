"""``quick`` and ``full`` settings for every chapter.

``quick`` runs each chapter on a 2-core CPU within the budgets of DESIGN.md; ``full`` is the
seed-scale run for a GPU or a patient CPU. Both are real experiments, ``quick`` is smaller.

Where a chapter trains, ``device`` says where (``"cpu"``; ``"auto"``: CUDA when present,
:func:`attnbook.train.select_device`) and ``precision`` how (``"fp32"``; ``"auto"``: bfloat16
autocast where the hardware has it, :func:`attnbook.train.select_precision`). ``quick`` trains
on the CPU in fp32 so that its tables are the same on every machine. ``full`` uses a GPU when
there is one, and bf16 for the two models whose steps are dominated by large matmuls: chapter
3's ViT and chapter 5's 6 × 6 × 384 GPT (``benchmarks/precision.py`` on a 2-core AVX512-BF16
CPU: bf16 steps 1.34× and 1.94× faster). Chapters 2 and 4 stay fp32 (there: 1.24× and 0.65×).
"""

from __future__ import annotations

from copy import deepcopy

from .errors import UnknownProfileError, bad_argument

PROFILE_NAMES = ("quick", "full")

PROFILES: dict[str, dict[str, dict]] = {
    "reading-attention": {
        # sentences: how many of the chapter's corpus sentences the statistics run over
        "quick": {"sentences": 24},
        "full": {"sentences": 64},
    },
    "distribution-effects": {
        # one forecaster per generator; extra training seeds where a question compares across seeds
        "quick": {"series_len": 3000, "steps": 160, "batch_size": 32, "lr": 2e-3, "warmup": 20, "eval_every": 40,
                  "attn_dropout": 0.0, "n_windows": 64, "seeds": 1, "extra_seeds": {"RandomWalk": 3, "GARCH11": 3},
                  "heatmaps": {"samples": 1, "heads": 2}, "device": "cpu", "precision": "fp32"},
        "full": {"series_len": 10000, "steps": 2000, "batch_size": 64, "lr": 1e-3, "warmup": 100, "eval_every": 100,
                 "attn_dropout": None, "n_windows": 256, "seeds": 3, "extra_seeds": {},
                 "heatmaps": {"samples": 3, "heads": None}, "device": "auto", "precision": "fp32"},
    },
    "vitime-harmonics": {
        # pretraining of the mini ViTime on fresh RealTS batches; the experiments themselves are a few forwards
        "quick": {"preset": "strip", "steps": 400, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.05, "warmup": 10,
                  "eval_every": 50, "val_size": 64, "emd": 0.2, "device": "cpu", "precision": "fp32"},
        "full": {"preset": "grid4", "steps": 3000, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "warmup": 50,
                 "eval_every": 100, "val_size": 128, "emd": 0.2, "device": "auto", "precision": "auto"},
    },
    "ad-compression": {
        # bandits: K arms, T pulls per task (one history per task), UCB1 source; Dark Room only in full.
        # context_dropout: share of training windows with random key masking (AD's sequence masking);
        # compression keeps K = L // d context transitions for each divisor d
        "quick": {"arms": 5, "horizon": 60, "train_tasks": 4000, "test_tasks": 200, "source": "ucb",
                  "steps": 1200, "batch_size": 32, "lr": 1e-3, "warmup": 50, "eval_every": 100, "ed_steps": 300,
                  "context_dropout": 0.3, "k_divisors": [2, 4, 8], "timing_repeats": 10, "darkroom": None,
                  "device": "cpu", "precision": "fp32"},
        "full": {"arms": 5, "horizon": 60, "train_tasks": 8000, "test_tasks": 500, "source": "ucb",
                 "steps": 3000, "batch_size": 64, "lr": 1e-3, "warmup": 100, "eval_every": 200, "ed_steps": 600,
                 "context_dropout": 0.3, "k_divisors": [2, 4, 8], "timing_repeats": 30, "device": "auto", "precision": "fp32",
                 "darkroom": {"test_goals": 16, "episodes": 60, "streams": 10, "n_ctx": 81, "steps": 8000, "batch_size": 32,
                              "lr": 1e-3, "warmup": 200, "eval_every": 500, "eval_episodes": 40}},
    },
    "charlm-evolution": {
        # nanoGPT's CPU configuration for quick (1,800 of its 2,000 steps, two single-thread runs side by side
        # on 2 cores: the chapter in <= 6 minutes); the seed's
        # 6×6×384 / block 256 per-dataset settings for full (GPU when there is one). Each dataset entry: its
        # prefix (characters; None = all), seeds and optimisation; shared keys apply to every run.
        "quick": {"model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
                  "datasets": {
                      "tinyshakespeare": {"prefix": None, "seeds": [0, 1], "steps": 1800, "batch_size": 12, "lr": 1e-3,
                                          "warmup": 100, "eval_every": 225, "snapshot_every": 225},
                      "text8": {"prefix": 12_500_000, "seeds": [0, 1], "steps": 1800, "batch_size": 12, "lr": 1e-3,
                                "warmup": 100, "eval_every": 225, "snapshot_every": 225}},
                  "weight_decay": 0.1, "min_lr_ratio": 0.1, "eval_batches": 16, "snapshot_windows": 8, "induction_period": 32,
                  "sample_chars": 200, "speed_samples": 3, "speed_tokens": 200, "workers": 2, "threads": 1, "device": "cpu", "precision": "fp32"},
        "full": {"model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2},
                 "datasets": {
                     "tinyshakespeare": {"prefix": None, "seeds": [0, 1, 2], "steps": 5000, "batch_size": 64, "lr": 1e-3,
                                         "warmup": 100, "eval_every": 250, "snapshot_every": 500},
                     "enwik8": {"prefix": None, "seeds": [0], "steps": 100_000, "batch_size": 32, "lr": 5e-4,
                                "warmup": 200, "eval_every": 1000, "snapshot_every": 5000},
                     "text8": {"prefix": None, "seeds": [0], "steps": 100_000, "batch_size": 32, "lr": 5e-4,
                               "warmup": 200, "eval_every": 1000, "snapshot_every": 5000}},
                 "weight_decay": 0.1, "min_lr_ratio": 0.1, "eval_batches": 200, "snapshot_windows": 8, "induction_period": 64,
                 "sample_chars": 500, "speed_samples": 10, "speed_tokens": 500, "workers": 1, "threads": None, "device": "auto", "precision": "auto"},
    },
}


def get(chapter: str, profile: str) -> dict:
    """A copy of the settings of ``chapter`` under ``profile``."""
    if chapter not in PROFILES:
        raise bad_argument(UnknownProfileError, "chapter", f"one of {sorted(PROFILES)}", chapter)
    if profile not in PROFILES[chapter]:
        raise bad_argument(UnknownProfileError, "profile", f"one of {list(PROFILE_NAMES)}", profile)
    return deepcopy(PROFILES[chapter][profile])
