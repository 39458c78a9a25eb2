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
    """``sentences``: how many of the chapter's corpus sentences the head statistics run over."""

    sentences: int

    def __post_init__(self) -> None:
        checks.positive_int("sentences", self.sentences)


PROFILES: dict[str, Settings] = {"quick": Settings(sentences=24), "full": Settings(sentences=64)}
