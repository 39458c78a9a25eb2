"""Character-level GPTs: the model, generation quality, attention snapshots during training."""

from .experiment import RunResult, RunSpec, load_model, ngram_loss, train_run, train_runs, windows
from .model import GPT, GPTConfig
from .quality import coherence, distinct_n, inference_speed, quality, repetition, sample, words
from .tracking import AttentionTracker, causal_maps, repeated_batch, snapshot_metrics, uniform_causal

__all__ = ["GPT", "GPTConfig", "RunSpec", "RunResult", "train_run", "train_runs", "load_model", "ngram_loss", "windows",
           "coherence", "distinct_n", "inference_speed", "quality", "repetition", "sample", "words",
           "AttentionTracker", "causal_maps", "repeated_batch", "snapshot_metrics", "uniform_causal"]
