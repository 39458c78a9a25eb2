"""The findings table is read from the chapters' summaries, never typed in."""

from __future__ import annotations

import json

import pytest

from attnbook import findings
from attnbook.errors import InvalidInputError, MissingResourceError


def _found(verdict: str, key: str = "vitime-harmonics/rollout-keeps-period"):
    from attnbook.registry import spec

    model, control = {"supported": (3.0, 1.0), "not supported": (1.0, 1.0), "inconclusive": (float("nan"), 1.0)}[verdict]
    return spec(key).result(model, control)


def test_collect_reads_the_one_summary_schema_and_counts_findings_only(tmp_path, monkeypatch):
    from attnbook.claims import Check, write_summary

    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    verdicts = ["supported", "not supported", "inconclusive", "supported", "not supported"]
    for k, folder in enumerate(findings.CHAPTERS):
        write_summary(tmp_path / folder / "quick" / "summary.json", checks=[Check(f"c{k}", 0.5, "<", 1.0 if k != 2 else 0.1)],
                      findings=[_found(verdicts[k])], not_run={"a corpus": "put it there"} if k == 4 else None, profile="quick")
    table = findings.collect("quick")
    assert len(table) == 6 and list(table.verdict) == verdicts[:4] + ["not supported", "not run"]
    assert table.chapter.iloc[0] == "1 · reading attention" and table.rule.iloc[0] == "rollout contrast >= 2.000"
    assert table.measured.iloc[0] == "3" and table.control.iloc[0].endswith(": 1") and table.declared.iloc[0] == "post hoc"
    assert table.reason.iloc[-1] == "put it there"
    assert list(table["per seed"])[:3] == ["0:S", "0:N", "0:I"]
    assert findings.headline(table) == "2 findings supported, 0 seed-dependent, 2 not supported, 1 inconclusive, across 5 chapters"
    counts = findings.counts(table)
    assert list(counts.columns) == ["findings", "supported", "seed-dependent", "not supported", "inconclusive"] and counts["findings"].sum() == 5
    checks = findings.checks_table("quick")
    assert len(checks) == 5 and checks[checks.check == "c2"].holds.item() == "NO"
    assert "put it there" in findings.not_run_note(table)


def test_a_summary_from_before_findings_is_a_clear_error(tmp_path, monkeypatch):
    from attnbook.claims import Check, write_summary

    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    for folder in findings.CHAPTERS:
        path = write_summary(tmp_path / folder / "quick" / "summary.json", checks=[Check("c", 0.5, "<", 1.0)])
        summary = json.loads(path.read_text())
        del summary["findings"]
        path.write_text(json.dumps(summary))
    with pytest.raises(MissingResourceError, match="predates findings"):
        findings.collect("quick")


def test_the_filter_view_is_labelled_and_carries_every_row():
    import pandas as pd

    table = pd.DataFrame({"chapter": ["a", "a", "b"], "statement": ["x <y>", "z", "w"], "verdict": ["supported", "not supported", "supported"]})
    html = findings.filter_view(table).data
    assert html.count("<tr data-chapter=") == 3 and "x &lt;y&gt;" in html
    assert '<label for="attnbook-findings-chapter">' in html and '<select id="attnbook-findings-verdict" data-column="verdict">' in html
    assert html.count('<option value="supported">') == 1 and "<script>" in html
    with pytest.raises(InvalidInputError, match="columns"):
        findings.filter_view(table, ("nope",))


def test_write_summary_writes_the_chapter_values_then_the_shared_schema(tmp_path):
    from attnbook import claims
    from attnbook.claims import Check, write_summary

    found = _found("supported")
    path = write_summary(tmp_path / "s.json", checks=[Check("c", 1.0, "<=", 1.0)], findings=[found], profile="quick", values={"x": 1})
    summary = json.loads(path.read_text())
    run = summary.pop("run")
    assert summary == {"profile": "quick", "values": {"x": 1},
                       "checks": [{"check": "c", "measured": 1.0, "op": "<=", "threshold": 1.0, "holds": True}],
                       "findings": [claims.AcrossSeeds(found.spec, (0,), (found,)).record()], "not_run": [], "causal": []}
    assert set(run) == {"hardware", "cpu", "cores", "gpu", "python", "torch", "seconds"} and run["seconds"] >= 0


def test_the_run_record_says_where_and_how_long(monkeypatch):
    import platform

    import torch

    from attnbook import provenance
    from attnbook.train import available_cores

    monkeypatch.setattr(provenance, "gpu_name", lambda: None)
    record = provenance.run_record(now=provenance.STARTED + 75.04)
    assert record["seconds"] == 75.0 and record["cores"] == available_cores() and record["gpu"] is None
    assert record["torch"] == torch.__version__ and record["python"] == platform.python_version()
    assert record["hardware"] == f"{available_cores()}-core CPU ({provenance.cpu_name()})" and provenance.cpu_name()
    monkeypatch.setattr(provenance, "gpu_name", lambda: "NVIDIA H100 80GB HBM3")
    assert provenance.hardware() == f"NVIDIA H100 80GB HBM3 + {available_cores()}-core CPU"


