"""Chapter 1's settings: how many sentences of the chapter's corpus the statistics run over.

MiniLM is pretrained, so the chapter trains nothing; its experiment is capture and measurement
(:mod:`attnbook.lm.attention`, :mod:`attnbook.lm.importance`) on ``Settings.sentences`` sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import checks

__all__ = ["Settings", "PROFILES"]


@dataclass(frozen=True)
class Settings:
    """``sentences``: how many of the chapter's corpus sentences the head statistics (and the mean
    ablation's reference) run over; ``pairs``: how many labelled (sentence, paraphrase) pairs the
    ablation metric reads; ``draws``: random head sets per comparison."""

    sentences: int
    pairs: int = 16
    draws: int = 50

    def __post_init__(self) -> None:
        checks.positive_int("sentences", self.sentences)
        checks.integer("pairs", self.pairs, minimum=2)
        checks.integer("draws", self.draws, minimum=20)


PROFILES: dict[str, Settings] = {"quick": Settings(sentences=24, pairs=16, draws=50), "full": Settings(sentences=64, pairs=16, draws=200)}
