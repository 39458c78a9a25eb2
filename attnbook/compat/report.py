"""The compatibility matrix for readers: the table of families and what capture does with each, the
refusals with their reasons, and a figure of how close every recorded family is to its reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from .runner import ATOL

__all__ = ["families_table", "refusals_table", "differences_figure", "tick_grid", "GRID_COLUMNS", "TICKS"]

_LIBRARIES = {"transformers": "Hugging Face transformers", "timm": "timm", "torch": "torch.nn"}


def _verdict(row: pd.Series) -> str:
    if not row.ok:
        return "FAILS: " + row.problem
    return "recorded, equal to the reference" if row.expect == "recorded" else "refused, as it should be"


def families_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per family (from :func:`~attnbook.compat.runner.matrix`): library, family, what is
    recorded, the verdict, layers, largest weight and output differences, state restored, note."""
    out = pd.DataFrame({
        "library": table.library.map(_LIBRARIES),
        "family": table.family,
        "recorded": [r if e == "recorded" else "—" for r, e in zip(table.recorded, table.expect)],
        "result": table.apply(_verdict, axis=1),
        "layers": table.layers.where(table.expect == "recorded", 0).astype(int),
        "weights vs reference": [f"{d:.0e}" if math.isfinite(d) else "—" for d in table.weights_diff],
        "outputs vs without capture": [f"{d:.0e}" if math.isfinite(d) else "—" for d in table.outputs_diff],
        "hooks and flags restored": table.restored.map({True: "yes", False: "NO"}),
        "note": table.note,
    })
    return out.set_index(["library", "family"])


def refusals_table(table: pd.DataFrame) -> pd.DataFrame:
    """The refused families: why (the case's note) and the error capture raised."""
    refused = table[table.expect == "refused"]
    return pd.DataFrame({"library": refused.library.map(_LIBRARIES), "family": refused.family, "why": refused.note,
                         "capture says": refused.refusal}).set_index(["library", "family"])


