"""Every chapter's findings and checks, read from the chapters' own results.

Each chapter writes ``results/<chapter>/<profile>/summary.json`` with
:func:`attnbook.claims.write_summary`: one schema of ``checks`` (``check, measured, op, threshold,
holds``), ``findings`` (each registered finding's result across training seeds: key, statement,
measure, control, rule, declared, seeds, mean measured and control values, the effect's interval, each
seed's verdict, the verdict across seeds and its reason), ``not_run`` (``what, why``: a part that
could not run, such as a corpus that is not there), ``causal`` (each permutation test of a chosen head
set and each positive control, per seed, in detail) and ``run`` (where and in how long it ran, :func:`attnbook.provenance.run_record`).
:func:`collect` reads the findings for one profile, :func:`checks_table` the checks,
:func:`causal_table` the causal tests, :func:`causal_findings` the causal findings with
Benjamini–Hochberg across the page, and :func:`runs_table` the runs; nothing is typed in by hand.
The page's headline (:func:`headline`) counts findings only; checks are never counted as findings.
"""

from __future__ import annotations

import pandas as pd

from .chapters import EXPERIMENTS
from .errors import MissingResourceError
from .store import read_json, results_dir

__all__ = ["CHAPTERS", "collect", "view", "table_view", "CORPUS_NOTE", "checks_table", "counts", "headline", "filter_view", "causal_table", "causal_findings", "runs_table", "not_run_note",
           "EXPECTED_COLUMNS", "read_expected", "verdict_changes"]

#: results folder -> the chapter's title in the table (from the one chapter table, :mod:`attnbook.chapters`)
CHAPTERS = {chapter.slug: chapter.label for chapter in EXPERIMENTS}


def _fmt(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.0f}"


def _summaries(profile: str):
    for folder, title in CHAPTERS.items():
        path = results_dir(folder, profile) / "summary.json"
        if not path.is_file():
            raise MissingResourceError(f"{title}: no results for profile {profile!r} (run the chapter first: python -m attnbook run {folder})")
        yield title, read_json(path)


def _values(values: dict) -> str:
    return "; ".join(f"{k} {_fmt(v)}" for k, v in values.items()) if len(values) > 1 else _fmt(next(iter(values.values())))


def _per_seed(f: dict) -> str:
    """Each seed's verdict as ``"0:S 1:N 2:S"`` (S supported, N not supported, I inconclusive)."""
    letters = {"supported": "S", "not supported": "N", "inconclusive": "I"}
    return " ".join(f"{r['seed']}:{letters[r['verdict']]}" for r in f.get("per_seed", []))


def _measured(f: dict) -> str:
    effect = f.get("effect") or {}
    if effect.get("n", 1) > 1:
        interval = f" [{_fmt(effect['low'])}, {_fmt(effect['high'])}]" if effect.get("low") is not None else ""
        return f"{effect['measure']}: {_fmt(effect['mean'])}{interval} (mean of {effect['n']} seeds)"
    return _values(f["measured"]) + (f" ({f['detail']})" if f.get("detail") else "")


def collect(profile: str = "quick") -> pd.DataFrame:
    """One row per finding and per part not run of every chapter: chapter, key, statement, verdict
    (across seeds, :data:`attnbook.claims.VERDICTS`, or 'not run'), per seed (each seed's verdict),
    measured (one seed's values, or the first measure's mean and 95 % t-interval over seeds), control
    (what it is: its mean values), rule, declared and reason."""
    rows = []
    for title, summary in _summaries(profile):
        if "findings" not in summary:
            raise MissingResourceError(f"{title}: its summary for profile {profile!r} predates findings (run the chapter again)")
        for f in summary["findings"]:
            rows.append({"chapter": title, "key": f["key"], "statement": f["statement"], "verdict": f["verdict"], "per seed": _per_seed(f),
                         "measured": _measured(f), "control": f"{f['control']}: {_values(f['control_measured'])}", "rule": f["rule"],
                         "declared": f["declared"], "reason": f["reason"]})
        for skipped in summary.get("not_run", []):
            rows.append({"chapter": title, "key": "—", "statement": skipped["what"], "verdict": "not run", "per seed": "—", "measured": "—",
                         "control": "—", "rule": "—", "declared": "—", "reason": skipped["why"]})
    return pd.DataFrame(rows, columns=["chapter", "key", "statement", "verdict", "per seed", "measured", "control", "rule", "declared",
                                       "reason"])


def checks_table(profile: str = "quick") -> pd.DataFrame:
    """One row per check of every chapter: chapter, check, measured, threshold, holds ('yes'/'NO')."""
    rows = [{"chapter": title, "check": c["check"], "measured": _fmt(c["measured"]), "threshold": f"{c['op']} {_fmt(c['threshold'])}",
             "holds": "yes" if c["holds"] else "NO"} for title, summary in _summaries(profile) for c in summary.get("checks", [])]
    return pd.DataFrame(rows, columns=["chapter", "check", "measured", "threshold", "holds"])


def counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per chapter (in book order): how many findings, and how many of each verdict (from :func:`collect`)."""
    from .claims import VERDICTS

    found = table[table.verdict != "not run"]
    out = pd.DataFrame({"findings": found.groupby("chapter", sort=False).size(),
                        **{v: found[found.verdict == v].groupby("chapter", sort=False).size() for v in VERDICTS}})
    return out.reindex([c for c in CHAPTERS.values() if c in set(found.chapter)]).fillna(0).astype(int)


def headline(table: pd.DataFrame) -> str:
    """``"N findings supported, D seed-dependent, M not supported, K inconclusive, across C chapters"``
    (findings only, verdicts across seeds)."""
    from .claims import VERDICTS

    found = table[table.verdict != "not run"]
    n = {v: int((found.verdict == v).sum()) for v in VERDICTS}
    return (f"{n['supported']} findings supported, {n['seed-dependent']} seed-dependent, {n['not supported']} not supported, "
            f"{n['inconclusive']} inconclusive, across {found.chapter.nunique()} chapters")


def _interval(c: dict) -> str:
    low, high = (c.get("interval") or [None, None])[:2]
    return f"{_fmt(c['effect'])} [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else _fmt(c["effect"])


def _p(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def causal_table(profile: str = "quick") -> pd.DataFrame:
    """One row per causal test of every chapter and seed (the positive controls included, marked; the
    strata of a pooled test are left to their chapter's table): the
    attention finding, the seed, the role (finding / positive control), the metric, the ablation, how
    many heads, the null (layer-matched or unmatched), the chosen heads' effect with its interval over
    independent units, the null's mean, the sets drawn, raw p, Holm-adjusted p within the chapter's
    family, the smallest reachable p, the detectable effect, and the verdict."""
    rows = []
    for title, summary in _summaries(profile):
        for c in summary.get("causal", []):
            if c.get("role") == "stratum":  # one stratum of a pooled test: in its chapter's own table, not here
                continue
            drawn = c.get("draws")
            space = c.get("space")
            rows.append({"chapter": title, "attention finding": c["finding"], "seed": c.get("seed", "—"), "role": c.get("role", "finding"),
                         "metric (damage > 0)": c["metric"], "ablation": c["how"], "heads": len(c["heads"]), "null": c.get("null", "—"),
                         "effect [95 % CI]": _interval(c), "null mean": _fmt(c.get("random_mean", float("nan"))),
                         "sets": f"{drawn} of {space - 1}" + (" (exact)" if c.get("exact") else "") if space else str(drawn),
                         "p": _p(c.get("p_value")), "Holm p": _p(c.get("p_adjusted")), "smallest p": _p(c.get("smallest_p")),
                         "detectable effect": _fmt(c["detectable"]) if c.get("detectable") is not None else "—", "verdict": c["verdict"]})
    columns = ["chapter", "attention finding", "seed", "role", "metric (damage > 0)", "ablation", "heads", "null", "effect [95 % CI]",
               "null mean", "sets", "p", "Holm p", "smallest p", "detectable effect", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def causal_findings(profile: str = "quick") -> pd.DataFrame:
    """One row per causal finding of the page (rule :data:`attnbook.registry.CAUSAL_RULE`): its
    chapter, statement, each seed's Holm-adjusted p, the conjunction p (the largest over seeds: the
    finding is supported only when every seed's test passes), that p adjusted by Benjamini–Hochberg
    across every causal finding of the page (:func:`attnbook.stats.bh`), and the verdict across seeds."""
    from . import stats
    from .registry import CAUSAL_P

    rows = []
    for title, summary in _summaries(profile):
        for f in summary.get("findings", []):
            seeds = [r for r in f.get("per_seed", []) if CAUSAL_P in r.get("measured", {})]
            if not seeds:
                continue
            ps = [r["measured"][CAUSAL_P] for r in seeds]
            rows.append({"chapter": title, "finding": f["statement"], "Holm p per seed": " ".join(f"{r['seed']}:{p:.3g}" for r, p in zip(seeds, ps)),
                         "largest Holm p": max(ps), "verdict": f["verdict"]})
    table = pd.DataFrame(rows, columns=["chapter", "finding", "Holm p per seed", "largest Holm p", "verdict"])
    finite = table["largest Holm p"].map(lambda p: p == p)
    adjusted = pd.Series(float("nan"), index=table.index)
    if finite.any():
        adjusted[finite] = stats.bh(list(table.loc[finite, "largest Holm p"]))
    table.insert(4, "page BH p", adjusted.map(lambda p: f"{p:.3g}" if p == p else "—"))
    table["largest Holm p"] = table["largest Holm p"].map(lambda p: f"{p:.3g}" if p == p else "—")
    return table


def runs_table(profile: str = "quick") -> pd.DataFrame:
    """One row per chapter: the profile, the training seeds, the hardware, the library versions and the
    wall time of the run that wrote the chapter's numbers (its summary's ``run`` record; "not recorded"
    for a summary written before runs were recorded)."""
    rows = []
    for title, summary in _summaries(profile):
        run = summary.get("run")
        seeds = summary.get("seeds")
        rows.append({"chapter": title, "profile": summary.get("profile", profile),
                     "training seeds": " ".join(map(str, seeds)) if seeds else "— (no training)",
                     "hardware": run["hardware"] if run else "not recorded", "torch": run["torch"] if run else "—",
                     "wall time (min)": f"{run['seconds'] / 60:.1f}" if run else "—"})
    return pd.DataFrame(rows, columns=["chapter", "profile", "training seeds", "hardware", "torch", "wall time (min)"])


#: how the package gets a corpus (:mod:`attnbook.data`), said wherever a corpus did not run: no address to fetch by hand
CORPUS_NOTE = ("A corpus is never fetched by hand: `attnbook.data` looks for it in the folder `ATTNBOOK_DATA_DIR` names, then in the cache, and "
               "otherwise downloads it itself and uses it only once its size and sha256 match the ones the package records "
               "(`ATTNBOOK_OFFLINE=1` forbids the download).")


def not_run_note(table: pd.DataFrame) -> str:
    """Markdown for the findings page: which parts of which chapters did not run and why, from the
    'not run' rows of :func:`collect`'s table; where a corpus did not run, how the package gets one
    (:data:`CORPUS_NOTE`) — never an address for the reader to fetch."""
    skipped = table[table.verdict == "not run"]
    if skipped.empty:
        return "Every part of every chapter ran."
    parts = [f"**{statement}** ({chapter}): {why}" for statement, chapter, why in zip(skipped.statement, skipped.chapter, skipped["reason"])]
    note = "Not run in this build, so neither found nor tested: " + "; ".join(parts) + "."
    if any("corpus" in f"{s} {w}".lower() for s, w in zip(skipped.statement, skipped["reason"])):
        note += " " + CORPUS_NOTE
    return note.replace("$", r"\$")  # "$ATTNBOOK_DATA_DIR … $ATTNBOOK_CACHE" is not inline math


_FILTER_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var selects = root.querySelectorAll("select[data-column]");
  var rows = root.querySelectorAll("tbody tr");
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var keep = Array.prototype.every.call(selects, function (s) { return !s.value || row.getAttribute("data-" + s.dataset.column) === s.value; });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    root.querySelector(".attnbook-filter-count").textContent = shown + " of " + rows.length + " shown";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
})();
"""


