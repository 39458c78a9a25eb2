"""``quick`` and ``full`` settings for every chapter.

``quick`` runs each chapter on a 2-core CPU within the budgets of DESIGN.md; ``full`` is the
seed-scale run for a GPU or a patient CPU. Both are real experiments, ``quick`` is smaller.
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
                  "heatmaps": {"samples": 1, "heads": 2}},
        "full": {"series_len": 10000, "steps": 2000, "batch_size": 64, "lr": 1e-3, "warmup": 100, "eval_every": 100,
                 "attn_dropout": None, "n_windows": 256, "seeds": 3, "extra_seeds": {},
                 "heatmaps": {"samples": 3, "heads": None}},
    },
    "vitime-harmonics": {
        # pretraining of the mini ViTime on fresh RealTS batches; the experiments themselves are a few forwards
        "quick": {"preset": "strip", "steps": 400, "batch_size": 32, "lr": 2e-3, "weight_decay": 0.05, "warmup": 10,
                  "eval_every": 50, "val_size": 64, "emd": 0.2},
        "full": {"preset": "grid4", "steps": 3000, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "warmup": 50,
                 "eval_every": 100, "val_size": 128, "emd": 0.2},
    },
    "ad-compression": {
        # bandits: K arms, T pulls per task (one history per task), UCB1 source; Dark Room only in full.
        # context_dropout: share of training windows with random key masking (AD's sequence masking);
        # compression keeps K = L // d context transitions for each divisor d
        "quick": {"arms": 5, "horizon": 60, "train_tasks": 4000, "test_tasks": 200, "source": "ucb",
                  "steps": 1200, "batch_size": 32, "lr": 1e-3, "warmup": 50, "eval_every": 100, "ed_steps": 300,
                  "context_dropout": 0.3, "k_divisors": [2, 4, 8], "timing_repeats": 10, "darkroom": None},
        "full": {"arms": 5, "horizon": 60, "train_tasks": 8000, "test_tasks": 500, "source": "ucb",
                 "steps": 3000, "batch_size": 64, "lr": 1e-3, "warmup": 100, "eval_every": 200, "ed_steps": 600,
                 "context_dropout": 0.3, "k_divisors": [2, 4, 8], "timing_repeats": 30,
                 "darkroom": {"test_goals": 16, "episodes": 60, "streams": 10, "n_ctx": 81, "steps": 8000, "batch_size": 32,
                              "lr": 1e-3, "warmup": 200, "eval_every": 500, "eval_episodes": 40}},
    },
}


def get(chapter: str, profile: str) -> dict:
    """A copy of the settings of ``chapter`` under ``profile``."""
    if chapter not in PROFILES:
        raise bad_argument(UnknownProfileError, "chapter", f"one of {sorted(PROFILES)}", chapter)
    if profile not in PROFILES[chapter]:
        raise bad_argument(UnknownProfileError, "profile", f"one of {list(PROFILE_NAMES)}", profile)
    return deepcopy(PROFILES[chapter][profile])
