"""The findings table is read from the chapters' summaries, never typed in."""

from __future__ import annotations

import json

import pytest

from attnbook import findings
from attnbook.errors import MissingResourceError


def test_collect_reads_claims_hypotheses_and_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    for k, folder in enumerate(findings.CHAPTERS):
        path = tmp_path / folder / "quick" / "summary.json"
        path.parent.mkdir(parents=True)
        summary = {"claims": [{"claim": f"c{k}", "measured": 0.5, "op": "<", "threshold": 1.0, "holds": k != 2}]}
        if k == 1:
            summary["answers"] = {"Q1 something": {"measured": "m", "control": "c", "rule": "r", "verdict": "supported"}}
        else:
            summary["hypotheses"] = [{"text" if k else "hypothesis": f"h{k}", "measured": "m", "control": "c", "rule": "r", "verdict": "not supported"}]
        path.write_text(json.dumps(summary))
    table = findings.collect("quick")
    assert len(table) == 10 and list(table.kind).count("claim") == 5
    assert table[table.statement == "c2"].verdict.item() == "does not hold"
    assert table[table.statement == "Q1 something"].verdict.item() == "supported"
    assert table[table.statement == "h0"].chapter.item() == "1 · reading attention"
    assert table[table.statement == "c0"]["threshold or rule"].item() == "< 1"


def test_a_chapter_without_results_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    with pytest.raises(MissingResourceError, match="run the chapter first"):
        findings.collect("quick")


def test_every_reference_is_cited_and_every_citation_is_in_the_bibliography():
    import json
    import re
    from pathlib import Path

    book = Path(__file__).resolve().parents[1] / "book"
    keys = set(re.findall(r"^@\w+\{([^,]+),", (book / "references.bib").read_text(), flags=re.M))
    texts = [(book / name).read_text() for name in ("intro.md", "references.md")]
    texts += ["".join(cell["source"]) for nb in sorted(book.glob("*.ipynb")) for cell in json.loads(nb.read_text())["cells"] if cell["cell_type"] == "markdown"]
    cited = {k.strip() for text in texts for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", text) for k in group.split(",")}
    assert keys and cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"
    assert keys <= cited, f"in references.bib but cited nowhere (the page lists cited works only): {sorted(keys - cited)}"