def filter_view(table: pd.DataFrame, columns: tuple[str, ...] = ("chapter", "verdict"), *, element_id: str = "attnbook-findings"):
    """``table`` as an HTML table with one labelled ``<select>`` per filter column (rows whose value
    differs are hidden, by an inline script: no kernel, no network) and a "k of n shown" line;
    an :class:`IPython.display.HTML`."""
    import html

    from IPython.display import HTML

    from .errors import InvalidInputError, bad_argument

    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise bad_argument(InvalidInputError, "columns", f"columns of the table {list(table.columns)}", missing, raw=True)
    esc = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    controls = []
    for c in columns:
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in dict.fromkeys(table[c]))
        controls.append(f'<label for="{element_id}-{c}">{esc(c)}</label> <select id="{element_id}-{c}" data-column="{esc(c)}">'
                        f'<option value="">all</option>{options}</select>')
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr " + " ".join(f'data-{c}="{esc(row[c])}"' for c in columns) + ">" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for _, row in table.iterrows())
    return HTML(f'<div class="attnbook-filter" id="{element_id}"><p>{" ".join(controls)} <span class="attnbook-filter-count"></span></p>'
                f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                f"<script>{_FILTER_SCRIPT % {'id': element_id}}</script></div>")


def view(table: pd.DataFrame):
    """:func:`collect`'s table for the page: verdict badges first, cards on a phone, filters by chapter
    and verdict that work without a kernel (:func:`attnbook.findings_view.findings_html`); an
    :class:`IPython.display.HTML`."""
    from IPython.display import HTML

    from .findings_view import findings_html

    return HTML(findings_html(table))


