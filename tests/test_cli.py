"""``python -m attnbook``: re-execution only of what changed, list, clean."""

from __future__ import annotations

import nbformat
import pytest

from attnbook import __main__ as cli


@pytest.fixture()
def tiny_book(tmp_path, monkeypatch):
    """A project root with one fast chapter and a one-file package."""
    (tmp_path / "book").mkdir()
    (tmp_path / "attnbook").mkdir()
    (tmp_path / "attnbook" / "x.py").write_text("A = 1\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'quick'", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell("print(profile)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "book" / "01-tiny.ipynb")
    monkeypatch.delenv("ATTNBOOK_PROFILE", raising=False)
    monkeypatch.delenv("ATTNBOOK_RESULTS", raising=False)
    return tmp_path


def test_fingerprint_follows_notebook_parameters_and_package(tiny_book):
    nb = tiny_book / "book" / "01-tiny.ipynb"
    base = cli.fingerprint(nb, {}, tiny_book)
    assert cli.fingerprint(nb, {}, tiny_book) == base
    assert cli.fingerprint(nb, {"profile": "full"}, tiny_book) != base
    (tiny_book / "attnbook" / "x.py").write_text("A = 2\n")
    assert cli.fingerprint(nb, {}, tiny_book) != base
    base = cli.fingerprint(nb, {}, tiny_book)
    (tiny_book / "attnbook" / "view.js").write_text("var a = 1;\n")  # the page view's script is an input too
    assert cli.fingerprint(nb, {}, tiny_book) != base


def test_run_executes_only_what_changed(tiny_book, capsys):
    first = cli.run([], {}, tiny_book)
    assert "running 01-tiny" in capsys.readouterr().out and first[0].is_file()
    assert cli.up_to_date(tiny_book / "book" / "01-tiny.ipynb", {}, tiny_book)
    cli.run([], {}, tiny_book)
    assert "01-tiny: up to date" in capsys.readouterr().out
    cli.run([], {"profile": "full"}, tiny_book)  # other parameters: run again
    out = nbformat.read(first[0], 4)
    assert "running 01-tiny" in capsys.readouterr().out and "full" in out.cells[-1].outputs[0]["text"]
    cli.run([], {"profile": "full"}, tiny_book, force=True)
    assert "running 01-tiny" in capsys.readouterr().out
    assert [r["executed"] for r in cli.listing(tiny_book)] == ["stale"]  # executed with non-default parameters


def test_an_edit_during_a_run_leaves_the_copy_stale(tiny_book, monkeypatch):
    """The stamp is what the run read: a package file edited while papermill runs means the next run re-executes."""
    import papermill

    real = papermill.execute_notebook

    def edit_while_running(*args, **kwargs):
        (tiny_book / "attnbook" / "x.py").write_text("A = 3\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", edit_while_running)
    cli.run([], {}, tiny_book)
    assert not cli.up_to_date(tiny_book / "book" / "01-tiny.ipynb", {}, tiny_book)


def test_clean_removes_the_build_but_keeps_the_cache_unless_asked(tiny_book, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "charlm").mkdir(parents=True)
    (tiny_book / "_build" / "executed").mkdir(parents=True)
    (tiny_book / "_build" / "html").mkdir()
    removed = cli.clean(tiny_book)
    assert {p.name for p in removed} == {"executed", "html"} and (tmp_path / "cache" / "charlm").exists()
    assert [r["executed"] for r in cli.listing(tiny_book)] == ["not run"]
    cli.clean(tiny_book, cache=True)
    assert not (tmp_path / "cache" / "charlm").exists()


def test_list_prints_chapters_and_cache(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01-reading-attention" in out and "profiles: quick, full" in out and "cache:" in out


def test_the_findings_page_depends_on_the_chapters_results(tiny_book):
    nb = tiny_book / "book" / "06-findings.ipynb"
    nb.write_text((tiny_book / "book" / "01-tiny.ipynb").read_text())
    chapter = tiny_book / "book" / "01-tiny.ipynb"
    before = (cli.fingerprint(nb, {}, tiny_book), cli.fingerprint(chapter, {}, tiny_book))
    summary = tiny_book / "results" / "x" / "quick" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text('{"claims": []}')
    assert cli.fingerprint(nb, {}, tiny_book) != before[0] and cli.fingerprint(chapter, {}, tiny_book) == before[1]


def test_another_results_folder_runs_every_chapter_again_and_the_findings_page_reads_it(tiny_book, tmp_path, monkeypatch):
    """A build with ``ATTNBOOK_RESULTS`` pointing elsewhere finds no copy up to date: the chapters' summaries must land there."""
    nb = tiny_book / "book" / "06-findings.ipynb"
    nb.write_text((tiny_book / "book" / "01-tiny.ipynb").read_text())
    chapter = tiny_book / "book" / "01-tiny.ipynb"
    before = (cli.fingerprint(nb, {}, tiny_book), cli.fingerprint(chapter, {}, tiny_book))
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(elsewhere))
    moved = (cli.fingerprint(nb, {}, tiny_book), cli.fingerprint(chapter, {}, tiny_book))
    assert moved[0] != before[0] and moved[1] != before[1]
    (tiny_book / "results" / "x" / "quick").mkdir(parents=True)  # a summary in the folder not used: no change
    (tiny_book / "results" / "x" / "quick" / "summary.json").write_text('{"findings": []}')
    assert cli.fingerprint(nb, {}, tiny_book) == moved[0]
    (elsewhere / "x" / "quick").mkdir(parents=True)  # one in the folder used: the findings page runs again
    (elsewhere / "x" / "quick" / "summary.json").write_text('{"findings": []}')
    assert cli.fingerprint(nb, {}, tiny_book) != moved[0] and cli.fingerprint(chapter, {}, tiny_book) == moved[1]


def test_the_char_lm_chapter_depends_on_which_corpora_can_be_found(tiny_book, tmp_path, monkeypatch):
    """Adding text8 to the data folder (or switching downloads off) re-runs chapter 5, and only it."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("ATTNBOOK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ATTNBOOK_OFFLINE", raising=False)
    nb = tiny_book / "book" / "05-charlm-evolution.ipynb"
    nb.write_text((tiny_book / "book" / "01-tiny.ipynb").read_text())
    chapter = tiny_book / "book" / "01-tiny.ipynb"
    before = (cli.fingerprint(nb, {}, tiny_book), cli.fingerprint(chapter, {}, tiny_book))
    (data_dir / "text8_prefix.txt").write_bytes(b"x" * 100)  # found by name and size (verified when read)
    added = cli.fingerprint(nb, {}, tiny_book)
    assert added != before[0] and cli.fingerprint(chapter, {}, tiny_book) == before[1]
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "1")
    assert cli.fingerprint(nb, {}, tiny_book) not in (added, before[0])
