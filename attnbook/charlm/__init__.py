"""Chapter 5 (charlm-evolution): character-level GPTs — the model, generation quality, attention snapshots during training.

Every room is a submodule (``charlm.model``, ``charlm.experiment``, ``charlm.analysis`` …); the names
below are re-exported for short calls and old imports.
"""

from . import analysis, causal, experiment, explorer, figures, model, tracking  # noqa: F401 - the rooms, as submodules (quality: the name is its function)

from .experiment import RunResult, RunSpec, load_model, ngram_loss, chapter_runs, load_runs, train_run, windows
from .model import GPT, GPTConfig
from .quality import coherence, distinct_n, inference_speed, quality, repetition, sample, words
from .tracking import AttentionTracker, causal_maps, repeated_batch, snapshot_metrics, uniform_causal

__all__ = ["analysis", "causal", "experiment", "explorer", "figures", "model", "tracking",
           "GPT", "GPTConfig", "RunSpec", "RunResult", "train_run", "chapter_runs", "load_runs", "load_model", "ngram_loss", "windows",
           "coherence", "distinct_n", "inference_speed", "quality", "repetition", "sample", "words",
           "AttentionTracker", "causal_maps", "repeated_batch", "snapshot_metrics", "uniform_causal"]