def table_view(frame: pd.DataFrame, verdict: str | None = None, notes: dict[str, list[str]] | None = None):
    """Another table of the page (checks, causal tests, runs) with the ``verdict`` column first as a
    badge, ``notes`` folded under their host column and text that wraps
    (:func:`attnbook.findings_view.table_html`); an :class:`IPython.display.HTML`."""
    from IPython.display import HTML

    from .findings_view import table_html

    return HTML(table_html(frame, verdict, notes=notes))


#: the columns of ``tests/expected_verdicts.csv``
EXPECTED_COLUMNS = ["key", "profile", "seeds", "verdict", "per_seed"]


def read_expected(path) -> pd.DataFrame:
    """The committed table of expected verdicts (CSV: ``key, profile, seeds, verdict, per_seed``; lines
    from ``#`` are comments). ``seeds`` are the training seeds, space-separated; ``verdict`` the verdict
    across them; ``per_seed`` each seed's verdict in that order (S supported, N not supported, I inconclusive)."""
    from .claims import VERDICTS
    from .errors import InvalidInputError, bad_argument

    table = pd.read_csv(path, dtype=str, comment="#", keep_default_na=False)
    if list(table.columns) != EXPECTED_COLUMNS or not table.verdict.isin(VERDICTS).all():
        raise bad_argument(InvalidInputError, "path", f"a CSV of {', '.join(EXPECTED_COLUMNS)} (verdict one of {list(VERDICTS)})",
                           list(table.columns), raw=True)
    for _, row in table.iterrows():
        seeds, letters = row.seeds.split(), row.per_seed.split()
        if not seeds or len(seeds) != len(letters) or not all(x.isdigit() for x in seeds) or not set(letters) <= set("SNI"):
            raise bad_argument(InvalidInputError, "path", "seeds (integers) and per_seed (S/N/I), one letter per seed",
                               f"{row.key}: {row.seeds!r} / {row.per_seed!r}", raw=True)
    if table.duplicated(["key", "profile"]).any():
        raise bad_argument(InvalidInputError, "path", "each (key, profile) once", table[table.duplicated(["key", "profile"])].key.tolist(), raw=True)
    return table


def _expected_row(f: dict, profile: str) -> str:
    letters = {"supported": "S", "not supported": "N", "inconclusive": "I"}
    per_seed = f.get("per_seed", [])
    return (f"{f['key']},{profile},{' '.join(str(r['seed']) for r in per_seed)},{f['verdict']},"
            f"{' '.join(letters[r['verdict']] for r in per_seed)}")


def verdict_changes(expected: pd.DataFrame, profile: str = "quick") -> list[str]:
    """What differs between the chapters' summaries for ``profile`` and the ``expected`` rows for that
    profile: a registered finding with no verdict, a verdict with no expected row or the reverse, other
    seeds, and every changed verdict (across seeds or on one seed) — one line each (empty: all agree).

    The expected verdicts are those of the profile's full data: a chapter that ran without a corpus
    the profile uses (its summary's ``not_run`` names it, for want of data) is not compared; when no
    other chapter differs, :class:`MissingResourceError` says which chapters were left out."""
    from .registry import chapter_specs

    changes, partial = [], []
    for slug, title in CHAPTERS.items():
        path = results_dir(slug, profile) / "summary.json"
        if not path.is_file():
            raise MissingResourceError(f"{title}: no results for profile {profile!r} (run the chapter first: python -m attnbook run {slug})")
        summary = read_json(path)
        missing = [n["what"] for n in summary.get("not_run", []) if "corpus" in str(n.get("what", "")) and "profile" not in str(n.get("why", ""))]
        if missing:
            partial.append(f"{title} ran without {', '.join(missing)} (data unavailable)")
            continue
        got = {f["key"]: f for f in summary.get("findings", [])}
        for s in chapter_specs(slug, profile):
            if s.key not in got:
                changes.append(f"{s.key}: registered for {profile!r} but the chapter reported no verdict")
        rows = expected[(expected.profile == profile) & expected.key.str.startswith(slug + "/")]
        want = {r.key: r for r in rows.itertuples()}
        for key in sorted(set(got) | set(want)):
            if key not in want:
                changes.append(f"{key}: {got[key]['verdict']!r} with no expected verdict (add: {_expected_row(got[key], profile)})")
                continue
            if key not in got:
                changes.append(f"{key}: expected {want[key].verdict!r}, not reported")
                continue
            row = _expected_row(got[key], profile).split(",")
            if [row[2], row[3], row[4]] != [want[key].seeds, want[key].verdict, want[key].per_seed]:
                changes.append(f"{key}: expected {want[key].verdict!r} (seeds {want[key].seeds}: {want[key].per_seed}), got {row[3]!r} "
                               f"(seeds {row[2]}: {row[4]}) (update to {','.join(row)} in a commit that says why)")
    if partial and not changes:
        raise MissingResourceError("the expected verdicts are those of the full data, not compared: " + "; ".join(partial))
    return changes