def test_runs_table_reads_each_chapters_run(tmp_path, monkeypatch):
    from attnbook.claims import Check, write_summary

    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    for k, folder in enumerate(findings.CHAPTERS):
        path = write_summary(tmp_path / folder / "full" / "summary.json", checks=[Check("c", 1.0, "<=", 1.0)], profile="full",
                             **({"seeds": [0, 1, 2, 3, 4]} if k else {}))
        summary = json.loads(path.read_text())
        if k == 0:  # written before runs were recorded
            del summary["run"]
        else:
            summary["run"].update(hardware=f"machine {k}", seconds=60.0 * k)
        path.write_text(json.dumps(summary))
    table = findings.runs_table("full")
    assert list(table.chapter) == list(findings.CHAPTERS.values()) and set(table.profile) == {"full"}
    assert table.hardware.iloc[0] == "not recorded" and table["wall time (min)"].iloc[0] == "—"
    assert list(table.hardware.iloc[1:]) == [f"machine {k}" for k in range(1, len(table))]
    assert list(table["wall time (min)"].iloc[1:]) == [f"{k:.1f}" for k in range(1, len(table))]
    assert table["training seeds"].iloc[0] == "— (no training)" and set(table["training seeds"].iloc[1:]) == {"0 1 2 3 4"}


def _head_set_test(effect: float, null: list[float], family: int = 2):
    from attnbook import stats
    from attnbook.intervene import HeadSetTest

    return HeadSetTest((("blocks.0.attn", 1), ("blocks.1.attn", 0)), "layer-matched", "", 1.0, (effect - 0.1, effect + 0.1),
                       stats.exact_test(effect, null), 0.05, family, (effect - 0.2, effect + 0.2), 0.1, "mean")


def test_causal_records_are_checked_and_tabled(tmp_path, monkeypatch):
    from attnbook.claims import Check, across_seeds, write_summary
    from attnbook.errors import InvalidInputError
    from attnbook.intervene import CausalFamily
    from attnbook.registry import causal_family

    with pytest.raises(InvalidInputError, match="causal"):
        write_summary(tmp_path / "bad.json", checks=[Check("c", 1.0, "<=", 1.0)], causal=[{"finding": "x"}])
    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    keys = causal_family("charlm-evolution")
    null = [0.01 * i for i in range(99)]  # an exact space of 100 sets
    per_seed, records = {}, []
    for seed, effects in ((0, (5.0, 0.5)), (1, (5.0, 0.975))):
        family = CausalFamily(dict(zip(keys, [_head_set_test(e, null) for e in effects])), _head_set_test(9.0, null), "windows A", "windows B")
        per_seed[seed] = family.findings()
        records += family.records("validation loss", seed)
    found = across_seeds(per_seed)
    for folder in findings.CHAPTERS:
        mine = folder == "charlm-evolution"
        write_summary(tmp_path / folder / "quick" / "summary.json", checks=[Check("c", 1.0, "<=", 1.0)], causal=records if mine else [],
                      findings=found if mine else [])
    table = findings.causal_table("quick")
    assert len(table) == 6 and list(table.role) == ["finding", "finding", "positive control"] * 2
    row = table.iloc[0]  # seed 0, first test: above every set of the space, p = 1/100, Holm × 2 = 0.02
    assert (row["seed"], row["null"], row["p"], row["Holm p"], row["smallest p"], row["sets"], row["verdict"]) == \
        (0, "layer-matched", "0.01", "0.02", "0.01", "99 of 99 (exact)", "supported")
    assert row["effect [95 % CI]"] == "5 [4.8, 5.2]"
    assert table.iloc[1]["verdict"] == "not supported" and table.iloc[2]["verdict"] == "detected"
    page = findings.causal_findings("quick")
    assert list(page.finding) == [f.spec.statement for f in found]
    # the first finding: p 0.01, Holm 0.02 on both seeds; the second: p 0.5 → Holm 0.5 (seed 0), and p 0.02 (one null
    # set, 0.98, reaches 0.975) → Holm max(0.02, 1·0.02) = 0.02 (seed 1)
    assert list(page["Holm p per seed"]) == ["0:0.02 1:0.02", "0:0.5 1:0.02"]
    assert list(page["largest Holm p"]) == ["0.02", "0.5"]
    assert list(page["page BH p"]) == ["0.04", "0.5"]  # BH over two: 2·0.02/1 = 0.04, 2·0.5/2 = 0.5
    assert list(page.verdict) == ["supported", "seed-dependent"]


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


def test_collect_shows_each_seeds_verdict_and_the_interval_across_seeds(tmp_path, monkeypatch):
    from attnbook import claims
    from attnbook.claims import Check, write_summary

    monkeypatch.setenv("ATTNBOOK_RESULTS", str(tmp_path))
    for folder in findings.CHAPTERS:
        found = claims.across_seeds({0: [_found("supported")], 1: [_found("not supported")], 2: [_found("supported")]}) \
            if folder == "vitime-harmonics" else []
        write_summary(tmp_path / folder / "quick" / "summary.json", checks=[Check("c", 0.5, "<", 1.0)], findings=found, seed=0)
    table = findings.collect("quick")
    (row,) = table.itertuples()
    assert row.verdict == "seed-dependent" and row._5 == "0:S 1:N 2:S" and row.reason == "supported on 2 of 3 seeds"
    assert row.measured.startswith("rollout contrast: 2.33 [-0.535, 5.2]") and "(mean of 3 seeds)" in row.measured
    assert findings.headline(table).startswith("0 findings supported, 1 seed-dependent")
