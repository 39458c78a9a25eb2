"""The one chapter table agrees with the book: notebooks, table of contents, profiles, findings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attnbook import findings, profiles
from attnbook.chapters import CHAPTERS, EXPERIMENTS, by_slug
from attnbook.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]


def test_every_chapter_row_is_a_notebook_in_the_toc_and_every_notebook_a_row():
    notebooks = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book").glob("[0-9][0-9]-*.ipynb"))
    assert notebooks == sorted(c.notebook.as_posix() for c in CHAPTERS)
    toc = re.findall(r"file: (book/\d\d-[\w-]+)", (ROOT / "_toc.yml").read_text())
    assert toc == [c.notebook.with_suffix("").as_posix() for c in CHAPTERS]  # in the table's order
    assert [c.number for c in CHAPTERS] == list(range(1, len(CHAPTERS) + 1))


def test_experiments_have_profiles_and_a_package_and_feed_the_findings_page():
    for chapter in EXPERIMENTS:
        assert set(profiles.PROFILES[chapter.slug]) == set(profiles.PROFILE_NAMES)
        assert (ROOT / "attnbook" / chapter.package).is_dir()
    assert set(profiles.PROFILES) == {c.slug for c in EXPERIMENTS}
    assert findings.CHAPTERS == {c.slug: c.label for c in EXPERIMENTS}


def test_by_slug():
    assert by_slug("charlm-evolution").number == 5 and by_slug("findings").experiment is False
    with pytest.raises(InvalidInputError, match="slug"):
        by_slug("nope")
