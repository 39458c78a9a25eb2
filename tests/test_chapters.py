"""The one chapter table agrees with the book: notebooks, table of contents, profiles, findings."""

from __future__ import annotations

import importlib
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
        assert set(profiles.table(chapter.slug)) == set(profiles.PROFILE_NAMES)
        assert (ROOT / "attnbook" / chapter.package).is_dir()
        package = importlib.import_module(f"attnbook.{chapter.package}")
        for room in ("model", "experiment", "analysis", "figures", "explorer"):  # the rooms every chapter folder has
            assert (ROOT / "attnbook" / chapter.package / f"{room}.py").is_file(), (chapter.package, room)
            assert getattr(package, room).__name__ == f"attnbook.{chapter.package}.{room}" and room in package.__all__  # re-exported alike
        assert set(package.experiment.PROFILES) == set(profiles.PROFILE_NAMES)
    assert findings.CHAPTERS == {c.slug: c.label for c in EXPERIMENTS}


def test_by_slug():
    assert by_slug("charlm-evolution").number == 5 and by_slug("findings").experiment is False
    with pytest.raises(InvalidInputError, match="slug"):
        by_slug("nope")


@pytest.mark.parametrize("old, new, name", [("attnbook.lm.loading", "attnbook.lm.model", "load"),
                                            ("attnbook.lm.clark", "attnbook.lm.analysis", "attention_findings"),
                                            ("attnbook.lm.corpus", "attnbook.lm.data", "sentences"),
                                            ("attnbook.timeseries.forecaster", "attnbook.timeseries.model", "Forecaster"),
                                            ("attnbook.timeseries.questions", "attnbook.timeseries.analysis", "question_findings"),
                                            ("attnbook.timeseries.generators", "attnbook.timeseries.data", "make"),
                                            ("attnbook.rl.ad", "attnbook.rl.model", "train_ad")])
def test_moved_modules_keep_their_old_import_paths_with_a_warning(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope


def test_every_notebook_is_valid_nbformat_with_unique_cell_ids_and_no_outputs():
    """nbformat validates each notebook as stored (a missing cell id warns now and fails in nbformat's
    next major version); chapters are committed without outputs."""
    import json

    import nbformat

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        raw = json.loads(path.read_text())  # as stored: nbformat.read fills missing ids in itself
        missing = [i for i, c in enumerate(raw["cells"]) if "id" not in c]
        assert not missing, f"{path.name}: cells without an id: {missing}"
        nb = nbformat.from_dict(raw)
        ids = [c["id"] for c in nb.cells]
        assert len(set(ids)) == len(ids), f"{path.name}: repeated cell ids"
        nbformat.validate(nb)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), path.name
