"""Remove or replace attention heads and measure what changes: :func:`ablate` (see
:mod:`attnbook.intervene.core`) and the experiments every chapter runs with it, one head at a time
and against random head sets (:mod:`attnbook.intervene.effects`)."""

from .core import MODES, HeadMeans, ablate, head_means, resolve_heads
from .effects import HeadEffects, RandomComparison, against_random, comparison_frame, head_effects

__all__ = ["ablate", "head_means", "HeadMeans", "resolve_heads", "MODES", "head_effects", "HeadEffects", "against_random",
           "RandomComparison", "comparison_frame"]
