"""The findings page's HTML, the chapters' badge tables and the compatibility tick grid: badges first,
colours that meet WCAG AA, filters' data, escaping, and ticks that say what the matrix measured."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from attnbook import claims, findings, findings_view as fv
from attnbook.compat.report import GRID_COLUMNS, TICKS, tick_grid
from attnbook.compat.runner import ATOL, Result
from attnbook.errors import InvalidInputError


class _Tree(HTMLParser):
    """Rows of a table as lists of (tag, attrs, text) cells; every <style>/<script> counted."""

    def __init__(self):
        super().__init__()
        self.rows, self.tags, self.stack, self.cell = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr":
            self.rows.append({"attrs": attrs, "cells": []})
        elif tag in ("td", "th") and self.rows:
            self.cell = {"tag": tag, "attrs": attrs, "text": "", "inner": []}
            self.rows[-1]["cells"].append(self.cell)
        elif self.cell is not None:
            self.cell["inner"].append((tag, attrs))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


def _parse(text: str) -> _Tree:
    tree = _Tree()
    tree.feed(text)
    return tree


def _table() -> pd.DataFrame:
    rows = [("1 · reading attention", "a/x", "heads <b>attend</b> & more", "supported", "0:S", "3", "c: 1", "x >= 2", "post hoc", "why a"),
            ("2 · distribution effects", "b/y", "stationarity matters", "seed-dependent", "0:S 1:N 2:S", "m: 0.5 [0.1, 0.9]", "c: 0.2",
             "m > 0.3", "pre-registered", "2 of 3"),
            ("2 · distribution effects", "b/z", "another", "not supported", "0:N 1:N 2:N", "0.1", "c: 0.1", "m > 0.3", "post hoc", "none"),
            ("3 · harmonics", "c/w", "undecided", "inconclusive", "0:I", "nan", "c: 1", "m > 0", "post hoc", "nan"),
            ("5 · char-LM", "—", "enwik8 corpus", "not run", "—", "—", "—", "—", "—", "no copy of it is available")]
    return pd.DataFrame(rows, columns=["chapter", "key", "statement", "verdict", "per seed", "measured", "control", "rule", "declared", "reason"])


# -- colours ------------------------------------------------------------------------------------------

def test_contrast_matches_hand_computed_wcag_values():
    assert fv.relative_luminance("#ffffff") == pytest.approx(1.0) and fv.relative_luminance("#000000") == 0.0
    assert fv.contrast("#000000", "#ffffff") == pytest.approx(21.0) == fv.contrast("#ffffff", "#000000")
    # #767676: channel 118/255 = 0.46275 -> ((0.46275 + 0.055) / 1.055) ** 2.4 = 0.18116; (1.05) / (0.23116) = 4.542
    assert fv.contrast("#767676", "#ffffff") == pytest.approx(4.542, abs=2e-3)
    # a channel below the 0.04045 knee is linear: 10/255 / 12.92
    assert fv.relative_luminance("#0a0000") == pytest.approx(0.2126 * (10 / 255) / 12.92)
    with pytest.raises(ValueError, match="colour"):
        fv.relative_luminance("#fff")


@pytest.mark.parametrize("kind", sorted(fv.BADGES))
def test_every_badge_meets_wcag_aa_in_light_and_dark(kind):
    _, light_fg, light_bg, dark_fg, dark_bg = fv.BADGES[kind]
    assert fv.contrast(light_fg, light_bg) >= 4.5, f"{kind} light: {fv.contrast(light_fg, light_bg):.2f}"
    assert fv.contrast(dark_fg, dark_bg) >= 4.5, f"{kind} dark: {fv.contrast(dark_fg, dark_bg):.2f}"


def test_the_style_sets_each_badge_colour_for_light_and_dark_from_the_table():
    style = fv.assets()
    assert style.startswith(f'<style class="{fv.STYLE_CLASS}">') and fv.assets() == style  # every block carries it; the site keeps one
    for kind, (_, lf, lb, df, db) in fv.BADGES.items():
        assert f"--ab-{kind}-fg:{lf};--ab-{kind}-bg:{lb};" in style and f"--ab-{kind}-fg:{df};--ab-{kind}-bg:{db};" in style
    assert 'html[data-theme="dark"] .attnbook-fv' in style and "prefers-color-scheme:dark" in style
    assert "var(--pst-color-text-base,var(--jp-ui-font-color1," in style and f"max-width:{fv.BREAKPOINT_PX}px" in style
    assert not re.search(r"https?://|url\(", style)


def test_badge_kinds_and_escaping():
    assert [fv.badge_kind(v) for v in ("supported", "seed-dependent", "not supported", "inconclusive", "not run", "yes", "NO", "detected",
                                       "not detected", "???")] == \
        ["supported", "seed-dependent", "not-supported", "inconclusive", "not-run", "supported", "not-supported", "supported",
         "not-supported", "inconclusive"]
    assert fv.badge("<x>") == '<span class="ab-badge ab-inconclusive"><span aria-hidden="true">?</span> &lt;x&gt;</span>'


# -- the findings table -------------------------------------------------------------------------------

def test_the_findings_block_puts_the_badge_first_in_every_row_and_carries_the_filters():
    table = _table()
    text = fv.findings_html(table)
    tree = _parse(text)
    body = [r for r in tree.rows if r["cells"] and r["cells"][0]["tag"] == "td"]
    assert len(body) == len(table)
    for row, verdict, chapter in zip(body, table.verdict, table.chapter):
        first = row["cells"][0]
        assert first["attrs"]["class"] == "ab-verdict" and first["inner"][0][1]["class"] == f"ab-badge ab-{fv.badge_kind(verdict)}"
        assert first["text"].strip().endswith(verdict)
        assert row["attrs"] == {"data-chapter": chapter, "data-verdict": verdict}
        assert [c["attrs"]["data-label"] for c in row["cells"]] == ["verdict", "chapter", "statement", "per seed", "measured", "control", "rule"]
    head = [r for r in tree.rows if r["cells"] and r["cells"][0]["tag"] == "th"]
    assert len(head) == 1 and head[0]["cells"][0]["text"] == "verdict"  # one header row, verdict first
    selects = [a for t, a in tree.tags if t == "select"]
    assert [s["data-column"] for s in selects] == ["chapter", "verdict"]
    values = [a["value"] for t, a in tree.tags if t == "option"]
    assert values == ["", *dict.fromkeys(table.chapter), "", *table.verdict]  # every verdict, in table order, once
    labels = [a["for"] for t, a in tree.tags if t == "label"]
    assert labels == [s["id"] for s in selects] == ["attnbook-findings-chapter", "attnbook-findings-verdict"]
    filters = next(a for t, a in tree.tags if t == "div" and a.get("class") == "ab-filters")
    assert "hidden" in filters  # without JavaScript: no controls, every row shown
    assert not any("hidden" in r["attrs"] for r in body)
    assert "5 of 5 findings shown" in text and text.count("<script>") == 1 and text.count('<style class="attnbook-findings-style">') == 1
    assert "heads &lt;b&gt;attend&lt;/b&gt; &amp; more" in text and "<b>attend" not in text
    assert '<abbr class="ab-seed ab-not-supported" title="seed 1: not supported">1:N</abbr>' in text
    assert "why: why a" in text and "declared: pre-registered" in text and "why: —" not in text
    again = fv.findings_html(table, element_id="other", filters=False)
    style, _, rest = again.partition("</style>")
    assert style.startswith('<style class="attnbook-findings-style">') and "<script>" not in rest and "ab-filters" not in rest


def test_the_findings_block_refuses_a_table_without_its_columns():
    with pytest.raises(InvalidInputError, match="table"):
        fv.findings_html(_table().drop(columns="rule"))


def test_the_page_view_is_html_with_the_filters():
    html = findings.view(_table()).data
    assert 'data-filter=""' in html and html.startswith('<style class="attnbook-findings-style">')


def test_the_not_run_note_says_how_the_package_gets_a_corpus_and_gives_no_address():
    note = findings.not_run_note(_table())
    assert note.endswith(findings.CORPUS_NOTE) and "sha256" in note and "ATTNBOOK_DATA_DIR" in note
    assert not re.search(r"https?://|www\.", note)
    no_corpus = _table()
    no_corpus.loc[4, ["statement", "reason"]] = ["Dark Room", "the quick profile skips it"]
    assert findings.CORPUS_NOTE not in findings.not_run_note(no_corpus)


# -- the other tables ---------------------------------------------------------------------------------

def test_a_table_gets_its_verdict_first_notes_folded_and_one_number_format_per_column():
    frame = pd.DataFrame({"chapter": ["a", "b"], "check": ["rows sum to 1", "x < y"], "measured": [0.017, 1.601278e7],
                          "threshold": ["< 1", "> 2"], "holds": ["yes", "NO"]}).set_index(["chapter", "check"])
    tree = _parse(fv.table_html(frame, "holds", notes={"check": ["threshold"]}))
    head, *body = tree.rows
    assert [c["text"] for c in head["cells"]] == ["holds", "chapter", "check", "measured"]
    assert [c["text"].strip() for c in body[0]["cells"]] == ["✓ yes", "a", "rows sum to 1threshold: < 1", "1.70e-02"]
    assert [c["text"].strip() for c in body[1]["cells"]] == ["✗ NO", "b", "x < ythreshold: > 2", "1.60e+07"]
    assert body[1]["cells"][3]["attrs"]["class"] == "num"
    plain = _parse(fv.table_html(frame.reset_index()[["chapter", "measured"]]))
    assert [c["text"] for c in plain.rows[0]["cells"]] == ["chapter", "measured"]


def test_a_table_refuses_bad_arguments():
    frame = pd.DataFrame({"a": [1], "b": ["x"]})
    with pytest.raises(InvalidInputError, match="frame"):
        fv.table_html([1, 2])
    with pytest.raises(InvalidInputError, match="verdict"):
        fv.table_html(frame, "nope")
    with pytest.raises(InvalidInputError, match="notes"):
        fv.table_html(frame, "b", notes={"a": ["b"]})
    with pytest.raises(InvalidInputError, match="notes"):
        fv.table_html(frame, notes={"a": ["c"]})
    with pytest.raises(InvalidInputError, match="widths"):
        fv.table_html(frame, "b", widths=["5em"])
    fixed = _parse(fv.table_html(frame, "b", widths=["5em", None]))
    assert [a.get("style") for t, a in fixed.tags if t == "col"] == ["width:5em", None]
    assert ("table", {"class": "ab-table ab-fixed"}) in fixed.tags


def test_chapter_tables_in_a_notebook_show_badges_first_and_checks_still_assert(monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(claims, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    with pytest.raises(AssertionError, match="broken"):
        claims.show_checks([claims.Check("fine", 0.5, "<", 1.0), claims.Check("broken", 2.0, "<", 1.0)])
    assert capsys.readouterr().out.splitlines()[-1] == "checks: 1/2 hold"
    head, *rows = _parse(shown[0]).rows
    assert head["cells"][0]["text"] == "holds" and [r["cells"][0]["inner"][0][1]["class"] for r in rows] == ["ab-badge ab-supported",
                                                                                                            "ab-badge ab-not-supported"]
    from attnbook.registry import spec

    found = [spec("vitime-harmonics/rollout-keeps-period").result(3.0, 1.0)]
    assert claims.show_findings(found) is None
    head, row = _parse(shown[1]).rows
    assert [c["text"] for c in head["cells"]][:2] == ["verdict", "finding"] and "declared" not in [c["text"] for c in head["cells"]]
    assert row["cells"][0]["text"].strip().endswith(found[0].verdict) and "declared: " in shown[1]
    assert all(o.startswith('<style class="attnbook-findings-style">') for o in shown[:2])  # each output reads alone; the site keeps one a page


# -- the compatibility tick grid ---------------------------------------------------------------------

def _matrix() -> pd.DataFrame:
    rows = [Result("transformers", "bert", "self", "recorded", True, 2, 3e-8, 0.0, True, note="encoder"),
            Result("transformers", "t5 <x>", "self + cross", "recorded", False, 4, 2e-3, 1e-9, True, problem="weights differ"),
            Result("timm", "cait", "—", "refused", True, 0, math.nan, math.nan, True, refusal="UnsupportedModelError: class attention",
                   note="not token × token"),
            Result("torch", "mha", "self", "recorded", False, 1, 1e-7, math.nan, False, problem="left a hook")]
    return pd.DataFrame([r.__dict__ for r in rows])


def test_the_tick_grid_says_what_the_matrix_measured():
    matrix = _matrix()
    text = tick_grid(matrix)
    tree = _parse(text)
    head = tree.rows[0]
    assert [c["text"] for c in head["cells"]] == ["family", *[name for name, _ in GRID_COLUMNS]]
    groups = [r["cells"][0]["text"] for r in tree.rows if r["cells"] and r["cells"][0]["attrs"].get("scope") == "colgroup"]
    assert groups == ["Hugging Face transformers", "timm", "torch.nn"]
    family_rows = [r for r in tree.rows if "data-family" in r["attrs"]]
    assert [r["attrs"]["data-family"] for r in family_rows] == list(matrix.family)
    symbols = [[c["text"] for c in r["cells"][1:]] for r in family_rows]
    assert symbols == [["✓", "✓", "✓", "–"], ["✗", "✓", "✓", "–"], ["–", "–", "✓", "✓"], ["✓", "✗", "✗", "–"]]
    titles = [[c["inner"][0][1]["title"] for c in r["cells"][1:]] for r in family_rows]
    assert titles[0][0] == f"weights vs reference: largest difference 3.0e-08 (tolerance {ATOL:g})"
    assert titles[1][0] == f"weights vs reference: largest difference 2.0e-03 (tolerance {ATOL:g})"
    assert titles[2][3] == "refused: UnsupportedModelError: class attention" and titles[3][2] == "a hook or flag was left behind"
    assert titles[3][1] == "outputs vs without capture: not measured (left a hook)"
    for r in family_rows:
        for c in r["cells"][1:]:
            tick = c["inner"][0][1]
            assert tick["tabindex"] == "0" and tick["class"] == f"ab-tick ab-{TICKS[c['text']][0]}"
            assert tick["aria-label"] == f"{TICKS[c['text']][1]}: {tick['title']}"
    assert "t5 &lt;x&gt;" in text and "FAILS: weights differ" in text and "not token × token" in text
    assert text.count('<style class="attnbook-findings-style">') == 1 and tick_grid(matrix).count('<style class="attnbook-findings-style">') == 1
