"""Remove or replace attention heads and measure what changes: :func:`ablate` (see
:mod:`attnbook.intervene.core`), single-head effects (:mod:`attnbook.intervene.effects`), the permutation
test of a chosen head set against sets of the same shape (:mod:`attnbook.intervene.permutation`) and a
chapter's causal family with its positive control and Holm correction (:mod:`attnbook.intervene.family`)."""

from .core import MODES, HeadMeans, ablate, head_means, resolve_heads
from .effects import HeadEffects, RandomComparison, against_random, comparison_frame, head_effects
from .family import POSITIVE_CONTROL, CausalFamily
from .permutation import NULLS, HeadSetTest, head_set_test, null_sets, null_space_size, per_layer_effects, pooled_test, strongest_heads

__all__ = ["ablate", "head_means", "HeadMeans", "resolve_heads", "MODES", "head_effects", "HeadEffects", "against_random",
           "RandomComparison", "comparison_frame", "head_set_test", "HeadSetTest", "NULLS", "null_sets", "null_space_size",
           "per_layer_effects", "strongest_heads", "pooled_test", "CausalFamily", "POSITIVE_CONTROL"]
