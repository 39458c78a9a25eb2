"""The one table of the book's pages: number, slug, title and the package folder behind each.

The slug names everything else: the notebook ``book/NN-slug.ipynb``, the profile key in
:mod:`attnbook.profiles`, the results folder ``results/<slug>/<profile>/``. The findings page
gathers the experiment chapters (:data:`EXPERIMENTS`) from it; the command line lists it.
Adding a chapter is one folder in ``attnbook/`` and one row here (see ``CONTRIBUTING.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, bad_argument

__all__ = ["Chapter", "CHAPTERS", "EXPERIMENTS", "by_slug"]


@dataclass(frozen=True)
class Chapter:
    """One page of the book: ``experiment`` chapters train and measure, and end with claims the
    findings page collects; the other pages (findings, compatibility) read or check."""

    number: int
    slug: str
    title: str
    package: str | None  # the folder of attnbook/ that holds its logic
    experiment: bool = True

    @property
    def notebook(self) -> Path:
        """``book/NN-slug.ipynb`` relative to the project root."""
        return Path("book") / f"{self.number:02d}-{self.slug}.ipynb"

    @property
    def label(self) -> str:
        """``"N · title"``, as the findings table names the chapter."""
        return f"{self.number} · {self.title}"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "reading-attention", "reading attention", "lm"),
    Chapter(2, "distribution-effects", "distribution effects", "timeseries"),
    Chapter(3, "vitime-harmonics", "ViTime harmonics", "vitime"),
    Chapter(4, "ad-compression", "AD and compression", "rl"),
    Chapter(5, "charlm-evolution", "char-LM evolution", "charlm"),
    Chapter(6, "findings", "what the book found", None, experiment=False),
    Chapter(7, "capture-compatibility", "capture compatibility", "compat", experiment=False),
)

#: the chapters that train, measure and assert claims (the findings page reads their summaries)
EXPERIMENTS: tuple[Chapter, ...] = tuple(c for c in CHAPTERS if c.experiment)


def by_slug(slug: str) -> Chapter:
    """The chapter whose slug is ``slug``."""
    for chapter in CHAPTERS:
        if chapter.slug == slug:
            return chapter
    raise bad_argument(InvalidInputError, "slug", f"one of {[c.slug for c in CHAPTERS]}", slug)
