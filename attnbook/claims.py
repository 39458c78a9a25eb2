"""Claims and hypotheses: the two tables that end every chapter.

A *claim* is what a chapter stands on: a measured value compared with a threshold, asserted —
a claim that stops holding fails the tests. A *hypothesis* (from the seed study or the
literature) may go either way: it is measured against a control and reported with its verdict,
never asserted.

Every chapter writes its ``summary.json`` with :func:`write_summary`, in one schema (the findings
page reads it). In a notebook both tables render as HTML (:func:`claims_frame`, :func:`hypotheses_frame`); outside one
they print as text. :func:`check_claims` always prints the line ``claims: K/N hold`` that tests and
tools read.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError, bad_argument

__all__ = ["fmt", "Claim", "Hypothesis", "claims_table", "claims_frame", "check_claims", "hypotheses_table", "hypotheses_frame",
           "show_hypotheses", "summary_record", "write_summary"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def fmt(value: float | int | str) -> str:
    """Numbers with 3 decimals, or one significant digit below 1e-3 (the same text on any machine)."""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.0e}"


@dataclass(frozen=True)
class Claim:
    """``measured <op> threshold``, e.g. ``Claim("captured = output_attentions", 3e-8, "<", 1e-5)``."""

    text: str
    measured: float
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise bad_argument(InvalidInputError, "op", f"one of {list(_OPS)}", self.op)
        if not isinstance(self.measured, (int, float)) or isinstance(self.measured, bool):
            raise bad_argument(InvalidInputError, "measured", "a number", self.measured)

    @property
    def holds(self) -> bool:
        return math.isfinite(self.measured) and bool(_OPS[self.op](self.measured, self.threshold))


@dataclass(frozen=True)
class Hypothesis:
    """A statement tested against a control: measured (model), control, the rule, and the verdict."""

    text: str
    measured: str
    control: str
    rule: str
    supported: bool

    @property
    def verdict(self) -> str:
        return "supported" if self.supported else "not supported"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def claims_table(claims: Sequence[Claim]) -> str:
    """Text table (claim, measured, threshold, holds)."""
    rows = [[c.text, fmt(c.measured), f"{c.op} {fmt(c.threshold)}", "yes" if c.holds else "NO"] for c in claims]
    return _table(["claim", "measured", "threshold", "holds"], rows)


def claims_frame(claims: Sequence[Claim]):
    """The claims as a pandas DataFrame indexed by claim (measured, threshold, holds): an HTML table in a notebook."""
    import pandas as pd

    rows = [{"claim": c.text, "measured": fmt(c.measured), "threshold": f"{c.op} {fmt(c.threshold)}", "holds": "yes" if c.holds else "NO"}
            for c in claims]
    return pd.DataFrame(rows, columns=["claim", "measured", "threshold", "holds"]).set_index("claim")


def _in_notebook() -> bool:
    """Whether a Jupyter kernel (JupyterLab, papermill, nbval) runs this code."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the book's stack
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _show(frame, text: str) -> None:
    if _in_notebook():
        from IPython.display import display

        display(frame)
    else:
        print(text)


def check_claims(claims: Sequence[Claim]) -> None:
    """Show the claims table (HTML in a notebook, text elsewhere), print ``claims: K/N hold``, and raise
    AssertionError unless all hold."""
    if not claims:
        raise bad_argument(InvalidInputError, "claims", "at least one claim", claims)
    _show(claims_frame(claims), claims_table(claims))
    held = sum(c.holds for c in claims)
    print(f"claims: {held}/{len(claims)} hold")
    failing = [c.text for c in claims if not c.holds]
    assert not failing, f"claims that do not hold: {failing}"


def hypotheses_table(hypotheses: Sequence[Hypothesis]) -> str:
    """Text table (hypothesis, measured, control, rule, verdict)."""
    rows = [[h.text, h.measured, h.control, h.rule, h.verdict] for h in hypotheses]
    return _table(["hypothesis", "measured", "control", "rule", "verdict"], rows)


def hypotheses_frame(hypotheses: Sequence[Hypothesis]):
    """The hypotheses as a pandas DataFrame indexed by hypothesis (measured, control, rule, verdict)."""
    import pandas as pd

    rows = [{"hypothesis": h.text, "measured": h.measured, "control": h.control, "rule": h.rule, "verdict": h.verdict} for h in hypotheses]
    return pd.DataFrame(rows, columns=["hypothesis", "measured", "control", "rule", "verdict"]).set_index("hypothesis")


def show_hypotheses(hypotheses: Sequence[Hypothesis]) -> None:
    """Show the hypotheses table: HTML in a notebook, text elsewhere."""
    if not hypotheses:
        raise bad_argument(InvalidInputError, "hypotheses", "at least one hypothesis", hypotheses)
    _show(hypotheses_frame(hypotheses), hypotheses_table(hypotheses))


#: what every ``causal`` record of a summary holds
_CAUSAL_FIELDS = frozenset({"finding", "metric", "heads", "how", "effect", "random_mean", "percentile", "p_value", "draws", "rule", "verdict"})


def summary_record(claims: Sequence[Claim], hypotheses: Sequence[Hypothesis] = (), not_run: dict[str, str] | None = None,
                   causal: Sequence[dict] = ()) -> dict:
    """The part of a chapter's summary every chapter shares, in one schema: ``claims`` (records with
    ``claim, measured, op, threshold, holds``), ``hypotheses`` (``hypothesis, measured, control, rule,
    verdict``), ``not_run`` (``what, why``) and ``causal`` (the chapter's ablations against random head
    sets, as :meth:`attnbook.intervene.RandomComparison.record` writes them)."""
    missing = [sorted(_CAUSAL_FIELDS - set(c)) for c in causal if not _CAUSAL_FIELDS <= set(c)]
    if missing:
        raise bad_argument(InvalidInputError, "causal", f"records with {sorted(_CAUSAL_FIELDS)}", f"records missing {missing}", raw=True)
    return {
        "claims": [{"claim": c.text, "measured": c.measured, "op": c.op, "threshold": c.threshold, "holds": c.holds} for c in claims],
        "hypotheses": [{"hypothesis": h.text, "measured": h.measured, "control": h.control, "rule": h.rule, "verdict": h.verdict}
                       for h in hypotheses],
        "not_run": [{"what": what, "why": why} for what, why in (not_run or {}).items()],
        "causal": [dict(c) for c in causal],
    }


def write_summary(path, claims: Sequence[Claim], hypotheses: Sequence[Hypothesis] = (), not_run: dict[str, str] | None = None,
                  causal: Sequence[dict] = (), **extra) -> Path:
    """Write a chapter's ``summary.json`` (atomically): the chapter's own ``extra`` values (profile,
    seed, settings, tables), then :func:`summary_record`, then ``run``: where and in how long the
    chapter ran (:func:`attnbook.provenance.run_record`)."""
    from .provenance import run_record
    from .store import write_json

    return write_json(path, {**extra, **summary_record(claims, hypotheses, not_run, causal), "run": run_record()})
