"""Chapter 5 with every corpus missing — the embedded tiny Shakespeare removed on purpose — still runs
every cell without an exception, says what it skipped and writes empty checks and findings; the
findings page then lists what did not run."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from attnbook import data, findings
from attnbook.store import read_json

BOOK = Path(__file__).resolve().parents[1] / "book"
MACHINE_PATH = re.compile(r"(/work/|/tmp/|/root/|/home/)")


def _code_cells(notebook: str) -> list[str]:
    nb = json.loads((BOOK / notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture()
def nothing_available(tmp_path, monkeypatch):
    """No data dir, an empty cache, downloads off, no embedded copy; results in a temporary folder."""
    monkeypatch.delenv("ATTNBOOK_DATA_DIR", raising=False)
    monkeypatch.setenv("ATTNBOOK_OFFLINE", "1")
    monkeypatch.setenv("ATTNBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ATTNBOOK_PROFILE", "quick")
    monkeypatch.setattr(data, "EMBEDDED_DIR", tmp_path / "no-embedded-corpora")
    return tmp_path


def test_chapter_5_runs_every_cell_with_no_corpus_and_says_what_it_skipped(nothing_available):
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for source in _code_cells("05-charlm-evolution.ipynb"):
            exec(compile(source, "<chapter 5 cell>", "exec"), namespace)  # noqa: S102 - the chapter's own cells
    out = printed.getvalue()
    for name in ("tinyshakespeare", "text8"):
        assert re.search(rf"{name}: not run \(data unavailable\) — no local copy and no download; put {name}", out), out
    assert "text8_prefix.txt" in out and "checks: none" in out and "findings: none" in out and "nothing to explore" in out
    assert not MACHINE_PATH.search(out), out
    assert namespace["results"] == [] and namespace["checks"] == [] and namespace["found"] == []

    summary = read_json(nothing_available / "results" / "charlm-evolution" / "quick" / "summary.json")
    assert [entry["what"] for entry in summary["not_run"]] == ["tinyshakespeare corpus", "text8 corpus", "enwik8 corpus"]
    assert summary["checks"] == [] and summary["findings"] == []
    assert not MACHINE_PATH.search(json.dumps(summary["not_run"]))


def test_findings_list_what_did_not_run(tmp_path, monkeypatch):
    from attnbook import registry
    from attnbook.claims import Check, write_summary

    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    prev = registry.spec("charlm-evolution/previous-token-head")
    for folder in findings.CHAPTERS:
        not_run = {"text8 corpus": "no local copy and no download; put text8.zip into $ATTNBOOK_DATA_DIR"} if folder == "charlm-evolution" else {}
        write_summary(tmp_path / folder / "quick" / "summary.json", checks=[Check("c", 0.5, "<", 1.0)],
                      findings=[prev.result(0.9, 0.1)] if folder == "charlm-evolution" else [], not_run=not_run)
    table = findings.collect("quick")
    skipped = table[table.verdict == "not run"]
    assert len(skipped) == 1 and skipped.chapter.item() == "5 · char-LM evolution"
    assert skipped.statement.item() == "text8 corpus" and "text8.zip" in skipped["reason"].item()
    assert list(table[table.verdict != "not run"].key) == ["charlm-evolution/previous-token-head"]
    note = findings.not_run_note(table)
    assert note.startswith("Not run in this build") and "**text8 corpus** (5 · char-LM evolution)" in note and "text8.zip" in note
    assert findings.not_run_note(table[table.verdict != "not run"]) == "Every part of every chapter ran."


def test_reasons_render_as_text_not_as_math_on_the_page():
    """The page parses glued Markdown with MyST's dollarmath: two `$VARIABLE`s in one reason must not
    turn the words between them into an equation."""
    import pandas as pd
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    from attnbook import profiles
    from attnbook.charlm import analysis
    from attnbook.data import missing_reason

    why = "no local copy and no download; " + missing_reason("text8", 12_500_000)
    assert why.count("$") == 2
    table = pd.DataFrame([{"chapter": "5 · char-LM evolution", "key": "—", "statement": "text8 corpus", "measured": "—", "control": "—",
                           "rule": "—", "declared": "—", "verdict": "not run", "reason": why}])
    md = MarkdownIt().use(dollarmath_plugin)
    for note in (findings.not_run_note(table), analysis.learning_summary([], {}, {"text8": why}, profiles.get("charlm-evolution", "full"))):
        html = md.render(note)
        assert "math" not in html and "$ATTNBOOK_DATA_DIR" in html and "$ATTNBOOK_CACHE/data" in html, html