def differences_figure(table: pd.DataFrame) -> Figure:
    """Largest absolute difference of the captured weights from the reference and of the outputs with
    capture from those without, per recorded family (one row each, down the figure, so it keeps the
    page's column and its labels the book's smallest font), on a log scale (exact zeros drawn at
    1e-10), with the 1e-5 tolerance."""
    recorded = table[table.expect == "recorded"].reset_index(drop=True)
    floor = 1e-10
    fig = plots.BookFigure(figsize=(plots.BOOK_WIDTH_IN, 1.6 + 0.14 * len(recorded)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(recorded))
    for offset, column, label, marker in ((-0.15, "weights_diff", "weights vs the library's reference", "o"),
                                          (0.15, "outputs_diff", "outputs with vs without capture", "s")):
        values = np.maximum(recorded[column].to_numpy(dtype=float), floor)
        ax.scatter(values, y + offset, s=18, marker=marker, label=label)
    ax.axvline(ATOL, color="crimson", linestyle="--", linewidth=1, label=f"tolerance {ATOL:g}")
    ax.set_xscale("log")
    ax.set_xlim(floor / 3, 1e-2)
    ax.set_ylim(len(recorded) - 0.5, -0.5)  # the first family at the top
    ax.set_yticks(y, [f"{lib[:5]}·{fam}" for lib, fam in zip(recorded.library, recorded.family)], fontsize=plots.MIN_FONT_PT)
    ax.set_xlabel("largest absolute difference (0 drawn at 1e-10)")
    ax.set_ylabel("family (library · family)")
    ax.set_title("Capture against each library's own reference, per family")
    ax.grid(alpha=0.3, axis="x")
    fig.legend(fontsize=plots.MIN_FONT_PT, loc="outside lower center", ncol=2)
    return fig


#: the tick grid's columns: (header, what a tick means)
GRID_COLUMNS = (("weights", "every recorded layer within 1e-5 of the library's own reference"),
                ("outputs", "outputs with capture within 1e-5 of those without, at real tokens"),
                ("state", "no hook left and every flag restored, after a normal exit and after an exception"),
                ("refused", "refused with a typed error and a reason"))
#: symbol -> (badge kind, legend text)
TICKS = {"✓": ("supported", "holds"), "✗": ("not-supported", "fails"), "–": ("inconclusive", "does not apply")}


def _cells(row: pd.Series) -> list[tuple[str, str]]:
    """(symbol, detail) per grid column for one row of :func:`~attnbook.compat.runner.matrix`."""
    recorded = row.expect == "recorded"

    def diff(value: float, what: str) -> tuple[str, str]:
        if not recorded:
            return "–", f"{what}: not recorded (refused)"
        if not math.isfinite(value):
            return "✗", f"{what}: not measured ({row.problem or 'no value'})"
        return ("✓" if value <= ATOL else "✗"), f"{what}: largest difference {value:.1e} (tolerance {ATOL:g})"

    refused = ("–", "refused: not expected (recorded)") if recorded else \
        (("✓" if row.ok else "✗"), f"refused: {row.refusal or row.problem or 'no error raised'}")
    return [diff(row.weights_diff, "weights vs reference"), diff(row.outputs_diff, "outputs vs without capture"),
            (("✓" if row.restored else "✗"), "hooks and flags restored" if row.restored else "a hook or flag was left behind"), refused]


def tick_grid(table: pd.DataFrame) -> str:
    """The matrix (:func:`~attnbook.compat.runner.matrix`) as a tick grid: one row per family, grouped
    by library; the family's name opens its details (what is recorded, layers, the note, the refusal
    or the problem); per column ✓ holds / ✗ fails / – does not apply, each with its detail in
    ``title`` and focusable (``tabindex=0``) for keyboard users; a legend above."""
    import html

    from ..findings_view import assets

    def esc(value) -> str:
        return html.escape(str(value), quote=True)

    legend = "".join(f'<li><span class="ab-tick ab-{kind}" aria-hidden="true">{symbol}</span> {text}</li>'
                     for symbol, (kind, text) in TICKS.items())
    legend += "".join(f"<li><b>{name}</b>: {esc(text)}</li>" for name, text in GRID_COLUMNS)
    head = '<th scope="col">family</th>' + "".join(f'<th scope="col" title="{esc(text)}">{name}</th>' for name, text in GRID_COLUMNS)
    body = []
    for library, rows in table.groupby("library", sort=False):
        body.append(f'<tr><th scope="colgroup" colspan="{1 + len(GRID_COLUMNS)}">{esc(_LIBRARIES.get(library, library))}</th></tr>')
        for _, row in rows.iterrows():
            facts = [f"recorded: {row.recorded}" if row.expect == "recorded" else "refused", f"layers: {int(row.layers)}" if row.layers else "",
                     row.note, f"capture says: {row.refusal}" if row.refusal else "", f"FAILS: {row.problem}" if row.problem else ""]
            details = "; ".join(esc(f) for f in facts if f)
            kind = f' <span class="ab-kind">({esc(row.recorded)})</span>' if row.expect == "recorded" else ""
            cells = "".join(f'<td><abbr class="ab-tick ab-{TICKS[s][0]}" tabindex="0" title="{esc(d)}" aria-label="{esc(TICKS[s][1] + ": " + d)}">'
                            f"{s}</abbr></td>" for s, d in _cells(row))
            body.append(f'<tr data-family="{esc(row.family)}"><th scope="row"><details><summary>{esc(row.family)}{kind}</summary>'
                        f"<p>{details}</p></details></th>{cells}</tr>")
    return (f'{assets()}<div class="attnbook-fv attnbook-compat"><ul class="ab-legend">{legend}</ul>'
            f'<table class="ab-grid"><colgroup><col>{"<col class=ab-tickcol>" * len(GRID_COLUMNS)}</colgroup><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
