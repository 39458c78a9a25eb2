"""The compatibility matrix for readers: the table of families and what capture does with each, the
refusals with their reasons, and a figure of how close every recorded family is to its reference."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import plots
from .runner import ATOL

__all__ = ["families_table", "refusals_table", "differences_figure"]

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
    capture from those without, per recorded family, on a log scale (exact zeros drawn at 1e-10), with
    the 1e-5 tolerance."""
    recorded = table[table.expect == "recorded"].reset_index(drop=True)
    floor = 1e-10
    fig = plots.BookFigure(figsize=(11.0, 4.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(recorded))
    for offset, column, label, marker in ((-0.15, "weights_diff", "weights vs the library's reference", "o"),
                                          (0.15, "outputs_diff", "outputs with vs without capture", "s")):
        values = np.maximum(recorded[column].to_numpy(dtype=float), floor)
        ax.scatter(x + offset, values, s=18, marker=marker, label=label)
    ax.axhline(ATOL, color="crimson", linestyle="--", linewidth=1, label=f"tolerance {ATOL:g}")
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, 1e-2)
    ax.set_xticks(x, [f"{lib[:5]}·{fam}" for lib, fam in zip(recorded.library, recorded.family)], rotation=90, fontsize=7)
    ax.set_ylabel("largest absolute difference")
    ax.set_xlabel("family (library · family)")
    ax.set_title("capture against each library's own reference, per family (0 drawn at 1e-10)")
    ax.legend(fontsize=8, loc="upper left")
    return fig
