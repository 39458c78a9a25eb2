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
    threshold be reached; ``full`` uses at least 1,000); ``exact_up_to``: null spaces with at most this
    many other sets are enumerated (an exact test), larger ones drawn with Besag–Clifford stopping —
    ``quick`` draws (0) because one MiniLM forward over a split's 3 × 64 sentences takes about 0.6 s on a
    2-core CPU, and enumerating the 143 layer-matched sets of each pair would alone exceed the chapter's
    4-minute budget. ``clark_items``: how many role items the forward-only statistics run over (issue 31:
    Clark et al.'s head types and the rollout agreement, on their source sentences; the causal section's
    items are the first ``sentences`` of them — :func:`~attnbook.lm.data.role_items` is sequential, so
    they are the same items as alone); at least ``sentences``."""

    sentences: int
    max_draws: int | None = None
    exact_up_to: int = 256
    clark_items: int = 512

    def __post_init__(self) -> None:
        checks.integer("sentences", self.sentences, minimum=8)
        checks.integer("clark_items", self.clark_items, minimum=self.sentences)
        if self.max_draws is not None:
            checks.integer("max_draws", self.max_draws, minimum=1)
        checks.integer("exact_up_to", self.exact_up_to, minimum=0)


PROFILES: dict[str, Settings] = {"quick": Settings(sentences=128, max_draws=None, exact_up_to=0, clark_items=512),
                                 "full": Settings(sentences=512, max_draws=1000, clark_items=1024)}
