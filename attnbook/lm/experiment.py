"""Chapter 1's settings: how many role items (source sentences) the chapter generates, and how many
null draws each causal test may use.

MiniLM is pretrained, so the chapter trains nothing; its experiment is capture, measurement and
ablation (:mod:`attnbook.lm.attention`, :mod:`attnbook.lm.analysis`) on ``Settings.sentences`` items of
the role task (:func:`attnbook.lm.data.role_items`), halved into a selection and a test split.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks

__all__ = ["Settings", "PROFILES"]


@dataclass(frozen=True)
class Settings:
    """``sentences``: how many role items the chapter generates (one source sentence each: the units of
    every interval; the first half is the selection split, whose source sentences the attention
    statistics also run over, the second the test split); ``max_draws``: the most null draws per causal
    test (``None``: :func:`attnbook.stats.draws_for`, the fewest that let the family's strictest Holm
    threshold be reached; ``full`` uses at least 1,000)."""

    sentences: int
    max_draws: int | None = None

    def __post_init__(self) -> None:
        checks.integer("sentences", self.sentences, minimum=8)
        if self.max_draws is not None:
            checks.integer("max_draws", self.max_draws, minimum=1)


PROFILES: dict[str, Settings] = {"quick": Settings(sentences=128, max_draws=None), "full": Settings(sentences=512, max_draws=1000)}
