"""Every chapter's claims and hypotheses in one table, read from the chapters' own results.

Each chapter writes ``results/<chapter>/<profile>/summary.json`` with
:func:`attnbook.claims.write_summary`: one schema of ``claims`` (``claim, measured, op, threshold,
holds``), ``hypotheses`` (``hypothesis, measured, control, rule, verdict``), ``not_run`` (``what,
why``: a part that could not run, such as a corpus that is not there) and ``causal`` (each attention
finding's heads ablated against random head sets) and ``run`` (where and in how long it ran,
:func:`attnbook.provenance.run_record`). :func:`collect` reads them for one profile,
:func:`causal_table` the causal verdicts and :func:`runs_table` the runs; nothing is typed in by hand.
"""

from __future__ import annotations

import pandas as pd

from .chapters import EXPERIMENTS
from .errors import MissingResourceError
from .store import read_json, results_dir

__all__ = ["CHAPTERS", "collect", "causal_table", "runs_table", "not_run_note"]

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


def collect(profile: str = "quick") -> pd.DataFrame:
    """One row per claim, hypothesis and part not run of every chapter: chapter, kind ('claim',
    'hypothesis', 'not run'), statement, measured, threshold or rule (for a part not run: why),
    verdict ('holds' / 'does not hold' for claims, the hypothesis's verdict, 'not run')."""
    rows = []
    for title, summary in _summaries(profile):
        for c in summary.get("claims", []):
            rows.append({"chapter": title, "kind": "claim", "statement": c["claim"], "measured": _fmt(c["measured"]),
                         "threshold or rule": f"{c['op']} {_fmt(c['threshold'])}", "verdict": "holds" if c["holds"] else "does not hold"})
        for h in summary.get("hypotheses", []):
            rows.append({"chapter": title, "kind": "hypothesis", "statement": h["hypothesis"], "measured": h["measured"],
                         "threshold or rule": h["rule"], "verdict": h["verdict"]})
        for skipped in summary.get("not_run", []):
            rows.append({"chapter": title, "kind": "not run", "statement": skipped["what"], "measured": "—",
                         "threshold or rule": skipped["why"], "verdict": "not run"})
    return pd.DataFrame(rows, columns=["chapter", "kind", "statement", "measured", "threshold or rule", "verdict"])


def causal_table(profile: str = "quick") -> pd.DataFrame:
    """One row per ablation test of every chapter: the attention finding, the metric, the ablation,
    the chosen heads' effect, the random sets' mean, the effect's percentile among them, the
    permutation p-value, how many sets, and the verdict (the chapter's rule, fixed before looking)."""
    rows = []
    for title, summary in _summaries(profile):
        for c in summary.get("causal", []):
            rows.append({"chapter": title, "attention finding": c["finding"], "metric (damage > 0)": c["metric"], "ablation": c["how"],
                         "heads": len(c["heads"]), "effect": _fmt(c["effect"]), "random mean": _fmt(c["random_mean"]),
                         "percentile": f"{c['percentile']:.0f}", "p": f"{c['p_value']:.3f}", "sets": c["draws"], "verdict": c["verdict"]})
    columns = ["chapter", "attention finding", "metric (damage > 0)", "ablation", "heads", "effect", "random mean", "percentile", "p", "sets",
               "verdict"]
    return pd.DataFrame(rows, columns=columns)


def runs_table(profile: str = "quick") -> pd.DataFrame:
    """One row per chapter: the profile, the hardware, the library versions and the wall time of the
    run that wrote the chapter's numbers (its summary's ``run`` record; "not recorded" for a summary
    written before runs were recorded)."""
    rows = []
    for title, summary in _summaries(profile):
        run = summary.get("run")
        rows.append({"chapter": title, "profile": summary.get("profile", profile),
                     "hardware": run["hardware"] if run else "not recorded", "torch": run["torch"] if run else "—",
                     "wall time (min)": f"{run['seconds'] / 60:.1f}" if run else "—"})
    return pd.DataFrame(rows, columns=["chapter", "profile", "hardware", "torch", "wall time (min)"])


def not_run_note(table: pd.DataFrame) -> str:
    """Markdown for the findings page: which parts of which chapters did not run and why, from the
    'not run' rows of :func:`collect`'s table."""
    skipped = table[table.kind == "not run"]
    if skipped.empty:
        return "Every part of every chapter ran."
    parts = [f"**{statement}** ({chapter}): {why}" for statement, chapter, why in zip(skipped.statement, skipped.chapter, skipped["threshold or rule"])]
    note = "Not run in this build, so neither claimed nor tested: " + "; ".join(parts) + "."
    return note.replace("$", r"\$")  # "$ATTNBOOK_DATA_DIR … $ATTNBOOK_CACHE" is not inline math
